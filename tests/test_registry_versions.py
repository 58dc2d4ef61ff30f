"""The model registry's record of truth: versions, stages, the promotion gate, history."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from services import available, fresh_postgres_database
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from loraforge.auth.users import UserRecord
from loraforge.db.engine import session_factory, session_scope
from loraforge.db.models import Experiment, ModelVersion, User
from loraforge.errors import Conflict, Forbidden, InvalidRequest, NotFound
from loraforge.registry import versions

NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    if not available(5432, "PostgreSQL"):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    with fresh_postgres_database() as url:
        yield url


def add_user(url: str, username: str, role: str = "user") -> UserRecord:
    with session_scope(url) as session:
        row = User(username=username, password_hash="x", role=role, is_active=True, created_at=NOW)
        session.add(row)
        session.flush()
        return UserRecord.from_row(row)


def add_experiment(
    url: str,
    experiment_id: str,
    *,
    owner: UserRecord,
    status: str = "succeeded",
    f1: float = 0.8,
    eval_version: str = "e" * 64,
) -> str:
    with session_scope(url) as session:
        session.add(
            Experiment(
                id=experiment_id,
                name="exp",
                status=status,
                created_at=NOW,
                base_model="minilm-l6",
                config={},
                eval_dataset_version=eval_version,
                metrics={"final": {"accuracy": 0.9, "f1_macro": f1}},
                results_dir="/r",
                owner_id=owner.id,
            )
        )
    return experiment_id


def register(url: str, experiment_id: str, user: UserRecord, name: str = "sentiment", **kw):
    with session_scope(url) as session:
        return versions.register(
            session,
            experiment_id=experiment_id,
            name=name,
            description=kw.get("description"),
            tags=kw.get("tags"),
            user=user,
        )


def move(url: str, version: int, stage: str, user: UserRecord, name: str = "sentiment", **kw):
    with session_scope(url) as session:
        return versions.transition(
            session, name=name, version=version, stage=stage, user=user, **kw
        )


def history(url: str, name: str = "sentiment"):
    with session_scope(url) as session:
        return versions.history(session, name=name)


@pytest.fixture
def people(sqlite_url):
    return (
        add_user(sqlite_url, "alice"),
        add_user(sqlite_url, "bob"),
        add_user(sqlite_url, "root", "admin"),
    )


def test_versions_are_numbered_per_name_with_a_metric_snapshot(sqlite_url, people):
    alice, _, _ = people
    for n in range(3):
        add_experiment(sqlite_url, f"x{n}", owner=alice, f1=0.7 + n / 10)
    assert [register(sqlite_url, f"x{n}", alice).version for n in range(2)] == [1, 2]
    other = register(sqlite_url, "x2", alice, name="topics-v1.0", tags={"team": "nlp"})
    assert (other.name, other.version, other.stage, other.tags) == (
        "topics-v1.0",
        1,
        "none",
        {"team": "nlp"},
    )
    assert other.metrics == {
        "accuracy": 0.9,
        "f1_macro": pytest.approx(0.9),
        "eval_data_version": "e" * 64,
    }


def test_register_refuses_unfinished_foreign_and_badly_named(sqlite_url, people):
    alice, bob, root = people
    add_experiment(sqlite_url, "failed", owner=alice, status="failed")
    add_experiment(sqlite_url, "mine", owner=alice)
    with pytest.raises(Conflict, match="is failed"):
        register(sqlite_url, "failed", alice)
    # Someone else's experiment reads exactly like a missing one.
    with pytest.raises(NotFound, match="no experiment 'mine'"):
        register(sqlite_url, "mine", bob)
    with pytest.raises(NotFound, match="no experiment 'ghost'"):
        register(sqlite_url, "ghost", bob)
    for bad in ("has space", "a/b", "x" * 65, ""):
        with pytest.raises(InvalidRequest) as caught:
            register(sqlite_url, "mine", alice, name=bad)
        assert "letters, digits, `.`, `_`, `-`; at most 64 characters" in str(caught.value)
    with pytest.raises(InvalidRequest, match="description"):
        register(sqlite_url, "mine", alice, description="d" * 5000)
    with pytest.raises(InvalidRequest, match="tags"):
        register(sqlite_url, "mine", alice, tags={f"k{i}": "v" for i in range(40)})
    # An admin may register anyone's experiment; nothing was written by the refusals.
    assert register(sqlite_url, "mine", root).version == 1


def test_transitions_follow_the_table_and_the_roles(sqlite_url, people):
    alice, bob, root = people
    add_experiment(sqlite_url, "x1", owner=alice)
    register(sqlite_url, "x1", alice)
    with pytest.raises(Conflict, match="can move to: Staging"):
        move(sqlite_url, 1, "Production", root)
    with pytest.raises(Forbidden, match="not yours"):
        move(sqlite_url, 1, "Staging", bob)
    assert move(sqlite_url, 1, "Staging", alice).stage == "Staging"
    with pytest.raises(Forbidden, match="only an admin"):
        move(sqlite_url, 1, "Production", alice)
    with pytest.raises(Forbidden, match="only an admin"):
        move(sqlite_url, 1, "Archived", alice)
    assert move(sqlite_url, 1, "Production", root).stage == "Production"
    with pytest.raises(Conflict, match="can move to: Archived"):
        move(sqlite_url, 1, "Staging", root)
    assert move(sqlite_url, 1, "Archived", root).stage == "Archived"
    assert move(sqlite_url, 1, "Staging", alice).stage == "Staging"
    with pytest.raises(NotFound):
        move(sqlite_url, 9, "Staging", alice)
    with pytest.raises(NotFound):
        move(sqlite_url, 1, "Staging", alice, name="nothing")
    with pytest.raises(InvalidRequest):
        move(sqlite_url, 1, "Live", root)


def test_promotion_gate_archives_the_previous_and_force_needs_a_reason(sqlite_url, people):
    alice, _, root = people
    add_experiment(sqlite_url, "good", owner=alice, f1=0.80)
    add_experiment(sqlite_url, "worse", owner=alice, f1=0.70)
    add_experiment(sqlite_url, "other-data", owner=alice, f1=0.99, eval_version="f" * 64)
    add_experiment(sqlite_url, "better", owner=alice, f1=0.85)
    for n, exp in enumerate(("good", "worse", "other-data", "better"), start=1):
        register(sqlite_url, exp, alice)
        move(sqlite_url, n, "Staging", alice)
    move(sqlite_url, 1, "Production", root)

    with pytest.raises(Conflict) as worse:
        move(sqlite_url, 2, "Production", root)
    assert "0.7000" in str(worse.value) and "0.8000" in str(worse.value)
    with pytest.raises(Conflict, match="cannot be compared"):
        move(sqlite_url, 3, "Production", root)
    with pytest.raises(InvalidRequest, match="reason"):
        move(sqlite_url, 2, "Production", root, force=True, reason="  ")

    forced = move(sqlite_url, 2, "Production", root, force=True, reason="rollback: v1 misroutes")
    assert forced.stage == "Production"
    # A better score on the same eval data needs no force, and archives the previous one.
    assert move(sqlite_url, 4, "Production", root).stage == "Production"
    with session_scope(sqlite_url) as session:
        stages = dict(session.query(ModelVersion.version, ModelVersion.stage).all())
    assert stages == {1: "Archived", 2: "Archived", 3: "Staging", 4: "Production"}

    newest = history(sqlite_url)[:4]
    assert [(t.version, t.from_stage, t.to_stage) for t in newest] == [
        (4, "Staging", "Production"),
        (2, "Production", "Archived"),
        (2, "Staging", "Production"),
        (1, "Production", "Archived"),
    ]
    promoted, forced_row = newest[0], newest[2]
    assert promoted.metrics["f1_macro"] == pytest.approx(0.85)
    assert promoted.previous_production_metrics["f1_macro"] == pytest.approx(0.70)
    assert forced_row.forced and forced_row.reason == "rollback: v1 misroutes"
    assert forced_row.actor_username == "root"


def test_history_tells_registration_and_every_transition_newest_first(sqlite_url, people):
    alice, _, root = people
    add_experiment(sqlite_url, "x1", owner=alice)
    register(sqlite_url, "x1", alice)
    move(sqlite_url, 1, "Staging", alice, reason="looks good")
    move(sqlite_url, 1, "Production", root)
    rows = history(sqlite_url)
    assert [(t.from_stage, t.to_stage, t.actor_username) for t in rows] == [
        ("Staging", "Production", "root"),
        ("none", "Staging", "alice"),
        (None, "none", "alice"),
    ]
    assert rows[1].reason == "looks good" and rows[0].previous_production_metrics is None
    with pytest.raises(NotFound):
        history(sqlite_url, "nothing")


def test_the_database_itself_refuses_a_second_production(any_url):
    alice = add_user(any_url, "alice")
    for n in (1, 2):
        add_experiment(any_url, f"x{n}", owner=alice)
        register(any_url, f"x{n}", alice)
    with session_scope(any_url) as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.version == 1).values(stage="Production")
        )
    with pytest.raises(IntegrityError), session_scope(any_url) as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.version == 2).values(stage="Production")
        )


def test_racing_promotions_end_with_one_production_and_a_history_of_both(any_url):
    """Two promotions of two Staging versions at the same moment, in separate sessions.

    Decided behaviour: they run one after the other (the model's row lock), so both
    succeed: the first is promoted, then the second is promoted and the first archived.
    The scores are equal, so the second passes the gate whichever one goes first.
    """
    alice, root = add_user(any_url, "alice"), add_user(any_url, "root", "admin")
    for n in (1, 2):
        add_experiment(any_url, f"x{n}", owner=alice, f1=0.8)
        register(any_url, f"x{n}", alice)
        move(any_url, n, "Staging", alice)

    start = threading.Barrier(2)
    results: dict[int, object] = {}

    def promote(version: int) -> None:
        session = session_factory(any_url)()
        try:
            start.wait()
            with session.begin():
                versions.transition(
                    session, name="sentiment", version=version, stage="Production", user=root
                )
            results[version] = "promoted"
        except Exception as error:  # the assertion below shows it
            results[version] = error
        finally:
            session.close()

    threads = [threading.Thread(target=promote, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == {1: "promoted", 2: "promoted"}
    with session_scope(any_url) as session:
        stages = dict(session.query(ModelVersion.version, ModelVersion.stage).all())
    assert sorted(stages.values()) == ["Archived", "Production"]
    winner = next(v for v, stage in stages.items() if stage == "Production")
    first = 3 - winner
    told = [(t.version, t.from_stage, t.to_stage) for t in history(any_url)[:3]]
    assert told == [
        (winner, "Staging", "Production"),
        (first, "Production", "Archived"),
        (first, "Staging", "Production"),
    ]


def test_concurrent_registrations_of_one_new_name_get_distinct_numbers(any_url):
    alice = add_user(any_url, "alice")
    for n in range(4):
        add_experiment(any_url, f"x{n}", owner=alice)
    start = threading.Barrier(4)
    numbers, errors = [], []

    def register_one(n: int) -> None:
        start.wait()
        try:
            numbers.append(register(any_url, f"x{n}", alice, name="fresh").version)
        except Exception as error:  # the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=register_one, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == [1, 2, 3, 4]


def test_a_registered_experiment_cannot_be_deleted(sqlite_url, people, tmp_path):
    from loraforge.tracking import experiments

    alice, _, _ = people
    add_experiment(sqlite_url, "kept", owner=alice)
    register(sqlite_url, "kept", alice)
    with pytest.raises(Conflict, match="registered as model sentiment version 1"):
        experiments.delete(sqlite_url, "kept", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with session_scope(sqlite_url) as session:
        assert session.get(Experiment, "kept") is not None


@pytest.mark.parametrize("name", ["search", "Recommend", "transition"])
def test_route_names_are_reserved(name):
    from loraforge.registry.versions import _check_name

    with pytest.raises(InvalidRequest, match="reserved"):
        _check_name(name)
