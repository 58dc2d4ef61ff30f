"""The model registry over HTTP: register, stages with roles and the gate, history, cards,
search and recommendation wiring, predictions by reference, the base-model catalog's new
path, and the MLflow endpoints — through FastAPI's TestClient on a real (tiny) run.

Sentence embeddings are replaced by a fast stand-in: what they rank is tested in
tests/test_registry_recommend.py with the real model; here only the wiring is.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from sqlalchemy.orm import sessionmaker

from loraforge.api.app import create_app
from loraforge.api.schemas import EMBEDDING_DIMENSION, ModelVersionPublic
from loraforge.auth import users
from loraforge.config import MODEL_NAME_PATTERN
from loraforge.db.engine import get_engine, session_scope
from loraforge.db.models import Experiment
from loraforge.registry import embeddings, versions
from loraforge.settings import Settings

PASSWORD = "correct horse battery"


def fake_embed(texts):
    """Unit vectors from the texts' hashes: stable, distinct, instant."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(EMBEDDING_DIMENSION)
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), EMBEDDING_DIMENSION)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir, data_files):
    """One trained tiny run owned by alice, plus copies of it with other scores (so the
    gate has something to refuse), in a data directory of this module's own."""
    from conftest import tiny_config_tree

    from loraforge.config import config_from_tree
    from loraforge.training.runner import run_training

    patch = pytest.MonkeyPatch()
    patch.setattr(embeddings, "embed", fake_embed)
    root = tmp_path_factory.mktemp("registry-api")
    settings = Settings(data_dir=root / "state", results_dir=root / "results")
    factory = sessionmaker(bind=get_engine(settings.resolved_database_url()))
    with factory() as session:
        people = {
            name: users.create_user(session, username=name, password=PASSWORD, role=role)
            for name, role in (("root", "admin"), ("alice", "user"), ("bob", "user"))
        }
        session.commit()
    config = config_from_tree(tiny_config_tree(tiny_model_dir, data_files, epochs=1), source="test")
    run = run_training(config, settings=settings, owner_id=people["alice"].id)
    url = settings.resolved_database_url()
    with session_scope(url) as session:
        source = session.get(Experiment, run.experiment_id)
        columns = {a.key: getattr(source, a.key) for a in inspect(Experiment).column_attrs}
        for new_id, f1, eval_version in (
            ("worse", 0.01, columns["eval_dataset_version"]),
            ("other-eval", 0.99, "another-eval-data-version"),
        ):
            metrics = copy.deepcopy(columns["metrics"])
            metrics["final"]["f1_macro"] = f1
            session.add(
                Experiment(
                    **{
                        **columns,
                        "id": new_id,
                        "metrics": metrics,
                        "eval_dataset_version": eval_version,
                        "mlflow_run_id": None,  # the run stays the trained one's alone
                    }
                )
            )
    with TestClient(create_app(settings)) as client:
        tokens = {}
        for name in people:
            answer = client.post("/login", data={"username": name, "password": PASSWORD})
            tokens[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        yield {
            "client": client,
            "settings": settings,
            "as": tokens,
            "experiment": run.experiment_id,
            "run_id": run.mlflow_run_id,
            "root": root,
        }
    patch.undo()


def register(world, name, experiment=None, who="alice", **fields):
    return world["client"].post(
        "/models",
        headers=world["as"][who],
        json={"experiment_id": experiment or world["experiment"], "name": name, **fields},
    )


def move(world, name, version, stage, who="root", **fields):
    return world["client"].post(
        "/models/transition",
        headers=world["as"][who],
        json={"name": name, "version": version, "stage": stage, **fields},
    )


def get(world, path, who="alice", **params):
    return world["client"].get(path, headers=world["as"][who], params=params)


def audit(world, **params):
    return get(world, "/audit/logs", who="root", **params).json()["data"]


def test_register_then_staging_then_production_by_an_admin(world):
    created = register(
        world, "reviews", description="tiny reviews", tags={"team": "support"}, task="sentiment"
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 1 and body["stage"] == "none" and body["owner"] == "alice"
    assert body["reference"] == "reviews:1" and body["tags"] == {"team": "support"}
    assert body["experiment_id"] == world["experiment"]
    assert body["mlflow_run_id"] == world["run_id"] and body["mlflow_version"] == "1"
    assert set(body["metrics"]) >= {"accuracy", "f1_macro", "eval_data_version"}
    assert str(world["root"]) not in created.text  # no server paths (the base model's folder)

    # The owner moves it to Staging; Production needs an admin: 403, audited.
    assert move(world, "reviews", 1, "Staging", who="alice").json()["stage"] == "Staging"
    refused = move(world, "reviews", 1, "Production", who="alice")
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]
    events = audit(world, action="model.transition", user="alice")
    [denied] = [e for e in events if e["outcome"] == "denied"]
    assert denied["target"] == "reviews:1"
    assert move(world, "reviews", 1, "Production").json()["stage"] == "Production"

    listed = get(world, "/models", who="bob").json()  # shared with every signed-in user
    [model] = [m for m in listed["data"] if m["name"] == "reviews"]
    assert model["production"]["version"] == 1 and model["latest"]["version"] == 1
    detail = get(world, "/models/reviews", who="bob").json()
    assert [v["version"] for v in detail["versions"]] == [1]
    assert get(world, "/models/reviews/versions/1").json()["stage"] == "Production"
    # MLflow shows the truth: the alias points at our Production version.
    from mlflow.tracking import MlflowClient

    uri = world["settings"].resolved_mlflow_tracking_uri()
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(mlflow.get_model_version_by_alias("reviews", "production").version) == "1"


def test_a_move_not_in_the_table_is_409_naming_the_allowed_ones(world):
    register(world, "jumpy")
    refused = move(world, "jumpy", 1, "Production")
    assert refused.status_code == 409
    assert "cannot move to Production" in refused.json()["detail"]
    assert "Staging" in refused.json()["hint"]


def test_the_gate_refuses_a_worse_version_and_an_admin_forces_it_with_a_reason(world):
    register(world, "gated")
    move(world, "gated", 1, "Staging", who="alice")
    move(world, "gated", 1, "Production")
    assert register(world, "gated", experiment="worse").json()["version"] == 2
    move(world, "gated", 2, "Staging", who="alice")

    refused = move(world, "gated", 2, "Production")
    assert refused.status_code == 409
    production_f1 = get(world, "/models/gated/versions/1").json()["metrics"]["f1_macro"]
    assert "0.0100" in refused.json()["detail"]  # both numbers
    assert f"{production_f1:.4f}" in refused.json()["detail"]
    assert "force" in refused.json()["hint"]

    no_reason = move(world, "gated", 2, "Production", force=True)
    assert no_reason.status_code == 422
    assert "reason" in no_reason.json()["detail"]
    not_admin = move(world, "gated", 2, "Production", who="alice", force=True, reason="trust me")
    assert not_admin.status_code == 403

    forced = move(world, "gated", 2, "Production", force=True, reason="the old one broke")
    assert forced.status_code == 200, forced.text
    assert get(world, "/models/gated/versions/1").json()["stage"] == "Archived"

    # Newest first: the forced promotion, the archiving it caused, then back in time.
    history = get(world, "/models/gated/history", who="bob").json()
    steps = [(h["version"], h["from_stage"], h["to_stage"]) for h in history["data"]]
    assert steps == [
        (2, "Staging", "Production"),
        (1, "Production", "Archived"),
        (2, "none", "Staging"),
        (2, None, "none"),
        (1, "Staging", "Production"),
        (1, "none", "Staging"),
        (1, None, "none"),
    ]
    assert history["count"] == 7
    top = history["data"][0]
    assert top["forced"] and top["reason"] == "the old one broke" and top["actor"] == "root"
    assert top["metrics"]["f1_macro"] == 0.01
    assert top["previous_production_metrics"]["f1_macro"] == production_f1
    assert [h["id"] for h in history["data"]] == sorted(
        (h["id"] for h in history["data"]), reverse=True
    )


def test_versions_on_other_eval_data_cannot_be_compared(world):
    register(world, "apples")
    move(world, "apples", 1, "Staging", who="alice")
    move(world, "apples", 1, "Production")
    register(world, "apples", experiment="other-eval")
    move(world, "apples", 2, "Staging", who="alice")
    refused = move(world, "apples", 2, "Production")
    assert refused.status_code == 409
    assert "cannot be compared" in refused.json()["detail"]


def test_the_card_as_json_and_as_markdown_and_its_edits(world):
    register(world, "carded", task="sentiment")
    card = get(world, "/models/carded/versions/1/card", who="bob")
    assert card.status_code == 200
    data, readme = card.json()["card"], card.json()["readme"]
    assert {"base_model", "language", "task", "metrics", "tags", "embedding"} <= set(data)
    assert data["task"] == "sentiment"
    assert str(world["root"]) not in card.text
    assert readme.startswith("---\n") and "library_name: peft" in readme

    markdown = get(world, "/models/carded/versions/1/card", format="markdown")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text == readme

    edit = {"intended_use": "Sorting tiny reviews."}
    url = "/models/carded/versions/1/card"
    assert world["client"].patch(url, headers=world["as"]["bob"], json=edit).status_code == 403
    edited = world["client"].patch(url, headers=world["as"]["alice"], json=edit)
    assert edited.status_code == 200
    assert edited.json()["card"]["intended_use"] == "Sorting tiny reviews."
    assert "Sorting tiny reviews." in edited.json()["readme"]
    empty = world["client"].patch(url, headers=world["as"]["alice"], json={})
    assert empty.status_code == 422


def test_search_and_recommend_are_wired_to_the_registry(world):
    register(world, "findme", tags={"domain": "tiny"}, task="sentiment")
    found = get(world, "/models/search", who="bob", name="findme", tag="domain:tiny")
    assert found.status_code == 200, found.text
    page = found.json()
    assert page["total"] == 1 and page["count"] == 1 and page["limit"] == 20
    assert page["data"][0]["reference"] == "findme:1"
    assert get(world, "/models/search", tag="domain:other", name="findme").json()["total"] == 0
    bad_tag = get(world, "/models/search", tag="no-colon")
    assert bad_tag.status_code == 422 and bad_tag.json()["errors"][0]["field"] == "tag.0"

    asked = world["client"].post(
        "/models/recommend",
        headers=world["as"]["bob"],
        json={"query": "tiny sentiment of reviews", "limit": 50},
    )
    assert asked.status_code == 200, asked.text
    answers = asked.json()["data"]
    assert "findme:1" in [a["model"]["reference"] for a in answers]
    assert all(isinstance(a["score"], float) and a["reasons"] for a in answers)
    both = world["client"].post(
        "/models/recommend", headers=world["as"]["bob"], json={"query": "x", "dataset_id": "y"}
    )
    assert both.status_code == 422
    assert "exactly one of query, embedding or dataset_id" in both.json()["detail"]


def test_predict_by_reference_for_any_user_and_404_without_production(world):
    register(world, "served")
    move(world, "served", 1, "Staging", who="alice")

    def predict(who="bob", **body):
        return world["client"].post(
            "/predict", headers=world["as"][who], json={"texts": ["good flight"], **body}
        )

    # Bob may not use alice's experiment, but may use the registered version.
    assert predict(experiment_id=world["experiment"]).status_code == 404
    for reference in ("served@staging", "served:1"):
        answer = predict(model=reference)
        assert answer.status_code == 200, answer.text
        [one] = answer.json()["data"]
        assert set(one) == {"label", "probability", "latency_ms", "base_model", "language"}
        assert str(world["root"]) not in answer.text
    missing = predict(model="served@production")
    assert missing.status_code == 404
    assert "no Production version" in missing.json()["detail"]
    assert predict(model="nobody@production").status_code == 404
    assert predict(model="served:9").status_code == 404
    neither = world["client"].post("/predict", headers=world["as"]["bob"], json={"texts": ["x"]})
    assert neither.status_code == 422
    assert predict(model="served:1", experiment_id=world["experiment"]).status_code == 422
    malformed = predict(model="served@@x")
    assert malformed.status_code == 422 and "NAME@production" in malformed.json()["detail"]


def test_unknown_models_and_versions_are_404_and_bad_names_422(world):
    register(world, "known")
    assert get(world, "/models/unknown").status_code == 404
    assert get(world, "/models/unknown/history").status_code == 404
    missing = get(world, "/models/known/versions/7")
    assert missing.status_code == 404 and "no version 7" in missing.json()["detail"]
    assert get(world, "/models/known/versions/7/card").status_code == 404
    assert move(world, "known", 7, "Staging").status_code == 404
    bad = get(world, "/models/" + "x" * 65)
    assert bad.status_code == 422 and bad.json()["errors"][0]["location"] == "path"
    assert get(world, "/models/bad%20name").status_code == 422
    assert register(world, "bad name").status_code == 422
    assert register(world, "t", tags={"k" * 65: "v"}).status_code == 422
    assert register(world, "t", description="x" * 4001).status_code == 422
    assert register(world, "t", owner_id=1).status_code == 422  # no extra fields
    assert register(world, "t", experiment="nope").status_code == 404
    # Bob cannot register alice's experiment: it reads as missing.
    assert register(world, "t", who="bob").status_code == 404


def test_mlflow_unreachable_is_503_and_nothing_changes(world, monkeypatch):
    from loraforge.tracking import mlflow_bridge

    register(world, "offline")

    def unreachable(uri):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(mlflow_bridge, "_client", unreachable)
    refused = move(world, "offline", 1, "Staging", who="alice")
    assert refused.status_code == 503, refused.text
    assert "MLflow" in refused.json()["detail"]
    assert register(world, "offline-too").status_code == 503
    monkeypatch.undo()
    assert get(world, "/models/offline/versions/1").json()["stage"] == "none"
    assert get(world, "/models/offline").json()["version_count"] == 1
    assert get(world, "/models/offline-too").status_code == 404
    # The same experiment under the same name again: a double click, refused.
    again = register(world, "offline")
    assert again.status_code == 409 and "already version 1" in again.json()["detail"]


def test_base_models_moved_to_their_own_path(world):
    catalog = get(world, "/base-models").json()["data"]
    assert "minilm-l6" in [m["name"] for m in catalog]
    by_name = {m["name"]: m for m in catalog}
    assert by_name["minilm-l6"]["available_offline"] is True
    assert by_name["bert-base-chinese"]["languages"] == ["zh"]
    assert len(by_name["xlm-roberta-base"]["languages"]) > 50
    assert world["client"].get("/base-models").status_code == 401
    assert set(get(world, "/models").json()) == {"data", "count"}  # now the registry


def test_the_mlflow_run_of_an_experiment_for_its_owner_or_an_admin(world):
    run_id = world["run_id"]
    mine = get(world, f"/experiments/mlflow/{run_id}")
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["run_id"] == run_id and body["experiment_id"] == world["experiment"]
    assert body["status"] == "FINISHED"
    assert body["params"] and "f1_macro" in "".join(body["metrics"])
    assert any(path.startswith("final_model/") for path in body["artifacts"])
    assert body["ui_url"].startswith("http://127.0.0.1:5000/#/experiments/")
    assert body["ui_url"].endswith(f"/runs/{run_id}")
    assert str(world["root"]) not in mine.text
    assert get(world, f"/experiments/mlflow/{run_id}", who="root").status_code == 200
    assert get(world, f"/experiments/mlflow/{run_id}", who="bob").status_code == 404
    assert get(world, "/experiments/mlflow/0123456789abcdef").status_code == 404
    assert get(world, "/experiments/mlflow/not..valid").status_code == 422


def test_the_mlflow_run_of_an_unreachable_store_is_503(world, monkeypatch):
    from loraforge.tracking import mlflow_bridge

    def unreachable(uri):
        raise RuntimeError("no route to host")

    monkeypatch.setattr(mlflow_bridge, "_client", unreachable)
    answer = get(world, f"/experiments/mlflow/{world['run_id']}")
    assert answer.status_code == 503
    assert answer.json()["detail"].endswith("cannot be read: no route to host")


def test_where_the_mlflow_ui_is_is_public_and_keeps_secrets(world, tmp_path):
    answer = world["client"].get("/mlflow")
    assert answer.status_code == 200
    assert answer.json() == {"ui_url": "http://127.0.0.1:5000", "tracking_uri": None}
    settings = Settings(
        data_dir=tmp_path,
        mlflow_tracking_uri="https://user:secret@mlflow.example.com:8443/base?token=x",
        mlflow_ui_url="https://mlflow.example.com/",
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/mlflow").json() == {
            "ui_url": "https://mlflow.example.com",
            "tracking_uri": "https://mlflow.example.com:8443/base",
        }
    # Not set: a tracking server is its own UI.
    server = Settings(data_dir=tmp_path, mlflow_tracking_uri="http://mlflow.internal:5000")
    with TestClient(create_app(server)) as client:
        assert client.get("/mlflow").json()["ui_url"] == "http://mlflow.internal:5000"


def test_the_schema_says_what_the_registry_enforces():
    schema = ModelVersionPublic.model_json_schema()
    assert schema["properties"]["stage"]["enum"] == list(versions.STAGES)
    assert versions.NAME_PATTERN.pattern == MODEL_NAME_PATTERN
    assert embeddings.DIMENSION == EMBEDDING_DIMENSION


def test_a_job_may_ask_to_be_registered(world, monkeypatch):
    monkeypatch.setattr("loraforge.jobs.celery_app.enqueue", lambda settings, job_id: None)
    csv = b"text,label\n" + b"".join(b"good %d,pos\nbad %d,neg\n" % (i, i) for i in range(12))
    headers = world["as"]["alice"]
    dataset = world["client"].post(
        "/datasets", headers=headers, files={"file": ("r.csv", csv, "text/csv")}
    )
    body = {
        "experiment_name": "asks",
        "data": {"dataset_id": dataset.json()["id"], "eval_split": 0.25},
        # Named: two-word texts are too short for `auto` to tell their language.
        "model": {"base_model": "minilm-l6"},
        "registry": {"register_as": "from-a-job", "task": "sentiment"},
    }
    submitted = world["client"].post("/train", headers=headers, json=body)
    assert submitted.status_code == 202, submitted.text
    task = get(world, f"/task/{submitted.json()['task_id']}").json()
    assert task["config"]["registry"]["register_as"] == "from-a-job"
    body["registry"] = {"register_as": "bad name"}
    refused = world["client"].post("/train", headers=headers, json=body)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == (
        "registry.register_as"
    )
