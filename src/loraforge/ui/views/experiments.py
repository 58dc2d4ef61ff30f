"""Experiments: a sortable, filterable table; two or more side by side (config differences
highlighted, curves overlaid, final metrics as bars, and a warning when they are not
comparable); one experiment's confusion matrix, its MLflow run, and registering it as a
model version; deleting an experiment or a data set (asked twice, owner or admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from loraforge.ui import charts, session, tables
from loraforge.ui.client import ApiError
from loraforge.ui.comparison import comparability_warnings, config_differences, highlight
from loraforge.ui.job_view import (
    NOTHING,
    did_not_learn,
    experiment_quality,
    quality_warning,
    when,
)
from loraforge.ui.model_view import parse_tags, refusal_words, stage_words

# What a "Delete…" click is waiting on: "experiment:<id>" or "dataset:<id>".
CONFIRM_DELETE = "experiments_confirm_delete"
DONE = "experiments_done"  # said after the rerun that shows the result
# MLflow run id → its page in the MLflow UI: asked once per session, it never changes.
MLFLOW_URLS = "experiments_mlflow_urls"
# The register form's fields by the API's names, for its refusals.
REGISTER_FIELDS = {
    "name": "Model name",
    "task": "Task",
    "description": "Description",
    "tags": "Tags",
}

final = tables.final


def column_widths(frame, formats=None) -> dict[str, Any]:
    return {
        name: st.column_config.Column(width=px)
        for name, px in tables.widths(frame, formats).items()
    }


def may_delete(record: dict[str, Any]) -> bool:
    me = session.signed_in_user()
    return me["role"] == "admin" or record.get("owner_id") == me["id"]


def ask_to_delete(kind: str, item_id: str, what: str, consequence: str, delete: Callable) -> None:
    """A "Delete…" button, then "Yes, delete" / "No, keep it": one stray click deletes
    nothing. A refusal (a job still uses it: 409) is shown with the API's own words."""
    asked = f"{kind}:{item_id}"
    if st.button(f"Delete this {kind}…", icon=":material/delete:", key=f"delete-{kind}"):
        st.session_state[CONFIRM_DELETE] = asked
    if st.session_state.get(CONFIRM_DELETE) != asked:
        return
    with st.container(border=True):
        st.warning(f"Delete {what}? {consequence} This cannot be undone.", icon=":material/help:")
        yes, no = st.columns(2)
        if yes.button("Yes, delete", type="primary", key=f"yes-delete-{kind}"):
            st.session_state.pop(CONFIRM_DELETE, None)
            try:
                delete()
            except ApiError as error:
                session.show_error(error)
            else:
                st.session_state[DONE] = f"Deleted {what}."
                st.rerun()
        if no.button("No, keep it", key=f"keep-{kind}"):
            st.session_state.pop(CONFIRM_DELETE, None)
            st.rerun()


st.title("Experiments")
if done := st.session_state.pop(DONE, None):
    st.success(done, icon=":material/check_circle:")
api = session.api()
me = session.signed_in_user()
experiments = api.experiments()
by_id = {e["id"]: e for e in experiments}


def experiment_table() -> None:
    table = tables.experiment_rows(experiments)
    filters = st.columns([2, 1, 1])
    search = filters[0].text_input("Filter by name", placeholder="part of the experiment id")
    statuses = filters[1].multiselect("Status", sorted(table["Status"].unique()))
    bases = filters[2].multiselect("Base model", sorted(table["Base model"].unique()))
    shown = table
    if search:
        shown = shown[shown["Experiment"].str.contains(search, case=False, regex=False)]
    if statuses:
        shown = shown[shown["Status"].isin(statuses)]
    if bases:
        shown = shown[shown["Base model"].isin(bases)]
    tables.show(shown, formats=tables.EXPERIMENT_FORMATS, pinned="Experiment")
    st.caption("Click a column header to sort.")


