"""The registry service: SQL and MLflow changed together (or neither), audit, sync, references.

Each test has its own database and data directory; the MLflow store is the session's
(the tiny run lives there), so model names are unique per test.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from services import free_port
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loraforge.audit import log as audit
from loraforge.auth.users import UserRecord, local_operator
from loraforge.config import config_from_tree
from loraforge.db.engine import session_scope
from loraforge.db.models import (
    AuditLog,
    Experiment,
    ModelTransition,
    ModelVersion,
    RegisteredModel,
    User,
)
from loraforge.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unavailable
from loraforge.registry import cards, service, transaction
from loraforge.settings import Settings
from loraforge.tracking import experiments

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def mlflow_client(settings: Settings):
    from mlflow.tracking import MlflowClient

    uri = settings.resolved_mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def settings(shared_settings, tmp_path) -> Settings:
    """A fresh database and data directory beside the session's MLflow store and results."""
    return Settings(
        data_dir=tmp_path / "state",
        results_dir=shared_settings.results_dir,
        mlflow_tracking_uri=shared_settings.resolved_mlflow_tracking_uri(),
        mlflow_artifact_root=shared_settings.resolved_mlflow_artifact_root(),
    )


@pytest.fixture
def name() -> str:
    return f"sentiment-{uuid.uuid4().hex[:8]}"


def add_user(settings: Settings, username: str, role: str = "user") -> UserRecord:
    with session_scope(settings.resolved_database_url()) as session:
        row = User(username=username, password_hash="x", role=role, is_active=True, created_at=NOW)
        session.add(row)
        session.flush()
        return UserRecord.from_row(row)


def copy_run(settings: Settings, shared_settings: Settings, run, *, owner, new_id: str, **changes):
    """The tiny run's experiment row, copied into this test's database as ``new_id``."""
    record = experiments.get(shared_settings.resolved_database_url(), run.experiment_id)
    values = {**asdict(record), "id": new_id, "owner_id": owner.id if owner else None, **changes}
    with session_scope(settings.resolved_database_url()) as session:
        session.add(Experiment(**values))
    return new_id


@pytest.fixture
def people(settings):
    return (
        add_user(settings, "alice"),
        add_user(settings, "bob"),
        add_user(settings, "root", "admin"),
    )


@pytest.fixture
def runs(settings, shared_settings, tiny_run, people):
    """Two succeeded experiments of alice's (same run, same scores) and a failed one."""
    alice = people[0]
    return [
        copy_run(settings, shared_settings, tiny_run, owner=alice, new_id="exp-1"),
        copy_run(settings, shared_settings, tiny_run, owner=alice, new_id="exp-2"),
        copy_run(
            settings, shared_settings, tiny_run, owner=alice, new_id="exp-failed", status="failed"
        ),
    ]


def audit_rows(settings: Settings, action: str) -> list[AuditLog]:
    with session_scope(settings.resolved_database_url()) as session:
        rows = list(
            session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
        )
        session.expunge_all()
        return rows


def stages(settings: Settings, name: str) -> dict[int, str]:
    with session_scope(settings.resolved_database_url()) as session:
        return dict(
            session.execute(
                select(ModelVersion.version, ModelVersion.stage).where(ModelVersion.name == name)
            ).all()
        )


def count(settings: Settings, model, **where) -> int:
    with session_scope(settings.resolved_database_url()) as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(session.scalar(query))


