"""Experiments (own; admin all): list, one, delete, their MLflow runs, and predictions
from them or from registered model versions; where the MLflow UI is."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict
from pathlib import Path, PureWindowsPath
from typing import Annotated, Any

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from loraforge.api.deps import AuditDep, CurrentUser, SessionDep, SettingsDep
from loraforge.api.errors import error_responses
from loraforge.api.schemas import (
    ExperimentPublic,
    ExperimentsPublic,
    ExperimentStatus,
    MlflowPublic,
    MlflowRunPublic,
    PredictionPublic,
    PredictionsPublic,
    PredictRequest,
)
from loraforge.audit import log as audit
from loraforge.auth.users import UserRecord
from loraforge.data import store
from loraforge.errors import Conflict, InvalidRequest, LoraforgeError, NotFound
from loraforge.registry import service as registry
from loraforge.serving import local
from loraforge.tracking import experiments, runs
from loraforge.tracking.experiments import ExperimentRecord

logger = logging.getLogger("loraforge.api.experiments")

router = APIRouter(tags=["experiments"], responses=error_responses(401))
# Public: where the MLflow UI is, for the web UI's links (no 401 to document).
public_router = APIRouter(tags=["mlflow"])


def without_server_paths(value: Any, uploads: dict[str, str] | None = None) -> Any:
    """Absolute paths (data files, the bundled model's folder) become bare file names; a
    stored upload's generated name becomes the name it was uploaded under."""
    uploads = uploads or {}
    if isinstance(value, dict):
        return {k: without_server_paths(v, uploads) for k, v in value.items()}
    if isinstance(value, list):
        return [without_server_paths(v, uploads) for v in value]
    whole_path = isinstance(value, str) and not any(c.isspace() for c in value)
    if whole_path and (value.startswith("/") or PureWindowsPath(value).drive):
        bare = PureWindowsPath(value).name if PureWindowsPath(value).drive else Path(value).name
        return uploads.get(bare, bare)
    if isinstance(value, str) and "/" in value:
        # A path inside a text (an error message): its last part only.
        return _EMBEDDED_PATH.sub(lambda m: uploads.get(m[1], m[1]), value)
    return value


# An absolute POSIX path inside a text, not part of a URL ("http://host/...") or a
# relative path ("data/train.csv").
_EMBEDDED_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"`]+/)+([^\s/'\"`:,;)]+)")


def _public(records: list[ExperimentRecord], session: Session) -> list[ExperimentPublic]:
    data_files = {
        Path(path).name
        for r in records
        for path in (
            r.config.get("data", {}).get("train_file"),
            r.config.get("data", {}).get("eval_file"),
        )
        if path
    }
    uploads = store.upload_names(session, data_files)
    return [
        ExperimentPublic(
            **without_server_paths(
                {k: v for k, v in asdict(r).items() if k in ExperimentPublic.model_fields}, uploads
            ),
            learned=r.learned,
        )
        for r in records
    ]


def _visible(db_url: str, experiment_id: str, user: UserRecord) -> ExperimentRecord:
    record = experiments.find(db_url, experiment_id)
    if record is None or (not user.is_admin and record.owner_id != user.id):
        raise NotFound(f"experiment {experiment_id} does not exist")
    return record


@router.get(
    "/experiments",
    response_model=ExperimentsPublic,
    summary="List experiments",
    responses=error_responses(422),
)
def list_experiments(
    user: CurrentUser,
    settings: SettingsDep,
    session: SessionDep,
    status: ExperimentStatus | None = None,
) -> ExperimentsPublic:
    """Your experiments, newest first (an admin sees everyone's), optionally only those
    with one `status`. Each has its config, final metrics and per-epoch history."""
    found = experiments.list_experiments(
        settings.resolved_database_url(), status=status, owner_id=None if user.is_admin else user.id
    )
    return ExperimentsPublic(data=_public(found, session), count=len(found))


@router.get(
    "/experiments/{experiment_id}",
    response_model=ExperimentPublic,
    summary="One experiment",
    responses=error_responses(404),
)
def get_experiment(
    experiment_id: str, user: CurrentUser, settings: SettingsDep, session: SessionDep
) -> ExperimentPublic:
    """Config, data set versions, final metrics (accuracy, macro-F1, confusion matrix),
    per-epoch history, and the error if it failed: yours (an admin: any)."""
    found = _visible(settings.resolved_database_url(), experiment_id, user)
    return _public([found], session)[0]


