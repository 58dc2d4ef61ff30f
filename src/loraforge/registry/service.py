"""The model registry as the API, the CLI and the web UI use it.

Every change here goes through ``transaction.run``: one SQL transaction, mirrored to
MLflow before it commits, audited either way (its docstring tells the failure rules).
Reads open their own short sessions. Registered models are shared: any signed-in user may
read them, so nothing here checks who reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from loraforge.auth.users import UserRecord
from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment, RegisteredModel
from loraforge.errors import Forbidden, InvalidRequest, NotFound
from loraforge.registry import cards, transaction, versions
from loraforge.registry import sync as registry_sync
from loraforge.registry.cards import ModelCard
from loraforge.registry.records import (
    ModelDetail,
    ModelSummary,
    VersionInfo,
    model_summaries,
    version_info,
)
from loraforge.registry.sync import SyncReport
from loraforge.registry.versions import TransitionRecord
from loraforge.settings import Settings

__all__ = [
    "ModelCard",
    "ModelDetail",
    "ModelSummary",
    "SyncReport",
    "TransitionRecord",
    "VersionInfo",
    "get_model",
    "get_version",
    "history",
    "is_reference",
    "list_models",
    "read_card",
    "register_from_config",
    "register_version",
    "resolve_reference",
    "sync",
    "transition_version",
    "update_card",
]

REGISTER, TRANSITION, CARD_UPDATE = "model.register", "model.transition", "model.card.update"


# --- reading ---------------------------------------------------------------------------------


def list_models(settings: Settings) -> list[ModelSummary]:
    """Every registered model with its versions, by name."""
    with session_scope(settings.resolved_database_url()) as session:
        models = session.scalars(select(RegisteredModel).order_by(RegisteredModel.name))
        return list(model_summaries(session, models))


def get_model(settings: Settings, name: str) -> ModelDetail:
    with session_scope(settings.resolved_database_url()) as session:
        return model_summaries(session, [transaction.model_or_404(session, name)])[0]


def get_version(settings: Settings, name: str, version: int) -> VersionInfo:
    with session_scope(settings.resolved_database_url()) as session:
        return version_info(session, transaction.version_or_404(session, name, version))


def history(settings: Settings, name: str) -> list[TransitionRecord]:
    """Every registration and transition of ``name``, newest first."""
    with session_scope(settings.resolved_database_url()) as session:
        transaction.model_or_404(session, name)
        return versions.history(session, name=name)


_REFERENCE = re.compile(r"^(?P<name>[^@:\s]+)(?:@(?P<alias>[^@:\s]+)|:(?P<version>[^@:\s]+))?$")
REFERENCE_HINT = "Use NAME@production, NAME@staging or NAME:VERSION (e.g. sentiment:3)."


def is_reference(ref: str) -> bool:
    """Whether ``ref`` names a registered version rather than an experiment (whose ids
    have neither ``@`` nor ``:``)."""
    return "@" in ref or ":" in ref


def resolve_reference(settings: Settings, ref: str) -> VersionInfo:
    """``NAME@production`` (also ``NAME`` alone), ``NAME@staging`` (the newest Staging
    version) or ``NAME:3`` to that version; NotFound says what the model does have."""
    found = _REFERENCE.match(ref.strip()) if isinstance(ref, str) else None
    if found is None:
        raise InvalidRequest(
            f"{ref!r} is not a model reference", hint=REFERENCE_HINT, field="model"
        )
    name, alias, number = found["name"], found["alias"], found["version"]
    with session_scope(settings.resolved_database_url()) as session:
        transaction.model_or_404(session, name)
        rows = transaction.model_versions(session, name)
        existing = f"versions: {transaction.versions_in_words(rows)}"
        if number is not None:
            if not number.isdigit():
                raise InvalidRequest(
                    f"{ref!r}: the version must be a number", hint=REFERENCE_HINT, field="model"
                )
            row = next((r for r in rows if r.version == int(number)), None)
            if row is None:
                raise NotFound(f"model {name!r} has no version {int(number)}; {existing}")
            return version_info(session, row)
        alias = (alias or "production").lower()  # NAME alone: what is served
        if alias == "production":
            row = next((r for r in rows if r.stage == versions.PRODUCTION), None)
        elif alias == "staging":
            row = next((r for r in rows if r.stage == versions.STAGING), None)  # newest first
        else:
            raise NotFound(
                f"model {name!r} has no alias {alias!r}; {existing}", hint=REFERENCE_HINT
            )
        if row is None:
            stage = versions.PRODUCTION if alias == "production" else versions.STAGING
            raise NotFound(
                f"model {name!r} has no {stage} version; {existing}",
                hint=f"Use {name}:VERSION, or move a version to {stage} first.",
            )
        return version_info(session, row)


# --- cards -----------------------------------------------------------------------------------


def read_card(settings: Settings, name: str, version: int) -> ModelCard:
    """The version's card; a missing or stale file (a write that failed after a commit)
    is rebuilt from the tables and written again."""
    with session_scope(settings.resolved_database_url()) as session:
        row = transaction.version_or_404(session, name, version)
        stored = cards.read(settings.resolved_data_dir(), name, version)
        card = transaction.card_for(session, settings, row)
    if stored is None or stored.data != card.data:
        transaction.write_cards(settings, [card])
    return card


def _embeddings(
    card: dict[str, Any], facts: cards.Facts | None
) -> tuple[list[float], list[float] | None]:
    """The card's vector, and (given facts) its training data's; see registry/embeddings.py."""
    from loraforge.registry.embeddings import as_stored, card_text, dataset_embedding, embed

    vector = as_stored(embed([card_text(card)])[0])
    if facts is None:
        return vector, None
    if not facts.sample_texts and not facts.label_names:
        return vector, None
    return vector, dataset_embedding(facts.sample_texts, facts.label_names)


# --- register --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    facts: cards.Facts
    intended_use: str
    limitations: str
    embedding: list[float]
    data_embedding: list[float] | None


def _prepare_card(
    experiment: Experiment,
    *,
    name: str,
    description: str | None,
    tags: dict[str, str] | None,
    task: str | None,
) -> _Prepared:
    """The card's facts, default prose and embeddings for a version still to be numbered
    (none of them depends on its number)."""
    facts = cards.experiment_facts(experiment)
    draft = cards.build_card(
        facts,
        name=name,
        version=1,
        stage=versions.NONE,
        owner=None,
        created_at=transaction.now(),
        updated_at=transaction.now(),
        description=description,
        task=task,
        tags=dict(tags or {}),
        mlflow_version=None,
        intended_use=None,
        limitations=None,
        embedding=None,
    )
    vector, data_vector = _embeddings(draft, facts)
    return _Prepared(facts, draft["intended_use"], draft["limitations"], vector, data_vector)


def _prepare(
    settings: Settings, *, experiment_id: str, user: UserRecord, **card: Any
) -> _Prepared | None:
    """Done before the transaction: reading the training data and embedding take seconds,
    and the model's lock (on SQLite: every writer) would wait that long. None when the
    experiment cannot be registered by ``user``; ``versions.register`` then refuses it in
    words."""
    with session_scope(settings.resolved_database_url()) as session:
        experiment = session.get(Experiment, experiment_id)
        if (
            experiment is None
            or experiment.status != "succeeded"
            or (not user.is_admin and experiment.owner_id != user.id)
        ):
            return None
        session.expunge(experiment)
    return _prepare_card(experiment, **card)


def register_version(
    settings: Settings,
    *,
    experiment_id: str,
    name: str,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    task: str | None = None,
    user: UserRecord,
    client: str | None = None,
) -> VersionInfo:
    """Register a succeeded experiment as the next version of ``name``, in MLflow too.

    The MLflow version is created from the experiment's run, with the run's
    ``final_model`` artifact as its source. An experiment without an MLflow run (a row
    imported or made by hand; every training run has one) is registered all the same,
    with its adapter folder as the source and no run to log the card to: refusing it
    would make the registry depend on MLflow history it does not need.
    """
    target = name if isinstance(name, str) else repr(name)
    detail = {"experiment_id": experiment_id}
    try:
        versions.check_registration(name=name, description=description, tags=tags, task=task)
        prepared = _prepare(
            settings,
            experiment_id=experiment_id,
            user=user,
            name=name,
            description=description,
            tags=tags,
            task=task,
        )
    except Exception as error:
        raise transaction.refused(
            settings,
            action=REGISTER,
            target=target,
            user=user,
            client=client,
            error=error,
            detail=detail,
        ) from None

    def work(change: transaction.Change) -> VersionInfo:
        session = change.session
        # A write first, so that the transaction has begun before versions.register's
        # SAVEPOINT: pysqlite begins a transaction only at a write, and a RELEASE of a
        # savepoint that began it commits — a rollback would then keep the new model row.
        versions.lock_model(session, name)
        record = versions.register(
            session,
            experiment_id=experiment_id,
            name=name,
            description=description,
            tags=tags,
            task=task,
            user=user,
        )
        change.detail["version"] = record.version
        row = transaction.version_or_404(session, name, record.version)
        experiment = session.get(Experiment, experiment_id)
        # None only if the experiment finished between the two reads: prepared now.
        ready = prepared or _prepare_card(
            experiment, name=name, description=description, tags=tags, task=task
        )
        row.intended_use, row.limitations = ready.intended_use, ready.limitations
        row.embedding, row.data_embedding = ready.embedding, ready.data_embedding

        mirror = change.mirror
        model = session.get(RegisteredModel, name)
        if mirror.ensure_model(name, model.description):
            change.undo.append(lambda: mirror.delete_model(name))
        info = version_info(session, row)
        mlflow_version = mirror.create_version(
            name,
            version=row.version,
            source=mirror.model_source(experiment.mlflow_run_id, info.model_dir),
            run_id=experiment.mlflow_run_id,
            experiment_id=experiment.id,
            stage=row.stage,
            description=description,
        )
        change.undo.append(lambda: mirror.delete_version(name, mlflow_version))
        row.mlflow_version = mlflow_version
        session.flush()
        card = transaction.card_for(session, settings, row, facts=ready.facts)
        transaction.log_card(change, experiment.mlflow_run_id, card)
        return version_info(session, row)

    return transaction.run(
        settings,
        action=REGISTER,
        target=target,
        user=user,
        client=client,
        work=work,
        detail=detail,
    )


def register_from_config(
    settings: Settings, experiment_id: str, config: Any, user: UserRecord
) -> VersionInfo | None:
    """Register a finished run as its config's ``registry.register_as`` asks; None when
    it does not ask. Errors are the caller's to report: a registration that fails does
    not make the training run fail (the job and the CLI report it as a warning)."""
    section = getattr(config, "registry", None)
    if section is None or not section.register_as:
        return None
    return register_version(
        settings,
        experiment_id=experiment_id,
        name=section.register_as,
        description=section.description,
        tags=dict(section.tags or {}),
        task=section.task,
        user=user,
    )


# --- transition ----------------------------------------------------------------------------------


def transition_version(
    settings: Settings,
    *,
    name: str,
    version: int,
    stage: str,
    reason: str | None = None,
    force: bool = False,
    user: UserRecord,
    client: str | None = None,
) -> VersionInfo:
    """Move a version to ``stage`` (rules, roles and gate: ``versions.transition``); MLflow's
    aliases and stage tags and the cards of every version it moved follow."""
    detail = {"version": version, "to": stage, "forced": bool(force)}
    if reason:
        detail["reason"] = reason[:200]

    def work(change: transaction.Change) -> VersionInfo:
        session = change.session
        versions.transition(
            session, name=name, version=version, stage=stage, reason=reason, force=force, user=user
        )
        rows = transaction.model_versions(session, name)
        logged: list[int] = []  # filled as cards are logged: the undo re-logs those
        change.undo.append(transaction.restore_model(settings, name, logged))
        changed = transaction.mirror_stages(change, name, rows)
        transaction.refresh_cards(change, rows, logged)
        if changed:
            change.detail["mlflow"] = changed
        row = next(r for r in rows if r.version == version)
        return version_info(session, row)

    return transaction.run(
        settings,
        action=TRANSITION,
        target=f"{name}:{version}",
        user=user,
        client=client,
        work=work,
        detail=detail,
    )


# --- card edits ----------------------------------------------------------------------------------


def _prose(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > cards.MAX_PROSE:
        raise InvalidRequest(
            f"{what} must be text of at most {cards.MAX_PROSE} characters", field=what
        )
    return value.strip()


def update_card(
    settings: Settings,
    name: str,
    version: int,
    *,
    intended_use: str | None = None,
    limitations: str | None = None,
    user: UserRecord,
    client: str | None = None,
) -> ModelCard:
    """Replace the card's intended use and/or limitations (owner or admin). ``None``
    leaves a field as it is; an empty text puts back the one written from the facts. The
    card's embedding is computed again: the intended use is part of what a query matches."""

    def work(change: transaction.Change) -> ModelCard:
        session = change.session
        new_use = _prose(intended_use, "intended_use")
        new_limits = _prose(limitations, "limitations")
        transaction.model_or_404(session, name)
        versions.lock_model(session, name)
        row = transaction.version_or_404(session, name, version)
        if not user.is_admin and (row.owner_id is None or row.owner_id != user.id):
            raise Forbidden(f"version {version} of {name!r} is not yours to edit")
        current = transaction.card_for(session, settings, row).data
        if new_use is not None:
            row.intended_use = new_use or cards.default_intended_use(current)
        if new_limits is not None:
            row.limitations = new_limits or cards.default_limitations(current)
        row.updated_at = transaction.now()
        edited = {**current, "intended_use": row.intended_use, "limitations": row.limitations}
        row.embedding, _ = _embeddings(edited, None)
        session.flush()
        card = transaction.card_for(session, settings, row)
        run_id = session.get(Experiment, row.experiment_id).mlflow_run_id
        change.undo.append(transaction.restore_model(settings, name, logged=[version]))
        transaction.log_card(change, run_id, card)
        change.detail["fields"] = [
            f
            for f, v in (("intended_use", intended_use), ("limitations", limitations))
            if v is not None
        ]
        return card

    return transaction.run(
        settings,
        action=CARD_UPDATE,
        target=f"{name}:{version}",
        user=user,
        client=client,
        work=work,
    )


# --- sync ----------------------------------------------------------------------------------------


def sync(settings: Settings, *, user: UserRecord, client: str | None = None) -> SyncReport:
    """Make MLflow and the card files match the tables (admins only): ``sync.run``."""
    return registry_sync.run(settings, user=user, client=client)
