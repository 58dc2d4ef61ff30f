import json

import pytest
from typer.testing import CliRunner

from loraforge.cli import app
from loraforge.errors import NotFound
from loraforge.inference.predictor import Predictor, final_model_dir
from loraforge.tracking import experiments
from loraforge.tracking.comparison import compare

runner = CliRunner()


def test_prediction_format(tiny_run, tiny_model_dir):
    predictor = Predictor(final_model_dir(tiny_run.results_dir))
    texts = ["great wonderful flight", "awful terrible food", "the service"]
    predictions = predictor.predict(texts)
    assert len(predictions) == 3
    for prediction in predictions:
        answer = prediction.to_dict()
        assert set(answer) == {"label", "probability", "latency_ms", "base_model", "language"}
        assert answer["label"] in ("negative", "positive")
        assert 0.5 <= answer["probability"] <= 1.0
        assert answer["latency_ms"] > 0
        assert answer["base_model"] == str(tiny_model_dir)
        # The training data's language (a local folder's catalog language is unknown).
        assert answer["language"] == "en"


def test_predictions_match_the_evaluated_model(tiny_run, data_files):
    """The merged adapter predicts what the Trainer evaluated: same accuracy on eval.csv."""
    import pandas as pd

    evaluation = pd.read_csv(data_files["eval"])
    predictor = Predictor(final_model_dir(tiny_run.results_dir))
    predicted = [p.label for p in predictor.predict(list(evaluation["text"]))]
    accuracy = sum(p == y for p, y in zip(predicted, evaluation["label"], strict=True)) / len(
        predicted
    )
    assert accuracy == pytest.approx(tiny_run.metrics["final"]["accuracy"], abs=1 / 32)


def test_cli_predict_prints_one_json_object_per_text(tiny_run, env_settings, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("good great\n\nbad awful\n")
    result = runner.invoke(
        app, ["predict", "--experiment", tiny_run.experiment_id, "happy love", "--file", str(texts)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    # One answer per text, the file's blank line included (tests/test_predict_file.py).
    assert [line["text"] for line in lines] == ["happy love", "good great", "", "bad awful"]
    assert [line["label"] is None for line in lines] == [False, False, True, False]
    assert all(line["label"] in ("negative", "positive") for line in lines if line["text"])


def test_cli_predict_latest_and_unknown(tiny_run, env_settings):
    result = runner.invoke(app, ["predict", "--experiment", "latest", "good"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", "--experiment", "no-such-run", "good"])
    assert result.exit_code == 3
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_latest_is_the_newest_success(tiny_run, shared_settings):
    url = shared_settings.resolved_database_url()
    newest = experiments.list_experiments(url, status="succeeded")[0]
    assert experiments.get(url, "latest").id == newest.id
    with pytest.raises(NotFound):
        experiments.get(url, "missing-id")


def test_compare_shows_config_differences_and_metrics(
    tiny_run, tiny_model_dir, data_files, shared_settings
):
    from conftest import tiny_config_tree

    from loraforge.config import config_from_tree
    from loraforge.training.runner import run_training

    tree = tiny_config_tree(tiny_model_dir, data_files, epochs=1, learning_rate=1e-3)
    tree["experiment_name"] = "other"
    other = run_training(config_from_tree(tree, source="test"), settings=shared_settings)
    url = shared_settings.resolved_database_url()
    result = compare(
        [experiments.get(url, tiny_run.experiment_id), experiments.get(url, other.experiment_id)]
    )
    assert result.ids == [tiny_run.experiment_id, other.experiment_id]
    assert result.config_differences == {
        "training.epochs": [3, 1],
        "training.learning_rate": [5e-3, 1e-3],
    }
    assert result.metrics["accuracy"] == [
        tiny_run.metrics["final"]["accuracy"],
        other.metrics["final"]["accuracy"],
    ]
    assert result.metrics["epochs"] == [3.0, 1.0]


def test_cli_experiments_list_show_compare(tiny_run, env_settings):
    listed = runner.invoke(app, ["experiments", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    ids = [r["id"] for r in json.loads(listed.output)]
    assert tiny_run.experiment_id in ids
    shown = runner.invoke(app, ["experiments", "show", tiny_run.experiment_id, "--json"])
    assert (
        json.loads(shown.output)["metrics"]["final"]["accuracy"]
        == tiny_run.metrics["final"]["accuracy"]
    )
    table = runner.invoke(app, ["experiments", "show", tiny_run.experiment_id])
    assert "per epoch" in table.output and "checkpoints" in table.output
    compared = runner.invoke(app, ["experiments", "compare", *ids[:2]])
    assert compared.exit_code == 0, compared.output
    assert "accuracy" in compared.output
    alone = runner.invoke(app, ["experiments", "compare", ids[0]])
    assert alone.exit_code == 2


def test_cli_train_with_overrides(tiny_model_dir, data_files, env_settings, tmp_path):
    import yaml
    from conftest import tiny_config_tree

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config_tree(tiny_model_dir, data_files)))
    result = runner.invoke(
        app, ["train", str(config), "--set", "training.epochs=1", "--set", "experiment_name=cli"]
    )
    assert result.exit_code == 0, result.output
    assert "cli-" in result.output and "accuracy" in result.output
    record = experiments.get(env_settings.resolved_database_url(), "latest")
    assert record.name == "cli" and record.config["training"]["epochs"] == 1


def test_cli_train_refuses_bad_config_with_exit_2(tmp_path, env_settings):
    config = tmp_path / "config.yaml"
    config.write_text("experiment_name: x\ndata:\n  train_file: a.csv\nlora:\n  rank: 4\n")
    result = runner.invoke(app, ["train", str(config)])
    assert result.exit_code == 2
    assert "lora.rank is not a known field" in result.output and "Traceback" not in result.output
