"""A worker's handling of one job: retries with backoff, permanent failures, attempt caps."""

from __future__ import annotations

import pytest
from conftest import add_dataset
from sqlalchemy.orm import sessionmaker

from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.errors import DatasetError
from loraforge.jobs import execution, state
from loraforge.settings import Settings


@pytest.fixture
def setup(tmp_path, monkeypatch):
    settings = Settings(
        data_dir=tmp_path / "state",
        results_dir=tmp_path / "results",
        job_max_attempts=3,
        job_retry_backoff_s=5,
    )
    factory = sessionmaker(
        bind=get_engine(settings.resolved_database_url()), expire_on_commit=False
    )
    with factory() as session:
        owner = users.create_user(session, username="owner", password="long enough")
        add_dataset(session, owner_id=owner.id)
        job = state.create(
            session,
            owner_id=owner.id,
            config={"experiment_name": "x", "data": {"dataset_id": "d1"}},
            dataset_id="d1",
            eval_dataset_id=None,
            dataset_version="v" * 64,
            experiment_id="x-1",
            max_attempts=3,
        )
        session.commit()
    sent: list[tuple[str, float | None]] = []
    monkeypatch.setattr(
        "loraforge.jobs.celery_app.enqueue",
        lambda s, job_id, countdown=None: sent.append((job_id, countdown)),
    )
    monkeypatch.setattr(execution, "training_config", lambda session, job, settings: object())
    return settings, factory, job.id, sent


def run_with(monkeypatch, failure: BaseException) -> None:
    def failing(*args, **kwargs):
        raise failure

    monkeypatch.setattr("loraforge.training.runner.run_training", failing)


def test_transient_errors_are_retried_with_growing_backoff_then_failed(setup, monkeypatch):
    settings, factory, job_id, sent = setup
    run_with(monkeypatch, RuntimeError("database went away"))
    for attempt in (1, 2, 3):
        execution.execute(job_id, settings=settings)
        with factory() as session:
            job = state.get(session, job_id)
        assert job.attempts == attempt
        if attempt < 3:
            assert job.status == "queued" and "database went away" in job.error
            assert sent[-1] == (job_id, 5.0 * attempt)
    assert job.status == "failed" and "after 3 attempts" in job.error
    assert len(sent) == 2


def test_a_bad_data_set_fails_at_once_without_retries(setup, monkeypatch):
    settings, factory, job_id, sent = setup
    run_with(monkeypatch, DatasetError("train.csv cannot be used for training: 2 empty texts"))
    execution.execute(job_id, settings=settings)
    with factory() as session:
        job = state.get(session, job_id)
    assert (job.status, job.attempts, sent) == ("failed", 1, [])
    assert "2 empty texts" in job.error


def test_a_job_that_is_not_queued_is_left_alone(setup, monkeypatch):
    settings, factory, job_id, sent = setup
    with factory() as session:
        state.request_cancel(session, job_id)
    run_with(monkeypatch, AssertionError("must not run"))
    execution.execute(job_id, settings=settings)  # a late or duplicate delivery
    with factory() as session:
        assert state.get(session, job_id).status == "cancelled"
    assert sent == []


def test_a_failure_before_the_claim_is_retried_by_the_queue(monkeypatch):
    """Nothing claimed the job yet, so only the message can bring it back: the task
    retries (here eagerly, without the backoff's waits) instead of dropping it."""
    from loraforge.jobs import celery_app

    calls: list[str] = []

    def database_away_twice(job_id, *, settings):
        calls.append(job_id)
        if len(calls) < 3:
            raise ConnectionError("database away")

    monkeypatch.setattr(execution, "execute", database_away_twice)
    app = celery_app.celery_app(Settings(broker_url="memory://"))
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    result = app.tasks[celery_app.TASK_NAME].apply(args=["job-1"])
    assert result.status == "SUCCESS"
    assert calls == ["job-1"] * 3


def test_a_failed_job_says_why_without_server_paths_or_server_commands(setup, monkeypatch):
    settings, factory, job_id, _ = setup
    stored = settings.resolved_datasets_dir() / "d1.csv"  # add_dataset: uploaded as d.csv
    run_with(
        monkeypatch,
        DatasetError(
            f"{stored} cannot be used for training:\n  - row 3: the text is empty",
            hint=f"Run `loraforge data validate {stored}` for the full report.",
        ),
    )
    execution.execute(job_id, settings=settings)
    with factory() as session:
        job = state.get(session, job_id)
    assert job.status == state.FAILED
    assert job.error == "d.csv cannot be used for training:\n  - row 3: the text is empty"


def test_an_experiment_error_shows_no_server_path():
    from loraforge.api.routers.experiments import without_server_paths

    shown = without_server_paths(
        {
            "error": "DatasetError: /srv/lf/.loraforge/datasets/ab12.csv: row 3 is empty; "
            "see http://example.org/a/b and data/train.csv",
            "source": "/srv/lf/site-packages/model",
        },
        {"ab12.csv": "reviews.csv"},
    )
    assert shown == {
        "error": "DatasetError: reviews.csv: row 3 is empty; see http://example.org/a/b "
        "and data/train.csv",
        "source": "model",
    }
