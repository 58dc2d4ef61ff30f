"""Jobs: yours (everyone's, for an admin), and one job watched live until it ends."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from loraforge.settings import get_settings
from loraforge.ui import charts, session
from loraforge.ui.client import ApiError
from loraforge.ui.job_view import FINISHED, progress_line, stepper


def show_task(task: dict[str, Any]) -> None:
    st.markdown(stepper(task))
    fraction, words = progress_line(task)
    st.progress(fraction, text=words)
    progress = task["progress"] or {}
    cols = st.columns(4)
    cols[0].metric("Status", task["status"])
    cols[1].metric("Attempt", f"{task['attempts']} of {task['max_attempts']}")
    if task["status"] == "succeeded" and progress.get("final"):
        # What the model is: the best checkpoint, as the experiment page shows it.
        shown, which = progress["final"], "final, best checkpoint"
    else:
        shown, which = progress.get("eval") or {}, "latest epoch"
    cols[2].metric(
        f"Accuracy ({which})", f"{shown['accuracy']:.1%}" if "accuracy" in shown else "-"
    )
    cols[3].metric(
        f"Macro-F1 ({which})", f"{shown['f1_macro']:.3f}" if "f1_macro" in shown else "-"
    )
    if task["error"]:
        st.error(task["error"], icon=":material/error:")
    left, right = st.columns(2)
    if progress.get("loss_history"):
        left.altair_chart(charts.loss_curve(progress["loss_history"]), width="stretch")
    if progress.get("eval_history"):
        right.altair_chart(charts.eval_curves(progress["eval_history"]), width="stretch")


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
        try:
            api.cancel(task_id)
        except ApiError as error:
            session.show_error(error)
        else:
            st.rerun()
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


def job_rows(tasks: list[dict[str, Any]], owners: dict[int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "task": t["task_id"],
                "experiment": t["config"].get("experiment_name"),
                "status": t["status"],
                "progress": 1.0
                if t["status"] == "succeeded"
                else (t["progress"] or {}).get("step", 0)
                / max(1, (t["progress"] or {}).get("total_steps") or 1),
                "owner": owners.get(t["owner_id"], str(t["owner_id"])),
                "submitted": pd.to_datetime(t["created_at"]),
            }
            for t in tasks
        ]
    )


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
    st.dataframe(
        job_rows(session.in_fragment(session.api().tasks), owners),
        hide_index=True,
        width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
            "submitted": st.column_config.DatetimeColumn("submitted", format="YYYY-MM-DD HH:mm:ss"),
        },
    )


job_table()
ids = [t["task_id"] for t in tasks]
asked = st.query_params.get("task")
names = {
    t["task_id"]: f"{t['config'].get('experiment_name')} · {t['status']} · {t['task_id'][:8]}"
    for t in tasks
}
chosen = st.selectbox(
    "Job", ids, index=ids.index(asked) if asked in ids else 0, format_func=names.__getitem__
)
st.query_params["task"] = chosen
st.divider()
watch(next(t for t in tasks if t["task_id"] == chosen))