def compare() -> None:
    finished = [e["id"] for e in experiments if e["status"] == "succeeded"]
    st.header("Compare")
    compared = st.multiselect(
        "Experiments to compare (two or more)",
        finished,
        default=finished[:2] if len(finished) >= 2 else [],
    )
    if len(compared) < 2:
        if compared:
            st.caption("Pick one more to compare.")
        return
    chosen = [by_id[i] for i in compared]
    for warning in comparability_warnings(chosen):
        st.warning(warning, icon=":material/warning:")
    st.subheader("Config")
    differences = config_differences(chosen)
    st.dataframe(
        highlight(differences),
        width="stretch",
        placeholder=NOTHING,
        column_config={
            "_index": st.column_config.Column(
                "Setting", width=tables.width_for("Setting", differences.index)
            ),
            **column_widths(differences),
        },
    )
    st.subheader("Metrics per epoch")
    histories = {e["id"]: e["metrics"]["history"] for e in chosen if e["metrics"].get("history")}
    if histories:  # a grid of panels, as wide as it is drawn
        st.altair_chart(charts.overlaid_curves(histories))
    st.altair_chart(charts.final_metric_bars({e["id"]: final(e) for e in chosen}), width="content")


def one_experiment() -> None:
    st.header("One experiment")
    asked = st.query_params.get("experiment")
    ids = [e["id"] for e in experiments]
    picked = st.selectbox("Experiment", ids, index=ids.index(asked) if asked in ids else 0)
    st.query_params["experiment"] = picked
    experiment = by_id[picked]  # the list already carries each whole experiment
    quality = experiment_quality(experiment)
    if did_not_learn(quality):  # loudly, before any number that might look fine
        st.error(quality_warning(quality), icon=":material/warning:")
    if experiment["status"] == "cancelled":  # stopped on purpose: not an error
        st.info(
            f"Cancelled at {when(experiment.get('finished_at'))}: no model was kept.",
            icon=":material/block:",
        )
    elif experiment["error"]:
        st.error(experiment["error"], icon=":material/error:")
    metrics = experiment["metrics"] or {}
    scores = final(experiment)
    cols = st.columns(5)
    cols[0].metric(
        "Status",
        experiment["status"],
        delta="model did not learn" if did_not_learn(quality) else None,
        delta_color="red",
        delta_arrow="off",
    )
    cols[1].metric("Accuracy", f"{scores['accuracy']:.1%}" if "accuracy" in scores else NOTHING)
    cols[2].metric("Macro-F1", f"{scores['f1_macro']:.3f}" if "f1_macro" in scores else NOTHING)
    cols[3].metric("Base model", tables.model_name(experiment["base_model"]))
    rows = [experiment["train_rows"], experiment["eval_rows"]]
    cols[4].metric(
        "Train / eval rows", " / ".join(NOTHING if n is None else f"{n:,}" for n in rows)
    )
    st.caption(
        f"Created {when(experiment['created_at'])}"
        + (
            f" · finished {when(experiment['finished_at'])}"
            if experiment.get("finished_at")
            else ""
        )
    )
    left, right = st.columns([2, 3])  # the curves are two panels side by side
    if matrix := metrics.get("confusion_matrix"):
        left.altair_chart(
            charts.confusion_matrix(matrix["labels"], matrix["matrix"]), width="content"
        )
    if metrics.get("history"):
        right.altair_chart(charts.eval_curves(metrics["history"]))
    with st.expander("Config"):
        st.json(experiment["config"])
    with st.expander("All metrics"):
        st.json(metrics)
    links = st.columns(3)
    if experiment["status"] == "succeeded":
        links[0].page_link(
            "views/try_it.py",
            label="Try this model",
            icon=":material/chat:",
            query_params={"experiment": picked},
        )
    mlflow_link(experiment, links[1])
    if experiment["status"] == "succeeded" and may_delete(experiment):
        register(experiment)
    if may_delete(experiment):
        ask_to_delete(
            "experiment",
            picked,
            f"experiment {picked}",
            "Its results folder, model, database row and MLflow run go with it.",
            lambda: api.delete_experiment(picked),
        )


