"""The worker process: a Celery worker on the training queue plus a reaper thread."""

from __future__ import annotations

import logging
import os
import threading

from loraforge.jobs.celery_app import QUEUE, celery_app
from loraforge.jobs.execution import reap
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.jobs")


def _reaper(settings: Settings, stop: threading.Event) -> None:
    while not stop.wait(settings.reaper_interval_s):
        try:
            reap(settings)
        except Exception:  # the reaper must outlive a database hiccup
            logger.exception(
                "reaper: pass failed; trying again in %.0f s", settings.reaper_interval_s
            )


def run_worker(settings: Settings, *, concurrency: int = 1) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    threading.Thread(target=_reaper, args=(settings, stop), name="reaper", daemon=True).start()
    app = celery_app(settings)
    try:
        app.worker_main(
            [
                "worker",
                # solo: the job runs in this process, so killing the worker kills the job
                # (and its lease lapses); prefork for several jobs at once.
                "--pool=solo" if concurrency == 1 else "--pool=prefork",
                f"--concurrency={concurrency}",
                f"--queues={QUEUE}",
                f"--hostname=loraforge-{os.getpid()}@%h",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        stop.set()
