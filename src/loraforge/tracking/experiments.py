"""Experiment records: the rows in our database, and queries over them."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment, Job, ModelVersion, RetiredJob
from loraforge.db.records import FromRow
from loraforge.errors import Conflict, NotFound
from loraforge.jobs.state import QUEUED
from loraforge.jobs.state import RUNNING as JOB_RUNNING

logger = logging.getLogger("loraforge.tracking.experiments")

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "succeeded", "failed", "cancelled"
# The folders a run may have left: in progress, complete, failed.
RESULT_SUFFIXES = ("", ".partial", ".failed")


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

    @property
    def learned(self) -> bool | None:
        """False when the run succeeded but its model learned nothing (training/quality.py);
        None when there is no verdict (not finished, or trained before there was one)."""
        verdict = ((self.metrics or {}).get("quality") or {}).get("learned")
        return verdict if isinstance(verdict, bool) else None

    @property
    def shown_status(self) -> str:
        """The status as a person should read it: a model that learned nothing is not a
        plain success."""
        if self.status == SUCCEEDED and self.learned is False:
            return "succeeded, model did not learn"
        return self.status


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


@dataclass(frozen=True)
class Deletion:
    """What deleting an experiment removed, and what it could not (as sentences)."""

    experiment_id: str
    removed: list[str] = field(default_factory=list)  # folders, and "MLflow run <id>"
    warnings: list[str] = field(default_factory=list)


def delete(
    db_url: str,
    experiment_id: str,
    *,
    tracking_uri: str,
    user_id: int | None = None,
    is_admin: bool = True,
    force: bool = False,
) -> Deletion:
    """Delete an experiment: its database row (and its finished job's row), its results
    folders (``<id>``, ``<id>.partial``, ``<id>.failed``) and its MLflow run.

    Refused (``Conflict``) while a queued or running job trains it, and, for a run
    started by ``loraforge train`` (no job), while its row says ``running``, unless
    ``force`` (its process may have died without saying so). Another user's experiment
    is ``NotFound``, as a missing one.

    The row goes first, in one transaction with the checks; then the files; then the
    MLflow run. So a crash part-way leaves at worst files that nothing points to, never
    a row pointing to missing files. A folder or an MLflow run that cannot be removed
    (e.g. the MLflow server is unreachable) does not undo the rest: it is logged and
    named in ``warnings`` for the operator to remove by hand.
    """
    with session_scope(db_url) as session:
        row = session.get(Experiment, experiment_id)
        if row is None or (not is_admin and row.owner_id != user_id):
            raise NotFound(f"experiment {experiment_id} does not exist")
        jobs = session.scalars(select(Job).where(Job.experiment_id == experiment_id)).all()
        active = next((j for j in jobs if j.status in (QUEUED, JOB_RUNNING)), None)
        if active is not None:
            raise Conflict(
                f"experiment {experiment_id} is being trained by task {active.id} "
                f"({active.status})",
                hint=f"Cancel task {active.id} and wait until it has stopped, then delete "
                "the experiment.",
            )
        if row.status == RUNNING and not jobs and not force:
            raise Conflict(
                f"experiment {experiment_id} is still running (a `loraforge train` in progress)",
                hint="Wait for it to finish or stop it with Ctrl-C. If its process is gone "
                "(killed, machine restarted), delete it with `loraforge experiments delete "
                f"{experiment_id} --force`.",
            )
        registered = session.scalars(
            select(ModelVersion).where(ModelVersion.experiment_id == experiment_id)
        ).first()
        if registered is not None:
            # A registered version is the team's record of what was (or is) served: its
            # model must outlive any one person's clean-up.
            raise Conflict(
                f"experiment {experiment_id} is registered as model {registered.name} "
                f"version {registered.version}",
                hint="A registered model version keeps its experiment; archive the version "
                "instead.",
            )
        record = ExperimentRecord.from_row(row)
        # The job that trained it has finished; its story ends with the experiment, but
        # not its count: the job counters on /metrics must never go down.
        moment = datetime.now(UTC)
        for job in jobs:
            session.add(
                RetiredJob(
                    status=job.status,
                    started_at=job.started_at,
                    finished_at=job.finished_at,
                    retired_at=moment,
                )
            )
        session.execute(sql_delete(Job).where(Job.experiment_id == experiment_id))
        session.delete(row)
    result = Deletion(experiment_id)
    root = Path(record.results_dir).parent
    for suffix in RESULT_SUFFIXES:
        folder = root / f"{experiment_id}{suffix}"
        if not folder.exists():
            continue
        try:
            shutil.rmtree(folder)
            result.removed.append(str(folder))
        except OSError as error:
            result.warnings.append(f"could not remove {folder} ({error}); delete it by hand")
    if record.mlflow_run_id:
        from loraforge.tracking import mlflow_bridge

        try:
            mlflow_bridge.delete_run(tracking_uri=tracking_uri, run_id=record.mlflow_run_id)
            result.removed.append(f"MLflow run {record.mlflow_run_id}")
        except Exception as error:  # any store, any transport: the rest is already gone
            result.warnings.append(
                f"the MLflow run {record.mlflow_run_id} could not be deleted "
                f"({type(error).__name__}: {str(error)[:200]}); delete it by hand: "
                f"mlflow runs delete --run-id {record.mlflow_run_id}"
            )
    for warning in result.warnings:
        logger.warning("deleting experiment %s: %s", experiment_id, warning)
    return result
