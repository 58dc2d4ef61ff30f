"""How a job reads on screen: the stepper and the progress words. Pure functions of the
API's task object, so they are tested without a browser."""

from __future__ import annotations

from typing import Any

FINISHED = ("succeeded", "failed", "cancelled")
ENDINGS = {"succeeded": "Done", "failed": "Failed", "cancelled": "Cancelled"}


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
        if i == current and status in ("failed", "cancelled"):
            color = "red" if status == "failed" else "orange"
            parts.append(f":{color}[:material/cancel: **{label}**]")
        elif i == current and status != "succeeded":
            parts.append(f":blue[:material/pending: **{label}**]")
        elif done[i]:
            parts.append(f":green[:material/check_circle: {label}]")
        else:
            parts.append(f":gray[:material/radio_button_unchecked: {label}]")
    return " &nbsp;→&nbsp; ".join(parts)


def progress_line(task: dict[str, Any]) -> tuple[float, str]:
    progress = task["progress"] or {}
    total = progress.get("total_steps") or 0
    step = progress.get("step") or 0
    if task["status"] == "succeeded":
        return 1.0, f"finished: {step} steps"
    if not total:
        return 0.0, "waiting for a worker" if task["status"] == "queued" else "starting"
    words = [
        f"epoch {progress.get('epoch', 0):.2f} of {progress.get('epochs', '?')}",
        f"step {step} of {total}",
    ]
    if progress.get("loss") is not None:
        words.append(f"loss {progress['loss']:.4f}")
    if progress.get("phase") == "evaluating":
        words.append("evaluating the best checkpoint")
    return min(1.0, step / total), " · ".join(words)
