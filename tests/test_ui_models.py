"""The Models page (and the registry's places on Experiments and Try it), as a user reads
it: Streamlit's AppTest against a live API (tests/test_ui.py's LiveApi), the UI reaching
the API over HTTP only. Two tiny runs on different data sets give a model with two
versions whose scores the promotion gate cannot compare (other eval data)."""

from __future__ import annotations

import pytest
from conftest import make_texts
from test_ui import LiveApi, signed_in, texts

from loraforge.jobs import execution
from loraforge.ui import model_view as mv
from loraforge.ui.client import ApiClient

pytestmark = pytest.mark.slow

SENTIMENT, ROUTER = "review-sentiment", "ticket-router"
PAGE = "views/models.py"


def train(live: LiveApi, seed: int, name: str, user: str = "alice") -> str:
    """One tiny run on its own data set (its own eval data version): the experiment id."""
    api = live.client(user)
    content = make_texts(80, seed=seed).to_csv(index=False).encode()
    dataset = api.upload_dataset(f"{name}.csv", content, text_column="text", label_column="label")
    task = api.submit(
        {
            "experiment_name": name,
            "model": {"base_model": str(live.model_dir), "device": "cpu"},
            "data": {"dataset_id": dataset["id"], "eval_split": 0.25, "max_length": 32},
            "lora": {"r": 4, "alpha": 8},
            "training": {
                "epochs": 2,
                "batch_size": 8,
                "learning_rate": 5e-3,
                "precision": "fp32",
            },
        }
    )
    execution.execute(task["task_id"], settings=live.settings)
    finished = api.task(task["task_id"])
    assert finished["status"] == "succeeded", finished
    return finished["experiment_id"]


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    api = LiveApi(tmp_path_factory.mktemp("ui-models"), tiny_model_dir)
    api.first = train(api, 3, "reviews-a")
    api.second = train(api, 4, "reviews-b")
    alice = api.client("alice")
    alice.register_model(
        api.first,
        SENTIMENT,
        description="Tells positive from negative customer reviews of flights and food",
        task="sentiment",
        tags={"team": "support"},
    )
    alice.register_model(api.second, SENTIMENT, task="sentiment", tags={"team": "support"})
    alice.register_model(
        api.second,
        ROUTER,
        description="Routes support tickets to the billing or the shipping team",
        task="ticket routing",
        tags={"team": "ops"},
    )
    yield api
    api.stop()


def open_version(app, live, user: str, name: str, version: int):
    at = signed_in(app, live, user)
    at.switch_page(PAGE)
    at.query_params["name"] = name
    at.query_params["version"] = str(version)
    return at.run()


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def labels(at) -> list[str]:
    return [b.label for b in at.button]


# Pure functions ----------------------------------------------------------------------------


def test_only_the_moves_a_role_may_make_are_offered():
    alice, root = {"username": "alice", "role": "user"}, {"username": "root", "role": "admin"}
    mine = {"owner": "alice", "stage": "none"}
    assert mv.allowed_moves(alice, mine) == ["Staging"]
    assert mv.allowed_moves(alice, {**mine, "stage": "Staging"}) == []
    assert mv.allowed_moves(root, {**mine, "stage": "Staging"}) == ["Production", "Archived"]
    assert mv.allowed_moves(alice, {**mine, "owner": "bob"}) == []
    assert mv.allowed_moves(root, {**mine, "stage": "Archived"}) == ["Staging"]
    assert mv.move_label("Archived", "Staging") == "Restore to Staging"
    assert mv.badge("Production").startswith(":green-badge[")
    assert mv.badge("Staging").startswith(":blue-badge[")
    assert mv.badge("Archived").startswith(":gray-badge[")
    assert mv.parse_tags("team=support, lang:en") == {"team": "support", "lang": "en"}
    with pytest.raises(ValueError, match="'oops' is not key=value"):
        mv.parse_tags("team=support, oops")


def test_per_class_scores_come_from_the_matrix_when_a_card_lacks_them():
    rows = mv.per_class_rows(
        {"confusion_matrix": {"labels": ["a", "b"], "matrix": [[3, 1], [0, 4]]}}
    )
    assert list(rows["Label"]) == ["a", "b"]
    assert rows["Precision"].round(3).tolist() == [1.0, 0.8]
    assert rows["Recall"].round(3).tolist() == [0.75, 1.0]
    assert rows["Support"].tolist() == [4, 4]


