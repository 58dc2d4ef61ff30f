"""How a job reads on screen: the stepper and the progress words. Pure functions of the
API's task object, so they are tested without a browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

FINISHED = ("succeeded", "failed", "cancelled")
ENDINGS = {"succeeded": "Done", "failed": "Failed", "cancelled": "Cancelled"}
NOT_LEARNED = "succeeded — model did not learn"
NOTHING = "—"  # what a table or a metric shows for a value that does not exist


def parse_time(value: str | datetime | None) -> datetime | None:
    """The API answers UTC; older answers (SQLite) carry no zone, so none means UTC."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(value: str | datetime | None, *, seconds: bool = False) -> str:
    """``2026-11-29 14:03 UTC``: every time the UI shows says its zone."""
    moment = parse_time(value)
    if moment is None:
        return NOTHING
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def duration(span: timedelta | float) -> str:
    """``42 s``, ``4 min 10 s``, ``1 h 5 min``."""
    seconds = max(0, round(span.total_seconds() if isinstance(span, timedelta) else span))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _time_left(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds <= 0:
        return "almost done"
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {duration(minutes * 60)} left"


def job_quality(task: dict[str, Any]) -> dict[str, Any] | None:
    """A finished job's verdict on its model (``progress.quality``); None: nothing to say."""
    if task["status"] != "succeeded":
        return None
    return (task["progress"] or {}).get("quality")


def experiment_quality(experiment: dict[str, Any]) -> dict[str, Any] | None:
    """An experiment's verdict (``metrics.quality``); older experiments have none."""
    return (experiment.get("metrics") or {}).get("quality")


def did_not_learn(quality: dict[str, Any] | None) -> bool:
    return bool(quality) and quality.get("learned") is False


def status_words(status: str, quality: dict[str, Any] | None = None) -> str:
    """What a status reads as: a success whose model learned nothing does not read green."""
    return NOT_LEARNED if status == "succeeded" and did_not_learn(quality) else status


def quality_warning(quality: dict[str, Any]) -> str:
    """The loud box for a model that did not learn: what is wrong and the likely fixes."""
    lines = [
        "**The model did not learn.** The run finished, but its predictions are no better "
        "than a constant answer: do not use this model as it is."
    ]
    lines += [f"- {problem}" for problem in quality.get("problems") or []]
    if quality.get("hint"):
        lines.append(f"\n{quality['hint']}")
    return "\n".join(lines)


def reached(task: dict[str, Any]) -> list[bool]:
    """Which of queued → running → evaluating → end the job has reached."""
    phase = (task["progress"] or {}).get("phase")
    finished = task["status"] in FINISHED
    return [
        True,
        task["started_at"] is not None,
        phase in ("evaluating", "done"),
        finished,
    ]


def stepper(task: dict[str, Any]) -> str:
    status = task["status"]
    labels = ["Queued", "Running", "Evaluating", ENDINGS.get(status, "Done")]
    done = reached(task)
    current = max(i for i, hit in enumerate(done) if hit)
    parts = []
    for i, label in enumerate(labels):
        if i == current and status == "failed":
            parts.append(f":red[:material/cancel: **{label}**]")
        elif i == current and status == "cancelled":
            # Stopped on purpose: neutral, not an error.
            parts.append(f":gray[:material/block: **{label}**]")
        elif i == current and status == "succeeded" and did_not_learn(job_quality(task)):
            parts.append(f":orange[:material/warning: **{label} — model did not learn**]")
        elif i == current and status != "succeeded":
            parts.append(f":blue[:material/pending: **{label}**]")
        elif done[i]:
            parts.append(f":green[:material/check_circle: {label}]")
        else:
            parts.append(f":gray[:material/radio_button_unchecked: {label}]")
    return " &nbsp;→&nbsp; ".join(parts)


def _where(progress: dict[str, Any]) -> str:
    total = progress.get("total_steps") or 0
    return f"at step {progress.get('step') or 0} of {total}" if total else "before training began"


def progress_line(task: dict[str, Any]) -> tuple[float, str]:
    progress = task["progress"] or {}
    total = progress.get("total_steps") or 0
    step = progress.get("step") or 0
    fraction = min(1.0, step / total) if total else 0.0
    status = task["status"]
    if status == "succeeded":
        return 1.0, f"finished: {step} steps"
    if status == "cancelled":
        if task["started_at"] is None:
            return 0.0, "cancelled before it started"
        return fraction, f"cancelled {_where(progress)}"
    if status == "failed":
        return fraction, f"failed {_where(progress)}"
    if not total:
        if status == "queued":
            return 0.0, "waiting for a worker"
        return 0.0, "starting: loading the model and the data"
    words = [
        f"epoch {progress.get('epoch', 0):.2f} of {progress.get('epochs', '?')}",
        f"step {step} of {total}",
    ]
    if progress.get("loss") is not None:
        words.append(f"loss {progress['loss']:.4f}")
    if progress.get("phase") == "evaluating":
        words.append("evaluating the best checkpoint")
    if task.get("cancel_requested"):
        words.append("cancel requested: stopping")
    return fraction, " · ".join(words)


def timing_line(task: dict[str, Any], now: datetime) -> str | None:
    """``4 min 10 s elapsed · about 2 min left`` while it runs, measured from the pace of
    the steps done so far (``started_at`` to the last progress report); before the first
    step there is nothing to measure, and it says so."""
    status = task["status"]
    started = parse_time(task.get("started_at"))
    if status == "queued":
        created = parse_time(task.get("created_at"))
        return f"waiting for a worker for {duration(now - created)}" if created else None
    if started is None:
        return None
    if status in FINISHED:
        finished = parse_time(task.get("finished_at"))
        return f"ran for {duration(finished - started)}" if finished else None
    elapsed = f"{duration(now - started)} elapsed"
    progress = task["progress"] or {}
    step, total = progress.get("step") or 0, progress.get("total_steps") or 0
    if progress.get("phase") == "evaluating":
        return f"{elapsed} · training done, evaluating the best checkpoint"
    if not step or not total:
        return f"{elapsed} · estimating time left…"
    reported = parse_time(progress.get("updated_at")) or now
    pace = (reported - started) / step  # includes loading: a cautious estimate at first
    left = pace * (total - step) - (now - reported)
    return f"{elapsed} · {_time_left(left)}"


def cancelled_words(task: dict[str, Any], by: str | None = None) -> str:
    """``Cancelled by you at 2026-11-29 14:03 UTC, at step 30 of 120.``"""
    who = f" by {by}" if by else ""
    where = "before it started" if task["started_at"] is None else _where(task["progress"] or {})
    return f"Cancelled{who} at {when(task.get('finished_at'))}, {where}."
