"""`loraforge db upgrade`: migrates a fresh database (SQLite here, PostgreSQL in the
deployment's migration job), is safe to run again, and an unreachable database is exit 9
in our words, not a traceback."""

from __future__ import annotations

import sqlalchemy
from typer.testing import CliRunner

from loraforge.cli.app import app
from loraforge.settings import get_settings

runner = CliRunner()


def test_db_upgrade_migrates_once_and_again(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAFORGE_DATA_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    try:
        for _ in range(2):
            result = runner.invoke(app, ["db", "upgrade"])
            assert result.exit_code == 0, result.output
            assert "schema is up to date" in result.output
        engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'state' / 'loraforge.db'}")
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        assert {"alembic_version", "users", "jobs", "service_tokens"} <= tables
    finally:
        get_settings.cache_clear()


def test_an_unreachable_database_is_exit_9_with_a_hint(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORAFORGE_DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 9, result.output
    assert "cannot reach the database" in result.output and "hint:" in result.output
    assert "secret" not in result.output and "Traceback" not in result.output
