"""Side-by-side configs of experiments, differences first and highlighted, and what
makes their metrics not comparable."""

from __future__ import annotations

from typing import Any

import pandas as pd

from loraforge.config import flatten
from loraforge.ui.job_view import NOTHING

DIFFERS = "Differs"


def _shown(value: Any) -> str:
    return NOTHING if value is None else str(value)


def config_differences(chosen: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per config key, one column per experiment; a key an experiment lacks (or
    leaves empty) reads "—", never "None"."""
    flat = {e["id"]: flatten(e["config"]) for e in chosen}
    keys = sorted(set().union(*flat.values()))
    frame = pd.DataFrame(
        {eid: [_shown(values.get(k)) for k in keys] for eid, values in flat.items()}, index=keys
    )
    frame.index.name = "Setting"
    frame.insert(0, DIFFERS, frame.nunique(axis=1) > 1)
    return frame.sort_values(DIFFERS, ascending=False, kind="stable")


def _short(version: str | None) -> str:
    return f"`{version[:12]}`" if version else "not recorded"


def comparability_warnings(chosen: list[dict[str, Any]]) -> list[str]:
    """Why the metrics side by side may not compare like with like: the runs were
    evaluated on different data (``eval_dataset_version``), or predict different labels."""
    warnings = []
    versions = {e["id"]: e.get("eval_dataset_version") for e in chosen}
    if len(set(versions.values())) > 1:
        listed = "; ".join(f"{eid}: {_short(v)}" for eid, v in versions.items())
        warnings.append(
            "These runs were evaluated on **different data sets**, so their accuracy and "
            f"macro-F1 do not compare like with like. Evaluation data versions: {listed}."
        )
    labels = {e["id"]: e.get("labels") for e in chosen}
    label_sets = {tuple(sorted(map(str, v))) if v else None for v in labels.values()}
    if len(label_sets) > 1:
        listed = "; ".join(
            f"{eid}: {', '.join(map(str, v)) if v else 'not recorded'}" for eid, v in labels.items()
        )
        warnings.append(
            f"These runs predict **different label sets**, so their scores measure different "
            f"tasks. Labels: {listed}."
        )
    return warnings


def highlight(frame: pd.DataFrame):
    def paint(line: pd.Series) -> list[str]:
        color = "background-color: rgba(255, 200, 0, 0.35)" if line[DIFFERS] else ""
        return [color] * len(line)

    return frame.style.apply(paint, axis=1)
