"""Training jobs: submit, watch, cancel. The row is committed before the job is enqueued."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from loraforge.api.deps import AuditDep, CurrentUser, SessionDep, SettingsDep
from loraforge.api.errors import error_responses
from loraforge.api.schemas import JobPublic, JobsPublic, TaskSubmitted, TrainJobCreate
from loraforge.audit import log as audit
from loraforge.jobs import service, state
from loraforge.jobs.state import JobRecord
from loraforge.monitoring.logs import task_context

logger = logging.getLogger("loraforge.api.jobs")

router = APIRouter(tags=["jobs"], responses=error_responses(401))


def public(job: JobRecord) -> JobPublic:
    fields = {k: v for k, v in job.__dict__.items() if k in JobPublic.model_fields}
    return JobPublic(task_id=job.id, **fields)


@router.post(
    "/train",
    response_model=TaskSubmitted,
    status_code=202,
    summary="Start a training job",
    responses=error_responses(404, 409, 422),
)
def submit(
    request: Request,
    body: TrainJobCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    record: AuditDep,
) -> TaskSubmitted:
    """The training config of `loraforge train` as JSON, with an uploaded data set's id
    (`data.dataset_id`) instead of a file, and `data.eval_dataset_id` or `data.eval_split`
    for evaluation. The config and the data set are checked now (422 with each invalid
    field); the job is queued and a worker runs it. Watch it with `GET /task/{task_id}`."""
    from loraforge.jobs.celery_app import enqueue

    job = service.submit(
        session,
        submitted=body.model_dump(mode="json"),
        user_id=user.id,
        is_admin=user.is_admin,
        settings=settings,
    )
    record(
        "train.submit",
        audit.SUCCESS,
        actor=user,
        target=f"task:{job.id}",
        detail={"experiment_id": job.experiment_id},
    )
    session.commit()
    request.state.task_id = job.id  # for the access-log line of this request
    with task_context(job.id):
        logger.info("task %s: submitted by %s, enqueued", job.id, user.username)
        enqueue(settings, job.id)
    return TaskSubmitted(task_id=job.id, status=job.status)


@router.get(
    "/task/{task_id}",
    response_model=JobPublic,
    summary="One training job",
    responses=error_responses(404),
)
def get_task(task_id: str, user: CurrentUser, session: SessionDep) -> JobPublic:
    """Status, progress (phase, epoch, step, loss, evaluation metrics, curves), attempts
    and error of a job: yours (an admin: any)."""
    return public(state.get(session, task_id, user_id=user.id, is_admin=user.is_admin))


@router.post(
    "/task/{task_id}/cancel",
    response_model=JobPublic,
    summary="Cancel a training job",
    responses=error_responses(404),
)
def cancel_task(
    task_id: str, user: CurrentUser, session: SessionDep, record: AuditDep
) -> JobPublic:
    """A queued job is cancelled at once; a running one stops within seconds and its
    partial files are removed. Cancelling a finished job changes nothing. Audited."""
    state.get(session, task_id, user_id=user.id, is_admin=user.is_admin)
    job = state.request_cancel(session, task_id)
    record(
        "train.cancel",
        audit.SUCCESS,
        actor=user,
        target=f"task:{task_id}",
        detail={"status": job.status},
    )
    session.commit()
    return public(job)


@router.get("/tasks", response_model=JobsPublic, summary="List training jobs")
def list_tasks(user: CurrentUser, session: SessionDep) -> JobsPublic:
    """Your jobs, newest first (an admin sees everyone's)."""
    jobs = state.list_jobs(session, user_id=user.id, is_admin=user.is_admin)
    return JobsPublic(data=[public(j) for j in jobs], count=len(jobs))
