"""Each page of the web UI, run by Streamlit's AppTest against a real API on a real port.

The API serves in a thread of this process (uvicorn); the UI reaches it over HTTP only,
exactly as in production. One tiny job is run to the end by the worker's own code, so the
experiment pages have something real to show.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from conftest import make_texts
from services import free_port
from sqlalchemy.orm import sessionmaker

from loraforge.api.app import create_app
from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.jobs import execution
from loraforge.monitoring.logs import TaskIdFilter
from loraforge.settings import Settings
from loraforge.ui.client import ApiClient

PASSWORD = "correct horse battery"
pytestmark = pytest.mark.slow


class LiveApi:
    def __init__(self, root: Path, model_dir: Path) -> None:
        self.settings = Settings(
            data_dir=root / "state",
            results_dir=root / "results",
            jwt_expire_minutes=30,
        )
        self.model_dir = model_dir
        with sessionmaker(bind=get_engine(self.settings.resolved_database_url()))() as session:
            users.create_user(session, username="root", password=PASSWORD, role="admin")
            users.create_user(session, username="alice", password=PASSWORD)
            session.commit()
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=int(self.url.rsplit(":", 1)[1]),
            log_config=None,
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)

    def token(self, user: str) -> str:
        return ApiClient(self.url).login(user, PASSWORD)["access_token"]

    def client(self, user: str) -> ApiClient:
        return ApiClient(self.url, self.token(user))

    def finished_experiment(self, user: str = "alice") -> str:
        """Upload, submit and run one tiny job with the worker's code; its experiment id."""
        api = self.client(user)
        content = make_texts(80, seed=3).to_csv(index=False).encode()
        dataset = api.upload_dataset(
            "reviews.csv", content, text_column="text", label_column="label"
        )
        body = {
            "experiment_name": "ui-test",
            "model": {"base_model": str(self.model_dir), "device": "cpu"},
            "data": {"dataset_id": dataset["id"], "eval_split": 0.25, "max_length": 32},
            "lora": {"r": 4, "alpha": 8},
            "training": {"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "precision": "fp32"},
        }
        task = api.submit(body)
        execution.execute(task["task_id"], settings=self.settings)
        finished = api.task(task["task_id"])
        assert finished["status"] == "succeeded", finished
        return finished["experiment_id"]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    api = LiveApi(tmp_path_factory.mktemp("ui"), tiny_model_dir)
    api.experiment_id = api.finished_experiment()
    yield api
    api.stop()


def signed_in(app, live, user: str = "alice"):
    at = app()
    token = live.token(user)
    at.session_state["token"] = token
    at.session_state["user"] = ApiClient(live.url, token).me()
    return at


def chart_rows(chart) -> int:
    """Rows of data a rendered chart carries: a chart of nothing is a broken chart."""
    import pyarrow as pa

    return sum(pa.ipc.open_stream(d.data.data).read_all().num_rows for d in chart.proto.datasets)


def texts(at) -> str:
    """Everything the page says, in one string, for assertions about what a user reads."""
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "error", "warning", "success")
        for e in getattr(at, kind)
    ]
    parts += [m.label + " " + str(m.value) for m in at.metric]
    parts += (
        [t.value for t in at.title] + [h.value for h in at.header] + [h.value for h in at.subheader]
    )
    return "\n".join(str(p) for p in parts)


def test_sign_in_with_the_form_and_sign_out(app, live):
    at = app().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    at.text_input[0].input("alice")
    at.text_input[1].input("wrong password")
    at.button[0].click().run()
    assert "wrong username or password" in texts(at)
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["user"]["username"] == "alice"
    assert "New fine-tuning job" in texts(at)
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert "You are signed out." in texts(at)
    assert "token" not in at.session_state


