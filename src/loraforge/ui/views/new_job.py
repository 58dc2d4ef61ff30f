"""New job: a data set (validated before anything runs), a base model, LoRA and training
parameters with the measured defaults; bad values are explained next to their field."""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from loraforge.api.schemas import TrainJobCreate
from loraforge.config import DataSection, LoraSection, TrainingSection
from loraforge.data.loading import (
    COLUMNS_HINTS,
    LABEL_NAMES,
    TEXT_NAMES,
    likely_column,
    read_header,
    separator_words,
)
from loraforge.errors import DatasetError
from loraforge.field_errors import field_problems
from loraforge.ui import charts, session
from loraforge.ui.client import ApiError

ERRORS = "new_job_errors"
PREFILL = "new_job_prefill"  # the config of a job being run again, until submitted
UPLOAD_ERRORS = "new_job_upload_errors"
UPLOADED = "new_job_dataset"
SOURCE, SHOW_UPLOADED = "dataset_source", "new_job_show_uploaded"
JUST_UPLOADED = "new_job_just_uploaded"
UPLOAD, PICK = "Upload a file", "One uploaded before"
AUTO_MODEL = "auto"
OTHER_MODEL = "Other: a Hugging Face id or a folder on the server"


SECTIONS = {"data": DataSection, "lora": LoraSection, "training": TrainingSection}


def field(key: str) -> FieldInfo:
    """The config field behind a form field: its default and its help come from there."""
    section, name = key.split(".")
    return SECTIONS[section].model_fields[name]


def again(key: str, default: Any) -> Any:
    """A setting of the job being run again (dotted key), else ``default``; a number
    keeps the type of its default (a number field refuses to mix int and float)."""
    node: Any = st.session_state.get(PREFILL) or {}
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return default
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return type(default)(node)
    return node


def number(label: str, key: str, **options: Any) -> int | float:
    """A number field starting at the config's default (or the job's, to run it again).
    No bounds here: an out-of-range value is sent to validation and explained under the
    field, not silently clamped."""
    options["value"] = again(key, options.get("value", field(key).default))
    options.setdefault("help", field(key).description)
    value = st.number_input(label, **options)
    field_error(key)
    return value


# The fields explained under their widget in this run; any other refused field is
# listed at the bottom, so that no reason goes unshown.
SHOWN_FIELDS: set[str] = set()


def field_error(key: str) -> None:
    """The reason a field was refused, right under it."""
    SHOWN_FIELDS.add(key)
    if message := st.session_state.get(ERRORS, {}).get(key):
        st.error(message, icon=":material/error:")


def show_dataset(api, dataset: dict[str, Any]) -> None:
    cols = st.columns(4)
    cols[0].metric("Rows", f"{dataset['rows']:,}")
    cols[1].metric("Classes", len(dataset["label_counts"]))
    cols[2].metric("Format", dataset["format"])
    cols[3].metric("Version", dataset["version"][:12])
    if dataset.get("languages"):
        st.caption(f"Language: **{dataset['languages']['words']}** (detected at upload).")
    if dataset["warnings"]:
        for warning in dataset["warnings"]:
            st.warning(warning, icon=":material/warning:")
    else:
        st.success("Validated: no warnings.", icon=":material/check_circle:")
    analysis = api.dataset_analysis(dataset["id"])
    left, middle, right = st.columns(3)
    left.altair_chart(charts.label_distribution(dataset["label_counts"]), width="stretch")
    middle.altair_chart(
        charts.length_histogram(analysis["chars_histogram"], unit="characters"), width="stretch"
    )
    right.altair_chart(
        charts.length_histogram(analysis["words_histogram"], unit="words"), width="stretch"
    )


def show_coverage(api, dataset_id: str, base_model: str) -> None:
    """What training will find, before anything runs: the model `auto` picks, and how
    much of this data the model's tokenizer reads."""
    try:
        found = api.dataset_language(dataset_id, base_model)
    except ApiError as error:
        st.error(error.detail, icon=":material/error:")
        return
    coverage = found["coverage"]
    chosen = f"**{found['base_model']}**" + (" (auto)" if found["chosen_automatically"] else "")
    if coverage is None:
        st.caption(f"{chosen}: its tokenizer is not on the server yet; checked when it loads.")
    elif found["refused"]:
        st.error(
            f"{found['warnings'][0]} Training will be refused unless you allow low coverage.",
            icon=":material/error:",
        )
    elif found["warnings"]:
        st.warning(found["warnings"][0], icon=":material/warning:")
    else:
        st.caption(f"{chosen} reads {1 - coverage['unread_share']:.1%} of this data's text.")


