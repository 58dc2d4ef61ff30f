"""One change of the registry: SQL transaction, MLflow mirror, audit row, card files.

Each change runs in one SQL transaction (``versions.py`` decides it under the model's row
lock), then mirrors itself to MLflow, then commits:

- MLflow fails (unreachable, an error) → the SQL transaction is rolled back and
  ``Unavailable`` raised: neither store changed. What MLflow had already done in that
  change (a version created before a card upload failed) is undone, best-effort.
- MLflow changed but the commit fails → the same best-effort undo; ``sync`` repairs
  whatever the undo could not (it makes MLflow match our tables, which are the truth).

Card files are written after the commit (atomically); a card found stale or missing is
rebuilt from the tables when read, and by ``sync``. Every action leaves an audit row:
``success`` in the transaction that made the change, ``denied`` (Forbidden, Conflict) or
``failure`` (anything else) in a fresh transaction after the rollback.

Also here: the lookups every change starts from, and a version's card as its row says.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from loraforge.audit import log as audit
from loraforge.auth.users import UserRecord
from loraforge.db.engine import session_factory, session_scope
from loraforge.db.models import Experiment, ModelVersion, User
from loraforge.errors import Conflict, Forbidden, LoraforgeError, NotFound
from loraforge.registry import cards
from loraforge.registry.cards import ModelCard
from loraforge.registry.versions import model_or_404, model_versions, versions_in_words
from loraforge.settings import Settings
from loraforge.tracking.mlflow_bridge import MirrorVersion, RegistryMirror

logger = logging.getLogger("loraforge.registry")

T = TypeVar("T")


@dataclass
class Change:
    session: Session
    mirror: RegistryMirror
    settings: Settings
    # MLflow steps to take back if the SQL transaction does not commit (newest first).
    undo: list[Callable[[], None]] = field(default_factory=list)
    # Card files to write once committed.
    cards: list[ModelCard] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def now() -> datetime:
    return datetime.now(UTC)


def describe(error: BaseException) -> str:
    if isinstance(error, LoraforgeError):
        return error.message[:1000]
    return f"{type(error).__name__}: {error}"[:1000]


def audit_refusal(
    settings: Settings,
    *,
    action: str,
    target: str,
    user: UserRecord,
    client: str | None,
    error: BaseException,
    detail: dict[str, Any],
) -> None:
    """The refused or failed action, in a transaction of its own (the change's own one was
    rolled back). A failure to write it must not hide the error the caller is about to see."""
    outcome = audit.DENIED if isinstance(error, Forbidden | Conflict) else audit.FAILURE
    try:
        with session_scope(settings.resolved_database_url()) as session:
            audit.record(
                session,
                action=action,
                outcome=outcome,
                user_id=user.id,
                username=user.username,
                target=target,
                client=client,
                detail={**detail, "error": describe(error)},
            )
    except Exception:
        logger.exception("could not write the audit row for %s %s", action, target)


def take_back(steps: list[Callable[[], None]]) -> None:
    for step in reversed(steps):
        try:
            step()
        except Exception as error:
            logger.warning(
                "could not undo an MLflow change (%s); `loraforge registry sync` repairs it",
                error,
            )


def write_cards(settings: Settings, written: list[ModelCard]) -> None:
    for card in written:
        try:
            cards.write(settings.resolved_data_dir(), card)
        except OSError as error:
            # The tables hold the truth: reading the card, or `sync`, rebuilds the file.
            logger.warning(
                "could not write the card of %s:%s: %s",
                card.data["name"],
                card.data["version"],
                error,
            )


def run(
    settings: Settings,
    *,
    action: str,
    target: str,
    user: UserRecord,
    client: str | None,
    work: Callable[[Change], T],
    detail: dict[str, Any] | None = None,
) -> T:
    """Run ``work`` in one transaction with its MLflow mirror; see the module docstring."""
    mirror = RegistryMirror(settings.resolved_mlflow_tracking_uri())
    with session_factory(settings.resolved_database_url())() as session:
        change = Change(session=session, mirror=mirror, settings=settings)
        change.detail.update(detail or {})
        try:
            session.begin()
            result = work(change)
            audit.record(
                session,
                action=action,
                outcome=audit.SUCCESS,
                user_id=user.id,
                username=user.username,
                target=target,
                client=client,
                detail=change.detail or None,
            )
            session.commit()
        except BaseException as error:
            session.rollback()
            take_back(change.undo)
            if isinstance(error, Exception):
                audit_refusal(
                    settings,
                    action=action,
                    target=target,
                    user=user,
                    client=client,
                    error=error,
                    detail=change.detail,
                )
            raise
    write_cards(settings, change.cards)
    return result


def refused(
    settings: Settings,
    *,
    action: str,
    target: str,
    user: UserRecord,
    client: str | None,
    error: Exception,
    detail: dict[str, Any] | None = None,
) -> Exception:
    audit_refusal(
        settings,
        action=action,
        target=target,
        user=user,
        client=client,
        error=error,
        detail=detail or {},
    )
    return error


def version_or_404(session: Session, name: str, version: int) -> ModelVersion:
    model_or_404(session, name)
    rows = model_versions(session, name)
    row = next((r for r in rows if r.version == version), None)
    if row is None:
        raise NotFound(
            f"model {name!r} has no version {version}; versions: {versions_in_words(rows)}"
        )
    return row


def owner_name(session: Session, row: ModelVersion) -> str | None:
    owner = session.get(User, row.owner_id) if row.owner_id is not None else None
    return owner.username if owner is not None else None


def card_for(
    session: Session, settings: Settings, row: ModelVersion, *, facts: cards.Facts | None = None
) -> ModelCard:
    """The card as the row says it is now: the stored one refreshed, or one rebuilt."""
    stored = cards.read(settings.resolved_data_dir(), row.name, row.version)
    owner = owner_name(session, row)
    if stored is not None and stored.data.get("schema_version") == cards.SCHEMA_VERSION:
        data = cards.refresh(
            stored.data,
            stage=row.stage,
            owner=owner,
            updated_at=row.updated_at,
            mlflow_version=row.mlflow_version,
            intended_use=row.intended_use,
            limitations=row.limitations,
            embedding=row.embedding,
        )
        return stored if data == stored.data else cards.render(data)
    if facts is None:
        experiment = session.get(Experiment, row.experiment_id)
        facts = cards.experiment_facts(experiment)
    data = cards.build_card(
        facts,
        name=row.name,
        version=row.version,
        stage=row.stage,
        owner=owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
        task=row.task,
        tags=dict(row.tags or {}),
        mlflow_version=row.mlflow_version,
        intended_use=row.intended_use,
        limitations=row.limitations,
        embedding=row.embedding,
    )
    return cards.render(data)


def log_card(change: Change, run_id: str | None, card: ModelCard) -> None:
    """The card's files as MLflow artifacts of the run (none for a run-less experiment);
    the files on disk follow after the commit."""
    if run_id:
        with tempfile.TemporaryDirectory(prefix="loraforge-card-") as folder:
            files = cards.write_to(Path(folder), card)
            change.mirror.log_card(run_id, card.data["name"], files)
    change.cards.append(card)


def _wanted(rows: list[ModelVersion]) -> list[MirrorVersion]:
    return [
        MirrorVersion(version=r.version, mlflow_version=r.mlflow_version, stage=r.stage)
        for r in rows
        if r.mlflow_version  # set at registration; one without it is `sync`'s to create
    ]


def mirror_stages(change: Change, name: str, rows: list[ModelVersion]) -> list[str]:
    """MLflow's aliases and stage tags of ``name`` as ``rows`` say; what changed."""
    return change.mirror.apply_stages(name, _wanted(rows))


def restore_model(settings: Settings, name: str, logged: list[int]) -> Callable[[], None]:
    """An undo step: MLflow's aliases, tags and the logged cards as the tables say now."""

    def restore() -> None:
        mirror = RegistryMirror(settings.resolved_mlflow_tracking_uri())
        with session_scope(settings.resolved_database_url()) as session:
            rows = model_versions(session, name)
            mirror.apply_stages(name, _wanted(rows))
            for row in rows:
                run_id = session.get(Experiment, row.experiment_id).mlflow_run_id
                if row.version in logged and run_id:
                    card = card_for(session, settings, row)
                    with tempfile.TemporaryDirectory(prefix="loraforge-card-") as folder:
                        mirror.log_card(run_id, name, cards.write_to(Path(folder), card))

    return restore


def refresh_cards(change: Change, rows: list[ModelVersion], logged: list[int]) -> None:
    """Log (and after the commit write) the cards that the change made stale."""
    for row in rows:
        stored = cards.read(change.settings.resolved_data_dir(), row.name, row.version)
        card = card_for(change.session, change.settings, row)
        if stored is None or stored.data != card.data:
            run_id = change.session.get(Experiment, row.experiment_id).mlflow_run_id
            logged.append(row.version)
            log_card(change, run_id, card)
