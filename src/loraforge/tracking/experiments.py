"""Experiment records: the rows in our database, and queries over them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment, Job
from loraforge.db.records import FromRow
from loraforge.errors import NotFound

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "succeeded", "failed", "cancelled"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ExperimentRecord(FromRow):
    id: str
    name: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    base_model: str
    language: str | None
    device: str | None
    config: dict[str, Any]
    train_dataset_version: str | None
    eval_dataset_version: str | None
    train_rows: int | None
    eval_rows: int | None
    labels: list[Any] | None
    metrics: dict[str, Any] | None
    results_dir: str
    mlflow_run_id: str | None
    error: str | None
    owner_id: int | None


def id_in_use(db_url: str, experiment_id: str) -> bool:
    """An id is taken by an experiment row, or already promised to a queued job (whose
    experiment row appears only when a worker starts it)."""
    with session_scope(db_url) as session:
        return (
            session.get(Experiment, experiment_id) is not None
            or session.scalar(select(Job.id).where(Job.experiment_id == experiment_id)) is not None
        )


def create(db_url: str, **values: Any) -> ExperimentRecord:
    with session_scope(db_url) as session:
        row = Experiment(status=RUNNING, created_at=now(), **values)
        session.add(row)
        session.flush()
        return ExperimentRecord.from_row(row)


def update(db_url: str, experiment_id: str, **values: Any) -> None:
    with session_scope(db_url) as session:
        row = session.get(Experiment, experiment_id)
        if row is None:
            raise NotFound(f"experiment {experiment_id} does not exist")
        for key, value in values.items():
            setattr(row, key, value)


def mark_succeeded(
    db_url: str, experiment_id: str, *, metrics: dict[str, Any], results_dir: str
) -> None:
    update(
        db_url,
        experiment_id,
        status=SUCCEEDED,
        metrics=metrics,
        results_dir=results_dir,
        finished_at=now(),
    )


def mark_failed(db_url: str, experiment_id: str, *, error: str, results_dir: str) -> None:
    update(
        db_url,
        experiment_id,
        status=FAILED,
        error=error,
        results_dir=results_dir,
        finished_at=now(),
    )


def mark_cancelled(db_url: str, experiment_id: str) -> None:
    update(db_url, experiment_id, status=CANCELLED, error="cancelled", finished_at=now())


def find(db_url: str, experiment_id: str) -> ExperimentRecord | None:
    with session_scope(db_url) as session:
        row = session.get(Experiment, experiment_id)
        return ExperimentRecord.from_row(row) if row else None


def list_experiments(
    db_url: str, *, status: str | None = None, owner_id: int | None = None, limit: int = 100
) -> list[ExperimentRecord]:
    query = (
        select(Experiment).order_by(Experiment.created_at.desc(), Experiment.id.desc()).limit(limit)
    )
    if status:
        query = query.where(Experiment.status == status)
    if owner_id is not None:
        query = query.where(Experiment.owner_id == owner_id)
    with session_scope(db_url) as session:
        return [ExperimentRecord.from_row(row) for row in session.scalars(query)]


def get(db_url: str, experiment_id: str) -> ExperimentRecord:
    """One experiment by id; ``latest`` is the newest that succeeded."""
    with session_scope(db_url) as session:
        if experiment_id == "latest":
            row = session.scalars(
                select(Experiment)
                .where(Experiment.status == SUCCEEDED)
                .order_by(Experiment.created_at.desc(), Experiment.id.desc())
                .limit(1)
            ).first()
            if row is None:
                raise NotFound(
                    "no experiment has succeeded yet", hint="Train one: loraforge train CONFIG.yaml"
                )
            return ExperimentRecord.from_row(row)
        row = session.get(Experiment, experiment_id)
        if row is None:
            raise NotFound(
                f"experiment {experiment_id!r} does not exist",
                hint="`loraforge experiments list` shows the ids.",
            )
        return ExperimentRecord.from_row(row)