def upload_form(api) -> None:
    """Choose a file, pick its text and label columns from its own header, upload."""
    file = st.file_uploader(
        "CSV, TSV, delimited text, JSONL or Parquet with a text and a label column",
        type=["csv", "tsv", "txt", "jsonl", "ndjson", "parquet"],
        key="upload_file",
    )
    if file is None:
        return
    try:
        header = read_header(file.getvalue(), file.name)
    except DatasetError as error:
        st.error(
            error.message + (f"  \n{error.hint}" if error.hint else ""), icon=":material/error:"
        )
        return
    columns = header.columns
    read_as = f" · separator {separator_words(header.separator)}" if header.separator else ""
    st.caption(
        f"{file.name}: {header.format}{read_as} · {len(columns)} column(s): {', '.join(columns)}"
    )
    if len(columns) < 2:
        st.error(
            f"{file.name} has only one column ({columns[0] if columns else 'none'}): a data set "
            "needs a column of texts and a column of labels.",
            icon=":material/error:",
        )
        return
    text_default = likely_column(columns, TEXT_NAMES) or columns[0]
    label_default = likely_column(columns, LABEL_NAMES, besides=text_default) or next(
        c for c in columns if c != text_default
    )
    # The API's last refusal, while it is about this file.
    refused_file, problems = st.session_state.get(UPLOAD_ERRORS, (None, {}))
    if refused_file != file.file_id:
        problems = {}
    left, right = st.columns(2)
    with left:
        # Keyed by the file: another file starts from its own likely columns.
        text_column = st.selectbox(
            "Text column",
            columns,
            index=columns.index(text_default),
            key=f"text_column:{file.file_id}",
        )
        if problems.get("text_column"):
            st.error(problems["text_column"], icon=":material/error:")
    with right:
        label_column = st.selectbox(
            "Label column",
            columns,
            index=columns.index(label_default),
            key=f"label_column:{file.file_id}",
        )
        if problems.get("label_column"):
            st.error(problems["label_column"], icon=":material/error:")
    if text_column == label_column:
        st.error("The text and the label must be two different columns.", icon=":material/error:")
        return
    if general := problems.get(""):
        st.error(general, icon=":material/error:")
    if not st.button("Validate and upload", icon=":material/upload:"):
        return
    try:
        stored = api.upload_dataset(
            file.name, file.getvalue(), text_column=text_column, label_column=label_column
        )
    except ApiError as error:
        st.session_state[UPLOAD_ERRORS] = (file.file_id, upload_problems(error))
        st.rerun()
    st.session_state.pop(UPLOAD_ERRORS, None)
    st.session_state[UPLOADED] = stored["id"]
    st.session_state[SHOW_UPLOADED] = True
    st.session_state[JUST_UPLOADED] = stored["name"]
    st.rerun()


def upload_problems(error: ApiError) -> dict[str, str]:
    """The API's refusal of an upload, worded for this page: its fields are the
    drop-downs above, not the API's form fields."""
    hint = COLUMNS_HINTS["ui"] if error.hint == COLUMNS_HINTS["api"] else error.hint
    problems = {
        f: m for f, m in error.field_errors().items() if f in ("text_column", "label_column")
    }
    problems[""] = error.message + (f"  \n{hint}" if hint else "")
    return problems


def pick_dataset(api, datasets: list[dict[str, Any]]) -> dict[str, Any] | None:
    # A widget's state can only be set before the widget exists: after an upload, the
    # next run opens the uploaded set.
    if st.session_state.pop(SHOW_UPLOADED, False) or SOURCE not in st.session_state:
        st.session_state[SOURCE] = PICK if datasets else UPLOAD
    source = st.radio("Data set", [UPLOAD, PICK], horizontal=True, key=SOURCE)
    if source == UPLOAD:
        upload_form(api)
        return None
    if not datasets:
        st.info("No data sets yet: upload one.")
        return None
    if just_uploaded := st.session_state.pop(JUST_UPLOADED, None):
        st.success(f"Uploaded {just_uploaded}: it is selected below.", icon=":material/upload:")
    ids = [d["id"] for d in datasets]
    labels = {
        d["id"]: f"{d['name']} · {d['rows']:,} rows · {len(d['label_counts'])} classes · "
        f"version {d['version'][:8]}"
        for d in datasets
    }
    wanted = st.session_state.get(UPLOADED)
    chosen = st.selectbox(
        "Training data",
        ids,
        index=ids.index(wanted) if wanted in ids else 0,
        format_func=labels.__getitem__,
    )
    dataset = next(d for d in datasets if d["id"] == chosen)
    show_dataset(api, dataset)
    return dataset


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


