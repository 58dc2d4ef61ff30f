"""The web UI's sign-in across reloads, deep links, the admin page for others, the upload's
column drop-downs, the API's words under the fields, and "run again" — each page run by
Streamlit's AppTest against a real API on a real port (see tests/test_ui.py).

A reload is a new Streamlit session whose only link to the old one is the cookie the
browser sends; AppTest cannot send cookies, so the tests hand the key to the one function
that reads it (``session._browser_key``). The browser test does the same with Chromium.
"""

from __future__ import annotations

import pytest
from conftest import make_texts
from streamlit.testing.v1 import AppTest
from test_ui import PASSWORD, LiveApi, signed_in, texts

from loraforge.data.loading import COLUMNS_HINTS
from loraforge.ui import session
from loraforge.ui.client import ApiError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    api = LiveApi(tmp_path_factory.mktemp("ui-session"), tiny_model_dir)
    content = make_texts(60, seed=4).to_csv(index=False).encode()
    api.dataset = api.client("alice").upload_dataset(
        "reviews.csv", content, text_column="text", label_column="label"
    )
    yield api
    api.stop()


@pytest.fixture
def page_not_found(monkeypatch):
    """Every time Streamlit would show its "Page not found" dialog."""
    calls: list[object] = []
    monkeypatch.setattr(
        "streamlit.commands.navigation.send_page_not_found", lambda ctx: calls.append(ctx)
    )
    return calls


def reload_with(app, monkeypatch, key: str | None) -> AppTest:
    """A new browser session (a reload) that sends ``key`` in its cookie."""
    monkeypatch.setattr(session, "_browser_key", lambda: key)
    return app()


def sign_in(at, user: str = "alice", password: str = PASSWORD) -> AppTest:
    next(t for t in at.text_input if t.label == "Username").input(user)
    next(t for t in at.text_input if t.label == "Password").input(password)
    return at.button(key="FormSubmitter:sign_in-Sign in").click().run()


def cookie_scripts(at) -> list[str]:
    return [h.value for h in at.get("html") if "document.cookie" in h.value]


def submit_job(live, **training) -> dict:
    body = {
        "experiment_name": "again-and-again",
        "model": {"base_model": str(live.model_dir), "device": "cpu"},
        "data": {"dataset_id": live.dataset["id"], "eval_split": 0.25, "max_length": 32},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["query", "value"]},
        "training": {"epochs": 2, "batch_size": 8, "precision": "fp32", **training},
    }
    return live.client("alice").submit(body)


def test_a_reload_finds_the_sign_in_by_a_cookie_key_that_is_not_the_token(app, live, monkeypatch):
    at = sign_in(reload_with(app, monkeypatch, None).run())
    assert not at.exception
    key, token = at.session_state["session_key"], at.session_state["token"]
    # The browser is given the key only, for as long as the token lives.
    [script] = cookie_scripts(at)
    assert f"loraforge_session={key};" in script and "SameSite=Strict" in script
    assert token not in script and "Max-Age=17" in script  # 30 minutes: 17xx seconds
    assert session.sessions().get(key).token == token

    reloaded = reload_with(app, monkeypatch, key).run()
    assert not reloaded.exception
    assert reloaded.session_state["user"]["username"] == "alice"
    assert "New fine-tuning job" in texts(reloaded)
    assert not [t for t in reloaded.text_input if t.label == "Password"]
    # Someone else's made-up key opens nothing.
    forged = reload_with(app, monkeypatch, "x" * 43).run()
    assert [t.label for t in forged.text_input] == ["Username", "Password"]


def test_signing_out_forgets_the_key_and_clears_the_cookie(app, live, monkeypatch):
    at = sign_in(reload_with(app, monkeypatch, None).run())
    key = at.session_state["session_key"]
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert "You are signed out." in texts(at)
    assert session.sessions().get(key) is None
    assert any("loraforge_session=;" in s and "Max-Age=0" in s for s in cookie_scripts(at))
    # A copy of the cookie taken before signing out is worth nothing now.
    stolen = reload_with(app, monkeypatch, key).run()
    assert [t.label for t in stolen.text_input] == ["Username", "Password"]


def test_a_disabled_user_is_not_signed_in_again_by_the_cookie(app, live, monkeypatch):
    live.client("root").create_user("dora", PASSWORD, "user")
    at = sign_in(reload_with(app, monkeypatch, None).run(), "dora")
    key = at.session_state["session_key"]
    dora = next(u for u in live.client("root").users() if u["username"] == "dora")
    live.client("root").set_active(dora["id"], False)
    again = reload_with(app, monkeypatch, key).run()
    assert not again.exception
    assert [t.label for t in again.text_input] == ["Username", "Password"]
    assert session.sessions().get(key) is None  # the API said 401: forgotten


def test_a_deep_link_signed_out_opens_its_page_after_sign_in(
    app, live, monkeypatch, page_not_found
):
    task_id = submit_job(live)["task_id"]
    at = reload_with(app, monkeypatch, None)
    at.switch_page("views/jobs.py")
    at.query_params["task"] = task_id
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "Sign in to open **Jobs**." in texts(at)
    sign_in(at)
    assert not at.exception, at.exception
    assert "Jobs" in [t.value for t in at.title]
    assert any(task_id in h.value for h in at.subheader)
    assert at.query_params["task"] == task_id
    assert page_not_found == []


