"""Experiments: a sortable, filterable table; two or more side by side (config differences
highlighted, curves overlaid, final metrics as bars); one experiment's confusion matrix."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from loraforge.ui import charts, session
from loraforge.ui.comparison import config_differences, highlight


def final(experiment: dict[str, Any]) -> dict[str, Any]:
    return (experiment["metrics"] or {}).get("final") or {}


def row(experiment: dict[str, Any]) -> dict[str, Any]:
    metrics = experiment["metrics"] or {}
    accuracy = final(experiment).get("accuracy")
    return {
        "experiment": experiment["id"],
        "status": experiment["status"],
        "base model": experiment["base_model"],
        "language": experiment["language"],
        "accuracy": None if accuracy is None else 100 * accuracy,  # shown as "86.8 %"
        "macro-F1": final(experiment).get("f1_macro"),
        "train rows": experiment["train_rows"],
        "epochs": (metrics.get("train") or {}).get("epochs"),
        "samples/s": (metrics.get("train") or {}).get("samples_per_second"),
        "created": pd.to_datetime(experiment["created_at"]),
    }


st.title("Experiments")
experiments = session.api().experiments()
if not experiments:
    st.info("No experiments yet: a finished job appears here.", icon=":material/info:")
    st.stop()

table = pd.DataFrame([row(e) for e in experiments])
filters = st.columns([2, 1, 1])
search = filters[0].text_input("Filter by name", placeholder="part of the experiment id")
statuses = filters[1].multiselect("Status", sorted(table["status"].unique()))
bases = filters[2].multiselect("Base model", sorted(table["base model"].unique()))
shown = table
if search:
    shown = shown[shown["experiment"].str.contains(search, case=False, regex=False)]
if statuses:
    shown = shown[shown["status"].isin(statuses)]
if bases:
    shown = shown[shown["base model"].isin(bases)]
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "accuracy": st.column_config.NumberColumn(format="%.1f %%"),
        "macro-F1": st.column_config.NumberColumn(format="%.3f"),
        "created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
    },
)
st.caption("Click a column header to sort.")

by_id = {e["id"]: e for e in experiments}
finished = [e["id"] for e in experiments if e["status"] == "succeeded"]

st.header("Compare")
compared = st.multiselect(
    "Experiments to compare (two or more)",
    finished,
    default=finished[:2] if len(finished) >= 2 else [],
)
if len(compared) >= 2:
    chosen = [by_id[i] for i in compared]
    st.subheader("Config")
    st.dataframe(highlight(config_differences(chosen)), width="stretch")
    st.subheader("Metrics per epoch")
    histories = {e["id"]: e["metrics"]["history"] for e in chosen if e["metrics"].get("history")}
    if histories:  # one panel per metric: a row of its own
        st.altair_chart(charts.overlaid_curves(histories))
    left, _ = st.columns(2)
    left.altair_chart(
        charts.final_metric_bars({e["id"]: final(e) for e in chosen}), width="stretch"
    )
elif compared:
    st.caption("Pick one more to compare.")

st.header("One experiment")
asked = st.query_params.get("experiment")
ids = [e["id"] for e in experiments]
picked = st.selectbox("Experiment", ids, index=ids.index(asked) if asked in ids else 0)
st.query_params["experiment"] = picked
experiment = by_id[picked]  # the list already carries each whole experiment
if experiment["error"]:
    st.error(experiment["error"], icon=":material/error:")
metrics = experiment["metrics"] or {}
cols = st.columns(4)
cols[0].metric(
    "Accuracy", f"{final(experiment)['accuracy']:.1%}" if "accuracy" in final(experiment) else "-"
)
cols[1].metric(
    "Macro-F1", f"{final(experiment)['f1_macro']:.3f}" if "f1_macro" in final(experiment) else "-"
)
cols[2].metric("Base model", experiment["base_model"])
cols[3].metric(
    "Train / eval rows", f"{experiment['train_rows'] or 0:,} / {experiment['eval_rows'] or 0:,}"
)
left, right = st.columns(2)
if matrix := metrics.get("confusion_matrix"):
    left.altair_chart(charts.confusion_matrix(matrix["labels"], matrix["matrix"]))
if metrics.get("history"):
    right.altair_chart(charts.eval_curves(metrics["history"]), width="stretch")
with st.expander("Config"):
    st.json(experiment["config"])
with st.expander("All metrics"):
    st.json(metrics)
if experiment["status"] == "succeeded":
    st.page_link(
        "views/try_it.py",
        label="Try this model",
        icon=":material/chat:",
        query_params={"experiment": picked},
    )