# The page ---------------------------------------------------------------------------------


def test_the_table_lists_registered_models_with_their_stage(app, live):
    at = signed_in(app, live)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value.set_index("Model")
    assert set(table.index) == {SENTIMENT, ROUTER}
    assert table.loc[SENTIMENT, "Latest"] == "v2"
    assert table.loc[SENTIMENT, "Versions"] == 2
    assert table["Stage"].isin(["no stage", "Staging", "Production"]).all()
    assert table["Updated"].str.endswith(" UTC").all()
    assert set(table["Base model"]) == {live.model_dir.name}  # not the server's path


def test_an_empty_registry_says_how_to_register(app, live, monkeypatch):
    monkeypatch.setattr(ApiClient, "registered_models", lambda self: [])
    at = signed_in(app, live)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    (info,) = [i.value for i in at.info]
    assert "Register this model" in info
    assert "loraforge registry register EXPERIMENT --name NAME" in info


def test_a_deep_link_opens_the_version_and_its_card(app, live):
    at = open_version(app, live, "alice", SENTIMENT, 1)
    assert not at.exception, at.exception
    page = texts(at)
    assert f"{SENTIMENT} v1" in page
    assert [s.value for s in at.selectbox if s.label in ("Model", "Version")] == [SENTIMENT, 1]
    # Labels with their counts, per-class scores, confusion matrix.
    counts = next(d.value for d in at.dataframe if "Train texts" in d.value.columns)
    assert set(counts["Label"]) == {"positive", "negative"}
    assert counts["Eval texts"].sum() == 20
    per_class = next(d.value for d in at.dataframe if "Precision" in d.value.columns)
    assert set(per_class["Label"]) == {"positive", "negative"}
    assert any("Confusion matrix" in str(c.proto.spec) for c in at.get("vega_lite_chart")), (
        "no confusion matrix"
    )
    # Lineage: data versions, the experiment, the MLflow run; intended use from its facts.
    version = live.client("alice").model_version(SENTIMENT, 1)
    card = live.client("alice").model_card(SENTIMENT, 1)["card"]
    assert f"`{card['data']['train']['version'][:12]}`" in page
    assert "Classifies" in page  # the intended use written from the card's facts
    downloads = at.get("download_button")
    assert downloads and downloads[0].proto.label == "Download the card (README.md)"
    links = [str(p.proto) for p in at.get("page_link")]
    assert any(version["experiment_id"] in link for link in links)
    assert "registered (v1)" in page  # the history
    # MLflow: the run (its owner may read it) and the registered model version.
    assert "/#/experiments/" in page and f"/runs/{version['mlflow_run_id']})" in page
    assert f"/#/models/{SENTIMENT}/versions/{version['mlflow_version']})" in page


def test_the_owner_edits_the_intended_use_and_limitations(app, live):
    at = open_version(app, live, "alice", ROUTER, 1)
    next(t for t in at.text_area if t.label == "Intended use").input("Routing e-mails")
    next(t for t in at.text_area if t.label == "Limitations").input("English only")
    at.button(key=f"FormSubmitter:card-{ROUTER}:1-Save the card").click().run()
    assert not at.exception, at.exception
    saved = live.client("root").model_version(ROUTER, 1)
    assert (saved["intended_use"], saved["limitations"]) == ("Routing e-mails", "English only")
    page = texts(at)
    assert f"Card of {ROUTER} v1 saved." in page and "Routing e-mails" in page
    assert "English only" in live.client("root").model_card(ROUTER, 1)["readme"]


def test_an_owner_sees_staging_only_and_an_admin_sees_production(app, live):
    at = open_version(app, live, "alice", ROUTER, 1)
    assert "Promote to Staging" in labels(at)
    button(at, "Promote to Staging").click().run()
    assert not at.exception, at.exception
    assert live.client("alice").model_version(ROUTER, 1)["stage"] == "Staging"
    assert f"{ROUTER} v1: no stage → Staging." in texts(at)
    # Now in Staging: the owner may not go further, and the page says who may.
    assert "Promote to Production" not in labels(at)
    assert "Production and Archived are for an admin" in texts(at)
    at = open_version(app, live, "root", ROUTER, 1)
    assert {"Promote to Production", "Archive"} <= set(labels(at))