@router.get(
    "/experiments/mlflow/{run_id}",
    response_model=MlflowRunPublic,
    summary="An experiment's MLflow run",
    responses=error_responses(404, 422, 503),
)
def get_mlflow_run(
    run_id: Annotated[
        str,
        PathParam(
            pattern=r"^[A-Za-z0-9_-]{1,64}$",
            description="The run's id (an experiment's `mlflow_run_id`).",
            examples=["3e1f0c2a9b8d4e6f8a7b6c5d4e3f2a1b"],
        ),
    ],
    user: CurrentUser,
    settings: SettingsDep,
) -> MlflowRunPublic:
    """Params, latest metrics and artifact list of the MLflow run behind one of your
    experiments (an admin: anyone's), and the run's page in the MLflow UI. A run of
    someone else's experiment answers as a missing one (404); 503 if MLflow cannot be
    read."""
    found = runs.run_for(settings, run_id, user)
    return MlflowRunPublic(**without_server_paths(asdict(found)) | {"ui_url": found.ui_url})


@public_router.get("/mlflow", response_model=MlflowPublic, summary="Where the MLflow UI is")
def mlflow_location(settings: SettingsDep) -> MlflowPublic:
    """The MLflow UI's address (`loraforge up` starts it, by default on port 5000) and,
    when it is an HTTP server, the tracking URI (without credentials). Public."""
    return MlflowPublic(
        ui_url=runs.ui_url(settings), tracking_uri=runs.public_tracking_uri(settings)
    )


@router.delete(
    "/experiments/{experiment_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an experiment",
    responses=error_responses(404, 409),
)
def delete_experiment(
    experiment_id: str, user: CurrentUser, settings: SettingsDep, record: AuditDep
) -> Response:
    """Deletes its record (and its finished job's), its results folder (model,
    checkpoints, metrics, logs) and its MLflow run: yours (an admin: any). Refused with
    409 while a queued or running job trains it: cancel the job first. If the MLflow
    store cannot be reached, the rest is still deleted and the run is named in the
    server's log. Audited, refusals too."""
    try:
        result = experiments.delete(
            settings.resolved_database_url(),
            experiment_id,
            tracking_uri=settings.resolved_mlflow_tracking_uri(),
            user_id=user.id,
            is_admin=user.is_admin,
        )
    except LoraforgeError as error:
        record(
            "experiment.delete",
            audit.DENIED if isinstance(error, Conflict) else audit.FAILURE,
            actor=user,
            target=f"experiment:{experiment_id[:200]}",
            detail={"reason": error.message[:500]},
        )
        record.session.commit()
        raise
    # Its model may be loaded for /predict; nothing can ask for it now (the row is gone),
    # but the memory should go with it.
    local.shared().forget(experiment_id)
    record(
        "experiment.delete",
        audit.SUCCESS,
        actor=user,
        target=f"experiment:{experiment_id}",
        detail={"warnings": result.warnings} if result.warnings else None,
    )
    record.session.commit()
    return Response(status_code=204)


@router.post(
    "/predict",
    response_model=PredictionsPublic,
    summary="Classify texts",
    responses=error_responses(400, 404, 422, 429, 504),
)
async def predict(
    body: PredictRequest, user: CurrentUser, settings: SettingsDep
) -> PredictionsPublic:
    """Label, probability and latency for each text, in the order sent, from either a
    succeeded experiment's model (`experiment_id`: yours; an admin: any) or a registered
    model version (`model`: `NAME@production`, `NAME@staging` or `NAME:3`; usable by
    every signed-in user). Give exactly one. Empty or blank texts are refused (422,
    naming their index), so answers always line up with the texts."""
    key, model_dir = await run_in_threadpool(_model_dir, body, user, settings)
    # The serving engine, in process: one base model, adapters cached, requests batched.
    answers = await local.shared().predict_async(key, model_dir, body.texts)
    return PredictionsPublic(
        data=[PredictionPublic(**without_server_paths(a.to_dict())) for a in answers]
    )


def _model_dir(body: PredictRequest, user: UserRecord, settings) -> tuple[str, Path]:
    """The experiment id and adapter folder to predict with, after the access check of
    its kind."""
    from loraforge.inference.predictor import final_model_dir

    if body.model is not None:
        # Registered versions are the team's: no owner check, by design.
        found = registry.resolve_reference(settings, body.model)
        if found.model_dir is None:
            raise NotFound(f"{found.reference} has no model files")
        return found.experiment_id, found.model_dir
    record = _visible(settings.resolved_database_url(), body.experiment_id, user)
    if record.status != experiments.SUCCEEDED:
        raise InvalidRequest(
            f"experiment {record.id} has status {record.status}; only a succeeded one has a model"
        )
    return record.id, final_model_dir(Path(record.results_dir))
