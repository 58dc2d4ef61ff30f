"""Altair charts built from what the API answers. Pure functions: data in, chart out.

Every chart here keeps four rules (tests/test_ui_views.py checks them on the specs):

- every quantitative axis names its number format: integer axes (steps, epochs, rows,
  counts) ``d`` with ticks at least 1 apart, others ``~g``; left to itself Vega prints
  a float column of whole numbers as ``10.000000``;
- losses and accuracy/F1 never share a y axis: they are separate panels;
- every quantitative scale has an explicit domain with room around the data, so no point
  sits on or past the frame (scores: 0 to a little above 1);
- a colour means one thing per chart (the metric, or the experiment, or the label), and
  its legend title says which.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import altair as alt
import pandas as pd

SCORES = {"accuracy": "accuracy", "f1_macro": "macro-F1"}
LOSSES = {"loss": "eval loss", "train_loss": "train loss"}
METRIC_NAMES = SCORES | LOSSES

# Scores live in [0, 1]. The frame stops a little above 1 so that a perfect score is
# drawn inside it rather than on its edge; the ticks still read 0 … 1.
SCORE_DOMAIN = [0, 1.05]
SCORE_TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1]
PANEL = {"width": 180, "height": 190}  # two fit side by side in 3/5 of a wide page
# A size given to a single view is that of its plot: Streamlit's default ("fit") would
# squeeze the title, axes and legend into it and leave the plot a sliver.
PAD = alt.AutoSizeParams(type="pad")


def integer_axis(title: str | None) -> alt.Axis:
    # Steps, epochs, rows and counts are never negative: the room below 0 is unlabelled.
    return alt.Axis(
        title=title, format="d", tickMinStep=1, labelExpr="datum.value < 0 ? '' : datum.label"
    )


def decimal_axis(title: str | None) -> alt.Axis:
    # A frame that reaches a little below 0 (see ``padded``) labels no negative loss.
    return alt.Axis(title=title, format="~g", labelExpr="datum.value < 0 ? '' : datum.label")


def score_scale() -> alt.Scale:
    return alt.Scale(domain=SCORE_DOMAIN, nice=False)


def score_axis(title: str | None) -> alt.Axis:
    return alt.Axis(title=title, format="~g", values=SCORE_TICKS)


def padded(
    values: Iterable[float], *, share: float = 0.08, least: float = 0.0, floor: float | None = None
) -> alt.Scale:
    """A domain around ``values`` with room on both sides (``share`` of their range, at
    least ``least``), so no point sits on or past the frame. ``floor`` (0 for losses,
    steps and counts) stops the room from reaching below values that cannot exist, unless
    a value sits on it."""
    values = [float(v) for v in values]
    low, high = min(values), max(values)
    room = max((high - low) * share, least) or (abs(high) * share or 1.0)
    start, end = low - room, high + room
    # Stop at the floor only where the lowest point keeps clear of the frame; a loss of
    # 0.001 drawn on a frame starting at 0 would sit on its edge.
    if floor is not None and start < floor and low - floor >= room / 2:
        start = floor
    return alt.Scale(domain=[round(start, 6), round(end, 6)], nice=False, zero=False)


def from_zero(values: Iterable[float], *, share: float = 0.08) -> alt.Scale:
    """Bars grow from 0; the frame ends a little past the longest one."""
    top = max([float(v) for v in values] or [0.0])
    return alt.Scale(domain=[0, round(top * (1 + share), 6) or 1], nice=False)


def epoch_x(epochs: Iterable[float]) -> alt.X:
    return alt.X("epoch:Q", axis=integer_axis("epoch"), scale=padded(epochs, least=0.25))


def _metric(entry: dict[str, Any], key: str) -> float | None:
    """A job's live history says ``accuracy``; an experiment's (the Trainer's log) says
    ``eval_accuracy``."""
    value = entry.get(key)
    return value if value is not None else entry.get(f"eval_{key}")


def label_distribution(label_counts: dict[str, int]) -> alt.Chart:
    frame = pd.DataFrame({"label": list(label_counts), "rows": list(label_counts.values())})
    return (
        alt.Chart(frame, title="Label distribution")
        .mark_bar()
        .encode(
            x=alt.X(
                "rows:Q",
                axis=integer_axis("rows"),
                scale=from_zero(frame["rows"]),
            ),
            y=alt.Y("label:N", sort="-x", title="label", axis=alt.Axis(labelLimit=0)),
            tooltip=["label:N", alt.Tooltip("rows:Q", format=",d")],
        )
    )


def length_histogram(bins: list[dict[str, int]], *, unit: str) -> alt.Chart:
    frame = pd.DataFrame(bins, columns=["start", "end", "count"])
    edges = [*frame["start"], *frame["end"]] or [0]
    return (
        alt.Chart(frame, title=f"Text length ({unit})")
        .mark_bar()
        .encode(
            x=alt.X(
                "start:Q",
                bin="binned",
                axis=integer_axis(unit),
                scale=alt.Scale(domain=[min(edges), max(edges)], nice=False, zero=False),
            ),
            x2="end:Q",
            y=alt.Y(
                "count:Q",
                axis=integer_axis("texts"),
                scale=from_zero(frame["count"]),
            ),
            tooltip=[
                alt.Tooltip("start:Q", title=f"from ({unit})", format="d"),
                alt.Tooltip("end:Q", title=f"to ({unit})", format="d"),
                alt.Tooltip("count:Q", title="texts", format=",d"),
            ],
        )
    )


def loss_curve(loss_history: list[list[float]]) -> alt.Chart:
    frame = pd.DataFrame(loss_history, columns=["step", "loss"])
    return (
        alt.Chart(frame, title="Training loss (per step)")
        .mark_line(point=len(frame) < 30)
        .encode(
            x=alt.X("step:Q", axis=integer_axis("step"), scale=padded(frame["step"], floor=0)),
            y=alt.Y("loss:Q", axis=decimal_axis("loss"), scale=padded(frame["loss"], floor=0)),
            tooltip=[alt.Tooltip("step:Q", format="d"), alt.Tooltip("loss:Q", format=".4f")],
        )
    )


def _metric_rows(history: list[dict[str, Any]], experiment: str | None = None) -> pd.DataFrame:
    rows = [
        {"epoch": entry["epoch"], "metric": METRIC_NAMES[key], "value": _metric(entry, key)}
        | ({"experiment": experiment} if experiment else {})
        for entry in history
        for key in METRIC_NAMES
        if _metric(entry, key) is not None
    ]
    return pd.DataFrame(
        rows, columns=["epoch", "metric", "value", "experiment"][: 4 if experiment else 3]
    )


# The two kinds of per-epoch values, each on its own y axis: (names, panel title, axis).
GROUPS = (
    (SCORES, "Accuracy and macro-F1 (higher is better)", "score"),
    (LOSSES, "Loss (lower is better)", "loss"),
)


def _value_y(names: dict[str, str], values: pd.Series, title: str) -> alt.Y:
    """Scores on the fixed 0 to 1 frame; losses on a frame around their own values."""
    if names is SCORES:
        return alt.Y("value:Q", axis=score_axis(title), scale=score_scale())
    return alt.Y("value:Q", axis=decimal_axis(title), scale=padded(values, floor=0))


def eval_curves(eval_history: list[dict[str, Any]]) -> alt.Chart | alt.HConcatChart:
    """Scores and losses in two panels side by side; the colour is the metric."""
    frame = _metric_rows(eval_history)
    present = [name for name in METRIC_NAMES.values() if name in set(frame["metric"])]
    color = alt.Color(
        "metric:N",
        scale=alt.Scale(domain=present),
        legend=alt.Legend(title="Metric", orient="bottom", labelLimit=0),
    )
    panels = []
    for names, title, axis_title in GROUPS:
        part = frame[frame["metric"].isin(names.values())]
        if part.empty:
            continue
        panels.append(
            alt.Chart(part, title=title)
            .mark_line(point=True)
            .encode(
                x=epoch_x(frame["epoch"]),
                y=_value_y(names, part["value"], axis_title),
                color=color,
                tooltip=[
                    alt.Tooltip("epoch:Q", format="~g"),
                    "metric:N",
                    alt.Tooltip("value:Q", format=".4f"),
                ],
            )
            .properties(**PANEL)
        )
    if len(panels) == 1:
        return panels[0]
    return alt.hconcat(*panels, title="Evaluation per epoch").resolve_scale(color="shared")


def _experiment_color(experiments: list[str]) -> alt.Color:
    # The same domain everywhere on the compare page, so an experiment keeps its colour
    # from the curves to the bars.
    return alt.Color(
        "experiment:N",
        scale=alt.Scale(domain=experiments),
        legend=alt.Legend(title="Experiment", orient="bottom", columns=1, labelLimit=0),
    )


def overlaid_curves(histories: dict[str, list[dict[str, Any]]]) -> alt.VConcatChart:
    """One panel per metric (scores on the top row, losses below), one line per
    experiment; the colour is the experiment."""
    frame = pd.concat(
        [_metric_rows(history, experiment) for experiment, history in histories.items()],
        ignore_index=True,
    )
    color = _experiment_color(list(histories))
    rows = []
    for names, _, _ in GROUPS:
        panels = []
        for metric in names.values():
            part = frame[frame["metric"] == metric]
            if part.empty:
                continue
            panels.append(
                alt.Chart(part, title=metric)
                .mark_line(point=True)
                .encode(
                    x=epoch_x(frame["epoch"]),
                    y=_value_y(names, part["value"], metric),
                    color=color,
                    tooltip=[
                        "experiment:N",
                        alt.Tooltip("epoch:Q", format="~g"),
                        alt.Tooltip("value:Q", title=metric, format=".4f"),
                    ],
                )
                .properties(**PANEL)
            )
        if panels:
            rows.append(alt.hconcat(*panels))
    return alt.vconcat(*rows).resolve_scale(color="shared")


def final_metric_bars(finals: dict[str, dict[str, float]]) -> alt.Chart:
    """Final accuracy and macro-F1, side by side per metric; the colour is the
    experiment, as in the curves above it."""
    rows = [
        {"experiment": experiment, "metric": METRIC_NAMES[key], "value": final[key]}
        for experiment, final in finals.items()
        for key in SCORES
        if final.get(key) is not None
    ]
    frame = pd.DataFrame(rows, columns=["experiment", "metric", "value"])
    return (
        alt.Chart(frame, title="Final metrics")
        .mark_bar()
        .encode(
            x=alt.X(
                "metric:N",
                sort=list(SCORES.values()),
                title=None,
                axis=alt.Axis(labelAngle=0, labelLimit=0),
            ),
            xOffset=alt.XOffset("experiment:N", sort=list(finals)),
            y=alt.Y("value:Q", axis=score_axis("score"), scale=score_scale()),
            color=_experiment_color(list(finals)),
            tooltip=["experiment:N", "metric:N", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(width=alt.Step(40 * max(1, len(finals)) + 20), height=220, autosize=PAD)
    )


def confusion_matrix(labels: list[Any], matrix: list[list[int]]) -> alt.LayerChart:
    """Counts written in the cells; the colour is the share of the row's true label (so
    a small class reads as clearly as a large one), also in the tooltip."""
    names = [str(label) for label in labels]
    rows = []
    for i, line in enumerate(matrix):
        total = sum(line)
        for j, count in enumerate(line):
            share = count / total if total else 0.0
            rows.append({"true": names[i], "predicted": names[j], "count": count, "share": share})
    frame = pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])
    # Labels are written level and whole: each cell is as wide as the longest label.
    cell = min(200, max(64, 7 * max((len(n) for n in names), default=1) + 16))
    base = alt.Chart(frame, title="Confusion matrix (rows: true label)").encode(
        x=alt.X(
            "predicted:N",
            sort=names,
            scale=alt.Scale(domain=names),
            axis=alt.Axis(title="predicted label", labelAngle=0, labelLimit=0, orient="bottom"),
        ),
        y=alt.Y(
            "true:N",
            sort=names,
            scale=alt.Scale(domain=names),
            axis=alt.Axis(title="true label", labelLimit=0),
        ),
    )
    tooltip = [
        alt.Tooltip("true:N", title="true label"),
        alt.Tooltip("predicted:N", title="predicted label"),
        alt.Tooltip("count:Q", title="texts", format=",d"),
        alt.Tooltip("share:Q", title="share of the true label", format=".1%"),
    ]
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color(
            "share:Q",
            scale=alt.Scale(scheme="blues", domain=[0, 1]),
            # Below the matrix: beside it, a narrow column cuts the legend's title.
            legend=alt.Legend(
                title="share of the true label", format=".0%", orient="bottom", gradientLength=120
            ),
        ),
        tooltip=tooltip,
    )
    text = base.mark_text(fontSize=14, fontWeight="bold").encode(
        text=alt.Text("count:Q", format=",d"),
        # Dark cells get white figures, light cells black ones.
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    side = cell * max(1, len(names))
    return (cells + text).properties(
        width=side, height=min(side, 56 * max(1, len(names))), autosize=PAD
    )


def probabilities(predictions: list[dict[str, Any]]) -> alt.Chart:
    """``predictions`` carry ``line`` (the line typed), ``text``, ``label`` and
    ``probability``; the colour is the predicted label."""
    frame = pd.DataFrame(
        [
            {
                "text": f"{p.get('line', i + 1)}. {p['text'][:40]}",
                "label": str(p["label"]),
                "probability": p["probability"],
            }
            for i, p in enumerate(predictions)
        ],
        columns=["text", "label", "probability"],
    )
    return (
        alt.Chart(frame, title="Predicted label and its probability")
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", axis=score_axis("probability"), scale=score_scale()),
            y=alt.Y("text:N", sort=None, title="line", axis=alt.Axis(labelLimit=0)),
            color=alt.Color("label:N", legend=alt.Legend(title="Predicted label")),
            tooltip=["text:N", "label:N", alt.Tooltip("probability:Q", format=".3f")],
        )
    )
