"""Experiments (own; admin all) and predictions from them."""

from __future__ import annotations

from dataclasses import asdict
from functools import lru_cache
from pathlib import Path, PureWindowsPath
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from loraforge.api.deps import CurrentUser, SessionDep, SettingsDep
from loraforge.api.schemas import (
    ExperimentPublic,
    ExperimentsPublic,
    PredictionPublic,
    PredictionsPublic,
    PredictRequest,
)
from loraforge.auth.users import UserRecord
from loraforge.data import store
from loraforge.errors import InvalidRequest, NotFound
from loraforge.tracking import experiments
from loraforge.tracking.experiments import ExperimentRecord

router = APIRouter(tags=["experiments"])


def without_server_paths(value: Any, uploads: dict[str, str] | None = None) -> Any:
    """Absolute paths (data files, the bundled model's folder) become bare file names; a
    stored upload's generated name becomes the name it was uploaded under."""
    uploads = uploads or {}
    if isinstance(value, dict):
        return {k: without_server_paths(v, uploads) for k, v in value.items()}
    if isinstance(value, list):
        return [without_server_paths(v, uploads) for v in value]
    if isinstance(value, str) and (value.startswith("/") or PureWindowsPath(value).drive):
        bare = PureWindowsPath(value).name if PureWindowsPath(value).drive else Path(value).name
        return uploads.get(bare, bare)
    return value


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
            )
        )
        for r in records
    ]


def _visible(db_url: str, experiment_id: str, user: UserRecord) -> ExperimentRecord:
    record = experiments.find(db_url, experiment_id)
    if record is None or (not user.is_admin and record.owner_id != user.id):
        raise NotFound(f"experiment {experiment_id} does not exist")
    return record


@router.get("/experiments", response_model=ExperimentsPublic)
def list_experiments(
    user: CurrentUser, settings: SettingsDep, session: SessionDep, status: str | None = None
) -> ExperimentsPublic:
    found = experiments.list_experiments(
        settings.resolved_database_url(), status=status, owner_id=None if user.is_admin else user.id
    )
    return ExperimentsPublic(data=_public(found, session), count=len(found))


@router.get("/experiments/{experiment_id}", response_model=ExperimentPublic)
def get_experiment(
    experiment_id: str, user: CurrentUser, settings: SettingsDep, session: SessionDep
) -> ExperimentPublic:
    found = _visible(settings.resolved_database_url(), experiment_id, user)
    return _public([found], session)[0]


@lru_cache(maxsize=4)
def _predictor(model_dir: str):
    # Loaded once per experiment and kept: loading a model costs seconds, predicting milliseconds.
    from loraforge.inference.predictor import Predictor

    return Predictor(Path(model_dir))


@router.post("/predict", response_model=PredictionsPublic)
async def predict(
    body: PredictRequest, user: CurrentUser, settings: SettingsDep
) -> PredictionsPublic:
    from loraforge.inference.predictor import final_model_dir

    found = _visible(settings.resolved_database_url(), body.experiment_id, user)
    if found.status != experiments.SUCCEEDED:
        raise InvalidRequest(
            f"experiment {found.id} has status {found.status}; only a succeeded one has a model"
        )
    predictor = await run_in_threadpool(_predictor, str(final_model_dir(Path(found.results_dir))))
    answers = await run_in_threadpool(predictor.predict, body.texts)
    return PredictionsPublic(
        data=[PredictionPublic(**without_server_paths(a.to_dict())) for a in answers]
    )