def by_alias(settings: Settings, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client(settings).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def register(settings, name, user, experiment_id="exp-1", **kw):
    return service.register_version(
        settings, experiment_id=experiment_id, name=name, user=user, **kw
    )


def move(settings, name, version, stage, user, **kw):
    return service.transition_version(
        settings, name=name, version=version, stage=stage, user=user, **kw
    )


def test_registration_creates_the_mlflow_version_the_card_and_an_audit_row(
    settings, people, runs, tiny_run, name
):
    alice = people[0]
    info = register(
        settings, name, alice, description="Airline tweets", tags={"team": "nlp"}, task="sentiment"
    )
    assert (info.name, info.version, info.stage, info.owner, info.task) == (
        name,
        1,
        "none",
        "alice",
        "sentiment",
    )
    assert info.mlflow_run_id == tiny_run.mlflow_run_id and info.mlflow_version == "1"
    assert info.intended_use.startswith("Classifies English short texts (sentiment) into: ")
    assert "Evaluated on 32 held-out texts" in info.limitations

    client = mlflow_client(settings)
    mv = client.get_model_version(name, info.mlflow_version)
    assert mv.run_id == tiny_run.mlflow_run_id
    assert mv.source.endswith("/final_model") and mv.description == "Airline tweets"
    assert mv.tags["stage"] == "none" and mv.tags["loraforge.version"] == "1"
    assert client.get_registered_model(name).description == "Airline tweets"
    logged = {
        a.path.rsplit("/", 1)[-1]
        for a in client.list_artifacts(info.mlflow_run_id, f"model_card/{name}")
    }
    assert logged == {"v1.json", "v1.README.md"}

    with session_scope(settings.resolved_database_url()) as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.name == name))
        assert len(row.embedding) == 384 and len(row.data_embedding) == 384
    card = service.read_card(settings, name, 1)
    assert card.data["embedding"] == pytest.approx(row.embedding)
    assert (settings.resolved_data_dir() / "model_registry" / name / "v1.json").is_file()
    [event] = audit_rows(settings, "model.register")
    assert (event.outcome, event.username, event.target) == ("success", "alice", name)
    assert event.detail == {"experiment_id": "exp-1", "version": 1}

    # The same experiment again is refused (a double click); another is the next version,
    # and MLflow numbers it alike.
    with pytest.raises(Conflict, match="already version 1"):
        register(settings, name, alice)
    assert register(settings, name, alice, experiment_id="exp-2").mlflow_version == "2"


def test_refused_registrations_change_nothing_and_are_audited(settings, people, runs, name):
    alice, bob, _ = people
    with pytest.raises(Conflict, match="is failed"):
        register(settings, name, alice, experiment_id="exp-failed")
    with pytest.raises(NotFound, match="no experiment 'exp-1'"):
        register(settings, name, bob)
    with pytest.raises(InvalidRequest, match="model name"):
        register(settings, "bad name", alice)
    assert count(settings, RegisteredModel) == 0
    outcomes = [(e.outcome, e.username) for e in audit_rows(settings, "model.register")]
    assert outcomes == [("denied", "alice"), ("failure", "bob"), ("failure", "alice")]
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        mlflow_client(settings).get_registered_model(name)


def test_transitions_move_the_aliases_and_stage_tags_and_rewrite_cards(
    settings, people, runs, name
):
    alice, _, root = people
    register(settings, name, alice)
    register(settings, name, alice, experiment_id="exp-2")
    move(settings, name, 1, "Staging", alice)
    move(settings, name, 2, "Staging", alice, reason="candidate")
    # staging is the newest Staging version.
    assert (
        by_alias(settings, name, "staging") == "2"
        and by_alias(settings, name, "production") is None
    )

    with pytest.raises(Forbidden):
        move(settings, name, 1, "Production", alice)
    assert stages(settings, name) == {1: "Staging", 2: "Staging"}
    assert audit_rows(settings, "model.transition")[-1].outcome == "denied"

    move(settings, name, 1, "Production", root)
    assert (
        by_alias(settings, name, "production") == "1" and by_alias(settings, name, "staging") == "2"
    )
    promoted = move(settings, name, 2, "Production", root, reason="same data, same score")
    assert promoted.stage == "Production"
    assert stages(settings, name) == {1: "Archived", 2: "Production"}
    client = mlflow_client(settings)
    assert by_alias(settings, name, "production") == "2"
    assert by_alias(settings, name, "staging") is None  # no Staging version left
    assert client.get_model_version(name, "1").tags["stage"] == "Archived"
    assert client.get_model_version(name, "2").tags["stage"] == "Production"

    # Both cards follow, on disk and in MLflow.
    assert service.read_card(settings, name, 1).data["stage"] == "Archived"
    card = service.read_card(settings, name, 2)
    assert card.data["stage"] == "Production" and "Stage: **Production**" in card.readme
    local = client.download_artifacts(promoted.mlflow_run_id, f"model_card/{name}/v2.json")
    assert json.loads(Path(local).read_text(encoding="utf-8"))["stage"] == "Production"

    assert [(t.version, t.to_stage) for t in service.history(settings, name)][:3] == [
        (2, "Production"),
        (1, "Archived"),
        (1, "Production"),
    ]
    events = audit_rows(settings, "model.transition")
    assert [e.outcome for e in events] == ["success", "success", "denied", "success", "success"]
    assert events[-1].detail["to"] == "Production" and events[-1].username == "root"


