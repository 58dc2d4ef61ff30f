"""Render the Grafana dashboard's panels from a live Prometheus into one PNG.

Grafana cannot be installed on our machines, so the README's picture of the dashboard is
drawn here: every panel of deploy/grafana/dashboards/loraforge.json, each of its queries
run over Prometheus' HTTP API (query_range) and plotted with matplotlib, panels in the
dashboard's order. It is the same queries Grafana runs, not Grafana's look.

    .venv/bin/python deploy/dashboard_snapshot.py --prometheus http://127.0.0.1:9090 \\
        [--minutes 15] [--out docs/images/dashboard.png]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana" / "dashboards" / "loraforge.json"
# Grafana's own variables, as Grafana would fill them for a short range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "15m"}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel with queries, rows unfolded, in the dashboard's order."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(p for p in panel.get("panels", []) if p.get("targets"))
        elif panel.get("targets"):
            found.append(panel)
    return sorted(
        found, key=lambda p: (p.get("gridPos", {}).get("y", 0), p.get("gridPos", {}).get("x", 0))
    )


def fill(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def legend(template: str | None, labels: dict[str, str]) -> str:
    if template:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or labels.get("__name__", "value")


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    answer = httpx.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": fill(expr), "start": start, "end": end, "step": step},
        timeout=30,
    )
    answer.raise_for_status()
    body = answer.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def render(prometheus: str, out: Path, minutes: float, dashboard_path: Path = DASHBOARD) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(dashboard_path.read_text())
    shown = panels(dashboard)
    end = time.time()
    start = end - minutes * 60
    step = max(1.0, minutes * 60 / 300)
    columns = 3
    rows = math.ceil(len(shown) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.flat[len(shown) :]:
        axis.axis("off")
    # Seconds on the x axis for a short window (a test's), else minutes.
    unit, scale = ("seconds", 1) if minutes < 3 else ("minutes", 60)
    for axis, panel in zip(axes.flat, shown, strict=False):
        plotted = 0
        for target in panel["targets"]:
            for series in query_range(prometheus, target["expr"], start, end, step):
                points = [(float(t), float(v)) for t, v in series["values"]]
                points = [(t - end, v) for t, v in points if math.isfinite(v)]
                if not points:
                    continue
                xs, ys = zip(*points, strict=True)
                label = legend(target.get("legendFormat"), series["metric"])
                axis.plot([x / scale for x in xs], ys, label=label[:40], linewidth=1.4)
                plotted += 1
        axis.set_title(panel.get("title", ""), fontsize=10, loc="left")
        axis.set_xlim(-minutes * 60 / scale, 0)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
        if plotted:
            axis.legend(fontsize=7, loc="upper left")
        else:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
    figure.suptitle(
        f"{dashboard.get('title', 'loraforge')}: the last {minutes * 60 / scale:.0f} {unit} "
        f"({unit} on the x axis), rendered from Prometheus' HTTP API by "
        "deploy/dashboard_snapshot.py",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--out", type=Path, default=Path("docs/images/dashboard.png"))
    args = parser.parse_args()
    print(render(args.prometheus.rstrip("/"), args.out, args.minutes, args.dashboard))


if __name__ == "__main__":
    main()