def test_an_admin_promotion_moves_the_stage_and_writes_the_history(app, live):
    api = live.client("alice")
    if api.model_version(SENTIMENT, 1)["stage"] == "none":
        api.transition(SENTIMENT, 1, "Staging")
    at = open_version(app, live, "root", SENTIMENT, 1)
    next(t for t in at.text_input if t.label.startswith("Reason")).input("checked by hand")
    button(at, "Promote to Production").click().run()
    assert not at.exception, at.exception
    assert api.model_version(SENTIMENT, 1)["stage"] == "Production"
    page = texts(at)
    assert f"{SENTIMENT} v1: Staging → Production." in page
    assert "root · v1: Staging → Production" in page
    assert "reason: “checked by hand”" in page
    assert ":green-badge[:material/rocket_launch: Production]" in page
    table = at.dataframe[0].value.set_index("Model")
    assert table.loc[SENTIMENT, "Stage"] == "Production"
    assert table.loc[SENTIMENT, "Production"] == "v1"


def test_a_gate_refusal_shows_the_409_and_an_admin_may_force(app, live):
    api = live.client("alice")
    for stage in ("Staging", "Production"):
        if api.model_version(SENTIMENT, 1)["stage"] != "Production":
            live.client("root").transition(SENTIMENT, 1, stage, reason="setup")
    if api.model_version(SENTIMENT, 2)["stage"] == "none":
        api.transition(SENTIMENT, 2, "Staging")
    at = open_version(app, live, "root", SENTIMENT, 2)
    button(at, "Promote to Production").click().run()
    assert not at.exception, at.exception
    (refusal,) = [e.value for e in at.error]
    # Other eval data (another data set): the scores cannot be compared; force is offered.
    assert "promotion refused" in refusal and "cannot be compared" in refusal, refusal
    assert "force" in refusal  # the hint
    assert api.model_version(SENTIMENT, 2)["stage"] == "Staging"
    force = next(c for c in at.checkbox if c.label.startswith("Promote anyway (force)"))
    force.check()
    next(t for t in at.text_input if t.label.startswith("Reason")).input("new data set")
    button(at, "Promote to Production").click().run()
    assert not at.exception, at.exception
    assert api.model_version(SENTIMENT, 2)["stage"] == "Production"
    assert api.model_version(SENTIMENT, 1)["stage"] == "Archived"
    page = texts(at)
    assert "(forced)" in page and ":orange-badge[:material/warning: forced]" in page
    assert "replaced by version 2" in page  # the archived one's line
    assert not at.error


def test_the_recommend_box_ranks_models_for_a_need(app, live):
    at = signed_in(app, live)
    at.switch_page(PAGE).run()
    next(t for t in at.text_area if t.label == "What should the model do?").input(
        "is this customer review of a flight positive or negative"
    )
    at.button(key="FormSubmitter:recommend-Recommend").click().run()
    assert not at.exception, at.exception
    ranked = [m.value for m in at.markdown if m.value.startswith("**1. ") or "score " in m.value]
    assert ranked and ranked[0].startswith(f"**1. {SENTIMENT} v"), ranked
    assert any(f"**{n}. {ROUTER} v1**" in r for n in (2, 3) for r in ranked), ranked
    # The UI shows the API's order, with its score and reasons.
    asked = live.client("alice").recommend(
        query="is this customer review of a flight positive or negative"
    )
    first = asked[0]
    assert f"score {first['score']:.3f}" in ranked[0]
    assert first["reasons"][0] in ranked[0]
    # A data set instead of words.
    at.radio(key="recommend_source").set_value("One of your data sets").run()
    at.button(key="FormSubmitter:recommend-Recommend").click().run()
    assert not at.exception, at.exception
    assert any(m.value.startswith("**1. ") for m in at.markdown)


