"""A base model that cannot be loaded is refused before anything is imported or recorded.

`train --set model.base_model=minilm-l7` used to import torch, record an experiment, a
`results/*.failed/` folder and an MLflow run, then fail after ~10 s without "did you mean";
`POST /train` answered 202 and the job failed later. No test here uses the network: the
hub is switched off (HF_HUB_OFFLINE) or its answer is stubbed.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from loraforge.api.app import create_app
from loraforge.auth import users
from loraforge.config import config_from_tree
from loraforge.db.engine import get_engine
from loraforge.errors import ConfigError
from loraforge.models import availability
from loraforge.models.availability import check_base_model
from loraforge.settings import Settings
from loraforge.training.preflight import check_inputs

HEAVY = ("torch", "transformers", "peft", "mlflow")
PROBE = f"""
import atexit, sys
atexit.register(lambda: sys.stderr.write(
    "\\nimported: " + ",".join(m for m in {HEAVY!r} if m in sys.modules) + "\\n"))
from loraforge.cli.app import app
sys.argv[0] = "loraforge"
app()
"""
PASSWORD = "correct horse battery"
CSV = b"text,label\n" + b"".join(f"good {i},pos\nbad {i},neg\n".encode() for i in range(12))


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """An empty Hugging Face cache, and a hub that would fail the test if it were asked."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def must_not_ask(repo_id):
        raise AssertionError(f"the hub was asked about {repo_id}")

    monkeypatch.setattr(availability, "hub_has_model", must_not_ask)


def hub_answers(monkeypatch, answer: bool | None) -> None:
    monkeypatch.setattr(availability, "hub_has_model", lambda repo_id: answer)