@pytest.mark.parametrize("page", ["new_job", "jobs", "experiments", "try_it", "admin"])
def test_every_url_exists_signed_out(app, live, monkeypatch, page_not_found, page):
    at = reload_with(app, monkeypatch, None)
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert page_not_found == []


def test_the_admin_page_tells_a_user_it_is_for_administrators(app, live, page_not_found):
    at = signed_in(app, live, "alice")
    at.switch_page("views/admin.py").run()
    assert not at.exception
    assert "This page is for administrators" in texts(at)
    assert page_not_found == []
    assert not at.dataframe  # nothing of the admin page itself


def test_upload_offers_the_file_columns_and_speaks_of_the_drop_downs(app, live, monkeypatch):
    at = signed_in(app, live).run()
    at.radio(key="dataset_source").set_value("Upload a file").run()
    frame = make_texts(40, seed=9).rename(columns={"text": "Review", "label": "sentiment"})
    frame.insert(0, "id", range(len(frame)))
    content = frame.to_csv(index=False, sep=";").encode()
    at.file_uploader[0].set_value(("semicolons.csv", content, "text/csv")).run()
    assert not at.exception, at.exception
    boxes = {s.label: s for s in at.selectbox}
    assert boxes["Text column"].options == ["id", "Review", "sentiment"]
    assert (boxes["Text column"].value, boxes["Label column"].value) == ("Review", "sentiment")
    assert "separator ';' (semicolon)" in texts(at)

    # Were the API to refuse a column anyway, the advice is about this page, not the API's
    # form fields or the CLI's options.
    upload = type(live.client("alice")).upload_dataset
    monkeypatch.setattr(
        "loraforge.ui.client.ApiClient.upload_dataset",
        lambda self, name, data, text_column, label_column: upload(
            self, name, data, text_column="Reviews", label_column=label_column
        ),
    )
    next(b for b in at.button if b.label == "Validate and upload").click().run()
    assert not at.exception, at.exception
    refusal = "\n".join(e.value for e in at.error)
    assert "no column 'Reviews'" in refusal
    assert COLUMNS_HINTS["ui"] in refusal
    assert "form field" not in refusal and "--text-column" not in refusal

    monkeypatch.undo()
    monkeypatch.setenv("LORAFORGE_API_URL", live.url)
    next(b for b in at.button if b.label == "Validate and upload").click().run()
    assert not at.exception, at.exception
    assert "Uploaded semicolons.csv" in texts(at)
    assert "separator: ';'" in texts(at)  # the API's answer says how it read the file


def test_api_errors_map_to_fields_in_both_shapes():
    new = ApiError(
        422,
        "2 fields are not valid",
        "Fix the fields listed in `errors`.",
        [{"field": "training.epochs", "message": "must be at least 1", "location": "body"}],
    )
    assert new.field_errors() == {"training.epochs": "must be at least 1"}
    old = ApiError(
        422,
        [
            {
                "loc": ["body", "lora", "r"],
                "msg": "Input should be greater than or equal to 1",
                "type": "greater_than_equal",
                "ctx": {"ge": 1},
            }
        ],
    )
    assert old.field_errors() == {"lora.r": "must be at least 1"}


def test_run_again_opens_new_job_with_every_setting_of_the_job(app, live):
    first = submit_job(live, learning_rate=5e-3, seed=7, weight_decay=0.02)
    first_task = live.client("alice").task(first["task_id"])
    original = first_task["config"]
    at = signed_in(app, live)
    at.switch_page("views/jobs.py")
    at.query_params["task"] = first["task_id"]
    at.run()
    next(b for b in at.button if b.label == "Run again with these settings").click().run()
    assert not at.exception, at.exception
    assert "New fine-tuning job" in texts(at)
    assert "Starting from the settings of **again-and-again**" in texts(at)
    numbers = {n.label: n.value for n in at.number_input}
    assert numbers["Epochs"] == 2 and numbers["Rank r"] == 4 and numbers["Seed"] == 7
    assert numbers["Learning rate"] == 5e-3 and numbers["Max length (tokens)"] == 32
    fields = {t.label: t.value for t in at.text_input}
    assert fields["Experiment name"] == "again-and-again"
    assert fields["Hugging Face id or server folder"] == str(live.model_dir)
    assert fields["Target modules"] == "query, value"
    assert next(s for s in at.selectbox if s.label == "Precision").value == "fp32"
    assert next(s for s in at.slider if s.label.startswith("Share held out")).value == 0.25

    # (AppTest stays on the page it was switched to last, not the one the app opened.)
    at.switch_page("views/new_job.py")
    at.button(key="FormSubmitter:train-Start fine-tuning").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    tasks = live.client("alice").tasks()
    [second] = [t for t in tasks if t["created_at"] > first_task["created_at"]]
    assert second["config"] == original
    # Even what the form does not show (device, weight decay) is the job's own.
    assert second["config"]["training"]["weight_decay"] == 0.02
    assert second["config"]["model"]["device"] == "cpu"
