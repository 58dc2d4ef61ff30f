"""The pages after New job, as a user reads them: jobs, experiments, try it, admin.

Streamlit's AppTest against a live API (the fixtures of tests/test_ui.py). Where a page
must be seen in a state a tiny job does not reliably reach (a model that learned nothing,
a job mid-way, two runs on different evaluation data), the client's answer is the live
one with that one field changed, so the rest of the page is real.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_texts
from test_ui import LiveApi, signed_in, texts

from loraforge.ui.client import ApiClient

pytestmark = pytest.mark.slow

NOT_LEARNED = {
    "learned": False,
    "problems": [
        "The model answers 'negative' for 100.0 % of the 20 evaluation texts: it (almost) "
        "ignores what the text says."
    ],
    "hint": "Likely fixes: train longer (training.epochs=4; this run: 2).",
    "majority_label": "negative",
    "majority_rate": 0.5,
    "accuracy": 0.5,
    "predicted_shares": {"negative": 1.0, "positive": 0.0},
}


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    api = LiveApi(tmp_path_factory.mktemp("ui-pages"), tiny_model_dir)
    api.experiment_id = api.finished_experiment()
    yield api
    api.stop()


def patch_answers(monkeypatch, method: str, change) -> None:
    """The client's live answer to ``method``, with ``change`` applied to a copy."""
    real = getattr(ApiClient, method)

    def changed(self, *args, **kwargs):
        return change(copy.deepcopy(real(self, *args, **kwargs)))

    monkeypatch.setattr(ApiClient, method, changed)


def no_none_shown(frame) -> bool:
    shown = frame.astype(str).to_numpy().ravel()
    return not any(cell in ("None", "nan", "NaN", "NaT") for cell in shown)


def submit_queued(live, user: str = "alice") -> tuple[str, str]:
    """A job that waits (no worker here) on a fresh data set: (task id, data set id)."""
    api = live.client(user)
    content = make_texts(40, seed=11).to_csv(index=False).encode()
    dataset = api.upload_dataset("in-use.csv", content, text_column="text", label_column="label")
    body = {
        "experiment_name": "waiting",
        "model": {"base_model": str(live.model_dir), "device": "cpu"},
        "data": {"dataset_id": dataset["id"], "eval_split": 0.25, "max_length": 32},
    }
    return api.submit(body)["task_id"], dataset["id"]


def test_jobs_table_has_human_columns_and_times_in_utc(app, live):
    at = signed_in(app, live)
    at.switch_page("views/jobs.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == [
        "Experiment",
        "Status",
        "Progress",
        "Submitted",
        "Finished",
        "Owner",
        "Base model",
        "Task",
    ]
    assert table["Submitted"].str.endswith(" UTC").all()
    assert no_none_shown(table)
    assert set(table["Base model"]) == {live.model_dir.name}  # not the server's path


def test_a_job_whose_model_learned_nothing_says_so_loudly(app, live, monkeypatch):
    def verdict(task):
        if task["status"] == "succeeded":
            task["progress"]["quality"] = NOT_LEARNED
        return task

    patch_answers(monkeypatch, "task", verdict)
    patch_answers(monkeypatch, "tasks", lambda tasks: [verdict(t) for t in tasks])
    done = next(t for t in live.client("alice").tasks() if t["experiment_id"] == live.experiment_id)
    at = signed_in(app, live)
    at.switch_page("views/jobs.py")
    at.query_params["task"] = done["task_id"]
    at.run()
    assert not at.exception, at.exception
    # A box at the top of the job, with the problems and the likely fixes.
    (box,) = [e.value for e in at.error]
    assert "did not learn" in box
    assert NOT_LEARNED["problems"][0] in box and NOT_LEARNED["hint"] in box
    page = texts(at)
    assert ":orange[:material/warning: **Done — model did not learn**]" in page
    assert ":green[:material/check_circle: Done]" not in page
    status = next(m for m in at.metric if m.label == "Status")
    assert status.value == "succeeded" and status.delta == "model did not learn"
    row = at.dataframe[0].value.set_index("Task").loc[done["task_id"]]
    assert row["Status"] == "succeeded — model did not learn"


