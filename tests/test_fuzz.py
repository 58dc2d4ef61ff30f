"""Schemathesis fuzzes every endpoint from the OpenAPI schema: no input gives a 5xx, and
every error answer has the one documented shape."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy.orm import sessionmaker

from loraforge.api.app import create_app
from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.settings import Settings

ROOT = Path(tempfile.mkdtemp(prefix="loraforge-fuzz-"))
SETTINGS = Settings(data_dir=ROOT / "state", results_dir=ROOT / "results", max_upload_mb=1)
APP = create_app(SETTINGS)
with sessionmaker(bind=get_engine(SETTINGS.resolved_database_url()))() as _session:
    users.create_user(_session, username="fuzzer", password="fuzzing password", role="admin")
    _session.commit()
with TestClient(APP) as _client:
    TOKEN = _client.post(
        "/login", data={"username": "fuzzer", "password": "fuzzing password"}
    ).json()["access_token"]

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schemathesis.check
def one_error_shape(ctx, response, case) -> None:
    """Whatever the input, an error answers {"detail": str, "hint": str|null, "errors": [...]}."""
    if response.status_code < 400:
        return
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"detail", "hint", "errors"}, (
        f"{case.operation.label} answered {response.status_code} with {body!r}"
    )
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["hint"] is None or isinstance(body["hint"], str)
    for item in body["errors"]:
        assert set(item) == {"field", "message", "location"}, item


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_signed_in(case):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error, one_error_shape]
    )


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_anonymous(case):
    case.call_and_validate(checks=[not_a_server_error, one_error_shape])
