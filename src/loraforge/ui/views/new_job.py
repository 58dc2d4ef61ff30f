"""New job: a data set (validated before anything runs), a base model, LoRA and training
parameters with the measured defaults; bad values are explained next to their field."""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from loraforge.api.schemas import TrainJobCreate
from loraforge.config import DataSection, LoraSection, TrainingSection
from loraforge.ui import charts, session
from loraforge.ui.client import ApiError

ERRORS = "new_job_errors"
UPLOADED = "new_job_dataset"
SOURCE, SHOW_UPLOADED = "dataset_source", "new_job_show_uploaded"
JUST_UPLOADED = "new_job_just_uploaded"
UPLOAD, PICK = "Upload a file", "One uploaded before"
OTHER_MODEL = "Other: a Hugging Face id or a folder on the server"


SECTIONS = {"data": DataSection, "lora": LoraSection, "training": TrainingSection}


def field(key: str) -> FieldInfo:
    """The config field behind a form field: its default and its help come from there."""
    section, name = key.split(".")
    return SECTIONS[section].model_fields[name]


def number(label: str, key: str, **options: Any) -> int | float:
    """A number field starting at the config's default. No bounds here: an out-of-range
    value is sent to validation and explained under the field, not silently clamped."""
    options.setdefault("value", field(key).default)
    options.setdefault("help", field(key).description)
    value = st.number_input(label, **options)
    field_error(key)
    return value


def field_error(key: str) -> None:
    """The reason a field was refused, right under it."""
    if message := st.session_state.get(ERRORS, {}).get(key):
        st.error(message, icon=":material/error:")


def show_dataset(api, dataset: dict[str, Any]) -> None:
    cols = st.columns(4)
    cols[0].metric("Rows", f"{dataset['rows']:,}")
    cols[1].metric("Classes", len(dataset["label_counts"]))
    cols[2].metric("Format", dataset["format"])
    cols[3].metric("Version", dataset["version"][:12])
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


def pick_dataset(api, datasets: list[dict[str, Any]]) -> dict[str, Any] | None:
    # A widget's state can only be set before the widget exists: after an upload, the
    # next run opens the uploaded set.
    if st.session_state.pop(SHOW_UPLOADED, False) or SOURCE not in st.session_state:
        st.session_state[SOURCE] = PICK if datasets else UPLOAD
    source = st.radio("Data set", [UPLOAD, PICK], horizontal=True, key=SOURCE)
    if source == UPLOAD:
        with st.form("upload", border=True):
            file = st.file_uploader(
                "CSV, TSV, JSONL or Parquet with a text and a label column",
                type=["csv", "tsv", "jsonl", "parquet"],
            )
            cols = st.columns(2)
            text_column = cols[0].text_input("Text column", value="text")
            label_column = cols[1].text_input("Label column", value="label")
            sent = st.form_submit_button("Validate and upload", icon=":material/upload:")
        if sent:
            if file is None:
                st.error("Choose a file first.")
            else:
                try:
                    stored = api.upload_dataset(
                        file.name,
                        file.getvalue(),
                        text_column=text_column,
                        label_column=label_column,
                    )
                except ApiError as error:
                    session.show_error(error)
                else:
                    st.session_state[UPLOADED] = stored["id"]
                    st.session_state[SHOW_UPLOADED] = True
                    st.session_state[JUST_UPLOADED] = stored["name"]
                    st.rerun()
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


st.title("New fine-tuning job")
api = session.api()
datasets = api.datasets()
dataset = pick_dataset(api, datasets)
if dataset is None:
    st.stop()
others = [d for d in datasets if d["id"] != dataset["id"]]
catalog = api.models()

st.subheader("Evaluation and model")
cols = st.columns(2)
with cols[0]:
    held_out = st.radio(
        "Evaluate on",
        ["A held-out share of this data set", "Another uploaded data set"],
        horizontal=True,
        disabled=not others,
    )
    if not others:
        st.caption("Upload a second data set (e.g. the demo's eval.csv) to evaluate on it.")
    if held_out.startswith("A held-out") or not others:
        eval_split = st.slider(
            "Share held out (stratified)", 0.05, 0.45, 0.1, 0.05, key="eval_split"
        )
        eval_dataset_id = None
    else:
        eval_split = None
        eval_dataset_id = st.selectbox(
            "Evaluation data",
            [d["id"] for d in others],
            format_func=lambda i: next(
                f"{d['name']} · {d['rows']:,} rows" for d in others if d["id"] == i
            ),
        )
    field_error("data")
with cols[1]:
    names = [m["name"] for m in catalog] + [OTHER_MODEL]
    described = {m["name"]: f"{m['name']} ({m['language']})" for m in catalog}
    picked = st.selectbox(
        "Base model",
        names,
        format_func=lambda n: described.get(n, n),
        help="The catalog; the bundled model works offline, the others need the Hugging Face hub once.",
    )
    if picked == OTHER_MODEL:
        base_model = st.text_input("Hugging Face id or server folder", key="base_model_other")
    else:
        base_model = picked
        entry = next(m for m in catalog if m["name"] == picked)
        st.caption(f"{entry['description']} Language: **{entry['language']}**.")
    field_error("model.base_model")

with st.form("train"):
    st.subheader("Parameters")
    experiment_name = st.text_input(
        "Experiment name",
        value=dataset["name"].rsplit(".", 1)[0][:40].replace(" ", "-") or "experiment",
        help="Letters, digits, '.', '_' and '-'. The experiment id adds the time.",
    )
    field_error("experiment_name")
    lora_col, train_col, more_col = st.columns(3)
    with lora_col:
        st.markdown("**LoRA**")
        r = number("Rank r", "lora.r")
        alpha = number("Alpha", "lora.alpha", value=float(field("lora.alpha").default))
        dropout = number("Dropout", "lora.dropout", step=0.05)
        targets = st.text_input(
            "Target modules",
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
        metric_for_best = st.selectbox(
            "Best checkpoint by",
            ["f1_macro", "accuracy"],
            help=field("training.metric_for_best").description,
        )
        precision = st.selectbox(
            "Precision",
            ["auto", "fp32", "bf16", "fp16"],
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
            value=field("training.group_by_length").default,
            help=field("training.group_by_length").description,
        )
    submitted = st.form_submit_button(
        "Start fine-tuning", type="primary", icon=":material/play_arrow:"
    )

if submitted:
    body: dict[str, Any] = {
        "experiment_name": experiment_name.strip(),
        "model": {"base_model": base_model.strip()},
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
    errors: dict[str, str] = {}
    try:
        TrainJobCreate.model_validate(body)  # the API's own rules, checked before sending
    except ValidationError as invalid:
        errors = {".".join(str(p) for p in e["loc"]): e["msg"] for e in invalid.errors()}
    if not errors:
        try:
            task = api.submit(body)
        except ApiError as error:
            errors = error.field_errors() or {
                "": error.message + (f" {error.hint}" if error.hint else "")
            }
        else:
            st.session_state.pop(ERRORS, None)
            st.switch_page("views/jobs.py", query_params={"task": task["task_id"]})
    st.session_state[ERRORS] = errors
    st.rerun()

if general := st.session_state.get(ERRORS, {}).get(""):
    st.error(general, icon=":material/error:")
elif st.session_state.get(ERRORS):
    st.error("Some values were refused: see the fields marked above.", icon=":material/error:")