SHOWN_FIELDS.clear()
st.title("New fine-tuning job")
if fresh := st.session_state.pop(session.RUN_AGAIN, None):
    # "Run again" on a job page: its settings fill the form below, its data set is picked.
    st.session_state[PREFILL] = fresh
    st.session_state.pop(ERRORS, None)
    st.session_state[UPLOADED] = (fresh.get("data") or {}).get("dataset_id")
    st.session_state[SHOW_UPLOADED] = True
if prefill := st.session_state.get(PREFILL):
    note, reset = st.columns([4, 1], vertical_alignment="center")
    note.info(
        f"Starting from the settings of **{prefill.get('experiment_name', 'a job')}**: "
        "change what you like, then start.",
        icon=":material/replay:",
    )
    if reset.button("Start from the defaults", icon=":material/restart_alt:"):
        st.session_state.pop(PREFILL, None)
        st.rerun()
api = session.api()
datasets = api.datasets()
dataset = pick_dataset(api, datasets)
if dataset is None:
    st.stop()
if prefill and again("data.dataset_id", None) not in {d["id"] for d in datasets}:
    st.warning(
        "The data set that job trained on is gone: pick one above.", icon=":material/warning:"
    )
others = [d for d in datasets if d["id"] != dataset["id"]]
catalog = api.base_models()

st.subheader("Evaluation and model")
cols = st.columns(2)
with cols[0]:
    other_ids = [d["id"] for d in others]
    eval_again = again("data.eval_dataset_id", None)
    held_out = st.radio(
        "Evaluate on",
        ["A held-out share of this data set", "Another uploaded data set"],
        index=1 if eval_again in other_ids else 0,
        horizontal=True,
        disabled=not others,
    )
    if not others:
        st.caption("Upload a second data set (e.g. the demo's eval.csv) to evaluate on it.")
    if held_out.startswith("A held-out") or not others:
        eval_split = st.slider(
            "Share held out (stratified)",
            0.05,
            0.45,
            again("data.eval_split", 0.1),
            0.05,
            key="eval_split",
        )
        eval_dataset_id = None
    else:
        eval_split = None
        eval_dataset_id = st.selectbox(
            "Evaluation data",
            other_ids,
            index=other_ids.index(eval_again) if eval_again in other_ids else 0,
            format_func=lambda i: next(
                f"{d['name']} · {d['rows']:,} rows" for d in others if d["id"] == i
            ),
        )
    field_error("data")
    field_error("data.eval_split")
with cols[1]:
    # The models that read the data's language first; `auto` picks the first of them.
    spoken = dataset.get("language")
    fitting = [m for m in catalog if spoken in (m.get("languages") or [m["language"]])]
    ordered = fitting + [m for m in catalog if m not in fitting]
    names = [AUTO_MODEL] + [m["name"] for m in ordered] + [OTHER_MODEL]
    described = {
        m["name"]: f"{m['name']} ({m['language']}"
        + ("" if m.get("available_offline", True) else ", downloaded on first use")
        + ")"
        for m in catalog
    }
    described[AUTO_MODEL] = "auto: the catalog model for the data's language"
    model_again = again("model.base_model", None)
    picked = st.selectbox(
        "Base model",
        names,
        index=names.index(model_again if model_again in names else OTHER_MODEL)
        if model_again
        else 0,
        format_func=lambda n: described.get(n, n),
        help="The catalog, the models that read this data's language first. One marked "
        "'downloaded on first use' is not on the server yet: it needs the Hugging Face hub "
        "once (or `loraforge models pull NAME` there).",
    )
    if picked == OTHER_MODEL:
        base_model = st.text_input(
            "Hugging Face id or server folder",
            value=model_again if model_again not in names else "",
            key="base_model_other",
        )
    elif picked == AUTO_MODEL:
        base_model = picked
    else:
        base_model = picked
        entry = next(m for m in catalog if m["name"] == picked)
        st.caption(f"{entry['description']} Language: **{entry['language']}**.")
    if base_model.strip():
        show_coverage(api, dataset["id"], base_model.strip())
    allow_low_coverage = st.checkbox(
        "Train even if the tokenizer cannot read the data",
        value=again("model.allow_low_coverage", False),
        help="Over 15 % of the text unread (unknown to the tokenizer) is refused, since "
        "the model could not learn from it; this trains anyway.",
    )
    field_error("model.base_model")

