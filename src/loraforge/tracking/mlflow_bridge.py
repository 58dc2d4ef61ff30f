"""The one module that imports MLflow.

It uses an explicit ``MlflowClient`` bound to the configured tracking URI, never MLflow's
process-global active run, so several runs (or a worker's many jobs) never cross.
Artifacts of experiments we create go under the data directory instead of ``./mlruns``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    # MLflow sets up its own console logger on import and announces store migrations at
    # INFO; a CLI user should see our progress bar, not that.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=tracking_uri)


_PARAM_VALUE_LIMIT = 6000


class MlflowRun:
    def __init__(self, *, tracking_uri: str, artifact_root: Path, experiment_name: str) -> None:
        self.client = _client(tracking_uri)
        self.experiment_id = self._experiment_id(experiment_name, artifact_root)
        self.run_id: str | None = None

    def _experiment_id(self, name: str, artifact_root: Path) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = (artifact_root / name).resolve()
        location.mkdir(parents=True, exist_ok=True)
        return self.client.create_experiment(name, artifact_location=location.as_uri())

    def start(self, *, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        from mlflow.entities import Param, RunTag

        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        items = [Param(k, str(v)[:_PARAM_VALUE_LIMIT]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow's per-batch limit on params
            self.client.log_batch(self.run_id, params=items[start : start + 100])
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        return self.run_id

    def resume(self, run_id: str) -> str:
        """Continue a run that an interrupted attempt started: same id, status RUNNING again."""
        self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        return run_id

    def log_metrics(self, metrics: dict[str, float], *, step: int) -> None:
        from mlflow.entities import Metric

        if self.run_id is None or not metrics:
            return
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        if self.run_id is not None and tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_artifacts(self, local_dir: Path, *, artifact_path: str | None = None) -> None:
        if self.run_id is not None:
            self.client.log_artifacts(self.run_id, str(local_dir), artifact_path=artifact_path)

    def log_artifact(self, local_file: Path) -> None:
        if self.run_id is not None:
            self.client.log_artifact(self.run_id, str(local_file))

    def finish(self, *, succeeded: bool) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status="FINISHED" if succeeded else "FAILED")


def run_summary(*, tracking_uri: str, run_id: str) -> dict[str, Any]:
    """Status, params and latest metrics of one run (for tests and `experiments show`)."""
    run = _client(tracking_uri).get_run(run_id)
    return {
        "status": run.info.status,
        "artifact_uri": run.info.artifact_uri,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
    }


def metric_history(*, tracking_uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    history = _client(tracking_uri).get_metric_history(run_id, key)
    return [(m.step, m.value) for m in history]


def list_artifacts(*, tracking_uri: str, run_id: str, path: str | None = None) -> list[str]:
    return [a.path for a in _client(tracking_uri).list_artifacts(run_id, path)]


def delete_run(*, tracking_uri: str, run_id: str) -> None:
    """Remove a run for good: its artifacts, then the run itself.

    MLflow's public ``delete_run`` only marks a run deleted (it stays on disk until an
    operator runs ``mlflow gc``); this does what ``mlflow gc`` does for one run. Stores
    that cannot hard-delete keep the run marked deleted, hidden from MLflow's UI. A run
    that no longer exists is not an error: deleting twice gives the same result.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = _client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return
        raise
    if run.info.lifecycle_stage != "deleted":
        client.delete_run(run_id)
    get_artifact_repository(run.info.artifact_uri).delete_artifacts()
    store = client._tracking_client.store  # the same store `mlflow gc` hard-deletes through
    if hasattr(store, "_hard_delete_run"):
        store._hard_delete_run(run_id)
