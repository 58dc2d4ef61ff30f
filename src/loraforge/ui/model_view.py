"""How the model registry reads on screen: stage badges, the registry and search tables,
the history timeline, a card's labels and per-class scores, and who may press which
button. Pure functions of the API's answers, so they are tested without a browser."""

from __future__ import annotations

from typing import Any

import pandas as pd

from loraforge.ui.job_view import NOTHING, when
from loraforge.ui.tables import model_name

NONE, STAGING, PRODUCTION, ARCHIVED = "none", "Staging", "Production", "Archived"
STAGES = (NONE, STAGING, PRODUCTION, ARCHIVED)
# The same table as registry/versions.py (ALLOWED, ADMIN_STAGES): the UI offers only the
# moves the API would accept, and the API still decides.
ALLOWED: dict[str, tuple[str, ...]] = {
    NONE: (STAGING,),
    STAGING: (PRODUCTION, ARCHIVED),
    PRODUCTION: (ARCHIVED,),
    ARCHIVED: (STAGING,),
}
ADMIN_STAGES = (PRODUCTION, ARCHIVED)

# Streamlit markdown colours and icons per stage; "none" is a plain grey outline.
BADGE = {
    PRODUCTION: ("green", ":material/rocket_launch:"),
    STAGING: ("blue", ":material/science:"),
    ARCHIVED: ("gray", ":material/inventory_2:"),
    NONE: ("gray", ":material/radio_button_unchecked:"),
}
# The same colours as cell backgrounds in a table (st.dataframe renders a Styler's CSS).
CELL = {
    PRODUCTION: "background-color: #d3f2dc; color: #125c2b",
    STAGING: "background-color: #d6e6fb; color: #1a4d8f",
    ARCHIVED: "background-color: #e8e8ea; color: #55575d",
}
METRICS = {"f1_macro": "Macro-F1", "accuracy": "Accuracy"}


def stage_words(stage: str | None) -> str:
    """What a stage reads as: "none" means registered, not yet in any stage."""
    return "no stage" if stage in (None, NONE) else str(stage)


def badge(stage: str | None) -> str:
    colour, icon = BADGE.get(stage or NONE, BADGE[NONE])
    return f":{colour}-badge[{icon} {stage_words(stage)}]"


def stage_style(value: Any) -> str:
    return CELL.get(value, "")


