"""Registering experiments as model versions and moving versions between stages.

Sessions are passed in by the caller, who owns the transaction: a transition and the
history rows that tell it commit (or roll back) together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.auth.users import UserRecord
from loraforge.config import MODEL_NAME_PATTERN, MODEL_NAME_RULE
from loraforge.config import RESERVED_MODEL_NAMES as RESERVED_NAMES
from loraforge.db.models import Experiment, ModelTransition, ModelVersion, RegisteredModel
from loraforge.db.records import FromRow
from loraforge.errors import Conflict, Forbidden, InvalidRequest, NotFound

NONE, STAGING, PRODUCTION, ARCHIVED = "none", "Staging", "Production", "Archived"
STAGES = (NONE, STAGING, PRODUCTION, ARCHIVED)
ALLOWED: dict[str, tuple[str, ...]] = {
    NONE: (STAGING,),
    STAGING: (PRODUCTION, ARCHIVED),
    PRODUCTION: (ARCHIVED,),
    ARCHIVED: (STAGING,),
}
# Stages only an admin may move a version into: they change what the team serves.
ADMIN_STAGES = (PRODUCTION, ARCHIVED)
GATE_METRIC = "f1_macro"
GATE_METRIC_WORDS = "macro-F1"

# One rule for a name given here and one in a training config's registry.register_as.
NAME_PATTERN = re.compile(MODEL_NAME_PATTERN)
NAME_RULE = MODEL_NAME_RULE
MAX_DESCRIPTION = 4000
MAX_TASK = 64
MAX_TAGS = 32
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256
MAX_REASON = 2000
VERSIONS_SHOWN = 10  # in a "versions: 1 (Staging), 2 (none)" message
MODELS_SHOWN = 20
# Only reached when something bypasses the model-row lock (see _lock_model).
VERSION_RACE_RETRIES = 5


@dataclass(frozen=True)
class VersionRecord(FromRow):
    name: str
    version: int
    experiment_id: str
    stage: str
    owner_id: int | None
    description: str | None
    tags: dict[str, str]
    metrics: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class TransitionRecord(FromRow):
    id: int
    name: str
    version: int
    from_stage: str | None
    to_stage: str
    actor_id: int | None
    actor_username: str | None
    at: datetime
    reason: str | None
    metrics: dict[str, Any] | None
    previous_production_metrics: dict[str, Any] | None
    forced: bool


def model_versions(session: Session, name: str) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.name == name)
            .order_by(ModelVersion.version.desc())
            .execution_options(populate_existing=True)
        )
    )


def versions_in_words(rows: list[ModelVersion]) -> str:
    shown = sorted(rows, key=lambda r: r.version)[-VERSIONS_SHOWN:]
    words = ", ".join(f"{r.version} ({r.stage})" for r in shown)
    return ("…, " if len(rows) > len(shown) else "") + words if rows else "none"


def model_or_404(session: Session, name: str) -> RegisteredModel:
    model = session.get(RegisteredModel, name)
    if model is None:
        names = list(
            session.scalars(
                select(RegisteredModel.name).order_by(RegisteredModel.name).limit(MODELS_SHOWN + 1)
            )
        )
        if names:
            more = ", …" if len(names) > MODELS_SHOWN else ""
            hint = f"Registered models: {', '.join(names[:MODELS_SHOWN])}{more}."
        else:
            hint = (
                "No model is registered yet: `loraforge registry register EXPERIMENT --name NAME`."
            )
        raise NotFound(f"no registered model {name!r}", hint=hint)
    return model


def _now() -> datetime:
    return datetime.now(UTC)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidRequest(
            f"model name {name!r} is not allowed", hint=f"Use {NAME_RULE}.", field="name"
        )
    if name.lower() in RESERVED_NAMES:
        raise InvalidRequest(
            f"model name {name!r} is reserved",
            hint=f"Pick another name; {', '.join(sorted(RESERVED_NAMES))} are API routes.",
            field="name",
        )


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(
            f"the description has {len(description)} characters; at most {MAX_DESCRIPTION}",
            field="description",
        )


def _check_tags(tags: dict[str, str] | None) -> dict[str, str]:
    tags = dict(tags or {})
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"{len(tags)} tags; at most {MAX_TAGS}", field="tags")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidRequest("tag keys and values must be text", field="tags")
        if not key or len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise InvalidRequest(
                f"tag {key[:MAX_TAG_KEY]!r} is too long or empty",
                hint=f"Keys 1-{MAX_TAG_KEY} characters, values at most {MAX_TAG_VALUE}.",
                field="tags",
            )
    return tags


def _check_task(task: str | None) -> str | None:
    if task is None:
        return None
    if not isinstance(task, str) or not task.strip() or len(task.strip()) > MAX_TASK:
        raise InvalidRequest(
            f"the task must be 1-{MAX_TASK} characters", hint='e.g. "sentiment"', field="task"
        )
    return task.strip()


def check_registration(
    *, name: str, description: str | None, tags: dict[str, str] | None, task: str | None
) -> None:
    """Refuse bad input before any slow work (the service embeds a card before registering)."""
    _check_name(name)
    _check_description(description)
    _check_tags(tags)
    _check_task(task)


def _snapshot(experiment: Experiment) -> dict[str, Any]:
    final = (experiment.metrics or {}).get("final") or {}
    return {
        "accuracy": final.get("accuracy"),
        "f1_macro": final.get("f1_macro"),
        "eval_data_version": experiment.eval_dataset_version,
    }


def _lock_model(session: Session, name: str) -> None:
    """Take the model's row lock before reading anything that decides a change.

    A write is the one lock both databases honour: PostgreSQL blocks a second writer of
    the row until the first commits, SQLite lets one writer at a time in. Reads after it
    therefore see every change committed before ours, so two promotions at once run one
    after the other instead of both deciding from the same (stale) Production.
    """
    session.execute(
        update(RegisteredModel).where(RegisteredModel.name == name).values(updated_at=_now())
    )


lock_model = _lock_model  # for the service's own changes to a version (card edits)


def _history(
    session: Session,
    row: ModelVersion,
    *,
    from_stage: str | None,
    to_stage: str,
    user: UserRecord,
    reason: str | None = None,
    previous: dict[str, Any] | None = None,
    forced: bool = False,
) -> None:
    session.add(
        ModelTransition(
            name=row.name,
            version=row.version,
            from_stage=from_stage,
            to_stage=to_stage,
            actor_id=user.id,
            actor_username=user.username,
            at=_now(),
            reason=reason,
            metrics=row.metrics,
            previous_production_metrics=previous,
            forced=forced,
        )
    )


def register(
    session: Session,
    *,
    experiment_id: str,
    name: str,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    task: str | None = None,
    user: UserRecord,
) -> VersionRecord:
    """Register a succeeded experiment as the next version (1, 2, 3 …) of ``name``."""
    _check_name(name)
    _check_description(description)
    tags = _check_tags(tags)
    task = _check_task(task)
    experiment = session.get(Experiment, experiment_id)
    # Someone else's experiment reads as missing: experiments stay private until registered.
    if experiment is None or (not user.is_admin and experiment.owner_id != user.id):
        raise NotFound(f"no experiment {experiment_id!r}", field="experiment_id")
    if experiment.status != "succeeded":
        raise Conflict(
            f"experiment {experiment_id!r} is {experiment.status}; only a succeeded "
            "experiment can be registered",
            field="experiment_id",
        )
    now = _now()
    # A write first: pysqlite opens a transaction only at a write, so a SAVEPOINT as the
    # first statement would be its own transaction and its RELEASE a commit, kept even if
    # the caller rolls back later. (A model row that does not exist yet: no row locked.)
    _lock_model(session, name)
    if session.get(RegisteredModel, name) is None:
        try:
            with session.begin_nested():
                session.add(
                    RegisteredModel(
                        name=name,
                        description=description,
                        created_at=now,
                        created_by=user.id,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # registered by someone else a moment ago: we add a version to it
    _lock_model(session, name)
    again = session.scalar(
        select(ModelVersion.version).where(
            ModelVersion.name == name, ModelVersion.experiment_id == experiment.id
        )
    )
    if again is not None:
        # The same model twice under one name is a double click, not a new version.
        raise Conflict(
            f"experiment {experiment.id!r} is already version {again} of {name!r}",
            hint=f"Use {name}:{again}, or train a new experiment to register a new version.",
            field="experiment_id",
        )
    for _ in range(VERSION_RACE_RETRIES):
        number = (
            session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name))
            or 0
        ) + 1
        row = ModelVersion(
            name=name,
            version=number,
            experiment_id=experiment.id,
            stage=NONE,
            owner_id=user.id,
            description=description,
            tags=tags,
            task=task,
            metrics=_snapshot(experiment),
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError as error:
            if "version" not in str(error.orig):  # SQLite and PostgreSQL both name it
                raise
            continue
        _history(session, row, from_stage=None, to_stage=NONE, user=user)
        session.flush()
        return VersionRecord.from_row(row)
    raise Conflict(
        f"could not number a new version of {name!r}: too many registrations at once",
        hint="Try again in a second.",
    )


def _version(session: Session, name: str, version: int) -> ModelVersion:
    # populate_existing: a row this session loaded before the lock may be stale.
    row = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.name == name, ModelVersion.version == version)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound(
            f"model {name!r} has no version {version}; "
            f"versions: {versions_in_words(model_versions(session, name))}"
        )
    return row


def _in_stage(stage: str) -> str:
    return "in no stage" if stage == NONE else stage


def _gate(candidate: dict[str, Any], current: dict[str, Any], version: int, cur: int) -> str | None:
    """Why ``candidate`` may not replace ``current`` in Production, or None when it may."""
    mine, theirs = candidate.get("eval_data_version"), current.get("eval_data_version")
    if mine is None or mine != theirs:
        return (
            f"version {version} was evaluated on data version {mine} and Production "
            f"version {cur} on {theirs}: their scores cannot be compared"
        )
    new, old = candidate.get(GATE_METRIC), current.get(GATE_METRIC)
    if new is None or old is None:
        return (
            f"version {version} or Production version {cur} has no {GATE_METRIC_WORDS} to compare"
        )
    if new < old:
        return (
            f"version {version} has {GATE_METRIC_WORDS} {new:.4f}, below Production version "
            f"{cur}'s {old:.4f} on the same eval data"
        )
    return None


def transition(
    session: Session,
    *,
    name: str,
    version: int,
    stage: str,
    reason: str | None = None,
    force: bool = False,
    user: UserRecord,
) -> VersionRecord:
    """Move a version to ``stage``; promoting to Production archives the previous one."""
    if stage not in STAGES:
        raise InvalidRequest(f"stage must be one of {', '.join(STAGES)}", field="stage")
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidRequest(f"the reason has more than {MAX_REASON} characters", field="reason")
    model_or_404(session, name)
    _lock_model(session, name)
    # Read after the lock, which may have waited for another transition: we decide from
    # the state that one left.
    row = _version(session, name, version)
    current = row.stage
    if stage not in ALLOWED[current]:
        raise Conflict(
            f"version {version} of {name!r} is {_in_stage(current)} and cannot move to {stage}",
            hint=f"From {current} it can move to: {', '.join(ALLOWED[current])}.",
        )
    if stage in ADMIN_STAGES and not user.is_admin:
        raise Forbidden(f"only an admin may move a version to {stage}")
    if not user.is_admin and row.owner_id != user.id:
        raise Forbidden(f"version {version} of {name!r} is not yours to move")
    if force and not user.is_admin:
        raise Forbidden("only an admin may force a promotion")
    if force and not (reason and reason.strip()):
        raise InvalidRequest("a forced promotion needs a reason", field="reason")

    previous: ModelVersion | None = None
    if stage == PRODUCTION:
        previous = session.scalar(
            select(ModelVersion)
            .where(ModelVersion.name == name, ModelVersion.stage == PRODUCTION)
            .execution_options(populate_existing=True)
        )
        if previous is not None:
            refusal = _gate(row.metrics, previous.metrics, version, previous.version)
            if refusal is not None and not force:
                raise Conflict(
                    f"promotion refused: {refusal}",
                    hint="An admin may promote it anyway with force and a reason.",
                )
    now = _now()
    if previous is not None:
        previous.stage, previous.updated_at = ARCHIVED, now
        # Flushed first: the one-Production index is checked row by row, not at commit.
        session.flush()
        _history(
            session,
            previous,
            from_stage=PRODUCTION,
            to_stage=ARCHIVED,
            user=user,
            reason=f"replaced by version {version}" + (f": {reason}" if reason else ""),
        )
    row.stage, row.updated_at = stage, now
    try:
        session.flush()
    except IntegrityError as error:
        # Only a writer that skipped the lock gets here; the database kept its rule.
        raise Conflict(
            f"another version of {name!r} became Production at the same moment",
            hint="Reload the model and try again.",
        ) from error
    _history(
        session,
        row,
        from_stage=current,
        to_stage=stage,
        user=user,
        reason=reason,
        previous=previous.metrics if previous is not None else None,
        forced=force,
    )
    session.flush()
    return VersionRecord.from_row(row)


def history(session: Session, *, name: str) -> list[TransitionRecord]:
    """Every registration and transition of a model, newest first."""
    model_or_404(session, name)
    rows = session.scalars(
        select(ModelTransition)
        .where(ModelTransition.name == name)
        # Ids, not clocks: they are handed out under the model's lock, in the order the
        # changes happened, whichever process's clock is ahead.
        .order_by(ModelTransition.id.desc())
    )
    return [TransitionRecord.from_row(row) for row in rows]