def test_references_resolve_or_say_what_exists(settings, people, runs, name):
    alice, _, root = people
    assert service.is_reference(f"{name}@production") and service.is_reference(f"{name}:1")
    assert not service.is_reference("tiny-20260101-000000")
    register(settings, name, alice)
    register(settings, name, alice, experiment_id="exp-2")
    with pytest.raises(NotFound) as none_yet:
        service.resolve_reference(settings, f"{name}@production")
    assert f"model {name!r} has no Production version; versions: 1 (none), 2 (none)" in str(
        none_yet.value
    )
    move(settings, name, 1, "Staging", alice)
    move(settings, name, 2, "Staging", alice)
    move(settings, name, 1, "Production", root)
    assert service.resolve_reference(settings, f"{name}@production").version == 1
    assert service.resolve_reference(settings, name).version == 1  # NAME alone
    assert service.resolve_reference(settings, f"{name}@Staging").version == 2
    resolved = service.resolve_reference(settings, f"{name}:2")
    assert resolved.model_dir.name == "final_model" and resolved.model_dir.is_dir()
    with pytest.raises(
        NotFound, match=r"has no version 7; versions: 1 \(Production\), 2 \(Staging\)"
    ):
        service.resolve_reference(settings, f"{name}:7")
    with pytest.raises(NotFound, match="no registered model 'ghost'") as ghost:
        service.resolve_reference(settings, "ghost@production")
    assert name in ghost.value.hint
    with pytest.raises(NotFound, match="has no alias 'latest'"):
        service.resolve_reference(settings, f"{name}@latest")
    for malformed in (f"{name}:one", "a@b@c", "@production", ""):
        with pytest.raises(InvalidRequest):
            service.resolve_reference(settings, malformed)
    with pytest.raises(NotFound, match="has no version 9"):
        service.get_version(settings, name, 9)
    detail = service.get_model(settings, name)
    assert [v.version for v in detail.versions] == [2, 1] and detail.production.version == 1
    assert [m.name for m in service.list_models(settings)] == [name]


def test_sync_repairs_what_was_changed_behind_the_registrys_back(settings, people, runs, name):
    alice, bob, root = people
    register(settings, name, alice)
    register(settings, name, alice, experiment_id="exp-2")
    move(settings, name, 1, "Staging", alice)
    move(settings, name, 1, "Production", root)
    move(settings, name, 2, "Staging", alice)
    client = mlflow_client(settings)
    client.delete_registered_model_alias(name, "production")
    client.set_model_version_tag(name, "2", "stage", "Archived")
    client.delete_model_version(name, "1")  # takes its alias with it
    card_file = settings.resolved_data_dir() / "model_registry" / name / "v2.json"
    card_file.unlink()

    with pytest.raises(Forbidden):
        service.sync(settings, user=bob)
    report = service.sync(settings, user=root)
    text = "\n".join(report.changes)
    assert f"{name}:1: MLflow version 3 created (MLflow version 1 was missing)" in text
    assert f"{name}:2: tag stage set to 'Staging' (was 'Archived')" in text
    assert f"{name}: alias production set to version 1 (MLflow version 3)" in text
    assert f"{name}:2: card rewritten" in text
    assert (report.models, report.versions) == (1, 2)

    assert (
        by_alias(settings, name, "production") == "3" and by_alias(settings, name, "staging") == "2"
    )
    assert client.get_model_version(name, "3").tags == {
        "stage": "Production",
        "loraforge.version": "1",
        "loraforge.experiment_id": "exp-1",
    }
    assert service.get_version(settings, name, 1).mlflow_version == "3"
    assert json.loads(card_file.read_text(encoding="utf-8"))["stage"] == "Staging"
    assert service.sync(settings, user=local_operator()).in_step  # nothing left to do
    assert [e.outcome for e in audit_rows(settings, "model.sync")] == [
        "denied",
        "success",
        "success",
    ]


