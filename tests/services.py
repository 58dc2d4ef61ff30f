"""Real servers on 127.0.0.1 for integration tests: PostgreSQL and Redis.

Locally a test that needs one is skipped when nothing answers; under `.ci/run`
(LORAFORGE_TEST_REQUIRE_SERVICES=1, after it started them) a missing server fails the run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def required() -> bool:
    return os.environ.get("LORAFORGE_TEST_REQUIRE_SERVICES") == "1"


def available(port: int, name: str) -> bool:
    if answers(port):
        return True
    if required():
        pytest.fail(f"{name} on 127.0.0.1:{port} is required (LORAFORGE_TEST_REQUIRE_SERVICES=1)")
    return False


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database; dropped afterwards."""
    from sqlalchemy import create_engine, text

    from loraforge.db.engine import get_engine

    name = f"loraforge_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
