"""Repairing MLflow (and the card files) from the registry's tables, which are the truth."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from loraforge.auth.users import UserRecord
from loraforge.db.models import Experiment, ModelVersion, RegisteredModel
from loraforge.errors import Forbidden
from loraforge.registry import cards, transaction
from loraforge.registry.records import version_info
from loraforge.settings import Settings
from loraforge.tracking.mlflow_bridge import EXPERIMENT_TAG, VERSION_TAG

ACTION = "model.sync"


@dataclass(frozen=True)
class SyncReport:
    """What ``sync`` changed in MLflow and in the card files, one sentence each."""

    changes: list[str] = field(default_factory=list)
    models: int = 0  # registered models checked
    versions: int = 0  # versions checked

    @property
    def in_step(self) -> bool:
        """True when MLflow already matched the registry (nothing had to change)."""
        return not self.changes


def _sync_versions(
    change: transaction.Change, name: str, rows: list[ModelVersion], report: list[str]
) -> None:
    """Every row with a live MLflow version: kept, adopted (an earlier version of ours that
    lost its pointer) or created; then MLflow versions of ours that no row points to go."""
    session, mirror = change.session, change.mirror
    live = mirror.versions(name)
    pointed = {r.mlflow_version for r in rows if r.mlflow_version in live}
    for row in sorted(rows, key=lambda r: r.version):
        if row.mlflow_version in live:
            continue
        adopt = next(
            (
                number
                for number, mv in sorted(live.items(), key=lambda item: int(item[0]))
                if number not in pointed
                and mv.tags.get(VERSION_TAG) == str(row.version)
                and mv.tags.get(EXPERIMENT_TAG) == row.experiment_id
            ),
            None,
        )
        if adopt is not None:
            report.append(
                f"{name}:{row.version}: MLflow version {adopt} adopted (it lost its link)"
            )
            row.mlflow_version = adopt
        else:
            experiment = session.get(Experiment, row.experiment_id)
            info = version_info(session, row)
            created = mirror.create_version(
                name,
                version=row.version,
                source=mirror.model_source(experiment.mlflow_run_id, info.model_dir),
                run_id=experiment.mlflow_run_id,
                experiment_id=row.experiment_id,
                stage=row.stage,
                description=row.description,
            )
            was = (
                f" (MLflow version {row.mlflow_version} was missing)" if row.mlflow_version else ""
            )
            report.append(f"{name}:{row.version}: MLflow version {created} created{was}")
            row.mlflow_version = created
        pointed.add(row.mlflow_version)
    for number, mv in sorted(live.items(), key=lambda item: int(item[0])):
        if number not in pointed and VERSION_TAG in mv.tags:
            mirror.delete_version(name, number)
            report.append(f"{name}: MLflow version {number} deleted (no registry version is it)")
    session.flush()


def _sync_cards(change: transaction.Change, rows: list[ModelVersion], report: list[str]) -> None:
    session, mirror = change.session, change.mirror
    for row in rows:
        stored = cards.read(change.settings.resolved_data_dir(), row.name, row.version)
        card = transaction.card_for(session, change.settings, row)
        run_id = session.get(Experiment, row.experiment_id).mlflow_run_id
        if stored is None or stored.data != card.data:
            transaction.log_card(change, run_id, card)
            report.append(f"{row.name}:{row.version}: card rewritten")
        elif run_id and f"v{row.version}.json" not in mirror.card_files(run_id, row.name):
            transaction.log_card(change, run_id, card)
            report.append(f"{row.name}:{row.version}: card logged to MLflow")


def run(settings: Settings, *, user: UserRecord, client: str | None = None) -> SyncReport:
    """Make MLflow (and the card files) match our tables; admins only.

    Creates missing registered models and versions (re-linking versions of ours that lost
    their link), deletes MLflow versions of ours that no registry version is, sets the
    ``stage``/``loraforge.version`` tags and the ``production``/``staging`` aliases, and
    rewrites stale or missing cards. Models MLflow holds that the registry does not are
    left alone: they may be someone else's.
    """
    if not user.is_admin:
        raise transaction.refused(
            settings,
            action=ACTION,
            target="*",
            user=user,
            client=client,
            error=Forbidden("only an admin may sync the registry to MLflow"),
        )

    def work(change: transaction.Change) -> SyncReport:
        session = change.session
        report: list[str] = []
        names = list(session.scalars(select(RegisteredModel.name).order_by(RegisteredModel.name)))
        checked = 0
        for name in names:
            model = session.get(RegisteredModel, name)
            if change.mirror.ensure_model(name, model.description):
                report.append(f"{name}: registered model created in MLflow")
            elif change.mirror.set_model_description(name, model.description):
                report.append(f"{name}: description updated in MLflow")
            rows = transaction.model_versions(session, name)
            checked += len(rows)
            _sync_versions(change, name, rows, report)
            report += transaction.mirror_stages(change, name, rows)
            _sync_cards(change, rows, report)
        change.detail.update(changes=len(report), first_changes=report[:20])
        return SyncReport(changes=report, models=len(names), versions=checked)

    return transaction.run(settings, action=ACTION, target="*", user=user, client=client, work=work)