def test_a_running_job_shows_elapsed_time_and_time_left(app, live, monkeypatch):
    task_id, _ = submit_queued(live)
    now = datetime.now(UTC)

    def running(task):
        if task["task_id"] == task_id:
            task.update(status="running", started_at=(now - timedelta(seconds=130)).isoformat())
            task["progress"] = {
                "phase": "training",
                "epoch": 0.5,
                "epochs": 1,
                "step": 40,
                "total_steps": 80,
                "loss": 0.69,
                # 40 steps in 100 s: 2.5 s a step; the 40 left take 100 s from this
                # report, 30 s ago.
                "updated_at": (now - timedelta(seconds=30)).isoformat(),
            }
        return task

    patch_answers(monkeypatch, "task", running)
    patch_answers(monkeypatch, "tasks", lambda tasks: [running(t) for t in tasks])
    at = signed_in(app, live)
    at.switch_page("views/jobs.py")
    at.query_params["task"] = task_id
    at.run()
    assert not at.exception, at.exception
    timing = next(c.value for c in at.caption if "elapsed" in c.value)
    assert re.fullmatch(r"2 min 1\d s elapsed · about 1 min left", timing), timing
    live.client("alice").cancel(task_id)


def test_the_experiment_page_says_when_a_model_learned_nothing(app, live, monkeypatch):
    def verdict(experiments):
        for experiment in experiments:
            if experiment["id"] == live.experiment_id:
                experiment["metrics"]["quality"] = NOT_LEARNED
            else:  # an old experiment without a verdict: nothing to say
                (experiment["metrics"] or {}).pop("quality", None)
        return experiments

    patch_answers(monkeypatch, "experiments", verdict)
    at = signed_in(app, live)
    at.switch_page("views/experiments.py")
    at.query_params["experiment"] = live.experiment_id
    at.run()
    assert not at.exception, at.exception
    (box,) = [e.value for e in at.error]
    assert NOT_LEARNED["problems"][0] in box and NOT_LEARNED["hint"] in box
    table = at.dataframe[0].value.set_index("Experiment")
    assert table.loc[live.experiment_id, "Status"] == "succeeded — model did not learn"
    assert set(table.drop(index=live.experiment_id)["Status"]) <= {"succeeded", "failed"}
    # Try it warns before anyone relies on that model.
    at.switch_page("views/try_it.py")
    at.query_params["experiment"] = live.experiment_id
    at.run()
    assert any("did not learn" in w.value for w in at.warning)


def test_compare_warns_when_runs_were_evaluated_on_different_data(app, live, monkeypatch):
    second = live.finished_experiment()
    at = signed_in(app, live)
    at.switch_page("views/experiments.py").run()
    at.multiselect[2].set_value([live.experiment_id, second]).run()
    assert not at.exception, at.exception
    assert not at.warning  # same evaluation data, same labels: nothing to warn about

    def other_data(experiments):
        for experiment in experiments:
            if experiment["id"] == second:
                experiment["eval_dataset_version"] = "f" * 64
                experiment["labels"] = ["negative", "neutral", "positive"]
        return experiments

    patch_answers(monkeypatch, "experiments", other_data)
    at.run()
    warnings = [w.value for w in at.warning]
    assert any("different data sets" in w and "`ffffffffffff`" in w for w in warnings)
    assert any("different label sets" in w and "negative, neutral, positive" in w for w in warnings)


def test_experiments_table_reads_as_words(app, live):
    at = signed_in(app, live)
    at.switch_page("views/experiments.py").run()
    table = at.dataframe[0].value
    assert list(table.columns[:4]) == ["Experiment", "Status", "Base model", "Language"]
    assert table["Created"].str.endswith(" UTC").all()
    assert table["Accuracy"].dtype.kind == "f"  # sorts as numbers


def test_an_experiment_is_deleted_only_after_a_second_click(app, live):
    doomed = live.finished_experiment()
    at = signed_in(app, live)
    at.switch_page("views/experiments.py")
    at.query_params["experiment"] = doomed
    at.run()
    next(b for b in at.button if b.label == "Delete this experiment…").click().run()
    assert any(f"Delete experiment {doomed}?" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "No, keep it").click().run()
    assert doomed in {e["id"] for e in live.client("alice").experiments()}
    next(b for b in at.button if b.label == "Delete this experiment…").click().run()
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not at.exception, at.exception
    assert doomed not in {e["id"] for e in live.client("alice").experiments()}
    assert f"Deleted experiment {doomed}." in texts(at)
    assert doomed not in set(at.dataframe[0].value["Experiment"])


