"""The PromQL queries of a Grafana dashboard file, for the tests that check or run them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).parents[1] / "deploy" / "grafana" / "dashboards" / "loraforge.json"


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those a collapsed row holds in its own ``panels``; rows
    themselves (no queries) are left out."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(path: str | Path = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, in the file's order."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        (panel.get("title", ""), target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