def test_search_filters_narrow_the_versions(app, live):
    at = signed_in(app, live)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    found = at.dataframe[1].value
    assert len(found) >= 2 and list(found.columns) == mv.VERSION_COLUMNS
    next(t for t in at.text_input if t.label == "Name contains").input("ticket")
    at.button(key="FormSubmitter:search-Search").click().run()
    assert set(at.dataframe[1].value["Model"]) == {ROUTER}
    next(t for t in at.text_input if t.label == "Name contains").input("")
    next(t for t in at.text_input if t.label == "Tags").input("team=support")
    next(s for s in at.selectbox if s.label == "Task").set_value("sentiment")
    at.button(key="FormSubmitter:search-Search").click().run()
    assert not at.exception, at.exception
    assert set(at.dataframe[1].value["Model"]) == {SENTIMENT}
    next(n for n in at.number_input if n.label == "At least").set_value(1.0)
    at.button(key="FormSubmitter:search-Search").click().run()
    assert any("No version matches" in i.value for i in at.info)
    next(t for t in at.text_input if t.label == "Tags").input("oops")
    at.button(key="FormSubmitter:search-Search").click().run()
    assert any("Tags: 'oops' is not key=value" in e.value for e in at.error)


def test_an_experiment_registers_from_its_page(app, live):
    at = signed_in(app, live)
    at.switch_page("views/experiments.py")
    at.query_params["experiment"] = live.first
    at.run()
    assert not at.exception, at.exception
    next(t for t in at.text_input if t.label == "Model name").input("from-the-page")
    next(t for t in at.text_input if t.label == "Task").input("sentiment")
    at.button(key=f"FormSubmitter:register-{live.first}-Register").click().run()
    assert not at.exception, at.exception
    assert "Registered as **from-the-page v1**." in texts(at)
    assert live.client("alice").model_version("from-the-page", 1)["task"] == "sentiment"
    # A bad name: the API's words, no traceback, nothing registered.
    next(t for t in at.text_input if t.label == "Model name").input("bad name!")
    at.button(key=f"FormSubmitter:register-{live.first}-Register").click().run()
    assert not at.exception, at.exception
    (refusal,) = [e.value for e in at.error if "did not learn" not in e.value]
    assert refusal.startswith("Model name: "), refusal
    assert "`errors`" not in refusal  # the API's hint for programs is not shown here
    assert "bad name!" not in {m["name"] for m in live.client("alice").registered_models()}


def test_an_experiment_links_to_its_mlflow_run(app, live, monkeypatch):
    run_id = live.client("alice").model_version(SENTIMENT, 1)["mlflow_run_id"]
    experiments = ApiClient.experiments

    def with_run_id(self):
        # Until GET /experiments answers each experiment's mlflow_run_id, the registered
        # version (same experiment) tells it; once it does, this changes nothing.
        answers = experiments(self)
        for experiment in answers:
            if experiment["id"] == live.first:
                experiment.setdefault("mlflow_run_id", run_id)
        return answers

    monkeypatch.setattr(ApiClient, "experiments", with_run_id)
    at = signed_in(app, live)
    at.switch_page("views/experiments.py")
    at.query_params["experiment"] = live.first
    at.run()
    assert not at.exception, at.exception
    (mlflow,) = at.get("link_button")
    assert mlflow.proto.url.startswith(live.settings.mlflow_ui_url.rstrip("/") + "/#/experiments/")
    assert mlflow.proto.url.endswith(f"/runs/{run_id}")


def test_try_it_predicts_with_a_registered_model(app, live):
    at = signed_in(app, live)
    at.switch_page("views/try_it.py")
    at.query_params["model"] = f"{ROUTER}:1"
    at.run()
    assert not at.exception, at.exception
    assert at.radio[0].value == "A registered model"
    (choice,) = [s for s in at.selectbox if s.label == "Registered model"]
    assert choice.value == f"{ROUTER}:1"
    at.text_area[0].input("great good happy\nawful bad sad")
    at.button(key="FormSubmitter:predict-Predict").click().run()
    assert not at.exception, at.exception
    answers = at.dataframe[0].value
    assert len(answers) == 2 and set(answers["Label"]) <= {"positive", "negative"}
