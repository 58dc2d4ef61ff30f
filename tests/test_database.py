"""The experiment database on SQLite (embedded default) and on a real PostgreSQL server."""

import pytest
from services import available, fresh_postgres_database
from sqlalchemy import inspect, text

from loraforge.db.engine import get_engine
from loraforge.errors import NotFound
from loraforge.tracking import experiments


def _exercise(url: str) -> None:
    values = dict(
        name="db", base_model="minilm-l6", config={"training": {"epochs": 1}}, results_dir="/r"
    )
    experiments.create(url, id="db-1", **values)
    experiments.create(url, id="db-2", **values)
    experiments.update(url, "db-1", labels=[0, 1], train_dataset_version="a" * 64)
    experiments.mark_succeeded(
        url, "db-1", metrics={"final": {"accuracy": 0.9}}, results_dir="/r/db-1"
    )
    experiments.mark_failed(url, "db-2", error="out of memory", results_dir="/r/db-2.failed")
    assert experiments.get(url, "latest").id == "db-1"
    record = experiments.get(url, "db-1")
    assert record.labels == [0, 1] and record.metrics == {"final": {"accuracy": 0.9}}
    assert [r.id for r in experiments.list_experiments(url, status="failed")] == ["db-2"]
    assert experiments.get(url, "db-2").error == "out of memory"
    with pytest.raises(NotFound):
        experiments.update(url, "nope", status="failed")


def test_sqlite_schema_is_migrated_and_usable(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'loraforge.db'}"
    engine = get_engine(url)
    assert "experiments" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert (
            connection.execute(text("select version_num from alembic_version")).scalar() == "0010"
        )
    _exercise(url)


def test_postgresql_schema_is_migrated_and_usable():
    if not available(5432, "PostgreSQL"):
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    with fresh_postgres_database() as url:
        _exercise(url)


def test_first_use_from_several_threads_migrates_once_and_shares_one_engine(tmp_path):
    """A worker's reaper thread and its first job both open the database at start-up;
    Alembic's command API is not thread-safe, so a race once failed the job (KeyError)."""
    import threading

    url = f"sqlite:///{tmp_path / 'raced.db'}"
    start = threading.Barrier(6)
    engines, errors = [], []

    def open_it() -> None:
        start.wait()
        try:
            engines.append(get_engine(url))
        except Exception as error:  # the assertion below shows what went wrong
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({id(engine) for engine in engines}) == 1
