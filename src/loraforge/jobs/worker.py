"""The worker process: a Celery worker on the training queue plus a reaper thread."""

from __future__ import annotations

import logging
import os
import threading

from celery.signals import setup_logging

from loraforge.jobs.celery_app import QUEUE, celery_app
from loraforge.jobs.execution import reap
from loraforge.monitoring import logs
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
    logs.configure("worker")
    # Any receiver of setup_logging stops Celery from replacing the JSON logging set up above.
    setup_logging.connect(lambda **_: None, weak=False)
    stop = threading.Event()
    threading.Thread(target=_reaper, args=(settings, stop), name="reaper", daemon=True).start()
    app = celery_app(settings)
    try:
        app.worker_main(
            [
                # No ASCII-art banner: the worker's log holds JSON lines only.
                "--quiet",
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
