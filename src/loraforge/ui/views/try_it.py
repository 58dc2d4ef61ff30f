"""Try it: texts in, label and probability out, from a chosen experiment's model or a
registered model version (``NAME@production``, ``NAME@staging``, ``NAME:3``)."""

from __future__ import annotations

import streamlit as st

from loraforge.ui import charts, session, tables
from loraforge.ui.client import ApiError
from loraforge.ui.job_view import did_not_learn, experiment_quality, status_words
from loraforge.ui.model_view import references

EXPERIMENT, REGISTERED = "An experiment", "A registered model"

st.title("Try a model")
api = session.api()
ready = [e for e in api.experiments() if e["status"] == "succeeded"]
asked_model = st.query_params.get("model")
registered = references(api.registered_models(), asked_model)
if not ready and not registered:
    st.info("No finished experiment yet: a succeeded job's model appears here.")
    st.stop()

ids = [e["id"] for e in ready]
asked = st.query_params.get("experiment")


def described(experiment: dict) -> str:
    accuracy = tables.final(experiment).get("accuracy")
    language = experiment["language"] or "language not recorded"
    words = [
        experiment["id"],
        f"{tables.model_name(experiment['base_model'])} ({language})",
        "accuracy not recorded" if accuracy is None else f"accuracy {accuracy:.1%}",
    ]
    if did_not_learn(experiment_quality(experiment)):
        words.append(status_words("succeeded", experiment_quality(experiment)))
    return " · ".join(words)


def first_choice() -> int:
    """The experiment asked for in the URL, else the newest whose model learned: one that
    did not answers a constant guess whatever is typed. It stays in the list, marked."""
    if asked in ids:
        return ids.index(asked)
    learned = (i for i, e in enumerate(ready) if not did_not_learn(experiment_quality(e)))
    return next(learned, 0)


def pick_experiment() -> str:
    by_id = {e["id"]: e for e in ready}
    experiment_id = st.selectbox(
        "Model",
        ids,
        index=first_choice(),
        format_func=lambda i: described(by_id[i]),
    )
    if did_not_learn(quality := experiment_quality(by_id[experiment_id])):
        st.warning(
            "This model did not learn: its answers are no better than a constant guess. "
            + " ".join(quality.get("problems") or []),
            icon=":material/warning:",
        )
    return experiment_id


def pick_registered() -> str:
    """A registry reference; the URL keeps it (``?model=NAME@production``)."""
    refs = list(registered)
    reference = st.selectbox(
        "Registered model",
        refs,
        index=refs.index(asked_model) if asked_model in refs else 0,
        format_func=registered.__getitem__,
        help="NAME@production follows the Production version: it answers with whichever "
        "version is in Production when you press Predict.",
    )
    st.query_params["model"] = reference
    return reference


sources = [s for s, there in ((EXPERIMENT, ready), (REGISTERED, registered)) if there]
wanted = REGISTERED if asked_model in registered and not asked else sources[0]
source = (
    st.radio("Predict with", sources, index=sources.index(wanted), horizontal=True)
    if len(sources) > 1
    else sources[0]
)
experiment_id = reference = None
if source == EXPERIMENT:
    st.query_params.pop("model", None)
    experiment_id = pick_experiment()
else:
    reference = pick_registered()
with st.form("predict"):
    text = st.text_area(
        "Texts, one per line",
        height=160,
        placeholder="What a wonderful flight!\nThey lost my bag again.",
    )
    asked_for = st.form_submit_button("Predict", type="primary", icon=":material/bolt:")

if asked_for:
    # One row per line typed, numbered as typed: blank lines are skipped (there is nothing
    # to classify), and the page says how many, so no answer is out of step with its line.
    lines, blank = tables.typed_texts(text)
    if not lines:
        st.error("Type at least one text: one per line.")
        st.stop()
    try:
        texts = [t for _, t in lines]
        answers = (
            api.predict(None, texts, model=reference)
            if reference
            else api.predict(experiment_id, texts)
        )
    except ApiError as error:
        session.show_error(error)
        st.stop()
    if blank:
        st.info(
            f"{blank} blank line{'s' if blank != 1 else ''} skipped; each answer below "
            "gives the number of the line it answers.",
            icon=":material/info:",
        )
    shown = tables.prediction_rows(lines, answers)
    table = tables.prediction_table(shown)
    config = {
        "Probability": st.column_config.ProgressColumn(
            "Probability", min_value=0, max_value=1, format="%.3f", width=140, color="blue"
        ),
        "Latency (ms)": st.column_config.NumberColumn(
            "Latency (ms)", format="%.1f", width=tables.width_for("Latency (ms)", [])
        ),
    }
    tables.show(table, pinned="Line", config=config)
    st.altair_chart(charts.probabilities(shown), width="stretch")