def mlflow_link(experiment: dict[str, Any], place) -> None:
    """A button to the experiment's run in the MLflow UI (the API knows where that is)."""
    run_id = experiment.get("mlflow_run_id")
    if not run_id:
        return
    known = st.session_state.setdefault(MLFLOW_URLS, {})
    if run_id not in known:
        try:
            known[run_id] = api.mlflow_run(run_id).get("ui_url")
        except ApiError:  # MLflow cannot be read now: say which run, ask again next time
            place.caption(f"MLflow run `{run_id}` (MLflow does not answer now)")
            return
    place.link_button("Open its MLflow run", known[run_id], icon=":material/open_in_new:")


def register(experiment: dict[str, Any]) -> None:
    """Register the experiment as the next version of a named model (owner or admin);
    where it is registered already, say so first and link there."""
    already = api.search_models(experiment_id=experiment["id"], include_archived=True)["data"]
    for version in already:
        st.page_link(
            "views/models.py",
            label=f"Registered as {version['name']} v{version['version']} "
            f"({stage_words(version['stage'])})",
            icon=":material/inventory_2:",
            query_params={"name": version["name"], "version": str(version["version"])},
        )
    label = "Register this model" if not already else "Register it under another name"
    with st.expander(label, icon=":material/inventory_2:"):
        with st.form(f"register-{experiment['id']}"):
            st.caption(
                "A registered version is the team's: everyone can find it, read its card "
                "and predict with it. It starts in no stage; you can then promote it to "
                "Staging."
            )
            left, right = st.columns(2)
            name = left.text_input(
                "Model name",
                value=experiment["name"],
                help="Letters, digits, `.`, `_` and `-`. An existing name gets a new version.",
            )
            task = right.text_input("Task", placeholder="sentiment")
            description = st.text_area(
                "Description", placeholder="What it classifies, and how well"
            )
            tags = st.text_input("Tags", placeholder="team=support, domain=airline")
            asked = st.form_submit_button("Register", type="primary", icon=":material/add_task:")
        if not asked:
            return
        try:
            parsed = parse_tags(tags)
        except ValueError as error:
            st.error(f"Tags: {error}. Write them as key=value, separated by commas.")
            return
        try:
            # The card and its embeddings take a few seconds (the first time, the sentence
            # model loads): say so, rather than leave the page dimmed with no word.
            with st.spinner("Registering: writing its model card and MLflow version…"):
                version = api.register_model(
                    experiment["id"],
                    name.strip(),
                    description=description.strip() or None,
                    task=task.strip() or None,
                    tags=parsed or None,
                )
        except ApiError as error:
            st.error(refusal_words(error, REGISTER_FIELDS), icon=":material/error:")
            return
        st.success(
            f"Registered as **{version['name']} v{version['version']}**.",
            icon=":material/check_circle:",
        )
        st.page_link(
            "views/models.py",
            label=f"Open {version['name']} v{version['version']}",
            icon=":material/inventory_2:",
            query_params={"name": version["name"], "version": str(version["version"])},
        )


def data_sets() -> None:
    st.header("Data sets")
    datasets = api.datasets()
    if not datasets:
        st.caption("No data sets uploaded yet: upload one under **New job**.")
        return
    owners = (
        {u["id"]: u["username"] for u in api.users()}
        if me["role"] == "admin"
        else {me["id"]: me["username"]}
    )
    frame = tables.dataset_rows(datasets, owners)
    tables.show(frame, pinned="Name")
    mine = {d["id"]: d for d in datasets if may_delete(d)}
    if not mine:
        return
    target = mine[
        st.selectbox(
            "Data set",
            list(mine),
            format_func=lambda i: (
                f"{mine[i]['name']} · {mine[i]['rows']:,} rows · "
                f"uploaded {when(mine[i]['created_at'])} · {i[:8]}"
            ),
        )
    ]
    ask_to_delete(
        "data set",
        target["id"],
        f"data set {target['name']} ({target['id'][:8]})",
        "Its stored file goes with it; experiments and finished jobs trained on it keep "
        "their results. A data set that a queued or running job uses is refused until the "
        "job ends.",
        lambda: api.delete_dataset(target["id"]),
    )


if experiments:
    experiment_table()
    compare()
    one_experiment()
else:
    st.info("No experiments yet: a finished job appears here.", icon=":material/info:")
data_sets()
