"""How the UI reads the API's answers: charts, the job stepper, config comparison.
Pure functions, tested without a browser or a server."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")

from loraforge.ui import charts
from loraforge.ui.comparison import config_differences
from loraforge.ui.job_view import progress_line, stepper


def task(status="running", started=True, **progress):
    return {
        "status": status,
        "started_at": "2026-11-27T12:00:00" if started else None,
        "progress": progress or None,
    }


def chart_rows(chart) -> list[dict]:
    spec = chart.to_dict()
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def test_experiment_history_and_live_history_both_chart():
    live = [{"epoch": 1.0, "accuracy": 0.8, "f1_macro": 0.7, "loss": 0.5}]
    trainer_log = [
        {
            "epoch": 1.0,
            "step": 10,
            "eval_accuracy": 0.8,
            "eval_f1_macro": 0.7,
            "eval_loss": 0.5,
            "train_loss": 0.6,
        }
    ]
    assert {r["metric"] for r in chart_rows(charts.eval_curves(live))} == {
        "accuracy",
        "macro-F1",
        "eval loss",
    }
    assert {r["metric"] for r in chart_rows(charts.eval_curves(trainer_log))} == {
        "accuracy",
        "macro-F1",
        "eval loss",
        "train loss",
    }
    overlaid = chart_rows(charts.overlaid_curves({"a": trainer_log, "b": live}))
    assert {r["experiment"] for r in overlaid} == {"a", "b"}


def test_confusion_matrix_has_a_cell_per_pair():
    rows = chart_rows(charts.confusion_matrix(["neg", "pos"], [[5, 1], [2, 7]]))
    assert {(r["true"], r["predicted"], r["count"]) for r in rows} == {
        ("neg", "neg", 5),
        ("neg", "pos", 1),
        ("pos", "neg", 2),
        ("pos", "pos", 7),
    }


@pytest.mark.parametrize(
    ("job", "shown"),
    [
        (
            task("queued", started=False),
            [
                ":blue[:material/pending: **Queued**]",
                ":gray[:material/radio_button_unchecked: Running]",
            ],
        ),
        (
            task(phase="training"),
            [":green[:material/check_circle: Queued]", ":blue[:material/pending: **Running**]"],
        ),
        (task(phase="evaluating"), [":blue[:material/pending: **Evaluating**]"]),
        (task("succeeded", phase="done"), [":green[:material/check_circle: Done]"]),
        (
            task("failed", phase="training"),
            [
                ":gray[:material/radio_button_unchecked: Evaluating]",
                ":red[:material/cancel: **Failed**]",
            ],
        ),
        (
            task("cancelled", started=False),
            [
                ":gray[:material/radio_button_unchecked: Running]",
                ":orange[:material/cancel: **Cancelled**]",
            ],
        ),
    ],
)
def test_stepper_shows_where_the_job_is(job, shown):
    line = stepper(job)
    for part in shown:
        assert part in line


def test_progress_words():
    assert progress_line(task("queued", started=False)) == (0.0, "waiting for a worker")
    fraction, words = progress_line(
        task(phase="training", step=30, total_steps=120, epoch=0.75, epochs=3, loss=0.41234)
    )
    assert fraction == 0.25
    assert words == "epoch 0.75 of 3 · step 30 of 120 · loss 0.4123"
    assert progress_line(task("succeeded", phase="done", step=120, total_steps=120)) == (
        1.0,
        "finished: 120 steps",
    )


def test_config_differences_come_first():
    frame = config_differences(
        [
            {"id": "a", "config": {"lora": {"r": 8}, "training": {"epochs": 3}}},
            {"id": "b", "config": {"lora": {"r": 16}, "training": {"epochs": 3}}},
        ]
    )
    assert list(frame.index) == ["lora.r", "training.epochs"]
    assert list(frame["differs"]) == [True, False]
    assert list(frame.loc["lora.r", ["a", "b"]]) == ["8", "16"]
