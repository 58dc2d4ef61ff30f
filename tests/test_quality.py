"""A model that learned nothing is said to be so, loudly, wherever its result is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from conftest import tiny_config_tree
from typer.testing import CliRunner

from loraforge.cli import app
from loraforge.training.quality import assess

runner = CliRunner()


def test_all_predictions_in_one_class_did_not_learn():
    # The newcomer's run: 300 rows, 1 epoch, every answer "negative".
    verdict = assess(
        labels=["negative", "positive"],
        matrix=[[213, 0], [87, 0]],
        train_rows=300,
        epochs=1,
        learning_rate=2e-3,
        capped=False,
    )
    assert verdict["learned"] is False
    assert verdict["majority_label"] == "negative"
    assert verdict["majority_rate"] == 0.71
    assert verdict["predicted_shares"] == {"negative": 1.0, "positive": 0.0}
    assert "'negative' for 100.0 %" in verdict["problems"][0]
    assert "does not beat" in verdict["problems"][1]
    assert "training.epochs=3" in verdict["hint"]
    assert "more data" in verdict["hint"]
    assert "learning_rate" in verdict["hint"]


def test_spread_predictions_at_the_majority_rate_did_not_learn():
    verdict = assess(
        labels=["a", "b"],
        matrix=[[50, 20], [20, 10]],  # 60 % correct, while always "a" gives 70 %
        train_rows=5000,
        epochs=3,
        learning_rate=2e-3,
        capped=True,
    )
    assert verdict["learned"] is False
    assert len(verdict["problems"]) == 1
    assert "max_train_samples" in verdict["hint"]
    assert verdict["hint"].startswith("Likely fixes: ")


def test_a_model_that_beats_the_majority_learned():
    verdict = assess(
        labels=["negative", "positive"],
        matrix=[[200, 13], [20, 67]],
        train_rows=4000,
        epochs=3,
        learning_rate=2e-3,
        capped=False,
    )
    assert verdict["learned"] is True
    assert verdict["problems"] == []
    assert verdict["hint"] is None


def test_train_says_loudly_when_the_model_learned_nothing(tiny_model_dir, env_settings, tmp_path):
    # Every text the same: no model can tell the classes apart, so it answers one class.
    rows = pd.DataFrame(
        {"text": ["the flight was fine"] * 40, "label": ["negative"] * 28 + ["positive"] * 12}
    )
    files = {"train": tmp_path / "train.csv", "eval": tmp_path / "eval.csv"}
    rows.to_csv(files["train"], index=False)
    rows.to_csv(files["eval"], index=False)
    # logging_steps above the run's 3 steps: a loss is still logged (once an epoch).
    tree = tiny_config_tree(tiny_model_dir, files, epochs=1, logging_steps=50)
    tree["experiment_name"] = "learned-nothing"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tree))

    result = runner.invoke(app, ["train", str(config)])

    assert result.exit_code == 0, result.output
    assert "model did not learn" in result.output
    assert "does not beat always answering the most common label" in result.output
    # The data is the cause, and it is named before training starts and first among fixes.
    warned = result.output.index("data warning")
    assert warned < result.output.index("model did not learn")
    assert "share a text with a different label" in result.output[warned:]
    assert "Check the training data first" in result.output
    experiment_id = next(
        line.split()[-1]
        for line in result.output.splitlines()
        if line.strip().startswith("results")
    )
    metrics = json.loads((Path(experiment_id) / "metrics.json").read_text())
    assert metrics["quality"]["learned"] is False
    assert metrics["history"][0]["train_loss"] is not None
    assert metrics["quality"]["majority_label"] == "negative"
    assert metrics["quality"]["hint"].startswith("Check the training data first")
    assert any("different label" in w for w in metrics["datasets"]["train"]["warnings"])

    shown = runner.invoke(app, ["experiments", "show", "latest"])
    assert "learned nothing useful" in shown.output
    assert "(succeeded, model did not learn)" in shown.output.splitlines()[0]

    predicted = runner.invoke(app, ["predict", "--experiment", "latest", "the flight was fine"])
    assert predicted.exit_code == 0
    assert "model did not learn" in predicted.stderr
    listed = runner.invoke(app, ["experiments", "list"], env={"COLUMNS": "200"})
    row = next(
        line for line in listed.output.splitlines() if experiment_id.rsplit("/", 1)[-1] in line
    )
    assert "did not learn" in row
