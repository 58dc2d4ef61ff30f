"""Engine and sessions for any SQLAlchemy URL; the schema is brought up to date by Alembic."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets a reader (e.g. `experiments list`) run while a training run writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def upgrade_schema(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


# Alembic's command API keeps module-level state: two threads migrating at once (a
# worker's reaper and its first job, at start-up) failed one of them with a KeyError.
_first_use = threading.Lock()


def get_engine(url: str) -> Engine:
    """One engine per URL, created and migrated by the first caller; the others wait."""
    with _first_use:
        return _migrated_engine(url)


@lru_cache(maxsize=8)
def _migrated_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    # A network database may drop idle connections; a SQLite file cannot.
    # The API serves sync handlers from a pool of 40 threads; with SQLAlchemy's default
    # of 5 (+10) connections most of them queue for a connection under load.
    engine = create_engine(url, pool_pre_ping=not is_sqlite, pool_size=20, max_overflow=20)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade_schema(engine)
    return engine


@lru_cache(maxsize=8)
def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    with session_factory(url)() as session, session.begin():
        yield session