def test_an_expired_token_sends_you_back_to_sign_in_with_a_message(app, live):
    from loraforge.auth.tokens import create_access_token

    at = signed_in(app, live)
    expired = live.settings.model_copy(update={"jwt_expire_minutes": 1})
    token, _ = create_access_token(user_id=at.session_state["user"]["id"], settings=expired)
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 10
    at.session_state["token"] = jwt.encode(
        claims, live.settings.jwt_secret.get_secret_value(), algorithm="HS256"
    )
    at.run()
    assert not at.exception
    assert "session has expired" in texts(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_new_job_shows_the_data_set_checks_and_explains_bad_values_by_their_field(app, live):
    at = signed_in(app, live).run()
    assert not at.exception
    page = texts(at)
    assert "reviews.csv" in at.selectbox[0].format_func(at.selectbox[0].value)
    assert "Rows" in page and "Validated: no warnings." in page
    assert (
        len(at.get("vega_lite_chart")) == 3
    )  # label distribution, lengths in characters and in words
    base = next(s for s in at.selectbox if s.label == "Base model")
    # auto first, then the models that read the data's language (English: minilm-l6).
    assert base.options[0].startswith("auto") and base.options[1].startswith("minilm-l6")
    assert "English" in page  # the language detected at upload
    # A bad name and a rank of 0 are refused next to their fields, and nothing is submitted.
    before = len(live.client("alice").tasks())
    next(t for t in at.text_input if t.label == "Experiment name").input("bad name!")
    next(n for n in at.number_input if n.label == "Rank r").set_value(0)
    at.button(key="FormSubmitter:train-Start fine-tuning").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    # In the API's words (loraforge.field_errors), not pydantic's or a regex.
    assert any(e.startswith("may only use letters, digits") for e in errors), errors
    assert "must be at least 1" in errors
    assert not any("should match pattern" in e or "^[" in e for e in errors), errors
    assert any("see the fields marked above" in e for e in errors)
    assert len(live.client("alice").tasks()) == before


def test_submitting_a_job_opens_it_live_and_it_can_be_cancelled(app, live):
    lines: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = lines.append
    collector.addFilter(TaskIdFilter())
    logging.getLogger("loraforge.ui").addHandler(collector)
    at = signed_in(app, live).run()
    next(t for t in at.text_input if t.label == "Experiment name").input("from-the-ui")
    next(n for n in at.number_input if n.label == "Epochs").set_value(1)
    at.button(key="FormSubmitter:train-Start fine-tuning").click().run()
    assert not at.exception, at.exception
    tasks = live.client("alice").tasks()
    submitted = next(t for t in tasks if t["config"]["experiment_name"] == "from-the-ui")
    assert submitted["status"] == "queued"  # no worker in this test: it waits
    assert submitted["config"]["training"]["learning_rate"] == 2e-3  # the measured default
    at.switch_page("views/jobs.py")
    at.query_params["task"] = submitted["task_id"]
    at.run()
    assert not at.exception
    assert ":blue[:material/pending: **Queued**]" in texts(at)
    next(b for b in at.button if b.label == "Cancel job").click().run()
    # One click only asks: nothing is cancelled until "Yes, cancel".
    assert live.client("alice").task(submitted["task_id"])["status"] == "queued"
    assert "Cancel this job?" in texts(at)
    next(b for b in at.button if b.label == "Yes, cancel").click().run()
    assert not at.exception, at.exception
    assert live.client("alice").task(submitted["task_id"])["status"] == "cancelled"
    # Cancelled on purpose reads neutral, says who and when, and is not an error.
    assert ":gray[:material/block: **Cancelled**]" in texts(at)
    assert any(
        i.value.startswith("Cancelled by you at ") and "UTC, before it started." in i.value
        for i in at.info
    )
    assert not at.error
    logging.getLogger("loraforge.ui").removeHandler(collector)
    # The UI's own log lines carry the task id, like the API's and the worker's.
    assert [r.getMessage() for r in lines if r.task_id == submitted["task_id"]] == [
        f"task {submitted['task_id']}: submitted from the UI",
        f"task {submitted['task_id']}: cancel asked from the UI",
    ]


def test_experiments_compare_and_show_a_confusion_matrix(app, live):
    second = live.finished_experiment()
    at = signed_in(app, live)
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert {live.experiment_id, second} <= set(table["Experiment"])
    compare = at.multiselect[2]
    assert compare.label.startswith("Experiments to compare")
    compare.set_value([live.experiment_id, second]).run()
    config = at.dataframe[1].value
    assert config.loc["training.epochs", "Differs"] == False  # noqa: E712 (a numpy bool)
    assert config.loc["experiment_name", "Differs"] == False  # noqa: E712
    # The name it was uploaded under, not the server's generated file name.
    assert set(config.loc["data.train_file", [live.experiment_id, second]]) == {"reviews.csv"}
    charts = at.get("vega_lite_chart")
    # Overlaid curves, final metric bars, the confusion matrix, one experiment's curves.
    assert len(charts) == 4
    assert all(chart_rows(chart) > 0 for chart in charts)
    assert "Accuracy" in texts(at)
    # Filters narrow the table.
    at.text_input[0].input("no-such-experiment").run()
    assert len(at.dataframe[0].value) == 0


def test_try_it_predicts_label_and_probability(app, live):
    at = signed_in(app, live)
    at.switch_page("views/try_it.py").run()
    assert not at.exception
    at.text_area[0].input("great good happy\nawful bad sad")
    at.button(key="FormSubmitter:predict-Predict").click().run()
    assert not at.exception, at.exception
    answers = at.dataframe[0].value
    assert list(answers["Label"]) and set(answers["Label"]) <= {"positive", "negative"}
    assert ((answers["Probability"] > 0) & (answers["Probability"] <= 1)).all()
    assert len(answers) == 2 and set(answers["Base model"]) == {live.model_dir.name}


def test_admin_creates_and_disables_users_and_reads_the_audit_log(app, live):
    at = signed_in(app, live, "alice").run()
    assert "Users and audit log" not in [p for p in str(at.sidebar)]
    at = signed_in(app, live, "root")
    at.switch_page("views/admin.py").run()
    assert not at.exception, at.exception
    form_inputs = [t for t in at.text_input if t.label.startswith(("Username", "Password"))]
    form_inputs[0].input("carol")
    form_inputs[1].input("carol's password")
    at.button(key="FormSubmitter:create_user-Create user").click().run()
    assert not at.exception, at.exception
    people = {p["username"]: p for p in live.client("root").users()}
    assert people["carol"]["is_active"] and people["carol"]["role"] == "user"
    target = next(s for s in at.selectbox if s.label == "User")
    target.set_value(next(o for o in target.options if "carol" in str(o))).run()
    next(b for b in at.button if b.label.startswith("Disable carol")).click().run()
    assert not {p["username"]: p for p in live.client("root").users()}["carol"]["is_active"]
    events = at.dataframe[1].value
    assert {"user.create", "login"} <= set(events["Action"])
    next(t for t in at.text_input if t.label == "Action").input("user.create").run()
    assert set(at.dataframe[1].value["Action"]) == {"user.create"}


def test_api_errors_are_shown_not_raised(app, live, monkeypatch):
    at = signed_in(app, live)
    at.switch_page("views/try_it.py").run()
    at.text_area[0].input("x" * 10)
    monkeypatch.setattr(
        "loraforge.ui.client.ApiClient.predict",
        lambda self, experiment_id, texts: self._call(
            "POST", "/predict", json={"experiment_id": "nope", "texts": texts}
        ),
    )
    at.button(key="FormSubmitter:predict-Predict").click().run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)


def test_upload_refusal_is_explained(app, live):
    at = signed_in(app, live).run()
    at.radio[0].set_value("Upload a file").run()
    assert not at.exception
    # One class only: refused by the API, and said so on the page.
    content = b"text,label\n" + b"".join(f"text {i},same\n".encode() for i in range(20))
    at.file_uploader[0].set_value(("one-class.csv", content, "text/csv")).run()
    next(b for b in at.button if b.label == "Validate and upload").click().run()
    assert not at.exception, at.exception
    assert any("at least 2 classes" in e.value for e in at.error)
