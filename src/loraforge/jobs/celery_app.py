"""The one module that imports Celery.

Celery only carries job ids; the jobs table is the record of truth (``jobs/state.py``).
Late acks, reject-on-worker-lost and a prefetch of 1 keep a training worker from
hoarding jobs, but they are not what makes jobs survive a dead worker: the lease and the
reaper are (Redis redelivers only after its visibility timeout; the filesystem transport
never does).
"""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from loraforge.settings import Settings

TASK_NAME = "loraforge.train"
QUEUE = "training"


def broker_options(settings: Settings) -> tuple[str, dict]:
    if settings.broker_url:
        # Our reaper re-queues dead jobs; Redis' own redelivery would only add a duplicate
        # delivery (harmless: the claim refuses it), so its timeout is set long.
        return settings.broker_url, {"visibility_timeout": 12 * 3600}
    folder = settings.resolved_broker_dir()
    queue, processed, control = folder / "queue", folder / "processed", folder / "control"
    for path in (queue, processed, control):
        path.mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(processed),
        # Without it kombu keeps its exchange table in ./control of the working directory.
        "control_folder": str(control),
        "store_processed": False,
        "polling_interval": 0.2,
    }


@lru_cache(maxsize=16)
def _app(broker: str, options_key: tuple) -> Celery:
    app = Celery("loraforge", broker=broker, set_as_current=False)
    app.conf.update(
        broker_transport_options=dict(options_key),
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )

    # execute() deals with every failure after its claim itself. What escapes it happened
    # before the claim (the database unreachable, say): without a retry the row would stay
    # queued with no message left to carry it.
    @app.task(
        name=TASK_NAME,
        autoretry_for=(Exception,),
        retry_backoff=2,
        retry_backoff_max=60,
        max_retries=10,
    )
    def train(job_id: str) -> None:
        from loraforge.jobs.execution import execute
        from loraforge.settings import get_settings

        execute(job_id, settings=get_settings())

    return app


def celery_app(settings: Settings) -> Celery:
    broker, options = broker_options(settings)
    return _app(broker, tuple(sorted(options.items())))


def enqueue(settings: Settings, job_id: str, *, countdown: float | None = None) -> None:
    """Send a job id to the workers. Call only after the job's row is committed."""
    # The Celery message id is the job id too, so even Celery's own log lines name the task.
    celery_app(settings).send_task(
        TASK_NAME, args=[job_id], task_id=job_id, queue=QUEUE, countdown=countdown
    )
