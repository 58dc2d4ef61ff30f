"""`experiments compare` says when the runs' metrics cannot be compared side by side:
evaluated on different data sets, or classifying into different label sets."""

from __future__ import annotations

import json
import uuid

from typer.testing import CliRunner

from loraforge.cli import app
from loraforge.tracking import experiments
from loraforge.tracking.comparison import compare

runner = CliRunner()


def recorded(url: str, *, eval_version: str | None, labels: list | None) -> str:
    experiment_id = f"cmp-{uuid.uuid4().hex[:8]}"
    experiments.create(
        url,
        id=experiment_id,
        name="cmp",
        base_model="minilm-l6",
        config={"training": {"epochs": 1}},
        results_dir=f"/r/{experiment_id}",
        eval_dataset_version=eval_version,
        labels=labels,
    )
    experiments.mark_succeeded(
        url,
        experiment_id,
        metrics={"final": {"accuracy": 0.9, "f1_macro": 0.8}},
        results_dir=f"/r/{experiment_id}",
    )
    return experiment_id


def test_cli_compare_warns_about_different_eval_data_and_labels(env_settings):
    url = env_settings.resolved_database_url()
    a = recorded(url, eval_version="a" * 64, labels=["neg", "pos"])
    b = recorded(url, eval_version="b" * 64, labels=["neg", "neutral", "pos"])

    shown = runner.invoke(app, ["experiments", "compare", a, b])
    assert shown.exit_code == 0, shown.output
    assert (
        "These runs were evaluated on different data sets (eval versions aaaaaaaaaaaa…, "
        "bbbbbbbbbbbb…): their metrics are not directly comparable." in shown.output
    )
    assert "different label sets (neg, pos; neg, neutral, pos)" in shown.output

    as_json = json.loads(runner.invoke(app, ["experiments", "compare", a, b, "--json"]).output)
    assert len(as_json["warnings"]) == 2
    assert as_json["warnings"][0].startswith("These runs were evaluated on different data sets")


def test_runs_on_the_same_eval_data_compare_without_warnings(env_settings):
    url = env_settings.resolved_database_url()
    same = [recorded(url, eval_version="c" * 64, labels=["neg", "pos"]) for _ in range(2)]
    old = recorded(url, eval_version=None, labels=None)  # rows from before versions: no claim
    result = compare([experiments.get(url, i) for i in [*same, old]])
    assert result.warnings == []
    shown = runner.invoke(app, ["experiments", "compare", *same])
    assert shown.exit_code == 0 and "warning" not in shown.output
