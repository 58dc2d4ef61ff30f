"""How the UI reads the API's answers: charts, the job stepper, config comparison.
Pure functions, tested without a browser or a server."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")

import re
from datetime import UTC, datetime

from loraforge.ui import charts, tables
from loraforge.ui.comparison import comparability_warnings, config_differences
from loraforge.ui.job_view import (
    cancelled_words,
    duration,
    job_quality,
    progress_line,
    quality_warning,
    status_words,
    stepper,
    timing_line,
    when,
)


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
                # Cancelled on purpose: neutral grey, not an error's red or orange.
                ":gray[:material/block: **Cancelled**]",
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
    assert list(frame["Differs"]) == [True, False]
    assert list(frame.loc["lora.r", ["a", "b"]]) == ["8", "16"]


# Charts: the rules every chart keeps, checked on the Vega-Lite specs ----------------------

HISTORY = [  # an experiment's history (the Trainer's log): scores near 1, losses near 0.7
    {
        "epoch": 1.0,
        "eval_accuracy": 0.81,
        "eval_f1_macro": 0.79,
        "eval_loss": 0.71,
        "train_loss": 0.69,
    },
    {
        "epoch": 2.0,
        "eval_accuracy": 1.0,
        "eval_f1_macro": 1.0,
        "eval_loss": 0.52,
        "train_loss": 0.5,
    },
]
LIVE = [{"epoch": 1.0, "accuracy": 0.7, "f1_macro": 0.41, "loss": 0.69}]
ALL_CHARTS = {
    "label distribution": lambda: charts.label_distribution({"positive": 10, "negative": 30}),
    "length histogram": lambda: charts.length_histogram(
        [{"start": 0, "end": 10, "count": 3}, {"start": 10, "end": 20, "count": 12}],
        unit="words",
    ),
    # A loss near 0 too: the frame must not stop at 0 right under it.
    "loss curve": lambda: charts.loss_curve([[10, 0.71], [20, 0.55], [30, 0.002]]),
    "eval curves": lambda: charts.eval_curves(HISTORY),
    "live eval curves": lambda: charts.eval_curves(LIVE),
    "overlaid curves": lambda: charts.overlaid_curves({"run-a": HISTORY, "run-b": LIVE}),
    "final metric bars": lambda: charts.final_metric_bars(
        {"run-a": {"accuracy": 1.0, "f1_macro": 0.9}, "run-b": {"accuracy": 0.7, "f1_macro": 0.41}}
    ),
    "confusion matrix": lambda: charts.confusion_matrix(
        ["negative", "positive"], [[70, 0], [30, 0]]
    ),
    "probabilities": lambda: charts.probabilities(
        [{"line": 1, "text": "great", "label": "positive", "probability": 1.0}]
    ),
}
INTEGER_FIELDS = {"step", "epoch", "rows", "count", "start"}


def views(spec, data=None, encoding=None, datasets=None):
    """Every single view of a spec (layers, concatenations), with the rows it draws and
    the encoding it inherits."""
    datasets = datasets if datasets is not None else spec.get("datasets", {})
    if "data" in spec:
        data = datasets.get(spec["data"].get("name"), spec["data"].get("values"))
    encoding = {**(encoding or {}), **spec.get("encoding", {})}
    if "mark" in spec:
        yield spec, data or [], encoding
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for part in spec.get(key, []):
            yield from views(part, data, encoding, datasets)
    if "spec" in spec:  # a facet's or a repeat's inner view
        yield from views(spec["spec"], data, encoding, datasets)


def positional(encoding):
    return [
        (channel, encoding[channel])
        for channel in ("x", "y")
        if channel in encoding and encoding[channel].get("type") == "quantitative"
    ]


@pytest.mark.parametrize("name", ALL_CHARTS)
def test_every_quantitative_axis_has_a_format_and_integer_axes_show_integers(name):
    spec = ALL_CHARTS[name]().to_dict()
    seen = 0
    for _, _, encoding in views(spec):
        for channel, encoded in positional(encoding):
            seen += 1
            axis = encoded.get("axis") or {}
            assert axis.get("format") in ("d", "~g"), (name, channel, encoded)
            if encoded["field"] in INTEGER_FIELDS:
                assert axis["format"] == "d" and axis["tickMinStep"] == 1, (name, encoded)
    assert seen or name == "confusion matrix"  # its axes are the labels


@pytest.mark.parametrize("name", ALL_CHARTS)
def test_every_point_is_inside_its_axis_range(name):
    spec = ALL_CHARTS[name]().to_dict()
    for view, rows, encoding in views(spec):
        mark = view["mark"]["type"] if isinstance(view["mark"], dict) else view["mark"]
        for channel, encoded in positional(encoding):
            low, high = encoded["scale"]["domain"]  # explicit, never left to the data
            values = [row[encoded["field"]] for row in rows]
            if mark in ("bar", "rect"):  # bars grow from the frame; they must not pass it
                assert all(low <= v < high for v in values), (name, channel, low, high, values)
            else:  # a point on (or next to) the frame's edge is half drawn over it
                margin = 0.02 * (high - low)
                assert all(low + margin <= v <= high - margin for v in values), (
                    name,
                    channel,
                    low,
                    high,
                    values,
                )


@pytest.mark.parametrize("name", ["eval curves", "live eval curves", "overlaid curves"])
def test_losses_and_scores_never_share_a_y_axis(name):
    spec = ALL_CHARTS[name]().to_dict()
    for _, rows, encoding in views(spec):
        metrics = {row["metric"] for row in rows}
        assert metrics <= {"accuracy", "macro-F1"} or metrics <= {"eval loss", "train loss"}
        if metrics <= {"accuracy", "macro-F1"}:
            assert encoding["y"]["scale"]["domain"] == charts.SCORE_DOMAIN
            assert encoding["y"]["axis"]["values"] == [0, 0.2, 0.4, 0.6, 0.8, 1]


@pytest.mark.parametrize("name", ALL_CHARTS)
def test_a_colour_means_one_thing_per_chart_and_its_legend_says_what(name):
    spec = ALL_CHARTS[name]().to_dict()
    colours = {
        encoding["color"]["field"]: encoding["color"]
        for _, _, encoding in views(spec)
        if "field" in encoding.get("color", {})
    }
    assert len(colours) <= 1, (name, list(colours))
    for colour in colours.values():
        assert colour["legend"]["title"], name


@pytest.mark.parametrize("name", ALL_CHARTS)
def test_a_single_view_with_a_set_height_keeps_it_for_its_plot(name):
    # Streamlit fits title, axes and legend into a single view's height unless told to
    # pad: the bars and the confusion matrix were drawn a few pixels tall.
    spec = ALL_CHARTS[name]().to_dict()
    if "height" in spec and not any(k in spec for k in ("hconcat", "vconcat", "concat")):
        assert spec["autosize"] == {"type": "pad"}, name


def test_the_compare_page_gives_an_experiment_the_same_colour_in_curves_and_bars():
    curves = ALL_CHARTS["overlaid curves"]().to_dict()
    bars = ALL_CHARTS["final metric bars"]().to_dict()
    domains = [
        encoding["color"]["scale"]["domain"]
        for spec in (curves, bars)
        for _, _, encoding in views(spec)
    ]
    assert all(domain == ["run-a", "run-b"] for domain in domains)


def test_confusion_matrix_is_readable():
    spec = charts.confusion_matrix(
        ["a rather long label name", "short"], [[8, 2], [0, 0]]
    ).to_dict()
    (_, cells_rows, cells_enc), (text, _, text_enc) = views(spec)
    assert cells_enc["x"]["axis"]["title"] == "predicted label"
    assert cells_enc["y"]["axis"]["title"] == "true label"
    for channel in ("x", "y"):  # level and whole
        assert cells_enc[channel]["axis"]["labelLimit"] == 0
    assert cells_enc["x"]["axis"]["labelAngle"] == 0
    # Each cell as wide as the longest label, so labels are written level and whole.
    assert spec["width"] >= 2 * 7 * len("a rather long label name")
    # Counts in the cells, white on dark cells and black on light ones.
    assert text["mark"]["type"] == "text" and text_enc["text"]["field"] == "count"
    assert text_enc["color"]["condition"]["value"] == "white"
    assert text_enc["color"]["value"] == "black"
    # The tooltip gives the row-normalised share; an empty row is 0, not a division error.
    shares = {(r["true"], r["predicted"]): r["share"] for r in cells_rows}
    assert shares[("a rather long label name", "a rather long label name")] == 0.8
    assert shares[("short", "short")] == 0.0
    assert any(t["field"] == "share" and t["format"] == ".1%" for t in cells_enc["tooltip"])


def test_overlay_has_one_panel_per_metric_with_scores_on_top():
    spec = charts.overlaid_curves({"run-a": HISTORY}).to_dict()
    rows = [[part["title"] for part in row["hconcat"]] for row in spec["vconcat"]]
    assert rows == [["accuracy", "macro-F1"], ["eval loss", "train loss"]]


# Jobs on screen: cancelled, failed, time, and a model that learned nothing ------------------

NOW = datetime(2026, 11, 27, 12, 4, 10, tzinfo=UTC)
NOT_LEARNED = {
    "learned": False,
    "problems": ["The model answers 'negative' for 100.0 % of the 100 evaluation texts."],
    "hint": "Likely fixes: train longer (training.epochs=3; this run: 1).",
    "majority_label": "negative",
    "majority_rate": 0.7,
    "accuracy": 0.7,
    "predicted_shares": {"negative": 1.0, "positive": 0.0},
}


def job(status="running", started="2026-11-27T12:00:00", **fields):
    progress = fields.pop("progress", None)
    return {
        "task_id": "a1b2c3d4-0000-0000-0000-000000000000",
        "owner_id": 1,
        "status": status,
        "config": {"experiment_name": "tweets", "model": {"base_model": "/srv/models/tiny"}},
        "progress": progress,
        "error": None,
        "cancel_requested": False,
        "created_at": "2026-11-27T11:59:40",
        "started_at": started,
        "finished_at": None,
        **fields,
    }


def test_a_model_that_learned_nothing_is_not_a_plain_success():
    done = job("succeeded", progress={"phase": "done", "step": 10, "quality": NOT_LEARNED})
    assert job_quality(done) == NOT_LEARNED
    assert status_words("succeeded", NOT_LEARNED) == "succeeded — model did not learn"
    assert ":orange[:material/warning: **Done — model did not learn**]" in stepper(done)
    assert ":green[:material/check_circle: Done]" not in stepper(done)
    box = quality_warning(NOT_LEARNED)
    assert "did not learn" in box and NOT_LEARNED["problems"][0] in box
    assert NOT_LEARNED["hint"] in box
    # An old job or experiment without a verdict, or one that learned: nothing to say.
    learned = {**NOT_LEARNED, "learned": True, "problems": [], "hint": None}
    assert status_words("succeeded", None) == status_words("succeeded", learned) == "succeeded"
    assert ":green[:material/check_circle: Done]" in stepper(
        job("succeeded", progress={"phase": "done"})
    )


def test_cancelled_and_failed_jobs_say_where_they_stopped():
    progress = {"phase": "training", "step": 30, "total_steps": 120, "epoch": 0.75, "epochs": 3}
    cancelled = job("cancelled", progress=progress, finished_at="2026-11-27T12:05:00")
    assert progress_line(cancelled) == (0.25, "cancelled at step 30 of 120")
    assert cancelled_words(cancelled, "you") == (
        "Cancelled by you at 2026-11-27 12:05 UTC, at step 30 of 120."
    )
    assert cancelled_words(cancelled) == "Cancelled at 2026-11-27 12:05 UTC, at step 30 of 120."
    never = job("cancelled", started=None, finished_at="2026-11-27T12:00:01")
    assert progress_line(never) == (0.0, "cancelled before it started")
    assert cancelled_words(never, "root") == (
        "Cancelled by root at 2026-11-27 12:00 UTC, before it started."
    )
    assert progress_line(job("failed", progress={"phase": "starting"})) == (
        0.0,
        "failed before training began",
    )
    asked = job(progress={**progress, "loss": 0.5}, cancel_requested=True)
    assert progress_line(asked)[1].endswith("cancel requested: stopping")


def test_elapsed_time_and_time_left_come_from_the_pace_of_the_steps():
    # 40 steps in the 240 s to the last report: 6 s a step, 20 steps left = 120 s, of
    # which 10 s have passed since that report.
    running = job(
        progress={"step": 40, "total_steps": 60, "updated_at": "2026-11-27T12:04:00+00:00"}
    )
    assert timing_line(running, NOW) == "4 min 10 s elapsed · about 2 min left"
    # No step yet: nothing to measure, and no number made up.
    starting = job(progress={"phase": "starting"})
    assert timing_line(starting, NOW) == "4 min 10 s elapsed · estimating time left…"
    nearly = job(progress={"step": 59, "total_steps": 60, "updated_at": "2026-11-27T12:04:08"})
    assert timing_line(nearly, NOW).endswith("less than a minute left")
    assert timing_line(job("queued", started=None), NOW) == "waiting for a worker for 4 min 30 s"
    finished = job("succeeded", finished_at="2026-11-27T13:05:00")
    assert timing_line(finished, NOW) == "ran for 1 h 5 min"


def test_times_carry_their_zone_and_durations_read_as_words():
    assert when("2026-11-29T14:03:59") == "2026-11-29 14:03 UTC"  # naive: the API's UTC
    assert when("2026-11-29T14:03:59Z", seconds=True) == "2026-11-29 14:03:59 UTC"
    assert when("2026-11-29T15:03:00+01:00") == "2026-11-29 14:03 UTC"
    assert when(None) == "—"
    assert [duration(s) for s in (0, 42, 250, 3600, 3900)] == [
        "0 s",
        "42 s",
        "4 min 10 s",
        "1 h",
        "1 h 5 min",
    ]


# Tables: human names, zones, no None, widths ---------------------------------------------


def shown_cells(styler) -> list[str]:
    """What a styled table displays, cell by cell."""
    return re.findall(r"<td[^>]*>([^<]*)</td>", styler.to_html())


def test_job_table_reads_as_words():
    frame = tables.job_rows(
        [
            job(),
            job("succeeded", progress={"phase": "done", "quality": NOT_LEARNED}, owner_id=9),
        ],
        {1: "alice"},
    )
    assert list(frame.columns) == [
        "Experiment",
        "Status",
        "Progress",
        "Submitted",
        "Finished",
        "Owner",
        "Base model",
        "Task",
    ]
    first, second = frame.to_dict("records")
    assert first["Submitted"] == "2026-11-27 11:59 UTC"
    assert first["Finished"] == "—" and first["Owner"] == "alice"
    assert first["Base model"] == "tiny"  # a server folder by its name
    assert second["Status"] == "succeeded — model did not learn"
    assert second["Owner"] == "user 9" and second["Progress"] == 100
    assert "None" not in frame.astype(str).to_numpy()


def test_experiment_table_shows_dashes_for_what_does_not_exist_and_sorts_numbers():
    failed = {
        "id": "tweets-20261127-120000",
        "status": "failed",
        "base_model": "minilm-l6",
        "language": None,
        "metrics": None,
        "train_rows": None,
        "eval_rows": None,
        "created_at": "2026-11-27T12:00:00+00:00",
    }
    done = {
        **failed,
        "id": "tweets-20261127-130000",
        "status": "succeeded",
        "language": "en",
        "metrics": {
            "final": {"accuracy": 0.868, "f1_macro": 0.8},
            "train": {"epochs": 3, "samples_per_second": 55.61},
            "quality": NOT_LEARNED,
        },
        "train_rows": 4000,
        "eval_rows": 1000,
    }
    frame = tables.experiment_rows([failed, done])
    assert frame["Accuracy"].dtype.kind == "f"  # numbers: the column sorts by value
    cells = shown_cells(tables.styled(frame, tables.EXPERIMENT_FORMATS))
    assert "None" not in cells and "nan" not in cells
    assert cells.count("—") == 7  # language, accuracy, F1, 2 rows, epochs, samples/s
    assert {"86.8 %", "0.800", "4,000", "1,000", "3", "55.6"} <= set(cells)
    assert "succeeded — model did not learn" in cells
    assert "2026-11-27 12:00 UTC" in cells


def test_every_column_is_wide_enough_for_its_longest_value():
    frame = tables.experiment_rows(
        [
            {
                "id": "a-very-long-experiment-name-of-forty-chars-20261127-120000",
                "status": "succeeded",
                "base_model": "distilbert-base-uncased",
                "language": "en",
                "metrics": {"final": {"accuracy": 0.9}},
                "train_rows": 1234567,
                "eval_rows": 10,
                "created_at": "2026-11-27T12:00:00",
            }
        ]
    )
    widths = tables.widths(frame, tables.EXPERIMENT_FORMATS)
    assert widths["Experiment"] >= tables.CHAR_PX * len(frame["Experiment"][0])
    assert widths["Train rows"] >= tables.CHAR_PX * len("1,234,567")
    assert widths["Created"] >= tables.CHAR_PX * len("2026-11-27 12:00 UTC")
    assert widths["Samples/s"] >= tables.CHAR_PX * len("Samples/s")


def test_admin_tables_use_words_and_dashes():
    users = tables.user_rows(
        [
            {
                "id": 1,
                "username": "root",
                "role": "admin",
                "is_active": False,
                "created_at": "2026-11-27T12:00:00",
            }
        ]
    )
    assert users.to_dict("records") == [
        {
            "User": "root",
            "Role": "admin",
            "Active": "no (disabled)",
            "Created": "2026-11-27 12:00 UTC",
            "ID": 1,
        }
    ]
    events = tables.audit_rows(
        [
            {
                "at": "2026-11-27T12:00:01",
                "username": None,
                "action": "login",
                "target": None,
                "outcome": "failure",
                "client": None,
                "detail": {"username": "mallory"},
            }
        ]
    )
    assert events.to_dict("records") == [
        {
            "When": "2026-11-27 12:00:01 UTC",
            "User": "—",
            "Action": "login",
            "Target": "—",
            "Outcome": "failure",
            "Client": "—",
            "Detail": '{"username": "mallory"}',
        }
    ]


def test_try_it_keeps_one_row_per_line_typed_and_counts_blank_lines():
    lines, blank = tables.typed_texts("great flight\n\n   \nlost my bag\n")
    assert lines == [(1, "great flight"), (4, "lost my bag")]
    assert blank == 2
    answers = [
        {
            "label": "positive",
            "probability": 0.9,
            "latency_ms": 3.0,
            "base_model": "m",
            "language": "en",
        },
        {"label": 0, "probability": 0.6, "latency_ms": 3.0, "base_model": "m", "language": None},
    ]
    table = tables.prediction_table(tables.prediction_rows(lines, answers))
    assert list(table["Line"]) == [1, 4]
    assert list(table["Text"]) == ["great flight", "lost my bag"]
    assert list(table["Label"]) == ["positive", "0"]
    assert list(table["Language"]) == ["en", "—"]


def test_compare_warns_when_runs_were_evaluated_on_different_data_or_labels():
    a = {"id": "a", "eval_dataset_version": "1" * 64, "labels": ["neg", "pos"]}
    b = {"id": "b", "eval_dataset_version": "2" * 64, "labels": ["pos", "neg"]}
    c = {"id": "c", "eval_dataset_version": "1" * 64, "labels": ["neg", "neutral", "pos"]}
    assert comparability_warnings([a, {**b, "eval_dataset_version": "1" * 64}]) == []
    (data,) = comparability_warnings([a, b])
    assert "different data sets" in data and "`111111111111`" in data and "`222222222222`" in data
    (labels,) = comparability_warnings([a, c])
    assert "different label sets" in labels and "neg, neutral, pos" in labels


def test_config_differences_show_a_dash_for_a_missing_or_empty_value():
    frame = config_differences(
        [
            {"id": "a", "config": {"training": {"max_train_samples": None}}},
            {"id": "b", "config": {"training": {"max_train_samples": 1000}}},
        ]
    )
    assert list(frame.loc["training.max_train_samples", ["a", "b"]]) == ["—", "1000"]
