"""The UI's tables, built from what the API answers. Pure functions: records in, frame out.

Every table keeps the same rules (tests/test_ui_views.py checks them):

- human column names ("Submitted", "Experiment", "Base model"), never field names;
- times in UTC and saying so ("2026-11-29 14:03 UTC"): the API answers UTC, and a time
  without its zone is a guess for anyone not in it;
- "—" for a value that does not exist, never ``None`` or ``NaN``; numbers stay numbers
  (so a column still sorts by value) and get their "—" from the styler;
- each column as wide as its longest value, so nothing is cut off.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from loraforge.ui.job_view import (
    NOTHING,
    experiment_quality,
    job_quality,
    status_words,
    when,
)

# Pixels per character of the table font (6.5 measured in Chromium on Streamlit's grid),
# and what a cell needs beyond its text (padding, the header's sort arrow).
CHAR_PX, EXTRA_PX = 7, 24
MIN_PX, MAX_PX = 70, 560


def width_for(title: str, values: Any) -> int:
    """Pixels for a column whose longest cell (or its title) must show whole."""
    longest = max([len(title), *(len(str(v)) for v in values)])
    return max(MIN_PX, min(MAX_PX, CHAR_PX * longest + EXTRA_PX))


def widths(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> dict[str, int]:
    """Each column's width from its values as shown (formatted numbers, "—")."""
    formats = formats or {}
    shown = {}
    for column in frame.columns:
        values = frame[column]
        if column in formats:
            values = [NOTHING if pd.isna(v) else formats[column].format(v) for v in values]
        shown[column] = width_for(str(column), values)
    return shown


def styled(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> Styler:
    """Numbers formatted, and "—" wherever a value is missing, in every column."""
    return frame.style.format(na_rep=NOTHING).format(formats or {}, na_rep=NOTHING)


def show(
    frame: pd.DataFrame,
    *,
    formats: dict[str, str] | None = None,
    pinned: str | None = None,
    config: dict[str, Any] | None = None,
) -> None:
    """``st.dataframe`` with the rules above: widths from the values, "—" for what is
    missing (``placeholder``: Streamlit writes "None" otherwise, whatever a styler says),
    and the row's name (``pinned``) kept in view when the table scrolls sideways."""
    import streamlit as st

    columns = {
        name: st.column_config.Column(width=px, pinned=name == pinned or None)
        for name, px in widths(frame, formats).items()
    }
    columns.update(config or {})
    st.dataframe(
        styled(frame, formats) if formats else frame,
        hide_index=True,
        width="stretch",
        column_config=columns,
        placeholder=NOTHING,
    )


def _text(value: Any) -> str:
    return NOTHING if value is None or (isinstance(value, float) and pd.isna(value)) else value


def model_name(base_model: str | None) -> str:
    """A catalog name or Hugging Face id as is; a server folder by its last part (the
    whole path is in the config)."""
    if not base_model:
        return NOTHING
    if base_model.startswith(("/", ".", "~")):
        return PurePosixPath(base_model).name
    return base_model


# Jobs ------------------------------------------------------------------------------------


def job_progress(task: dict[str, Any]) -> float:
    if task["status"] == "succeeded":
        return 1.0
    progress = task["progress"] or {}
    return (progress.get("step") or 0) / max(1, progress.get("total_steps") or 1)


JOB_COLUMNS = [
    "Experiment",
    "Status",
    "Progress",
    "Submitted",
    "Finished",
    "Owner",
    "Base model",
    "Task",
]


def job_rows(tasks: list[dict[str, Any]], owners: dict[int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Experiment": _text(t["config"].get("experiment_name")),
                "Status": status_words(t["status"], job_quality(t)),
                "Progress": round(100 * job_progress(t)),  # percent
                "Submitted": when(t["created_at"]),
                "Finished": when(t.get("finished_at")),
                "Owner": owners.get(t["owner_id"], f"user {t['owner_id']}"),
                "Base model": model_name((t["config"].get("model") or {}).get("base_model")),
                "Task": t["task_id"],
            }
            for t in tasks
        ],
        columns=JOB_COLUMNS,
    )


# Experiments -----------------------------------------------------------------------------

