"""A tiny real training run (random 2-layer BERT) and everything it must leave behind."""

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config_tree

from loraforge.config import TrainConfig, config_from_tree
from loraforge.data.validation import validate_file
from loraforge.errors import ConfigError, DatasetError, TrainingError
from loraforge.tracking import experiments
from loraforge.tracking.mlflow_bridge import list_artifacts, metric_history, run_summary
from loraforge.training.runner import run_training


def test_results_folder_layout(tiny_run):
    folder = tiny_run.results_dir
    assert folder.name == tiny_run.experiment_id
    assert tiny_run.experiment_id.startswith("tiny-")
    assert {p.name for p in folder.iterdir()} == {
        "config.yaml",
        "metrics.json",
        "logs.txt",
        "artifacts",
    }
    final = folder / "artifacts" / "final_model"
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "label_map.json",
    ):
        assert (final / name).is_file(), name
    assert json.loads((final / "label_map.json").read_text())["labels"] == ["negative", "positive"]
    assert "step" in (folder / "logs.txt").read_text()
    assert not list(folder.parent.glob("*.partial"))


def test_config_yaml_is_the_full_resolved_config(tiny_run):
    written = TrainConfig.model_validate(
        yaml.safe_load((tiny_run.results_dir / "config.yaml").read_text())
    )
    assert written.training.epochs == 3
    assert written.lora.target_modules  # resolved from null to the architecture's default
    assert written.data.train_file.is_absolute()


