"""The job state machine: queued → running → succeeded | failed | cancelled.

Every transition is a compare-and-set UPDATE on the row (``WHERE status = …``), so two
workers can never both run a job, whatever the broker delivers twice. A running job
holds a lease that its worker renews by heartbeat; a reaper re-queues jobs whose lease
expired (their worker died) until ``max_attempts`` is spent.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loraforge.db.models import Job
from loraforge.db.records import FromRow
from loraforge.errors import NotFound

logger = logging.getLogger("loraforge.jobs.state")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobRecord(FromRow):
    id: str
    owner_id: int
    status: str
    config: dict[str, Any]
    dataset_id: str | None  # None once the data set is deleted
    eval_dataset_id: str | None
    dataset_version: str
    experiment_id: str
    progress: dict[str, Any] | None
    error: str | None
    attempts: int
    max_attempts: int
    worker: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


def create(
    session: Session,
    *,
    owner_id: int,
    config: dict[str, Any],
    dataset_id: str,
    eval_dataset_id: str | None,
    dataset_version: str,
    experiment_id: str,
    max_attempts: int,
) -> JobRecord:
    moment = now()
    row = Job(
        id=str(uuid.uuid4()),
        owner_id=owner_id,
        status=QUEUED,
        config=config,
        dataset_id=dataset_id,
        eval_dataset_id=eval_dataset_id,
        dataset_version=dataset_version,
        experiment_id=experiment_id,
        attempts=0,
        max_attempts=max_attempts,
        cancel_requested=False,
        created_at=moment,
        updated_at=moment,
    )
    session.add(row)
    session.flush()
    logger.info(
        "task %s: database row created (queued)",
        row.id,
        extra={"task_id": row.id, "event": "job.transition", "status": QUEUED},
    )
    return JobRecord.from_row(row)


def get(
    session: Session, job_id: str, *, user_id: int | None = None, is_admin: bool = True
) -> JobRecord:
    """Another user's job is as missing as one that does not exist."""
    # populate_existing: compare-and-set updates bypass the identity map; read the row afresh.
    row = session.get(Job, job_id, populate_existing=True)
    if row is None or (not is_admin and row.owner_id != user_id):
        raise NotFound(f"task {job_id} does not exist")
    return JobRecord.from_row(row)


def list_jobs(
    session: Session, *, user_id: int, is_admin: bool, limit: int = 100
) -> list[JobRecord]:
    statement = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if not is_admin:
        statement = statement.where(Job.owner_id == user_id)
    return [JobRecord.from_row(r) for r in session.scalars(statement)]


def _cas(session: Session, job_id: str, where: list, **values: Any) -> bool:
    # No in-Python synchronisation of loaded rows: the row is re-read after commit anyway,
    # and SQLite hands back naive timestamps that cannot be compared with aware ones.
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, *where)
        .values(updated_at=now(), **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    changed = result.rowcount == 1
    if changed and "status" in values:
        logger.info(
            "task %s: database row now %s",
            job_id,
            values["status"],
            extra={"task_id": job_id, "event": "job.transition", "status": values["status"]},
        )
    return changed


def claim(session: Session, job_id: str, *, worker: str, lease_s: float) -> JobRecord | None:
    """queued → running for this worker, or None if the job is not (or no longer) queued."""
    moment = now()
    claimed = _cas(
        session,
        job_id,
        [Job.status == QUEUED, Job.cancel_requested.is_(False)],
        status=RUNNING,
        worker=worker,
        lease_expires_at=moment + timedelta(seconds=lease_s),
        attempts=Job.attempts + 1,
        started_at=moment,
        error=None,
    )
    return get(session, job_id) if claimed else None


@dataclass(frozen=True)
class Heartbeat:
    still_ours: bool
    cancel_requested: bool


def heartbeat(
    session: Session, job_id: str, *, worker: str, lease_s: float, progress: dict[str, Any] | None
) -> Heartbeat:
    values: dict[str, Any] = {"lease_expires_at": now() + timedelta(seconds=lease_s)}
    if progress is not None:
        values["progress"] = progress
    ours = _cas(session, job_id, [Job.status == RUNNING, Job.worker == worker], **values)
    cancel = bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))
    return Heartbeat(still_ours=ours, cancel_requested=cancel)


def finish(
    session: Session,
    job_id: str,
    *,
    worker: str,
    status: str,
    error: str | None = None,
    progress: dict[str, Any] | None = None,
) -> bool:
    assert status in FINISHED
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "finished_at": now(),
        "lease_expires_at": None,
    }
    if progress is not None:
        values["progress"] = progress
    return _cas(session, job_id, [Job.status == RUNNING, Job.worker == worker], **values)


def release_for_retry(session: Session, job_id: str, *, worker: str, error: str) -> str:
    """After a transient failure: queued again if attempts remain, else failed. Returns the status."""
    row = session.get(Job, job_id, populate_existing=True)
    if row.attempts >= row.max_attempts:
        finish(
            session,
            job_id,
            worker=worker,
            status=FAILED,
            error=f"{error} (after {row.attempts} attempts)",
        )
        return FAILED
    _cas(
        session,
        job_id,
        [Job.status == RUNNING, Job.worker == worker],
        status=QUEUED,
        worker=None,
        lease_expires_at=None,
        error=error,
    )
    return QUEUED


def request_cancel(session: Session, job_id: str) -> JobRecord:
    """A queued job is cancelled at once; a running one is flagged and its worker stops it."""
    if _cas(
        session,
        job_id,
        [Job.status == QUEUED],
        status=CANCELLED,
        cancel_requested=True,
        finished_at=now(),
    ):
        return get(session, job_id)
    _cas(session, job_id, [Job.status == RUNNING], cancel_requested=True)
    return get(session, job_id)


def reap_expired(session: Session) -> list[str]:
    """Jobs whose worker stopped renewing its lease: re-queued (ids returned) or failed."""
    moment = now()
    expired = session.scalars(
        select(Job.id).where(Job.status == RUNNING, Job.lease_expires_at < moment)
    ).all()
    requeued = []
    for job_id in expired:
        row = session.get(Job, job_id, populate_existing=True)
        lapsed = [Job.status == RUNNING, Job.lease_expires_at < moment]
        if row.cancel_requested:
            _cas(
                session, job_id, lapsed, status=CANCELLED, finished_at=moment, lease_expires_at=None
            )
        elif row.attempts >= row.max_attempts:
            _cas(
                session,
                job_id,
                lapsed,
                status=FAILED,
                finished_at=moment,
                lease_expires_at=None,
                error=f"the worker died {row.attempts} time(s) running this job (last: {row.worker})",
            )
        elif _cas(session, job_id, lapsed, status=QUEUED, worker=None, lease_expires_at=None):
            requeued.append(job_id)
    return requeued
