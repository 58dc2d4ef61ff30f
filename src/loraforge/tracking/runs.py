"""An experiment's MLflow run as its owner sees it, and where the MLflow UI is.

Runs are as private as the experiments they track: one whose experiment is someone
else's reads exactly as a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select

from loraforge.auth.users import UserRecord
from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment
from loraforge.errors import NotFound
from loraforge.settings import Settings
from loraforge.tracking import mlflow_bridge


@dataclass(frozen=True)
class RunDetails:
    run_id: str
    experiment_id: str  # ours
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    artifacts: list[str]
    ui_url: str


def ui_url(settings: Settings) -> str:
    """Where people open the MLflow UI: the setting, or, when it is left at its default
    and the tracking URI is an MLflow server, that server (which is its own UI)."""
    if "mlflow_ui_url" not in settings.model_fields_set:
        server = public_tracking_uri(settings)
        if server is not None:
            return server.rstrip("/")
    return settings.mlflow_ui_url.rstrip("/")


def run_ui_url(settings: Settings, mlflow_experiment_id: str, run_id: str) -> str:
    """The run's page in MLflow's UI (a single-page app: the route is after the #)."""
    return f"{ui_url(settings)}/#/experiments/{mlflow_experiment_id}/runs/{run_id}"


def public_tracking_uri(settings: Settings) -> str | None:
    """The tracking URI when a client could use it: an HTTP(S) server, without the
    credentials it may carry. The embedded store is a server path: not shown."""
    uri = settings.resolved_mlflow_tracking_uri()
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def run_for(settings: Settings, run_id: str, user: UserRecord) -> RunDetails:
    """The MLflow run behind one of the user's experiments (an admin: anyone's)."""
    with session_scope(settings.resolved_database_url()) as session:
        row = session.scalar(select(Experiment).where(Experiment.mlflow_run_id == run_id))
        owner_id = row.owner_id if row is not None else None
        experiment_id = row.id if row is not None else None
    if experiment_id is None or (not user.is_admin and owner_id != user.id):
        raise NotFound(f"no MLflow run {run_id} among your experiments")
    found = mlflow_bridge.run_details(
        tracking_uri=settings.resolved_mlflow_tracking_uri(), run_id=run_id
    )
    return RunDetails(
        run_id=run_id,
        experiment_id=experiment_id,
        status=found["status"],
        params=found["params"],
        metrics=found["metrics"],
        artifacts=found["artifacts"],
        ui_url=run_ui_url(settings, found["experiment_id"], run_id),
    )