def test_metrics_json_has_what_a_user_needs(tiny_run):
    metrics = json.loads((tiny_run.results_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["final"]["accuracy"] <= 1.0
    assert 0.0 <= metrics["final"]["f1_macro"] <= 1.0
    assert [round(h["epoch"]) for h in metrics["history"]] == [1, 2, 3]
    assert all("eval_accuracy" in h and "eval_f1_macro" in h for h in metrics["history"])
    train = metrics["train"]
    assert (
        train["samples_per_second"] > 0
        and train["tokens_per_second"] > 0
        and train["runtime_s"] > 0
    )
    assert 0 < metrics["parameters"]["trainable"] < metrics["parameters"]["total"]
    assert metrics["datasets"]["train"]["rows"] == 96 and metrics["datasets"]["eval"]["rows"] == 32
    assert metrics["device"] == "cpu"
    assert {"torch", "transformers", "peft", "python"} <= set(metrics["packages"])
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 32


def test_dataset_version_is_recorded(tiny_run, data_files):
    metrics = json.loads((tiny_run.results_dir / "metrics.json").read_text())
    expected = validate_file(data_files["train"]).version
    assert metrics["datasets"]["train"]["version"] == expected


def test_checkpoints_keep_best_last_fastest_only(tiny_run):
    checkpoints = tiny_run.results_dir / "artifacts" / "checkpoints"
    roles = json.loads((checkpoints / "retention.json").read_text())
    kept = {c["checkpoint"] for c in roles.values()}
    on_disk = {p.name for p in checkpoints.iterdir() if p.is_dir()}
    assert on_disk == kept
    history = json.loads((tiny_run.results_dir / "metrics.json").read_text())["history"]
    best = max(h["eval_f1_macro"] for h in history)
    assert roles["best"]["metric"] == pytest.approx(best)
    assert roles["last"]["step"] == history[-1]["step"]
    assert roles["fastest"]["step"] <= roles["best"]["step"]


def test_database_row(tiny_run, shared_settings, data_files):
    record = experiments.get(shared_settings.resolved_database_url(), tiny_run.experiment_id)
    assert record.status == "succeeded"
    assert record.results_dir == str(tiny_run.results_dir)
    assert record.train_dataset_version == validate_file(data_files["train"]).version
    assert record.metrics["final"]["accuracy"] == tiny_run.metrics["final"]["accuracy"]
    assert record.labels == ["negative", "positive"]
    assert record.mlflow_run_id == tiny_run.mlflow_run_id
    assert record.finished_at is not None


def test_mlflow_run(tiny_run, shared_settings):
    uri = shared_settings.resolved_mlflow_tracking_uri()
    summary = run_summary(tracking_uri=uri, run_id=tiny_run.mlflow_run_id)
    assert summary["status"] == "FINISHED"
    assert summary["params"]["training.epochs"] == "3"
    assert summary["tags"]["loraforge.experiment_id"] == tiny_run.experiment_id
    assert len(metric_history(tracking_uri=uri, run_id=tiny_run.mlflow_run_id, key="loss")) >= 3
    assert (
        len(metric_history(tracking_uri=uri, run_id=tiny_run.mlflow_run_id, key="eval_accuracy"))
        == 3
    )
    artifacts = set(list_artifacts(tracking_uri=uri, run_id=tiny_run.mlflow_run_id))
    assert {"config.yaml", "metrics.json", "logs.txt", "final_model"} <= artifacts
    # Artifacts live under the data directory, never in ./mlruns of the working directory.
    assert summary["artifact_uri"].startswith(
        shared_settings.resolved_mlflow_artifact_root().as_uri()
    )


def _without_timings(history: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in h.items() if "runtime" not in k and "per_second" not in k}
        for h in history
    ]


def test_same_seed_same_result(tiny_run, tiny_model_dir, data_files, shared_settings):
    config = config_from_tree(tiny_config_tree(tiny_model_dir, data_files), source="test")
    again = run_training(config, settings=shared_settings)
    assert again.experiment_id != tiny_run.experiment_id
    assert _without_timings(again.metrics["history"]) == _without_timings(
        tiny_run.metrics["history"]
    )
    assert again.metrics["final"] == tiny_run.metrics["final"]


def test_eval_split_when_there_is_no_eval_file(tiny_model_dir, data_files, shared_settings):
    tree = tiny_config_tree(tiny_model_dir, data_files, epochs=1)
    del tree["data"]["eval_file"]
    tree["data"]["eval_split"] = 0.25
    result = run_training(config_from_tree(tree, source="test"), settings=shared_settings)
    datasets = result.metrics["datasets"]
    assert (datasets["train"]["rows"], datasets["eval"]["rows"]) == (72, 24)
    assert datasets["eval"]["split"] == 0.25


def _failed_folder(settings, experiment_id) -> Path:
    return settings.resolved_results_dir() / f"{experiment_id}.failed"


@pytest.mark.parametrize(
    ("change", "error", "reason"),
    [
        ({"lora": {"target_modules": ["no_such_layer"]}}, ConfigError, "target_modules"),
        ({"data": {"train_file": "/nonexistent/train.csv"}}, DatasetError, "does not exist"),
    ],
)
def test_failed_run_is_recorded_and_leaves_no_success_folder(
    tiny_model_dir, data_files, tmp_path, change, error, reason
):
    from conftest import make_settings

    settings = make_settings(tmp_path)
    tree = tiny_config_tree(tiny_model_dir, data_files, epochs=1)
    for section, values in change.items():
        tree[section].update(values)
    with pytest.raises(error, match=reason):
        run_training(config_from_tree(tree, source="test"), settings=settings)
    [record] = experiments.list_experiments(settings.resolved_database_url())
    assert record.status == "failed" and reason in record.error
    results = settings.resolved_results_dir()
    assert [p.name for p in results.iterdir()] == [f"{record.id}.failed"]
    failed = _failed_folder(settings, record.id)
    assert reason in (failed / "error.txt").read_text()
    assert not (failed / "metrics.json").exists() and not (failed / "artifacts").exists()
    assert "failed" in (failed / "logs.txt").read_text()
    if record.mlflow_run_id:
        summary = run_summary(
            tracking_uri=settings.resolved_mlflow_tracking_uri(), run_id=record.mlflow_run_id
        )
        assert summary["status"] == "FAILED"


@pytest.mark.parametrize(
    ("raised", "expected", "reason"),
    [
        (KeyboardInterrupt(), KeyboardInterrupt, "interrupted by the user"),
        (torch.OutOfMemoryError("CUDA out of memory"), TrainingError, "training ran out of memory"),
    ],
)
def test_run_dying_mid_training_is_recorded_as_failed(
    tiny_model_dir, data_files, tmp_path, monkeypatch, raised, expected, reason
):
    from conftest import make_settings

    from loraforge.training import callbacks

    settings = make_settings(tmp_path)

    def die(self, args, state, control, **kwargs):
        if state.global_step == 8:  # after the first epoch's checkpoint
            raise raised

    monkeypatch.setattr(callbacks.ThroughputCallback, "on_step_end", die, raising=False)
    config = config_from_tree(tiny_config_tree(tiny_model_dir, data_files), source="t")
    with pytest.raises(expected):
        run_training(config, settings=settings)
    [record] = experiments.list_experiments(settings.resolved_database_url())
    assert record.status == "failed" and record.error.startswith(reason)
    assert not (settings.resolved_results_dir() / record.id).exists()
    failed = _failed_folder(settings, record.id)
    assert not (failed / "artifacts").exists() and not (failed / "metrics.json").exists()
    summary = run_summary(
        tracking_uri=settings.resolved_mlflow_tracking_uri(), run_id=record.mlflow_run_id
    )
    assert summary["status"] == "FAILED"


def test_unreachable_hub_model_fails_fast_with_a_hint(monkeypatch):
    from loraforge.models import loading
    from loraforge.models.catalog import resolve_base_model

    monkeypatch.setattr(loading, "_hub_reachable", lambda: False)
    monkeypatch.setattr(loading, "_cached", lambda resolved: False)
    with pytest.raises(ConfigError, match="hub cannot be reached") as caught:
        loading.load_classifier(resolve_base_model("roberta-base"), ["a", "b"])
    assert "minilm-l6" in caught.value.hint
    loading.ensure_loadable(resolve_base_model("minilm-l6"))  # bundled: never needs the hub