def test_an_admin_may_delete_anyones_experiment(app, live):
    at = signed_in(app, live, "root")  # an admin sees alice's and may delete them
    at.switch_page("views/experiments.py").run()
    assert any(b.label == "Delete this experiment…" for b in at.button)


def test_a_data_set_in_use_is_not_deleted_and_the_page_says_why(app, live):
    task_id, dataset_id = submit_queued(live)
    at = signed_in(app, live)
    at.switch_page("views/experiments.py").run()
    datasets = at.dataframe[-1].value
    assert list(datasets.columns) == [
        "Name",
        "Rows",
        "Labels",
        "Version",
        "Uploaded",
        "Owner",
        "ID",
    ]
    assert no_none_shown(datasets)
    next(s for s in at.selectbox if s.label == "Data set").set_value(dataset_id).run()
    next(b for b in at.button if b.label == "Delete this data set…").click().run()
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not at.exception, at.exception
    # The API's own words (409: a queued job uses it), and the data set is still there.
    assert at.error, texts(at)
    assert dataset_id in {d["id"] for d in live.client("alice").datasets()}
    live.client("alice").cancel(task_id)
    next(s for s in at.selectbox if s.label == "Data set").set_value(dataset_id).run()
    next(b for b in at.button if b.label == "Delete this data set…").click().run()
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not at.exception, at.exception
    assert dataset_id not in {d["id"] for d in live.client("alice").datasets()}
    assert "Deleted data set in-use.csv" in texts(at)


def test_try_it_keeps_each_answer_on_its_line_and_counts_skipped_blank_lines(app, live):
    at = signed_in(app, live)
    at.switch_page("views/try_it.py").run()
    at.text_area[0].input("great good happy\n\n   \nawful bad sad")
    at.button(key="FormSubmitter:predict-Predict").click().run()
    assert not at.exception, at.exception
    answers = at.dataframe[0].value
    assert list(answers["Line"]) == [1, 4]
    assert list(answers["Text"]) == ["great good happy", "awful bad sad"]
    assert list(answers.columns) == [
        "Line",
        "Text",
        "Label",
        "Probability",
        "Latency (ms)",
        "Base model",
        "Language",
    ]
    assert any("2 blank lines skipped" in i.value for i in at.info)


def test_try_it_starts_on_the_newest_model_that_learned(app, live, monkeypatch):
    learned = []

    def newest_did_not_learn(experiments):
        for experiment in experiments:  # old experiments without a verdict: nothing to say
            (experiment["metrics"] or {}).pop("quality", None)
        succeeded = [e for e in experiments if e["status"] == "succeeded"]
        learned[:] = [succeeded[0]["id"]]
        newest = copy.deepcopy(succeeded[0])
        newest["id"] = "newest-learned-nothing"
        newest["metrics"]["quality"] = NOT_LEARNED
        return [newest, *experiments]

    patch_answers(monkeypatch, "experiments", newest_did_not_learn)
    at = signed_in(app, live)
    at.switch_page("views/try_it.py").run()
    assert not at.exception, at.exception
    (model,) = [s for s in at.selectbox if s.label == "Model"]
    assert model.value == learned[0]
    assert not [w for w in at.warning if "did not learn" in w.value]
    # Still offered, and marked, for whoever wants to see what it answers.
    (offered,) = [o for o in model.options if o.startswith("newest-learned-nothing")]
    assert offered.endswith("succeeded — model did not learn")

    # A link to that experiment (?experiment=) still opens it, with the warning.
    at = signed_in(app, live)
    at.switch_page("views/try_it.py")
    at.query_params["experiment"] = "newest-learned-nothing"
    at.run()
    (model,) = [s for s in at.selectbox if s.label == "Model"]
    assert model.value == "newest-learned-nothing"
    assert any("did not learn" in w.value for w in at.warning)


def test_admin_tables_have_human_columns_and_no_none(app, live):
    at = signed_in(app, live, "root")
    at.switch_page("views/admin.py").run()
    assert not at.exception, at.exception
    users, events = at.dataframe[0].value, at.dataframe[1].value
    assert list(users.columns) == ["User", "Role", "Active", "Created", "ID"]
    assert list(events.columns) == [
        "When",
        "User",
        "Action",
        "Target",
        "Outcome",
        "Client",
        "Detail",
    ]
    assert events["When"].str.endswith(" UTC").all()
    assert no_none_shown(users) and no_none_shown(events)
