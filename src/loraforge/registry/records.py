"""What the registry hands out: a version joined with its experiment and owner.

One builder (``version_infos``) for every caller — service, search, recommendation — so a
version reads the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Experiment, ModelTransition, ModelVersion, RegisteredModel, User


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    stage: str
    experiment_id: str
    owner_id: int | None
    # The owner's username; for a version registered from the CLI, its registrar ("cli:root").
    owner: str | None
    description: str | None
    tags: dict[str, str]
    task: str | None
    metrics: dict[str, Any]  # the snapshot frozen at registration (what the gate compares)
    created_at: datetime
    updated_at: datetime
    base_model: str | None
    language: str | None
    labels: list[Any]
    mlflow_run_id: str | None
    mlflow_version: str | None
    intended_use: str | None
    limitations: str | None
    # Server path of the adapter folder; for loading it, never sent to a client.
    model_dir: Path | None = field(default=None, repr=False)

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class ModelSummary:
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    version_count: int
    latest: VersionInfo | None
    production: VersionInfo | None
    staging: list[int]


@dataclass(frozen=True)
class ModelDetail(ModelSummary):
    versions: list[VersionInfo] = field(default_factory=list)  # newest first


def _model_dir(experiment: Experiment | None) -> Path | None:
    if experiment is None or not experiment.results_dir:
        return None
    return Path(experiment.results_dir) / "artifacts" / "final_model"


def version_infos(session: Session, rows: Iterable[ModelVersion]) -> list[VersionInfo]:
    """Rows to VersionInfo, with their experiments and owners read in two queries."""
    rows = list(rows)
    experiments = {
        e.id: e
        for e in session.scalars(
            select(Experiment).where(Experiment.id.in_({r.experiment_id for r in rows}))
        )
    }
    owner_ids = {r.owner_id for r in rows if r.owner_id is not None}
    owners = (
        dict(session.execute(select(User.id, User.username).where(User.id.in_(owner_ids))).all())
        if owner_ids
        else {}
    )
    # A version registered from the CLI has no owner row: its registrar's name (as the
    # history and audit log have it, "cli:<os user>") stands for the owner everywhere.
    unowned = [(r.name, r.version) for r in rows if r.owner_id is None]
    registrars: dict[tuple[str, int], str] = {}
    if unowned:
        names = {name for name, _ in unowned}
        for name, number, actor in session.execute(
            select(
                ModelTransition.name, ModelTransition.version, ModelTransition.actor_username
            ).where(ModelTransition.name.in_(names), ModelTransition.from_stage.is_(None))
        ):
            registrars[(name, number)] = actor
    infos = []
    for row in rows:
        experiment = experiments.get(row.experiment_id)
        infos.append(
            VersionInfo(
                name=row.name,
                version=row.version,
                stage=row.stage,
                experiment_id=row.experiment_id,
                owner_id=row.owner_id,
                owner=owners.get(row.owner_id)
                if row.owner_id is not None
                else registrars.get((row.name, row.version)),
                description=row.description,
                tags=dict(row.tags or {}),
                task=row.task,
                metrics=dict(row.metrics or {}),
                created_at=row.created_at,
                updated_at=row.updated_at,
                base_model=experiment.base_model if experiment else None,
                language=experiment.language if experiment else None,
                labels=list(experiment.labels or []) if experiment else [],
                mlflow_run_id=experiment.mlflow_run_id if experiment else None,
                mlflow_version=row.mlflow_version,
                intended_use=row.intended_use,
                limitations=row.limitations,
                model_dir=_model_dir(experiment),
            )
        )
    return infos


def version_info(session: Session, row: ModelVersion) -> VersionInfo:
    return version_infos(session, [row])[0]


def model_summaries(session: Session, models: Iterable[RegisteredModel]) -> list[ModelDetail]:
    """Each model with all its versions (newest first), latest and Production picked out."""
    models = list(models)
    rows = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.name.in_([m.name for m in models]))
        .order_by(ModelVersion.name, ModelVersion.version.desc())
    )
    by_name: dict[str, list[VersionInfo]] = {}
    for info in version_infos(session, rows):
        by_name.setdefault(info.name, []).append(info)
    out = []
    for model in models:
        versions = by_name.get(model.name, [])
        out.append(
            ModelDetail(
                name=model.name,
                description=model.description,
                created_at=model.created_at,
                updated_at=model.updated_at,
                version_count=len(versions),
                latest=versions[0] if versions else None,
                production=next((v for v in versions if v.stage == "Production"), None),
                staging=[v.version for v in versions if v.stage == "Staging"],
                versions=versions,
            )
        )
    return out
