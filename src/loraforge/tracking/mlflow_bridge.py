"""The one module that imports MLflow.

It uses an explicit ``MlflowClient`` bound to the configured tracking URI, never MLflow's
process-global active run, so several runs (or a worker's many jobs) never cross.
Artifacts of experiments we create go under the data directory instead of ``./mlruns``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from loraforge.errors import Unavailable


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    # MLflow sets up its own console logger on import and announces store migrations at
    # INFO; a CLI user should see our progress bar, not that.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # The registry lives beside the runs: MLflow 3 may default the registry URI elsewhere
    # (e.g. Unity Catalog for a Databricks tracking URI).
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


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


MAX_LISTED_ARTIFACTS = 1000


def run_details(*, tracking_uri: str, run_id: str) -> dict[str, Any]:
    """One run for a reader: its MLflow experiment, status, params, latest metrics and
    every artifact path (files, walked down from the root; at most MAX_LISTED_ARTIFACTS).
    A run MLflow does not have raises NotFound; a store that cannot be reached, Unavailable.
    """
    from loraforge.errors import NotFound

    try:
        client = _client(tracking_uri)
        run = client.get_run(run_id)
        artifacts: list[str] = []
        folders: list[str | None] = [None]
        while folders and len(artifacts) < MAX_LISTED_ARTIFACTS:
            for entry in client.list_artifacts(run_id, folders.pop()):
                if entry.is_dir:
                    folders.append(entry.path)
                else:
                    artifacts.append(entry.path)
    # Any other failure is the store failing us, as RegistryMirror treats it: MLflow wraps
    # most errors, but not all (a database driver's own error can come through).
    except Exception as error:
        if _is_missing(error):
            raise NotFound(f"MLflow has no run {run_id}") from None
        raise Unavailable(
            f"the MLflow store at {public_uri(tracking_uri)} cannot be read: {_reason(error)}",
            hint="Check that MLflow is running and that LORAFORGE_MLFLOW_TRACKING_URI "
            "points at it, then try again.",
        ) from error
    return {
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "artifacts": sorted(artifacts[:MAX_LISTED_ARTIFACTS]),
    }


# --- Model registry mirror -------------------------------------------------------------
#
# Our SQL tables are the registry's record of truth; MLflow shows the same thing in its own
# UI and resolves ``models:/NAME@production``. Stages are aliases (``production``, and
# ``staging`` for the newest Staging version) plus a ``stage`` tag on every version: the
# stage API (``transition_model_version_stage``) is deprecated since MLflow 2.9.

STAGE_TAG = "stage"
VERSION_TAG = "loraforge.version"  # our version number; marks a version as ours
EXPERIMENT_TAG = "loraforge.experiment_id"
PRODUCTION_ALIAS, STAGING_ALIAS = "production", "staging"
CARD_ARTIFACT_DIR = "model_card"
_REASON_LIMIT = 300


def public_uri(uri: str) -> str:
    """The tracking URI as it may be shown to anyone: no user, password, query or token,
    and of a local store only the file's name (a server path is nobody else's business)."""
    parts = urlsplit(uri)
    if parts.scheme in ("sqlite", "file", ""):
        name = Path(parts.path).name
        return f"{parts.scheme}:///…/{name}" if parts.scheme else f"…/{name}"
    if not parts.netloc:  # "databricks", "databricks://profile": the scheme says enough
        return parts.scheme
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"//[^/@\s]+@", "//", text)  # credentials inside a URL
    return text[:_REASON_LIMIT] + ("…" if len(text) > _REASON_LIMIT else "")


def _is_missing(error: BaseException) -> bool:
    return getattr(error, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


@dataclass(frozen=True)
class MirrorVersion:
    """One version as MLflow should show it."""

    version: int  # ours
    mlflow_version: str
    stage: str  # none | Staging | Production | Archived


class RegistryMirror:
    """The MLflow side of the model registry; every failure is ``Unavailable``.

    Callers change MLflow only inside their SQL transaction, before committing, so an
    ``Unavailable`` here lets them roll back and leave both stores as they were.
    """

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri
        self._client_instance = None

    @property
    def client(self):
        if self._client_instance is None:
            with self._reachable():
                self._client_instance = _client(self.uri)
        return self._client_instance

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except Unavailable:
            raise
        except Exception as error:
            if _is_missing(error):  # reachable, but something was removed behind our back
                raise Unavailable(
                    f"the MLflow store at {public_uri(self.uri)} lacks what the registry "
                    f"expects: {_reason(error)}",
                    hint="An admin can repair MLflow from the registry with "
                    "`loraforge registry sync`; then try again.",
                ) from error
            raise Unavailable(
                f"the MLflow store at {public_uri(self.uri)} cannot be reached: {_reason(error)}",
                hint="Check that MLflow is running and that LORAFORGE_MLFLOW_TRACKING_URI "
                "points at it, then try again.",
            ) from error

    def model_source(self, run_id: str | None, model_dir: Path | None) -> str:
        """Where a version's files are: the run's ``final_model`` artifact, or for an
        experiment without a run the adapter folder itself (as a file URI)."""
        if run_id is None:
            return model_dir.resolve().as_uri() if model_dir is not None else ""
        with self._reachable():
            run = self.client.get_run(run_id)
        return f"{run.info.artifact_uri.rstrip('/')}/final_model"

    def ensure_model(self, name: str, description: str | None) -> bool:
        """Create the registered model if MLflow lacks it; True when it was created."""
        with self._reachable():
            try:
                self.client.get_registered_model(name)
                return False
            except Exception as error:
                if not _is_missing(error):
                    raise
            self.client.create_registered_model(name, description=description)
            return True

    def set_model_description(self, name: str, description: str | None) -> bool:
        with self._reachable():
            current = self.client.get_registered_model(name).description or None
            if current == (description or None):
                return False
            self.client.update_registered_model(name, description=description or "")
            return True

    def create_version(
        self,
        name: str,
        *,
        version: int,
        source: str,
        run_id: str | None,
        experiment_id: str,
        stage: str,
        description: str | None,
    ) -> str:
        """A new MLflow version of ``name`` mirroring our ``version``; MLflow's number."""
        tags = {STAGE_TAG: stage, VERSION_TAG: str(version), EXPERIMENT_TAG: experiment_id}
        with self._reachable():
            created = self.client.create_model_version(
                name,
                source,
                run_id=run_id,
                tags=tags,
                description=description,
                await_creation_for=0,  # the SQL and file stores create versions READY
            )
        return str(created.version)

    def versions(self, name: str) -> dict[str, Any]:
        """MLflow's live versions of ``name`` by their number (deleted ones are gone)."""
        with self._reachable():
            found = self.client.search_model_versions(f"name = '{name}'")
        return {str(v.version): v for v in found}

    def delete_version(self, name: str, mlflow_version: str) -> None:
        with self._reachable():
            try:
                self.client.delete_model_version(name, mlflow_version)
            except Exception as error:
                if not _is_missing(error):
                    raise

    def delete_model(self, name: str) -> None:
        with self._reachable():
            try:
                self.client.delete_registered_model(name)
            except Exception as error:
                if not _is_missing(error):
                    raise

    def apply_stages(self, name: str, wanted: list[MirrorVersion]) -> list[str]:
        """Make tags and aliases of ``name`` tell the stages in ``wanted``; what changed.

        ``production`` points at the Production version, ``staging`` at the newest Staging
        one; an alias with no version in its stage is removed, as is one pointing at a
        version that should not carry it.
        """
        changes: list[str] = []
        with self._reachable():
            live = self.versions(name)
            for item in wanted:
                mv = live.get(item.mlflow_version)
                if mv is None:
                    continue  # missing: the caller re-creates it
                for key, value in ((STAGE_TAG, item.stage), (VERSION_TAG, str(item.version))):
                    if mv.tags.get(key) != value:
                        self.client.set_model_version_tag(name, item.mlflow_version, key, value)
                        changes.append(
                            f"{name}:{item.version}: tag {key} set to {value!r}"
                            + (f" (was {mv.tags[key]!r})" if key in mv.tags else "")
                        )
            staging = [w for w in wanted if w.stage == "Staging"]
            target = {
                PRODUCTION_ALIAS: next((w for w in wanted if w.stage == "Production"), None),
                STAGING_ALIAS: max(staging, key=lambda w: w.version) if staging else None,
            }
            aliases = dict(self.client.get_registered_model(name).aliases or {})
            for alias, item in target.items():
                current = aliases.get(alias)
                if item is None:
                    if current is not None:
                        self.client.delete_registered_model_alias(name, alias)
                        changes.append(
                            f"{name}: alias {alias} removed (was MLflow version {current})"
                        )
                elif str(current) != item.mlflow_version:
                    self.client.set_registered_model_alias(name, alias, item.mlflow_version)
                    changes.append(
                        f"{name}: alias {alias} set to version {item.version} "
                        f"(MLflow version {item.mlflow_version})"
                    )
        return changes

    def log_card(self, run_id: str, name: str, files: list[Path]) -> None:
        """The card's files as artifacts of the run, under ``model_card/NAME/``."""
        with self._reachable():
            for path in files:
                self.client.log_artifact(
                    run_id, str(path), artifact_path=f"{CARD_ARTIFACT_DIR}/{name}"
                )

    def card_files(self, run_id: str, name: str) -> list[str]:
        """Names of the card files logged for ``name`` in the run (none if the run is gone)."""
        with self._reachable():
            try:
                found = self.client.list_artifacts(run_id, f"{CARD_ARTIFACT_DIR}/{name}")
            except Exception as error:
                if not _is_missing(error):
                    raise
                return []
        return [Path(a.path).name for a in found]
