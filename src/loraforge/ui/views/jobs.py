"""Jobs: yours (everyone's, for an admin), and one job watched live until it ends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from loraforge.settings import get_settings
from loraforge.ui import charts, session, tables
from loraforge.ui.client import ApiError
from loraforge.ui.job_view import (
    FINISHED,
    NOTHING,
    cancelled_words,
    did_not_learn,
    job_quality,
    progress_line,
    quality_warning,
    status_words,
    stepper,
    timing_line,
)

# Cancelling asks first: the job whose "Cancel job" was clicked, awaiting "Yes, cancel".
CONFIRM_CANCEL = "jobs_confirm_cancel"
# Jobs cancelled from this browser session: their page says "Cancelled by you".
CANCELLED_HERE = "jobs_cancelled_here"


def cancelled_by(task: dict[str, Any]) -> str | None:
    """Who cancelled: "you" when it was this session; for an admin, whoever the audit log
    names; otherwise unknown (the owner or an admin), and the page does not guess."""
    if task["task_id"] in st.session_state.get(CANCELLED_HERE, []):
        return "you"
    me = session.signed_in_user()
    if me["role"] != "admin":
        return None
    events = session.api().audit(action="train.cancel", limit=500)
    who = next((e["username"] for e in events if e["target"] == f"task:{task['task_id']}"), None)
    return "you" if who == me["username"] else who


def show_task(task: dict[str, Any]) -> None:
    quality = job_quality(task)
    if did_not_learn(quality):  # loudly, above everything else
        st.error(quality_warning(quality), icon=":material/warning:")
    st.markdown(stepper(task))
    fraction, words = progress_line(task)
    st.progress(fraction, text=words)
    if timing := timing_line(task, datetime.now(UTC)):
        st.caption(timing)
    progress = task["progress"] or {}
    cols = st.columns(4)
    cols[0].metric(  # not a plain success when the model learned nothing
        "Status",
        task["status"],
        delta="model did not learn" if did_not_learn(quality) else None,
        delta_color="red",
        delta_arrow="off",
    )
    cols[1].metric("Attempt", f"{task['attempts']} of {task['max_attempts']}")
    if task["status"] == "succeeded" and progress.get("final"):
        # What the model is: the best checkpoint, as the experiment page shows it.
        shown, which = progress["final"], "final, best checkpoint"
    else:
        shown, which = progress.get("eval") or {}, "latest epoch"
    cols[2].metric(
        f"Accuracy ({which})", f"{shown['accuracy']:.1%}" if "accuracy" in shown else NOTHING
    )
    cols[3].metric(
        f"Macro-F1 ({which})", f"{shown['f1_macro']:.3f}" if "f1_macro" in shown else NOTHING
    )
    if task["status"] == "cancelled":
        # Stopped on purpose: said plainly, not as an error.
        st.info(cancelled_words(task, cancelled_by(task)), icon=":material/block:")
    elif task["error"]:
        st.error(task["error"], icon=":material/error:")
    left, right = st.columns([2, 3])  # the evaluation curves are two panels side by side
    if progress.get("loss_history"):
        left.altair_chart(charts.loss_curve(progress["loss_history"]), width="stretch")
    if progress.get("eval_history"):
        # Two panels (scores, losses): as wide as they are drawn.
        right.altair_chart(charts.eval_curves(progress["eval_history"]))


def watch(task: dict[str, Any]) -> None:
    """``task`` as the job list had it; the panel asks for it afresh on every refresh."""
    api = session.api()
    task_id = task["task_id"]
    live = task["status"] not in FINISHED

    @st.fragment(run_every=get_settings().ui_refresh_s if live else None)
    def panel() -> None:
        current = session.in_fragment(lambda: session.api().task(task_id))
        show_task(current)
        if live and current["status"] in FINISHED:
            st.rerun(scope="app")  # stop polling; show the finished page

    st.subheader(f"{task['config'].get('experiment_name', 'job')} · `{task_id}`")
    panel()
    actions = st.columns(3)
    if live and actions[0].button("Cancel job", icon=":material/stop_circle:", type="secondary"):
        st.session_state[CONFIRM_CANCEL] = task_id
    if live and st.session_state.get(CONFIRM_CANCEL) == task_id:
        confirm_cancel(api, task)
    if task["status"] == "succeeded":
        actions[0].page_link(
            "views/experiments.py",
            label="Open the experiment",
            icon=":material/science:",
            query_params={"experiment": task["experiment_id"]},
        )
        actions[1].page_link(
            "views/try_it.py",
            label="Try the model",
            icon=":material/chat:",
            query_params={"experiment": task["experiment_id"]},
        )
    # Any job: New job opens with its settings filled in (handed over in the session).
    if actions[2].button("Run again with these settings", icon=":material/replay:"):
        session.run_again(task["config"])


def confirm_cancel(api, task: dict[str, Any]) -> None:
    """The second step of cancelling: nothing is cancelled by one stray click."""
    task_id = task["task_id"]
    with st.container(border=True):
        st.warning(
            "Cancel this job? "
            + (
                "It stops within seconds and its partial results are removed."
                if task["status"] == "running"
                else "It will not run."
            )
            + " This cannot be undone.",
            icon=":material/help:",
        )
        yes, no = st.columns(2)
        if yes.button("Yes, cancel", type="primary", icon=":material/stop_circle:"):
            st.session_state.pop(CONFIRM_CANCEL, None)
            try:
                api.cancel(task_id)
            except ApiError as error:
                session.show_error(error)
            else:
                st.session_state[CANCELLED_HERE] = [
                    *st.session_state.get(CANCELLED_HERE, []),
                    task_id,
                ]
                st.rerun()
        if no.button("No, keep it", icon=":material/play_circle:"):
            st.session_state.pop(CONFIRM_CANCEL, None)
            st.rerun()


st.title("Jobs")
tasks = session.api().tasks()
if not tasks:
    st.info("No jobs yet: start one under **New job**.", icon=":material/info:")
    st.stop()
me = session.signed_in_user()
owners = (
    {u["id"]: u["username"] for u in session.api().users()}
    if me["role"] == "admin"
    else {me["id"]: me["username"]}
)


@st.fragment(
    run_every=get_settings().ui_refresh_s
    if any(t["status"] not in FINISHED for t in tasks)
    else None
)
def job_table() -> None:
    frame = tables.job_rows(session.in_fragment(session.api().tasks), owners)
    progress = st.column_config.ProgressColumn(
        "Progress", min_value=0, max_value=100, format="%d %%", width=120, color="blue"
    )
    tables.show(frame, pinned="Experiment", config={"Progress": progress})


job_table()
ids = [t["task_id"] for t in tasks]
asked = st.query_params.get("task")
names = {
    t["task_id"]: f"{t['config'].get('experiment_name')} · "
    f"{status_words(t['status'], job_quality(t))} · {t['task_id'][:8]}"
    for t in tasks
}
chosen = st.selectbox(
    "Job", ids, index=ids.index(asked) if asked in ids else 0, format_func=names.__getitem__
)
st.query_params["task"] = chosen
st.divider()
watch(next(t for t in tasks if t["task_id"] == chosen))