def refusal(name: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        check_base_model(name)
    assert caught.value.field == "model.base_model"
    return caught.value


# --- the CLI ---------------------------------------------------------------------------


def loraforge(tmp_path: Path, *args: str) -> tuple[int, str, list[str], float]:
    """(exit code, output, heavy modules imported, seconds) of one CLI run in a fresh
    process, offline and with an empty Hugging Face cache."""
    env = {
        **os.environ,
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "LORAFORGE_RESULTS_DIR": str(tmp_path / "results"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("HF_HUB_CACHE", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.perf_counter() - started
    _, _, imported = done.stderr.rpartition("imported: ")
    return (
        done.returncode,
        done.stdout + done.stderr,
        [m for m in imported.strip().split(",") if m],
        seconds,
    )


def test_train_with_a_misspelt_catalog_name_says_did_you_mean_and_records_nothing(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\na,x\nb,y\n")
    tree = {"experiment_name": "typo", "data": {"train_file": "t.csv"}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(tree))
    code, before, _, _ = loraforge(tmp_path, "experiments", "list", "--json")
    assert code == 0, before
    code, output, imported, seconds = loraforge(
        tmp_path, "train", "cfg.yaml", "--set", "model.base_model=minilm-l7"
    )
    print(f"train with minilm-l7 refused in {seconds:.2f} s (process start included)")
    assert code == 2, output
    assert "base model 'minilm-l7' is not in the catalog: did you mean `minilm-l6`?" in output
    assert "loraforge models" in output
    assert not {"torch", "transformers", "mlflow"} & set(imported)
    _, after, _, _ = loraforge(tmp_path, "experiments", "list", "--json")
    assert after == before  # no experiment row
    results = tmp_path / "results"
    assert not results.exists() or not any(results.iterdir())  # no results/<id>.failed/


# --- the check itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "meant"),
    [("minilm-l7", "minilm-l6"), ("MiniLM-L6", "minilm-l6"), ("roberta", "roberta-base")],
)
def test_a_name_close_to_a_catalog_name_is_refused_with_did_you_mean(
    no_hub, monkeypatch, name, meant
):
    hub_answers(monkeypatch, None)  # unreachable, as on a machine without network
    error = refusal(name)
    assert error.message == f"base model {name!r} is not in the catalog: did you mean `{meant}`?"
    assert "`loraforge models`" in error.hint and "minilm-l6" in error.hint


def test_a_hub_model_close_to_a_catalog_name_is_accepted_when_the_hub_knows_it(no_hub, monkeypatch):
    """`roberta-large` is near `roberta-base`, and a real model: the typo guess must not
    refuse it where the hub can say it exists."""
    hub_answers(monkeypatch, True)
    assert check_base_model("roberta-large").path_or_id == "roberta-large"
    hub_answers(monkeypatch, False)
    assert "no model 'minilm-l7' on the Hugging Face hub either" in refusal("minilm-l7").hint


def test_a_path_that_does_not_exist_is_refused_as_a_missing_folder(no_hub, tmp_path):
    for name in ("./no-such-model", str(tmp_path / "gone"), "~/no-such-model-here"):
        assert refusal(name).message == f"base model folder {name} does not exist"


def test_a_hub_id_that_is_not_cached_is_refused_at_once_offline(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub is never asked (no_hub checks it)
    error = refusal("some-org/some-model")
    assert "not in the local Hugging Face cache" in error.message
    assert "HF_HUB_OFFLINE" in error.message
    assert "HF_HOME" in error.hint and "local folder" in error.hint


def test_a_hub_id_the_hub_does_not_know_or_cannot_be_asked_about(no_hub, monkeypatch):
    hub_answers(monkeypatch, False)
    assert "no model 'some-org/nope' on the Hugging Face hub" in refusal("some-org/nope").message
    hub_answers(monkeypatch, None)
    error = refusal("some-org/nope")
    # The loader's words for the same case (models.loading.ensure_loadable).
    assert error.message == (
        "base model 'some-org/nope' is not in the local Hugging Face cache and the hub "
        "cannot be reached"
    )
    assert "HF_HOME" in error.hint


def test_a_cached_hub_model_is_accepted_without_asking_the_hub(no_hub, tmp_path):
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / "models--some-org--cached-model"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    assert check_base_model("some-org/cached-model").path_or_id == "some-org/cached-model"


def test_catalog_names_and_local_folders_are_accepted(no_hub, tiny_model_dir, data_files):
    assert check_base_model("minilm-l6").is_local
    assert check_base_model(str(tiny_model_dir)).path_or_id == str(tiny_model_dir.resolve())
    tree = {
        "experiment_name": "x",
        "data": {"train_file": str(data_files["train"])},
        "model": {"base_model": str(tiny_model_dir)},
    }
    check_inputs(config_from_tree(tree, source="t"))  # no error


def test_a_hub_check_that_cannot_connect_answers_none_fast(monkeypatch):
    """The real check, with the hub at an address that refuses at once: None, not a hang."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    started = time.perf_counter()
    assert availability.hub_has_model("some-org/some-model") is None
    assert time.perf_counter() - started < availability.HUB_CHECK_SECONDS


# --- the API ---------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setattr("loraforge.jobs.celery_app.enqueue", lambda settings, job_id: None)
    settings = Settings(data_dir=tmp_path / "state", results_dir=tmp_path / "results")
    with TestClient(create_app(settings)) as client:
        factory = sessionmaker(bind=get_engine(settings.resolved_database_url()))
        with factory() as session:
            users.create_user(session, username="alice", password=PASSWORD, role="user")
            session.commit()
        token = client.post("/login", data={"username": "alice", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        uploaded = client.post(
            "/datasets", headers=headers, files={"file": ("r.csv", io.BytesIO(CSV), "text/csv")}
        )
        assert uploaded.status_code == 201, uploaded.text
        yield client, headers, uploaded.json()["id"], settings


def train_body(dataset_id: str, base_model: str) -> dict:
    return {
        "experiment_name": "x",
        "model": {"base_model": base_model},
        "data": {"dataset_id": dataset_id, "eval_split": 0.25},
    }


def test_post_train_with_a_misspelt_base_model_is_a_422_naming_the_field(api, no_hub, monkeypatch):
    client, headers, dataset_id, settings = api
    hub_answers(monkeypatch, None)
    answer = client.post("/train", headers=headers, json=train_body(dataset_id, "minilm-l7"))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert (
        body["detail"] == "base model 'minilm-l7' is not in the catalog: did you mean `minilm-l6`?"
    )
    assert "loraforge models" in body["hint"]
    assert body["errors"] == [
        {"field": "model.base_model", "message": body["detail"], "location": "body"}
    ]
    assert client.get("/tasks", headers=headers).json()["data"] == []  # no job row
    results = settings.resolved_results_dir()
    assert not results.exists() or not any(results.iterdir())


def test_post_train_with_a_local_model_folder_is_accepted(api, no_hub, tiny_model_dir):
    client, headers, dataset_id, _ = api
    answer = client.post(
        "/train", headers=headers, json=train_body(dataset_id, str(tiny_model_dir))
    )
    assert answer.status_code == 202, answer.text