EXPERIMENT_FORMATS = {
    "Accuracy": "{:.1f} %",
    "Macro-F1": "{:.3f}",
    "Train rows": "{:,.0f}",
    "Eval rows": "{:,.0f}",
    "Epochs": "{:g}",
    "Samples/s": "{:.1f}",
}


EXPERIMENT_COLUMNS = [
    "Experiment",
    "Status",
    "Base model",
    "Language",
    "Accuracy",
    "Macro-F1",
    "Train rows",
    "Eval rows",
    "Epochs",
    "Samples/s",
    "Created",
]


def final(experiment: dict[str, Any]) -> dict[str, Any]:
    return (experiment.get("metrics") or {}).get("final") or {}


def experiment_row(experiment: dict[str, Any]) -> dict[str, Any]:
    metrics = experiment.get("metrics") or {}
    train = metrics.get("train") or {}
    accuracy = final(experiment).get("accuracy")
    return {
        "Experiment": experiment["id"],
        "Status": status_words(experiment["status"], experiment_quality(experiment)),
        "Base model": model_name(experiment["base_model"]),
        "Language": _text(experiment.get("language")),
        "Accuracy": None if accuracy is None else 100 * accuracy,  # shown as "86.8 %"
        "Macro-F1": final(experiment).get("f1_macro"),
        "Train rows": experiment.get("train_rows"),
        "Eval rows": experiment.get("eval_rows"),
        "Epochs": train.get("epochs"),
        "Samples/s": train.get("samples_per_second"),
        "Created": when(experiment["created_at"]),
    }


def experiment_rows(experiments: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([experiment_row(e) for e in experiments], columns=EXPERIMENT_COLUMNS)
    for column in EXPERIMENT_FORMATS:  # numbers (or NaN), so the column sorts by value
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


# Data sets -------------------------------------------------------------------------------


def dataset_rows(datasets: list[dict[str, Any]], owners: dict[int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Name": d["name"],
                "Rows": d["rows"],
                "Labels": ", ".join(f"{label} ({n:,})" for label, n in d["label_counts"].items()),
                "Version": d["version"][:12],
                "Uploaded": when(d["created_at"]),
                "Owner": owners.get(d["owner_id"], f"user {d['owner_id']}"),
                "ID": d["id"],
            }
            for d in datasets
        ],
        columns=["Name", "Rows", "Labels", "Version", "Uploaded", "Owner", "ID"],
    )


# Admin -----------------------------------------------------------------------------------


def user_rows(people: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "User": p["username"],
                "Role": p["role"],
                "Active": "yes" if p["is_active"] else "no (disabled)",
                "Created": when(p["created_at"]),
                "ID": p["id"],
            }
            for p in people
        ],
        columns=["User", "Role", "Active", "Created", "ID"],
    )


def audit_rows(events: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "When": when(e["at"], seconds=True),
                "User": _text(e.get("username")),
                "Action": e["action"],
                "Target": _text(e.get("target")),
                "Outcome": e["outcome"],
                "Client": _text(e.get("client")),
                "Detail": json.dumps(e["detail"], ensure_ascii=False) if e.get("detail") else "",
            }
            for e in events
        ],
        columns=["When", "User", "Action", "Target", "Outcome", "Client", "Detail"],
    )


# Try it ----------------------------------------------------------------------------------


def typed_texts(text: str) -> tuple[list[tuple[int, str]], int]:
    """(line number, text) for each non-blank line typed, and how many blank lines were
    skipped: each answer keeps the number of the line it answers."""
    lines = text.splitlines()
    kept = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    return kept, len(lines) - len(kept)


def prediction_rows(
    lines: list[tuple[int, str]], answers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per line typed (the API answers in the order asked)."""
    return [
        {"line": number, "text": text, **answer}
        for (number, text), answer in zip(lines, answers, strict=True)
    ]


def prediction_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Line": r["line"],
                "Text": r["text"],
                "Label": str(r["label"]),
                "Probability": r["probability"],
                "Latency (ms)": r["latency_ms"],
                "Base model": model_name(r["base_model"]),
                "Language": _text(r.get("language")),
            }
            for r in rows
        ],
        columns=["Line", "Text", "Label", "Probability", "Latency (ms)", "Base model", "Language"],
    )
