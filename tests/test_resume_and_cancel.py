"""A run killed outright resumes from its last checkpoint; a cancelled run leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_settings, tiny_config_tree

from loraforge.config import config_from_tree
from loraforge.errors import Cancelled
from loraforge.tracking import experiments
from loraforge.tracking.mlflow_bridge import run_summary
from loraforge.training.runner import run_training

SLOW_RUN = """
import json, sys, time
from loraforge.config import config_from_tree
from loraforge.settings import Settings
from loraforge.training.runner import run_training
tree, root, experiment_id = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
settings = Settings(data_dir=root + "/state", results_dir=root + "/results")
# Each step takes a while, so the parent can kill this process mid-run.
run_training(config_from_tree(tree, source="t"), settings=settings, experiment_id=experiment_id,
             should_stop=lambda: time.sleep(0.4) or False)
"""


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny_model_dir, data_files, tmp_path):
    tree = tiny_config_tree(tiny_model_dir, data_files)  # 6 steps per epoch, 3 epochs
    experiment_id = "resumed-1"
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, json.dumps(tree), str(tmp_path), experiment_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first_checkpoint = (
        tmp_path
        / "results"
        / f"{experiment_id}.partial"
        / "artifacts"
        / "checkpoints"
        / "checkpoint-6"
    )
    deadline = time.monotonic() + 120
    while not (first_checkpoint / "trainer_state.json").is_file():
        assert child.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)  # no clean-up code runs, as when a worker dies
    child.wait()

    settings = make_settings(tmp_path)
    interrupted = experiments.get(settings.resolved_database_url(), experiment_id)
    assert interrupted.status == "running"
    result = run_training(
        config_from_tree(tree, source="t"), settings=settings, experiment_id=experiment_id
    )
    assert result.experiment_id == experiment_id
    assert result.metrics["train"]["resumed_from_epoch"] >= 1.0
    assert [round(h["epoch"]) for h in result.metrics["history"]] == [1, 2, 3]
    assert result.mlflow_run_id == interrupted.mlflow_run_id
    summary = run_summary(
        tracking_uri=settings.resolved_mlflow_tracking_uri(), run_id=result.mlflow_run_id
    )
    assert summary["status"] == "FINISHED"
    assert (tmp_path / "results" / experiment_id / "metrics.json").is_file()
    assert not (tmp_path / "results" / f"{experiment_id}.partial").exists()


def test_a_cancelled_run_is_recorded_and_cleaned_up(tiny_model_dir, data_files, tmp_path):
    settings = make_settings(tmp_path)
    steps = iter(range(100))
    with pytest.raises(Cancelled):
        run_training(
            config_from_tree(tiny_config_tree(tiny_model_dir, data_files), source="t"),
            settings=settings,
            should_stop=lambda: next(steps) >= 7,  # after the first epoch's checkpoint
        )
    [record] = experiments.list_experiments(settings.resolved_database_url())
    assert record.status == "cancelled"
    assert list(Path(settings.resolved_results_dir()).iterdir()) == []
    summary = run_summary(
        tracking_uri=settings.resolved_mlflow_tracking_uri(), run_id=record.mlflow_run_id
    )
    assert summary["status"] == "FAILED"
