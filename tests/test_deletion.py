"""Deleting experiments and data sets, through the API and the CLI: owner or admin only,
refused while a job uses them, audited, and nothing left behind (row, files, MLflow run)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker
from test_api import CSV, auth, client, people, settings, upload  # noqa: F401  (fixtures)
from typer.testing import CliRunner

from loraforge.cli import app
from loraforge.db.engine import get_engine
from loraforge.db.models import Job
from loraforge.jobs import state
from loraforge.settings import Settings
from loraforge.tracking import experiments, mlflow_bridge

runner = CliRunner()


def make_experiment(
    config: Settings,
    *,
    owner_id: int | None,
    status: str = "succeeded",
    with_mlflow: bool = False,
    experiment_id: str | None = None,
) -> tuple[str, list[Path], str | None]:
    """An experiment as a run leaves it: its row, its results folders (complete, and the
    .partial/.failed of earlier attempts) and, if asked, an MLflow run with an artifact."""
    experiment_id = experiment_id or f"del-{uuid.uuid4().hex[:8]}"
    root = config.resolved_results_dir()
    folders = [root / f"{experiment_id}{suffix}" for suffix in ("", ".partial", ".failed")]
    for folder in folders:
        (folder / "artifacts").mkdir(parents=True)
        (folder / "metrics.json").write_text("{}")
    run_id = None
    if with_mlflow:
        run = mlflow_bridge.MlflowRun(
            tracking_uri=config.resolved_mlflow_tracking_uri(),
            artifact_root=config.resolved_mlflow_artifact_root(),
            experiment_name="del",
        )
        run_id = run.start(run_name=experiment_id, params={"lora.r": 8}, tags={})
        run.log_artifact(folders[0] / "metrics.json")
        run.finish(succeeded=True)
    url = config.resolved_database_url()
    experiments.create(
        url,
        id=experiment_id,
        name="del",
        base_model="minilm-l6",
        config={},
        results_dir=str(folders[0]),
        mlflow_run_id=run_id,
        owner_id=owner_id,
    )
    if status != "running":
        experiments.update(url, experiment_id, status=status)
    return experiment_id, folders, run_id


def audit_outcomes(client, action: str) -> list[tuple[str, str]]:  # noqa: F811
    events = client.get(
        "/audit/logs", headers=auth(client, "root"), params={"action": action}
    ).json()["data"]
    return [(e["outcome"], e["target"]) for e in reversed(events)]


def queued_job(config: Settings, *, owner_id: int, dataset_id: str, **values) -> str:
    with sessionmaker(bind=get_engine(config.resolved_database_url()))() as session:
        job = state.create(
            session,
            owner_id=owner_id,
            config={},
            dataset_id=dataset_id,
            eval_dataset_id=values.pop("eval_dataset_id", None),
            dataset_version="v" * 64,
            experiment_id=values.pop("experiment_id", f"job-{uuid.uuid4().hex[:8]}"),
            max_attempts=3,
        )
        session.commit()
        return job.id


def set_job_status(config: Settings, job_id: str, status: str) -> None:
    with sessionmaker(bind=get_engine(config.resolved_database_url()))() as session:
        session.get(Job, job_id).status = status
        session.commit()


# --- experiments, API ------------------------------------------------------------------


def test_owner_deletes_an_experiment_with_its_folders_row_and_mlflow_run(
    client,  # noqa: F811
    people,  # noqa: F811
    settings,  # noqa: F811
):
    experiment_id, folders, run_id = make_experiment(
        settings, owner_id=people["alice"].id, with_mlflow=True
    )
    uri = settings.resolved_mlflow_tracking_uri()
    artifact_dir = Path(
        mlflow_bridge.run_summary(tracking_uri=uri, run_id=run_id)["artifact_uri"].removeprefix(
            "file://"
        )
    )
    assert (artifact_dir / "metrics.json").is_file()
    alice = auth(client, "alice")

    response = client.delete(f"/experiments/{experiment_id}", headers=alice)

    assert response.status_code == 204 and response.content == b""
    assert client.get(f"/experiments/{experiment_id}", headers=alice).status_code == 404
    assert not any(folder.exists() for folder in folders)
    with pytest.raises(Exception, match=r"not found|does not exist|No Run"):
        mlflow_bridge.run_summary(tracking_uri=uri, run_id=run_id)
    assert not artifact_dir.exists()
    assert audit_outcomes(client, "experiment.delete") == [
        ("success", f"experiment:{experiment_id}")
    ]
    # Deleting again is a plain 404, not a 500 over half-missing pieces.
    assert client.delete(f"/experiments/{experiment_id}", headers=alice).status_code == 404


def test_another_users_experiment_is_404_and_stays_while_an_admin_may_delete_it(
    client,  # noqa: F811
    people,  # noqa: F811
    settings,  # noqa: F811
):
    experiment_id, folders, _ = make_experiment(settings, owner_id=people["alice"].id)
    theirs = client.delete(f"/experiments/{experiment_id}", headers=auth(client, "bob"))
    missing = client.delete("/experiments/no-such-id", headers=auth(client, "bob"))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(experiment_id, "X") == missing.json()["detail"].replace(
        "no-such-id", "X"
    )
    assert all(folder.exists() for folder in folders)

    assert (
        client.delete(f"/experiments/{experiment_id}", headers=auth(client, "root")).status_code
        == 204
    )
    assert not any(folder.exists() for folder in folders)
    assert audit_outcomes(client, "experiment.delete") == [
        ("failure", f"experiment:{experiment_id}"),
        ("failure", "experiment:no-such-id"),
        ("success", f"experiment:{experiment_id}"),
    ]


@pytest.mark.parametrize("job_status", ["queued", "running"])
def test_an_experiment_is_not_deleted_while_its_job_is_queued_or_running(
    client,  # noqa: F811
    people,  # noqa: F811
    settings,  # noqa: F811
    job_status,
):
    alice = auth(client, "alice")
    dataset = upload(client, alice).json()["id"]
    experiment_id, folders, _ = make_experiment(
        settings, owner_id=people["alice"].id, status="running"
    )
    job_id = queued_job(
        settings, owner_id=people["alice"].id, dataset_id=dataset, experiment_id=experiment_id
    )
    set_job_status(settings, job_id, job_status)

    refused = client.delete(f"/experiments/{experiment_id}", headers=alice)

    assert refused.status_code == 409
    body = refused.json()
    assert body["detail"] == (
        f"experiment {experiment_id} is being trained by task {job_id} ({job_status})"
    )
    assert f"Cancel task {job_id}" in body["hint"] and body["errors"] == []
    assert all(folder.exists() for folder in folders)
    assert client.get(f"/experiments/{experiment_id}", headers=alice).status_code == 200
    assert audit_outcomes(client, "experiment.delete") == [
        ("denied", f"experiment:{experiment_id}")
    ]

    set_job_status(settings, job_id, "cancelled")
    assert client.delete(f"/experiments/{experiment_id}", headers=alice).status_code == 204
    # The finished job that trained it goes with it: no job page pointing at nothing.
    assert client.get(f"/task/{job_id}", headers=alice).status_code == 404


def test_deleting_an_experiment_keeps_its_job_in_the_job_counters(
    client,  # noqa: F811
    people,  # noqa: F811
    settings,  # noqa: F811
):
    """task_success_total is counted from the jobs table; a job row that goes with its
    experiment must not make the counter go down (Prometheus would read a reset)."""
    from prometheus_client.parser import text_string_to_metric_families

    def success_total() -> float:
        families = text_string_to_metric_families(client.get("/metrics").text)
        return next(s.value for f in families for s in f.samples if s.name == "task_success_total")

    alice = auth(client, "alice")
    dataset = upload(client, alice).json()["id"]
    experiment_id, _, _ = make_experiment(settings, owner_id=people["alice"].id)
    job_id = queued_job(
        settings, owner_id=people["alice"].id, dataset_id=dataset, experiment_id=experiment_id
    )
    set_job_status(settings, job_id, "succeeded")
    assert success_total() == 1
    assert client.delete(f"/experiments/{experiment_id}", headers=alice).status_code == 204
    assert client.get(f"/task/{job_id}", headers=alice).status_code == 404
    assert success_total() == 1


def test_an_unreachable_mlflow_store_does_not_stop_the_deletion(
    client,  # noqa: F811
    people,  # noqa: F811
    settings,  # noqa: F811
    monkeypatch,
    caplog,
):
    experiment_id, folders, _ = make_experiment(settings, owner_id=people["alice"].id)
    experiments.update(settings.resolved_database_url(), experiment_id, mlflow_run_id="r" * 32)

    def unreachable(**_kwargs):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(mlflow_bridge, "delete_run", unreachable)
    with caplog.at_level("WARNING", "loraforge.tracking.experiments"):
        response = client.delete(f"/experiments/{experiment_id}", headers=auth(client, "alice"))

    assert response.status_code == 204
    assert not any(folder.exists() for folder in folders)
    assert experiments.find(settings.resolved_database_url(), experiment_id) is None
    assert f"the MLflow run {'r' * 32} could not be deleted" in caplog.text
    [event] = client.get(
        "/audit/logs", headers=auth(client, "root"), params={"action": "experiment.delete"}
    ).json()["data"]
    assert "connection refused" in event["detail"]["warnings"][0]


# --- data sets, API ---------------------------------------------------------------------


def test_data_set_deletion_removes_file_and_row_for_owner_and_admin_only(
    client,  # noqa: F811
    people,  # noqa: F811
    settings,  # noqa: F811
):
    alice, bob, root = auth(client, "alice"), auth(client, "bob"), auth(client, "root")
    first, second = upload(client, alice).json()["id"], upload(client, alice).json()["id"]
    stored = settings.resolved_datasets_dir()
    assert {p.stem for p in stored.iterdir()} == {first, second}

    assert client.delete(f"/datasets/{first}", headers=bob).status_code == 404
    assert client.delete(f"/datasets/{first}", headers=alice).status_code == 204
    assert client.get(f"/datasets/{first}", headers=alice).status_code == 404
    assert client.delete(f"/datasets/{second}", headers=root).status_code == 204
    assert list(stored.iterdir()) == []
    assert audit_outcomes(client, "dataset.delete") == [
        ("failure", f"dataset:{first}"),
        ("success", f"dataset:{first}"),
        ("success", f"dataset:{second}"),
    ]


@pytest.mark.parametrize("role", ["train", "eval"])
def test_a_data_set_is_not_deleted_while_a_job_uses_it_and_finished_jobs_keep_their_history(
    client,  # noqa: F811
    people,  # noqa: F811
    settings,  # noqa: F811
    role,
):
    alice = auth(client, "alice")
    train, evaluation = upload(client, alice).json()["id"], upload(client, alice).json()["id"]
    target = train if role == "train" else evaluation
    job_id = queued_job(
        settings, owner_id=people["alice"].id, dataset_id=train, eval_dataset_id=evaluation
    )

    refused = client.delete(f"/datasets/{target}", headers=alice)

    assert refused.status_code == 409
    assert refused.json()["detail"] == f"data set {target} is used by task {job_id} (queued)"
    assert (settings.resolved_datasets_dir() / f"{target}.csv").is_file()
    assert audit_outcomes(client, "dataset.delete") == [("denied", f"dataset:{target}")]

    assert client.post(f"/task/{job_id}/cancel", headers=alice).json()["status"] == "cancelled"
    assert client.delete(f"/datasets/{target}", headers=alice).status_code == 204
    job = client.get(f"/task/{job_id}", headers=alice).json()
    key = "dataset_id" if role == "train" else "eval_dataset_id"
    assert job[key] is None and job["dataset_version"] == "v" * 64
    assert not (settings.resolved_datasets_dir() / f"{target}.csv").exists()


# --- the CLI ----------------------------------------------------------------------------


def test_cli_experiments_delete_asks_refuses_without_a_terminal_and_deletes_with_yes(
    env_settings, monkeypatch
):
    experiment_id, folders, _ = make_experiment(env_settings, owner_id=None)

    piped = runner.invoke(app, ["experiments", "delete", experiment_id])
    assert piped.exit_code == 2, piped.output
    assert "not deleting 1 experiment without confirmation" in piped.output
    assert "--yes" in piped.output and all(folder.exists() for folder in folders)

    # `loraforge.cli.app` as a dotted name is the Typer object (cli/__init__ exports it).
    monkeypatch.setattr(sys.modules["loraforge.cli.app"], "_stdin_is_terminal", lambda: True)
    declined = runner.invoke(app, ["experiments", "delete", experiment_id], input="n\n")
    assert declined.exit_code == 130 and "nothing deleted" in declined.output
    assert all(folder.exists() for folder in folders)

    confirmed = runner.invoke(app, ["experiments", "delete", experiment_id], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert f"✓ deleted {experiment_id}" in confirmed.output
    assert not any(folder.exists() for folder in folders)
    assert experiments.find(env_settings.resolved_database_url(), experiment_id) is None


def test_cli_experiments_delete_checks_every_id_before_deleting_any(env_settings):
    kept, folders, _ = make_experiment(env_settings, owner_id=None)
    result = runner.invoke(app, ["experiments", "delete", kept, "no-such-run", "--yes"])
    assert result.exit_code == 3 and "does not exist" in result.output
    assert "Traceback" not in result.output
    assert all(folder.exists() for folder in folders)
    assert runner.invoke(app, ["experiments", "delete", kept, "--yes"]).exit_code == 0


def test_cli_refuses_a_running_train_unless_forced(env_settings):
    experiment_id, folders, _ = make_experiment(env_settings, owner_id=None, status="running")
    refused = runner.invoke(app, ["experiments", "delete", experiment_id, "--yes"])
    assert refused.exit_code == 7
    assert "is still running" in refused.output and "--force" in refused.output
    assert all(folder.exists() for folder in folders)
    forced = runner.invoke(app, ["experiments", "delete", experiment_id, "--yes", "--force"])
    assert forced.exit_code == 0, forced.output
    assert not any(folder.exists() for folder in folders)


def test_cli_lists_and_deletes_uploaded_data_sets(env_settings):
    import io

    from loraforge.auth import users
    from loraforge.data import store
    from loraforge.data.loading import Columns

    with sessionmaker(bind=get_engine(env_settings.resolved_database_url()))() as session:
        owner = users.create_user(
            session, username=f"u{uuid.uuid4().hex[:8]}", password="long enough password"
        )
        dataset = store.store_upload(
            session,
            owner_id=owner.id,
            file_name="reviews.csv",
            content=io.BytesIO(CSV),
            columns=Columns("text", "label"),
            datasets_dir=env_settings.resolved_datasets_dir(),
            max_bytes=10**6,
        )
        session.commit()
    stored = env_settings.resolved_datasets_dir() / f"{dataset.id}.csv"

    listed = runner.invoke(app, ["datasets", "list"])
    assert listed.exit_code == 0, listed.output
    assert dataset.id in listed.output and "reviews.csv" in listed.output
    assert owner.username in listed.output

    job_id = queued_job(env_settings, owner_id=owner.id, dataset_id=dataset.id)
    busy = runner.invoke(app, ["datasets", "delete", dataset.id, "--yes"])
    assert busy.exit_code == 7 and f"used by task {job_id}" in busy.output
    assert stored.is_file()

    set_job_status(env_settings, job_id, "succeeded")
    assert runner.invoke(app, ["datasets", "delete", dataset.id]).exit_code == 2  # no terminal
    deleted = runner.invoke(app, ["datasets", "delete", dataset.id, "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert f"✓ deleted data set {dataset.id}" in deleted.output
    assert not stored.exists()
    assert dataset.id not in runner.invoke(app, ["datasets", "list"]).output
    missing = runner.invoke(app, ["datasets", "delete", dataset.id, "--yes"])
    assert missing.exit_code == 3 and "does not exist" in missing.output
