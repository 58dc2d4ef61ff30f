"""Altair charts built from what the API answers. Pure functions: data in, chart out."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

METRIC_NAMES = {
    "accuracy": "accuracy",
    "f1_macro": "macro-F1",
    "loss": "eval loss",
    "train_loss": "train loss",
}


# Epochs are often whole numbers; without a format Vega prints "1.000000".
EPOCH = alt.X("epoch:Q", axis=alt.Axis(format="~g", tickMinStep=0.5))


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
            x=alt.X("rows:Q", title="rows"),
            y=alt.Y("label:N", sort="-x", title=None),
            color=alt.Color("label:N", legend=None),
            tooltip=["label:N", "rows:Q"],
        )
    )


def length_histogram(bins: list[dict[str, int]], *, unit: str) -> alt.Chart:
    frame = pd.DataFrame(bins)
    return (
        alt.Chart(frame, title=f"Text length ({unit})")
        .mark_bar()
        .encode(
            x=alt.X("start:Q", bin="binned", title=unit),
            x2="end:Q",
            y=alt.Y("count:Q", title="texts"),
            tooltip=["start:Q", "end:Q", "count:Q"],
        )
    )


def loss_curve(loss_history: list[list[float]]) -> alt.Chart:
    frame = pd.DataFrame(loss_history, columns=["step", "loss"])
    return (
        alt.Chart(frame, title="Training loss")
        .mark_line(point=len(frame) < 30)
        .encode(
            x=alt.X("step:Q"),
            y=alt.Y("loss:Q", scale=alt.Scale(zero=False)),
            tooltip=["step:Q", "loss:Q"],
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


def eval_curves(eval_history: list[dict[str, Any]]) -> alt.Chart:
    frame = _metric_rows(eval_history)
    return (
        alt.Chart(frame, title="Evaluation per epoch")
        .mark_line(point=True)
        .encode(
            x=EPOCH,
            y=alt.Y("value:Q", title=None),
            color=alt.Color("metric:N"),
            tooltip=["epoch:Q", "metric:N", alt.Tooltip("value:Q", format=".4f")],
        )
    )


def overlaid_curves(histories: dict[str, list[dict[str, Any]]]) -> alt.Chart:
    """One panel per metric, one line per experiment."""
    frame = pd.concat(
        [_metric_rows(history, experiment) for experiment, history in histories.items()],
        ignore_index=True,
    )
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=EPOCH,
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color(
                "experiment:N", legend=alt.Legend(orient="bottom", columns=1, labelLimit=500)
            ),
            tooltip=["experiment:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(width=170, height=200)
        .facet(column=alt.Column("metric:N", title=None))
        .resolve_scale(y="independent")
    )


def final_metric_bars(finals: dict[str, dict[str, float]]) -> alt.Chart:
    rows = [
        {"experiment": experiment, "metric": METRIC_NAMES[key], "value": final[key]}
        for experiment, final in finals.items()
        for key in ("accuracy", "f1_macro")
        if final.get(key) is not None
    ]
    frame = pd.DataFrame(rows, columns=["experiment", "metric", "value"])
    return (
        alt.Chart(frame, title="Final metrics")
        .mark_bar()
        .encode(
            x=alt.X("experiment:N", title=None, axis=alt.Axis(labelAngle=-20, labelLimit=300)),
            xOffset="metric:N",
            y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("metric:N"),
            tooltip=["experiment:N", "metric:N", alt.Tooltip("value:Q", format=".4f")],
        )
    )


def confusion_matrix(labels: list[Any], matrix: list[list[int]]) -> alt.Chart:
    names = [str(label) for label in labels]
    frame = pd.DataFrame(
        [
            {"true": names[i], "predicted": names[j], "count": count}
            for i, row in enumerate(matrix)
            for j, count in enumerate(row)
        ]
    )
    base = alt.Chart(frame, title="Confusion matrix (rows: true label)").encode(
        x=alt.X("predicted:N", sort=names),
        y=alt.Y("true:N", sort=names),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")),
        tooltip=["true:N", "predicted:N", "count:Q"],
    )
    text = base.mark_text(fontSize=14).encode(
        text="count:Q",
        color=alt.condition(
            alt.datum.count > frame["count"].max() / 2, alt.value("white"), alt.value("black")
        ),
    )
    return (cells + text).properties(width=320, height=320)


def probabilities(predictions: list[dict[str, Any]]) -> alt.Chart:
    frame = pd.DataFrame(
        [
            {
                "text": f"{i + 1}. {p['text'][:40]}",
                "label": str(p["label"]),
                "probability": p["probability"],
            }
            for i, p in enumerate(predictions)
        ]
    )
    return (
        alt.Chart(frame, title="Predicted label and its probability")
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("text:N", sort=None, title=None),
            color=alt.Color("label:N"),
            tooltip=["text:N", "label:N", alt.Tooltip("probability:Q", format=".3f")],
        )
    )