def score(metrics: dict[str, Any] | None, key: str) -> float | None:
    value = (metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def score_words(metrics: dict[str, Any] | None) -> str:
    """``macro-F1 0.912 · accuracy 91.3 %`` from a metric snapshot."""
    parts = []
    if (f1 := score(metrics, "f1_macro")) is not None:
        parts.append(f"macro-F1 {f1:.3f}")
    if (accuracy := score(metrics, "accuracy")) is not None:
        parts.append(f"accuracy {accuracy:.1%}")
    return " · ".join(parts) or "no scores recorded"


def reference(version: dict[str, Any]) -> str:
    return f"{version['name']}:{version['version']}"


# Tables ----------------------------------------------------------------------------------

REGISTRY_FORMATS = {"Macro-F1": "{:.3f}", "Accuracy": "{:.1f} %"}
REGISTRY_COLUMNS = [
    "Model",
    "Stage",
    "Production",
    "Staging",
    "Latest",
    "Macro-F1",
    "Accuracy",
    "Base model",
    "Language",
    "Task",
    "Versions",
    "Updated",
]


def leading_stage(model: dict[str, Any]) -> str:
    """The model's furthest stage: Production if one serves, else Staging, else none."""
    if model.get("production"):
        return PRODUCTION
    if model.get("staging"):
        return STAGING
    latest = model.get("latest") or {}
    return latest.get("stage") or NONE


def _version_label(version: dict[str, Any] | None) -> str:
    return NOTHING if not version else f"v{version['version']}"


def registry_rows(models: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per registered model; scores are the Production version's, else the
    latest's (the caption under the table says so)."""
    rows = []
    for model in models:
        shown = model.get("production") or model.get("latest") or {}
        accuracy = score(shown.get("metrics"), "accuracy")
        rows.append(
            {
                "Model": model["name"],
                "Stage": stage_words(leading_stage(model)),
                "Production": _version_label(model.get("production")),
                "Staging": ", ".join(f"v{n}" for n in model.get("staging") or []) or NOTHING,
                "Latest": _version_label(model.get("latest")),
                "Macro-F1": score(shown.get("metrics"), "f1_macro"),
                "Accuracy": None if accuracy is None else 100 * accuracy,
                "Base model": model_name(shown.get("base_model")),
                "Language": shown.get("language") or NOTHING,
                "Task": shown.get("task") or NOTHING,
                "Versions": model.get("version_count", NOTHING),
                "Updated": when(model.get("updated_at")),
            }
        )
    frame = pd.DataFrame(rows, columns=REGISTRY_COLUMNS)
    for column in REGISTRY_FORMATS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


VERSION_COLUMNS = [
    "Model",
    "Version",
    "Stage",
    "Macro-F1",
    "Accuracy",
    "Base model",
    "Language",
    "Task",
    "Tags",
    "Owner",
    "Registered",
]


def version_rows(versions: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per version (search results), in the order the API ranked them."""
    rows = []
    for v in versions:
        accuracy = score(v.get("metrics"), "accuracy")
        rows.append(
            {
                "Model": v["name"],
                "Version": v["version"],
                "Stage": stage_words(v.get("stage")),
                "Macro-F1": score(v.get("metrics"), "f1_macro"),
                "Accuracy": None if accuracy is None else 100 * accuracy,
                "Base model": model_name(v.get("base_model")),
                "Language": v.get("language") or NOTHING,
                "Task": v.get("task") or NOTHING,
                "Tags": tag_words(v.get("tags")) or NOTHING,
                "Owner": v.get("owner") or NOTHING,
                "Registered": when(v.get("created_at")),
            }
        )
    frame = pd.DataFrame(rows, columns=VERSION_COLUMNS)
    for column in REGISTRY_FORMATS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def tag_words(tags: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (tags or {}).items())


def parse_tags(text: str) -> dict[str, str]:
    """``team=support, lang=en`` (commas or new lines) → a dict; ``k:v`` is read too, as
    the search's own syntax. A piece without a key and a value raises ValueError naming it."""
    tags: dict[str, str] = {}
    for piece in text.replace("\n", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        for separator in ("=", ":"):
            key, found, value = piece.partition(separator)
            if found:
                break
        if not found or not key.strip() or not value.strip():
            raise ValueError(f"{piece!r} is not key=value")
        tags[key.strip()] = value.strip()
    return tags


# Who may do what --------------------------------------------------------------------------


def is_admin(user: dict[str, Any]) -> bool:
    return user.get("role") == "admin"


def owns(user: dict[str, Any], version: dict[str, Any]) -> bool:
    """The API names a version's owner by username ("cli:<os user>" when the CLI registered
    it, a name no one signs in with)."""
    return version.get("owner") is not None and version.get("owner") == user.get("username")


def allowed_moves(user: dict[str, Any], version: dict[str, Any]) -> list[str]:
    """The stages this user may move this version to: owners take their own versions to
    Staging; Production and Archived (and anything of anyone's) need an admin."""
    moves = ALLOWED.get(version.get("stage") or NONE, ())
    if is_admin(user):
        return list(moves)
    if not owns(user, version):
        return []
    return [stage for stage in moves if stage not in ADMIN_STAGES]


def move_label(current: str, target: str) -> str:
    if target == ARCHIVED:
        return "Archive" if current != PRODUCTION else "Withdraw from Production (archive)"
    if current == ARCHIVED:
        return "Restore to Staging"
    return f"Promote to {target}"


def may_edit_card(user: dict[str, Any], version: dict[str, Any]) -> bool:
    return is_admin(user) or owns(user, version)


# History ---------------------------------------------------------------------------------


def history_line(entry: dict[str, Any]) -> str:
    """One transition as a line of markdown: when, who, which version, from → to, and
    why, with the scores the decision saw."""
    to_stage = entry.get("to_stage")
    if entry.get("from_stage") is None:
        move = f"registered (v{entry['version']})"
    else:
        move = f"v{entry['version']}: {stage_words(entry['from_stage'])} → {stage_words(to_stage)}"
    parts = [f"**{when(entry.get('at'))}**", entry.get("actor") or "unknown", move]
    if entry.get("forced"):
        parts.append(":orange-badge[:material/warning: forced]")
    line = " · ".join(parts)
    details = []
    if entry.get("reason"):
        details.append(f"reason: “{entry['reason']}”")
    if entry.get("metrics"):
        details.append(score_words(entry["metrics"]))
    if entry.get("previous_production_metrics"):
        details.append(
            f"Production it replaced: {score_words(entry['previous_production_metrics'])}"
        )
    return line + ("  \n" + " · ".join(details) if details else "")


def timeline(history: list[dict[str, Any]]) -> str:
    """The whole history, newest first (the API's order), as a markdown list."""
    return "\n".join(f"- {history_line(entry)}" for entry in history)


# A version's card ------------------------------------------------------------------------


def confusion(card: dict[str, Any]) -> tuple[list[Any], list[list[int]]] | None:
    matrix = card.get("confusion_matrix") or {}
    if isinstance(matrix, dict) and matrix.get("labels") and matrix.get("matrix"):
        return list(matrix["labels"]), matrix["matrix"]
    return None


def per_class_from_matrix(labels: list[Any], matrix: list[list[int]]) -> list[dict[str, Any]]:
    """Precision, recall and F1 per class, computed from the confusion matrix (rows: true
    label), for a card that does not carry them."""
    rows = []
    for i, label in enumerate(labels):
        true_positive = matrix[i][i]
        predicted = sum(line[i] for line in matrix)
        actual = sum(matrix[i])
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {"label": label, "precision": precision, "recall": recall, "f1": f1, "support": actual}
        )
    return rows


PER_CLASS_FORMATS = {
    "Precision": "{:.3f}",
    "Recall": "{:.3f}",
    "F1": "{:.3f}",
    "Support": "{:,.0f}",
}


def per_class_rows(card: dict[str, Any]) -> pd.DataFrame:
    """The card's per-class scores (``per_class``), else computed from its matrix."""
    entries = card.get("per_class") or []
    if not entries and (matrix := confusion(card)):
        entries = per_class_from_matrix(*matrix)
    frame = pd.DataFrame(
        [
            {
                "Label": str(e.get("label")),
                "Precision": e.get("precision"),
                "Recall": e.get("recall"),
                "F1": e.get("f1"),
                "Support": e.get("support"),
            }
            for e in entries
        ],
        columns=["Label", "Precision", "Recall", "F1", "Support"],
    )
    for column in PER_CLASS_FORMATS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


COUNT_FORMATS = {"Train texts": "{:,.0f}", "Eval texts": "{:,.0f}"}


def label_counts(card: dict[str, Any], fallback: list[Any] | None = None) -> pd.DataFrame:
    """The card's labels with their counts in the training and evaluation data
    (``labels: [{name, train_count, eval_count}]``); ``fallback``: the version's bare
    label names, for a card that could not be read."""
    entries = card.get("labels") or [{"name": label} for label in fallback or []]
    frame = pd.DataFrame(
        [
            {
                "Label": str(e.get("name")),
                "Train texts": e.get("train_count"),
                "Eval texts": e.get("eval_count"),
            }
            for e in entries
        ],
        columns=["Label", "Train texts", "Eval texts"],
    )
    for column in COUNT_FORMATS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def data_versions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"train": {version, rows}, "eval": {…}}``: the data the version was trained and
    evaluated on, the start of its lineage (only the parts the card knows)."""
    data = card.get("data") or {}
    return {
        part: found
        for part in ("train", "eval")
        if (found := data.get(part) or {}).get("version") or found.get("rows")
    }


def short(version: str | None) -> str:
    return NOTHING if not version else str(version)[:12]


def recommendation_line(rank: int, answer: dict[str, Any]) -> str:
    model = answer["model"]
    reasons = "; ".join(answer.get("reasons") or []) or "no reason given"
    return (
        f"**{rank}. {model['name']} v{model['version']}** {badge(model.get('stage'))} · "
        f"score {answer.get('score', 0):.3f} · {score_words(model.get('metrics'))}  \n"
        f"{reasons}"
    )


# Links into MLflow's own UI (MLflow 3: a single-page app with hash routes) -----------------


def mlflow_run_url(ui_url: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    if not (ui_url and experiment_id and run_id):
        return None
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_version_url(ui_url: str | None, name: str, version: Any) -> str | None:
    if not (ui_url and version):
        return None
    return f"{ui_url.rstrip('/')}/#/models/{name}/versions/{version}"


# Try it: registered models by reference ------------------------------------------------------


def references(models: list[dict[str, Any]], asked: str | None = None) -> dict[str, str]:
    """``NAME@production``, ``NAME@staging`` and ``NAME:N`` (the latest and each Staging
    version) → the words that describe what each one means now. A reference asked for in
    the URL is offered even when the list would not name it (an archived ``NAME:1``)."""
    out: dict[str, str] = {}
    for model in models:
        name = model["name"]
        if production := model.get("production"):
            out[f"{name}@production"] = (
                f"{name}@production · Production v{production['version']} · "
                f"{score_words(production.get('metrics'))}"
            )
        staging = sorted(model.get("staging") or [], reverse=True)
        if staging:
            out[f"{name}@staging"] = f"{name}@staging · newest Staging v{staging[0]}"
        latest = model.get("latest")
        for number in sorted({*staging, *([latest["version"]] if latest else [])}, reverse=True):
            stage = stage_words(latest["stage"]) if latest and latest["version"] == number else None
            out.setdefault(
                f"{name}:{number}",
                f"{name}:{number} · {stage or 'Staging'}",
            )
    if asked and asked not in out:
        out[asked] = asked
    return out


def refusal_words(error: Any, fields: dict[str, str]) -> str:
    """An API refusal worded for a form: each refused field by its label on the page
    (``fields``: API field → label), without the API's "fix the fields listed in
    `errors`" hint, which speaks to programs; any other refusal as message and hint."""
    problems = error.field_errors()
    if problems and all(name in fields for name in problems):
        return "  \n".join(f"{fields[name]}: {why}" for name, why in problems.items())
    return error.message + (f"  \n{error.hint}" if error.hint else "")