@pytest.fixture
def unreachable(settings, monkeypatch) -> Settings:
    """The same stores, but MLflow behind a port nothing listens on; no retries."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    secret = f"http://admin:s3cret@127.0.0.1:{free_port()}"
    return settings.model_copy(update={"mlflow_tracking_uri": secret})


def test_mlflow_unreachable_changes_neither_store(settings, unreachable, people, runs, name):
    alice = people[0]
    register(settings, name, alice)
    before = count(settings, ModelTransition, name=name)
    with pytest.raises(Unavailable) as caught:
        move(unreachable, name, 1, "Staging", alice)
    message = str(caught.value)
    assert "the MLflow store at http://127.0.0.1:" in message and "cannot be reached" in message
    assert "s3cret" not in message and "admin" not in message
    assert stages(settings, name) == {1: "none"}
    assert count(settings, ModelTransition, name=name) == before
    assert mlflow_client(settings).get_model_version(name, "1").tags["stage"] == "none"
    assert audit_rows(settings, "model.transition")[-1].outcome == "failure"

    other = f"{name}-new"
    with pytest.raises(Unavailable):
        register(unreachable, other, alice)
    assert count(settings, RegisteredModel, name=other) == 0
    assert count(settings, ModelVersion, name=other) == 0
    assert not (settings.resolved_data_dir() / "model_registry" / other).exists()


def test_a_failed_commit_takes_back_the_mlflow_version(settings, people, runs, name, monkeypatch):
    from mlflow.exceptions import MlflowException
    from sqlalchemy.orm import sessionmaker

    from loraforge.db.engine import get_engine

    class Failing(Session):  # the registry's own sessions only: MLflow's store uses them too
        def commit(self):
            raise RuntimeError("the database went away")

    monkeypatch.setattr(
        transaction,
        "session_factory",
        lambda url: sessionmaker(bind=get_engine(url), class_=Failing, expire_on_commit=False),
    )
    with pytest.raises(RuntimeError, match="went away"):
        register(settings, name, people[0])
    with pytest.raises(MlflowException):  # created for this registration, so removed again
        mlflow_client(settings).get_registered_model(name)
    assert count(settings, RegisteredModel, name=name) == 0
    assert audit_rows(settings, "model.register")[-1].outcome == "failure"


def test_card_edits_by_the_owner_reembed_and_relog(settings, people, runs, name):
    alice, bob, root = people
    info = register(settings, name, alice)
    with session_scope(settings.resolved_database_url()) as session:
        before = session.scalar(select(ModelVersion.embedding).where(ModelVersion.name == name))
    with pytest.raises(Forbidden):
        service.update_card(settings, name, 1, intended_use="mine now", user=bob)
    with pytest.raises(InvalidRequest):
        service.update_card(settings, name, 1, limitations="x" * 5000, user=alice)
    card = service.update_card(
        settings, name, 1, intended_use="Routing airline complaints to the right desk.", user=alice
    )
    assert card.data["intended_use"] == "Routing airline complaints to the right desk."
    assert card.data["limitations"] == info.limitations
    assert card.data["embedding"] != pytest.approx(before)
    assert "Routing airline complaints" in service.read_card(settings, name, 1).readme
    local = mlflow_client(settings).download_artifacts(
        info.mlflow_run_id, f"model_card/{name}/v1.json"
    )
    assert "Routing airline complaints" in Path(local).read_text(encoding="utf-8")
    # An empty text puts back the words written from the facts.
    restored = service.update_card(settings, name, 1, intended_use="", user=root)
    assert restored.data["intended_use"] == info.intended_use
    assert [e.outcome for e in audit_rows(settings, "model.card.update")] == [
        "denied",
        "failure",
        "success",
        "success",
    ]


def test_a_training_config_registers_as_the_operator(
    settings, people, runs, name, tiny_model_dir, data_files
):
    from conftest import tiny_config_tree

    tree = tiny_config_tree(tiny_model_dir, data_files)
    plain = config_from_tree(tree, source="test")
    assert service.register_from_config(settings, "exp-1", plain, local_operator()) is None
    tree["registry"] = {"register_as": name, "tags": {"license": "mit"}, "task": "sentiment"}
    asked = config_from_tree(tree, source="test")
    info = service.register_from_config(settings, "exp-1", asked, local_operator())
    assert (info.version, info.owner_id, info.owner, info.tags) == (
        1,
        None,
        local_operator().username,  # no users row: its registrar stands for the owner
        {"license": "mit"},
    )
    [event] = audit_rows(settings, "model.register")
    assert event.username.startswith("cli:") and event.user_id is None
    assert "license: mit" in service.read_card(settings, name, 1).readme


def test_a_bad_registry_section_is_refused_with_the_config(tiny_model_dir, data_files):
    from conftest import tiny_config_tree

    from loraforge.errors import ConfigError

    for section in ({"register_as": "has space"}, {"register_as": "x", "tags": {"": "v"}}):
        tree = {**tiny_config_tree(tiny_model_dir, data_files), "registry": section}
        with pytest.raises(ConfigError, match="registry"):
            config_from_tree(tree, source="test")


def test_audit_rows_name_the_version(settings, people, runs, name):
    alice = people[0]
    register(settings, name, alice)
    move(settings, name, 1, "Staging", alice, reason="ready")
    with session_scope(settings.resolved_database_url()) as session:
        events = audit.query(session, action="model.transition")
    assert events[0].target == f"{name}:1"
    assert events[0].detail["mlflow"] == [
        f"{name}:1: tag stage set to 'Staging' (was 'none')",
        f"{name}: alias staging set to version 1 (MLflow version 1)",
    ]
    assert cards.problems(service.read_card(settings, name, 1).data) == []


def test_a_job_registers_its_model_and_a_failure_is_only_a_warning(
    settings, people, runs, name, tiny_model_dir, data_files, tmp_path
):
    from conftest import tiny_config_tree

    from loraforge.jobs import execution
    from loraforge.training.runner import TrainingResult

    alice = people[0]
    tree = tiny_config_tree(tiny_model_dir, data_files)
    tree["registry"] = {"register_as": name}
    config = config_from_tree(tree, source="test")
    job = type("Job", (), {"id": "job-1", "owner_id": alice.id})()
    folder = tmp_path / "results"
    folder.mkdir()

    def result(experiment_id: str) -> TrainingResult:
        return TrainingResult(experiment_id, folder, {}, None)

    with session_scope(settings.resolved_database_url()) as session:
        done = execution.register_model(session, settings, job, config, result("exp-1"))
        assert done == {"name": name, "version": 1}
        failed = execution.register_model(session, settings, job, config, result("exp-failed"))
    assert failed["name"] == name
    assert failed["warning"].startswith(f"the model was trained but not registered as {name!r}")
    assert "exp-failed" in failed["warning"] and "is failed" in failed["warning"]
    log = (folder / "logs.txt").read_text(encoding="utf-8")
    assert f"registered as {name} version 1" in log and "not registered" in log
    assert stages(settings, name) == {1: "none"}


def test_a_model_deleted_in_mlflow_blocks_transitions_until_sync(settings, people, runs, name):
    alice, _, root = people
    register(settings, name, alice)
    mlflow_client(settings).delete_registered_model(name)
    with pytest.raises(Unavailable, match="lacks what the registry expects") as caught:
        move(settings, name, 1, "Staging", alice)
    assert "registry sync" in caught.value.hint
    assert stages(settings, name) == {1: "none"}
    report = service.sync(settings, user=root)
    assert f"{name}: registered model created in MLflow" in report.changes
    move(settings, name, 1, "Staging", alice)
    assert (
        by_alias(settings, name, "staging") == service.get_version(settings, name, 1).mlflow_version
    )
