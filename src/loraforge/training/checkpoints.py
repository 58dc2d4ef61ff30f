"""Checkpoint retention: keep the best, the last and the fastest; delete the rest.

The fastest is the earliest checkpoint whose metric is within ``tolerance`` (0.5 points
by default) of the best: what a user who pays for compute would ship.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

FASTEST_TOLERANCE = 0.005  # 0.5 percentage points, metrics being fractions


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    epoch: float
    metric: float


@dataclass(frozen=True)
class Retention:
    best: Checkpoint
    last: Checkpoint
    fastest: Checkpoint

    def roles(self) -> dict[str, dict[str, object]]:
        return {
            role: {"checkpoint": c.path.name, "step": c.step, "epoch": c.epoch, "metric": c.metric}
            for role, c in (("best", self.best), ("last", self.last), ("fastest", self.fastest))
        }

    @property
    def kept(self) -> set[Path]:
        return {self.best.path, self.last.path, self.fastest.path}


def choose(checkpoints: list[Checkpoint], *, tolerance: float = FASTEST_TOLERANCE) -> Retention:
    if not checkpoints:
        raise ValueError("no checkpoints to choose from")
    ordered = sorted(checkpoints, key=lambda c: c.step)
    # Ties go to the earlier checkpoint: same quality, less training.
    best = max(ordered, key=lambda c: (c.metric, -c.step))
    fastest = next(c for c in ordered if c.metric >= best.metric - tolerance)
    return Retention(best=best, last=ordered[-1], fastest=fastest)


def apply_retention(
    checkpoints: list[Checkpoint], *, tolerance: float = FASTEST_TOLERANCE
) -> Retention:
    retention = choose(checkpoints, tolerance=tolerance)
    for checkpoint in checkpoints:
        if checkpoint.path not in retention.kept:
            shutil.rmtree(checkpoint.path, ignore_errors=True)
    return retention
