"""Structured (JSON) log lines that carry the task id.

The task id lives in a context variable: the API sets it while it handles a request about
a task, the worker while it runs one (and in the threads it starts), so every line written
meanwhile — ours, the training run's, Celery's — carries it. ``grep <task id>`` over the
API's and the workers' logs tells a job's whole story.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "task_id", "service"}
# uvicorn adds a copy of its message with terminal colours ("Started server process
# [\x1b[36m%d\x1b[0m]"): meant for a terminal, noise in a log file.
_DROPPED = {"color_message"}
# Terminal escape sequences (colours, bold) that libraries put in their messages, e.g.
# transformers' "\x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m".
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def utc_iso(moment: datetime, timespec: str = "auto") -> str:
    """A moment as the API writes it: UTC, ending in "Z" ("2026-11-29T12:00:00.123Z")."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


@contextmanager
def task_context(task_id: str | None) -> Iterator[None]:
    token = task_id_var.set(task_id)
    try:
        yield
    finally:
        task_id_var.reset(token)


class TaskIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "task_id", None) is None:
            record.task_id = task_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": utc_iso(datetime.fromtimestamp(record.created, UTC), "milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "task_id": getattr(record, "task_id", None) or task_id_var.get(),
            "msg": strip_ansi(record.getMessage()),
        }
        line.update(
            {
                k: v
                for k, v in vars(record).items()
                if k not in _STANDARD and k not in _DROPPED and not k.startswith("_")
            }
        )
        if record.exc_info:
            line["exc"] = strip_ansi(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """A plain-text line for a file a person reads (a run's logs.txt): no terminal codes."""

    def format(self, record: logging.LogRecord) -> str:
        return strip_ansi(super().format(record))


def configure(service: str, *, level: int = logging.INFO) -> None:
    """JSON lines on stderr for a long-running process (API, worker)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(TaskIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):  # our own access log carries the task id instead
        logging.getLogger(noisy).handlers[:] = []
        logging.getLogger(noisy).propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "running migrations" on every start
    # Python warnings (a library's DeprecationWarning, Celery's SecurityWarning when run as
    # root) as log lines at level WARNING, not raw text among the JSON lines.
    logging.captureWarnings(True)