with st.form("train"):
    st.subheader("Parameters")
    experiment_name = st.text_input(
        "Experiment name",
        value=again(
            "experiment_name",
            dataset["name"].rsplit(".", 1)[0][:40].replace(" ", "-") or "experiment",
        ),
        help="Letters, digits, '.', '_' and '-'. The experiment id adds the time.",
    )
    field_error("experiment_name")
    lora_col, train_col, more_col = st.columns(3)
    with lora_col:
        st.markdown("**LoRA**")
        r = number("Rank r", "lora.r")
        alpha = number("Alpha", "lora.alpha", value=float(field("lora.alpha").default))
        dropout = number("Dropout", "lora.dropout", step=0.05)
        targets_again = again("lora.target_modules", None)
        targets = st.text_input(
            "Target modules",
            value=", ".join(targets_again)
            if isinstance(targets_again, list)
            else (targets_again or ""),
            placeholder="default for the architecture",
            help=field("lora.target_modules").description + " Comma-separated.",
        )
        field_error("lora.target_modules")
    with train_col:
        st.markdown("**Training**")
        epochs = number("Epochs", "training.epochs")
        batch_size = number("Batch size", "training.batch_size")
        learning_rate = number("Learning rate", "training.learning_rate", step=1e-4, format="%.1e")
        warmup_ratio = number("Warm-up share", "training.warmup_ratio", step=0.05)
    with more_col:
        st.markdown("**More**")
        max_length = number("Max length (tokens)", "data.max_length")
        metrics = ["f1_macro", "accuracy"]
        metric_for_best = st.selectbox(
            "Best checkpoint by",
            metrics,
            index=metrics.index(again("training.metric_for_best", "f1_macro")),
            help=field("training.metric_for_best").description,
        )
        field_error("training.metric_for_best")
        precisions = ["auto", "fp32", "bf16", "fp16"]
        precision = st.selectbox(
            "Precision",
            precisions,
            index=precisions.index(again("training.precision", "auto")),
            help=field("training.precision").description,
        )
        field_error("training.precision")
        max_train_samples = number(
            "Cap on training rows",
            "training.max_train_samples",
            value=0,
            help=field("training.max_train_samples").description + " 0: no cap.",
        )
        seed = number("Seed", "training.seed")
        group_by_length = st.checkbox(
            "Group batches by length",
            value=again("training.group_by_length", field("training.group_by_length").default),
            help=field("training.group_by_length").description,
        )
    submitted = st.form_submit_button(
        "Start fine-tuning", type="primary", icon=":material/play_arrow:"
    )

if submitted:
    chosen: dict[str, Any] = {
        "experiment_name": experiment_name.strip(),
        "model": {"base_model": base_model.strip(), "allow_low_coverage": allow_low_coverage},
        "data": {
            "dataset_id": dataset["id"],
            "max_length": int(max_length),
            **(
                {"eval_dataset_id": eval_dataset_id}
                if eval_dataset_id
                else {"eval_split": eval_split}
            ),
        },
        "lora": {
            "r": int(r),
            "alpha": float(alpha),
            "dropout": float(dropout),
            "target_modules": [t.strip() for t in targets.split(",") if t.strip()] or None,
        },
        "training": {
            "epochs": int(epochs),
            "batch_size": int(batch_size),
            "learning_rate": float(learning_rate),
            "warmup_ratio": float(warmup_ratio),
            "metric_for_best": metric_for_best,
            "precision": precision,
            "max_train_samples": int(max_train_samples) or None,
            "seed": int(seed),
            "group_by_length": group_by_length,
        },
    }
    # Run again: the settings this form does not show (device, weight decay, ...) are
    # the job's own, not the defaults.
    body = deep_merge(st.session_state.get(PREFILL) or {}, chosen)
    body["data"].pop("eval_split" if eval_dataset_id else "eval_dataset_id", None)
    errors: dict[str, str] = {}
    try:
        TrainJobCreate.model_validate(body)  # the API's own rules, checked before sending
    except ValidationError as invalid:
        # In the API's words (loraforge.field_errors), not pydantic's.
        problems = field_problems(invalid.errors(), model=TrainJobCreate)
        errors = {p.field: p.message for p in problems}
    if not errors:
        try:
            task = api.submit(body)
        except ApiError as error:
            errors = error.field_errors() or {
                "": error.message + (f" {error.hint}" if error.hint else "")
            }
        else:
            st.session_state.pop(ERRORS, None)
            st.session_state.pop(PREFILL, None)
            st.switch_page("views/jobs.py", query_params={"task": task["task_id"]})
    st.session_state[ERRORS] = errors
    st.rerun()

refused = st.session_state.get(ERRORS, {})
unshown = [
    f"{name} {why}" if name else why for name, why in refused.items() if name not in SHOWN_FIELDS
]
if unshown:
    st.error("  \n".join(unshown), icon=":material/error:")
if refused and len(unshown) < len(refused):
    st.error("Some values were refused: see the fields marked above.", icon=":material/error:")
