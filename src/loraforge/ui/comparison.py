"""Side-by-side configs of experiments, differences first and highlighted."""

from __future__ import annotations

from typing import Any

import pandas as pd

from loraforge.config import flatten


def config_differences(chosen: list[dict[str, Any]]) -> pd.DataFrame:
    flat = {e["id"]: flatten(e["config"]) for e in chosen}
    keys = sorted(set().union(*flat.values()))
    frame = pd.DataFrame(
        {eid: [str(values.get(k, "-")) for k in keys] for eid, values in flat.items()}, index=keys
    )
    frame.insert(0, "differs", frame.nunique(axis=1) > 1)
    return frame.sort_values("differs", ascending=False, kind="stable")


def highlight(frame: pd.DataFrame):
    def paint(line: pd.Series) -> list[str]:
        color = "background-color: rgba(255, 200, 0, 0.35)" if line["differs"] else ""
        return [color] * len(line)

    return frame.style.apply(paint, axis=1)
