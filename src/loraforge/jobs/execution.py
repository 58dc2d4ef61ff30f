"""Running one job on a worker: claim, heartbeat, train, finish (or retry)."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from typing import Any

from sqlalchemy.orm import Session

from loraforge.data import store
from loraforge.db.engine import session_factory
from loraforge.errors import Cancelled, ConfigError, DatasetError, LoraforgeError, NotFound
from loraforge.jobs import state
from loraforge.jobs.progress import JobProgress
from loraforge.jobs.service import training_config
from loraforge.monitoring.logs import task_context
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.jobs")

# Failures that no retry can fix: the job fails at once with its reason.
PERMANENT = (DatasetError, ConfigError, NotFound)


# A hint that tells a terminal user which command to run; a job's owner is in the web UI
# or on the API and cannot run it on the server.
_COMMAND_HINT = re.compile(r"\n?Run `loraforge [^`]*`[^\n]*")


def public_error(session: Session, settings: Settings, error: BaseException) -> str:
    """The reason a job failed, as its owner may read it: no server paths (a stored data
    set is named as it was uploaded, other paths by their last part) and no advice to run
    commands on the server."""
    text = _COMMAND_HINT.sub("", str(error)).strip()
    datasets_dir = re.escape(str(settings.resolved_datasets_dir()))
    stored = set(re.findall(datasets_dir + r"/([^\s/:'\"]+)", text))
    uploads = store.upload_names(session, stored)
    text = re.sub(
        datasets_dir + r"/([^\s/:'\"]+)", lambda m: uploads.get(m[1], "the data set"), text
    )
    for root in (settings.resolved_results_dir(), settings.resolved_data_dir()):
        text = re.sub(re.escape(str(root)) + r"/(?:[^\s/:'\"]+/)*([^\s/:'\"]+)", r"\1", text)
    return text


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _session(settings: Settings) -> Session:
    return session_factory(settings.resolved_database_url())()


class HeartbeatThread(threading.Thread):
    """Renews the lease and stores progress every few seconds; relays cancel requests."""

    def __init__(self, settings: Settings, job_id: str, worker: str, progress: JobProgress) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.settings, self.job_id, self.worker, self.progress = settings, job_id, worker, progress
        self.stopped = threading.Event()

    def run(self) -> None:
        with task_context(self.job_id), _session(self.settings) as session:
            while not self.stopped.wait(self.settings.job_heartbeat_s):
                beat = state.heartbeat(
                    session,
                    self.job_id,
                    worker=self.worker,
                    lease_s=self.settings.job_lease_s,
                    progress=self.progress.snapshot(),
                )
                if beat.cancel_requested:
                    self.progress.request_stop()
                if not beat.still_ours and not self.stopped.is_set():
                    # The lease lapsed and the job was handed on: another worker may now be
                    # resuming in the same folder. Stopping at once, touching nothing, is the
                    # only safe move; it is what a crash would do.
                    logger.error("task %s: lease lost; this worker stops now", self.job_id)
                    os._exit(70)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def execute(job_id: str, *, settings: Settings) -> None:
    with task_context(job_id):
        _execute(job_id, settings=settings)


def _execute(job_id: str, *, settings: Settings) -> None:
    from loraforge.jobs.celery_app import enqueue
    from loraforge.training.runner import run_training

    worker = worker_name()
    with _session(settings) as session:
        job = state.claim(session, job_id, worker=worker, lease_s=settings.job_lease_s)
        if job is None:
            logger.info("task %s: not queued (taken, cancelled or finished); skipped", job_id)
            return
        logger.info(
            "task %s: claimed by %s, attempt %d/%d", job_id, worker, job.attempts, job.max_attempts
        )
        progress = JobProgress()
        beat = HeartbeatThread(settings, job_id, worker, progress)
        beat.start()
        try:
            config = training_config(session, job, settings=settings)
            result = run_training(
                config,
                settings=settings,
                reporter=progress,
                experiment_id=job.experiment_id,
                owner_id=job.owner_id,
                should_stop=progress.should_stop,
            )
            registration = register_model(session, settings, job, config, result)
            beat.stop()
            progress.done(
                final=result.metrics["final"],
                quality=result.metrics["quality"],
                **({"registry": registration} if registration else {}),
            )
            state.finish(
                session, job_id, worker=worker, status=state.SUCCEEDED, progress=progress.snapshot()
            )
            logger.info("task %s: succeeded, experiment %s", job_id, result.experiment_id)
        except Cancelled:
            beat.stop()
            state.finish(
                session, job_id, worker=worker, status=state.CANCELLED, error="cancelled by request"
            )
            logger.info("task %s: cancelled", job_id)
        except PERMANENT as error:
            beat.stop()
            reason = public_error(session, settings, error)
            state.finish(session, job_id, worker=worker, status=state.FAILED, error=reason)
            logger.info("task %s: failed: %s", job_id, error)
        except Exception as error:
            beat.stop()
            reason = f"{type(error).__name__}: {public_error(session, settings, error)}"
            outcome = state.release_for_retry(session, job_id, worker=worker, error=reason)
            logger.warning("task %s: %s; now %s", job_id, reason, outcome)
            if outcome == state.QUEUED:
                enqueue(settings, job_id, countdown=settings.job_retry_backoff_s * job.attempts)
        finally:
            beat.stop()


def register_model(
    session: Session, settings: Settings, job, config, result
) -> dict[str, Any] | None:
    """Register the run's model if its config asks (``registry.register_as``), as the
    job's owner. A failure here is the registration's, not the training's: the model is
    trained and stays usable by its experiment id, so the job still succeeds; the reason
    is kept in the job's progress (``registry.warning``) and in the run's log."""
    from loraforge.training.run_logging import run_log_file

    section = getattr(config, "registry", None)
    name = section.register_as if section is not None else None
    if not name:
        return None
    try:
        # Into the run's logs.txt as well as the worker's log: the owner reads the former.
        with run_log_file(result.results_dir / "logs.txt"):
            return _register(session, settings, job, config, result)
    except Exception as error:  # the log file itself: still not the training's failure
        logger.warning("task %s: registration not attempted: %s", job.id, error)
        return {"name": name, "warning": f"the model was not registered as {name!r}"}


def _register(session: Session, settings: Settings, job, config, result) -> dict[str, Any]:
    from loraforge.auth.users import get_user
    from loraforge.registry import service

    name = config.registry.register_as
    try:
        owner = get_user(session, job.owner_id)
        info = service.register_from_config(settings, result.experiment_id, config, owner)
    except Exception as error:
        reason = public_error(session, settings, error)
        if not isinstance(error, LoraforgeError):
            reason = f"{type(error).__name__}: {reason}"
        warning = f"the model was trained but not registered as {name!r}: {reason}"
        logger.warning("task %s: %s", job.id, warning)
        return {"name": name, "warning": warning}
    logger.info("task %s: registered as %s version %d", job.id, info.name, info.version)
    return {"name": info.name, "version": info.version}


def reap(settings: Settings) -> list[str]:
    """Re-queue (and re-send) jobs whose worker died; fail those out of attempts."""
    from loraforge.jobs.celery_app import enqueue

    with _session(settings) as session:
        requeued = state.reap_expired(session)
    for job_id in requeued:
        with task_context(job_id):
            logger.warning("task %s: its worker stopped renewing the lease; re-queued", job_id)
            enqueue(settings, job_id)
    return requeued
