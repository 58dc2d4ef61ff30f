"""Side-by-side comparison of experiments: what differs in their configs, how they scored,
and whether their scores can be compared at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loraforge.config import flatten
from loraforge.tracking.experiments import ExperimentRecord

# Keys that always differ between runs and say nothing about the setup.
IGNORED_KEYS = {"experiment_name"}

METRIC_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accuracy", ("final", "accuracy")),
    ("f1_macro", ("final", "f1_macro")),
    ("eval_loss", ("final", "loss")),
    ("train_loss", ("train", "train_loss")),
    ("epochs", ("train", "epochs")),
    ("train_only_s", ("train", "train_only_s")),
    ("samples_per_second", ("train", "samples_per_second")),
    ("tokens_per_second", ("train", "tokens_per_second")),
    ("trainable_params", ("parameters", "trainable")),
)


@dataclass(frozen=True)
class Comparison:
    ids: list[str]
    config_differences: dict[str, list[Any]]
    facts: dict[str, list[Any]]
    metrics: dict[str, list[Any]]
    # Sentences for a person: why these metrics may not be comparable side by side.
    warnings: list[str] = field(default_factory=list)


def _distinct(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def comparability_warnings(records: list[ExperimentRecord]) -> list[str]:
    """Accuracy on one data set says nothing about accuracy on another, and a 2-class
    task is not a 3-class one. Runs that do not say (old rows) are left out."""
    warnings = []
    versions = _distinct([r.eval_dataset_version for r in records if r.eval_dataset_version])
    if len(versions) > 1:
        shown = ", ".join(f"{v[:12]}…" for v in versions)
        warnings.append(
            f"These runs were evaluated on different data sets (eval versions {shown}): "
            "their metrics are not directly comparable."
        )
    label_sets = _distinct([sorted(map(str, r.labels)) for r in records if r.labels is not None])
    if len(label_sets) > 1:
        shown = "; ".join(", ".join(labels) for labels in label_sets)
        warnings.append(
            f"These runs have different label sets ({shown}): their metrics are not "
            "directly comparable."
        )
    return warnings


def _dig(tree: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def compare(records: list[ExperimentRecord]) -> Comparison:
    flats = [flatten(r.config) for r in records]
    keys = sorted(set().union(*flats) - IGNORED_KEYS)
    differences = {
        key: [flat.get(key) for flat in flats]
        for key in keys
        if len({repr(flat.get(key)) for flat in flats}) > 1
    }
    facts = {
        "status": [r.shown_status for r in records],
        "base_model": [r.base_model for r in records],
        "device": [r.device for r in records],
        "train_dataset": [(r.train_dataset_version or "")[:12] for r in records],
        "eval_dataset": [(r.eval_dataset_version or "")[:12] for r in records],
    }
    metrics = {name: [_dig(r.metrics, path) for r in records] for name, path in METRIC_ROWS}
    return Comparison(
        [r.id for r in records], differences, facts, metrics, comparability_warnings(records)
    )
