"""The HTTP API: sign-in, tokens, roles, ownership, uploads, audit — through real HTTP requests."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from loraforge.api.app import create_app
from loraforge.auth import users
from loraforge.db.engine import get_engine
from loraforge.settings import DEVELOPMENT_JWT_SECRET, Settings

PASSWORD = "correct horse battery"
CSV = b"text,label\n" + b"".join(
    f"good thing {i},pos\nbad thing {i},neg\n".encode() for i in range(12)
)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "state",
        results_dir=tmp_path / "results",
        max_upload_mb=0.01,  # 10 KiB
        login_failure_limit=3,
    )


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def people(settings):
    """An admin and two users, created through the service as `loraforge users create` does."""
    factory = sessionmaker(bind=get_engine(settings.resolved_database_url()))
    with factory() as session:
        created = {
            name: users.create_user(session, username=name, password=PASSWORD, role=role)
            for name, role in (("root", "admin"), ("alice", "user"), ("bob", "user"))
        }
        session.commit()
    return created


def login(client, username, password=PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


def auth(client, username) -> dict[str, str]:
    response = login(client, username)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def upload(client, headers, name="reviews.csv", content=CSV, **form):
    return client.post(
        "/datasets",
        headers=headers,
        files={"file": (name, io.BytesIO(content), "text/csv")},
        data=form,
    )


def audit_events(client, **params):
    response = client.get("/audit/logs", headers=auth(client, "root"), params=params)
    assert response.status_code == 200
    return response.json()["data"]


def test_login_gives_an_expiring_bearer_token(client, people):
    body = login(client, "alice").json()
    assert body["token_type"] == "bearer"
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)
    me = client.get("/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "alice" and "password_hash" not in me.json()


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_wrong_credentials_are_401_with_json_and_audited(client, people, username):
    response = login(client, username, "wrong password")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == "wrong username or password, or the account is disabled"
    [event] = audit_events(client, action="login", user=username)
    assert (event["outcome"], event["client"]) == ("failure", "testclient")


def test_repeated_failed_logins_are_throttled(client, people):
    for _ in range(3):
        assert login(client, "alice", "nope").status_code == 401
    throttled = login(client, "alice")  # even the right password
    assert throttled.status_code == 429
    assert "too many failed sign-ins" in throttled.json()["detail"]
    assert login(client, "bob").status_code == 200  # other users are unaffected


def _token(settings, **claims) -> str:
    now = datetime.now(UTC)
    payload = {"sub": "2", "iat": now, "exp": now + timedelta(minutes=5), **claims}
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def test_bad_tokens_are_401(client, people, settings):
    good = auth(client, "alice")["Authorization"].removeprefix("Bearer ")
    header, payload, signature = good.split(".")
    tampered_payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    unsigned = jwt.encode({"sub": "2", "exp": 9999999999, "iat": 1}, key="", algorithm="none")
    candidates = {
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "alg none": unsigned,
        "wrong key": jwt.encode(
            {"sub": "2", "exp": 9999999999, "iat": 1}, "x" * 40, algorithm="HS256"
        ),
        "expired": _token(settings, exp=datetime.now(UTC) - timedelta(seconds=1)),
        "garbage": "not-a-token",
    }
    for name, token in candidates.items():
        response = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert "detail" in response.json()
    assert client.get("/users/me").status_code == 401
    assert client.get("/users/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_disabled_or_demoted_users_lose_access_at_once(client, people):
    alice = auth(client, "alice")
    second_admin = client.post(
        "/users",
        headers=auth(client, "root"),
        json={"username": "carol", "password": PASSWORD, "role": "admin"},
    ).json()
    carol = auth(client, "carol")
    assert client.get("/users", headers=carol).status_code == 200
    root = auth(client, "root")
    assert (
        client.patch(
            f"/users/{second_admin['id']}", headers=root, json={"role": "user"}
        ).status_code
        == 200
    )
    assert client.get("/users", headers=carol).status_code == 403
    assert (
        client.post(f"/users/{people['alice'].id}/disable", headers=root).json()["is_active"]
        is False
    )
    assert client.get("/users/me", headers=alice).status_code == 401
    assert login(client, "alice").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/users"),
        ("post", "/users"),
        ("patch", "/users/1"),
        ("post", "/users/1/disable"),
        ("get", "/audit/logs"),
    ],
)
def test_admin_endpoints_refuse_users_with_403(client, people, method, path):
    kwargs = (
        {"json": {"username": "eve", "password": PASSWORD}}
        if method == "post" and path == "/users"
        else {}
    )
    if method == "patch":
        kwargs = {"json": {"role": "admin"}}
    response = getattr(client, method)(path, headers=auth(client, "alice"), **kwargs)
    assert response.status_code == 403
    assert response.json()["detail"] == "this needs the admin role"


def test_request_bodies_refuse_unknown_fields(client, people):
    root = auth(client, "root")
    for body in (
        {"username": "mallory", "password": PASSWORD, "is_active": True, "id": 1},
        {"username": "mallory", "password": PASSWORD, "password_hash": "x"},
    ):
        response = client.post("/users", headers=root, json=body)
        assert response.status_code == 422
    assert (
        client.patch(f"/users/{people['bob'].id}", headers=root, json={"username": "x"}).status_code
        == 422
    )


def test_admin_creates_users_and_listing_hides_hashes(client, people):
    root = auth(client, "root")
    created = client.post("/users", headers=root, json={"username": "dave", "password": PASSWORD})
    assert created.status_code == 201 and created.json()["role"] == "user"
    assert (
        client.post(
            "/users", headers=root, json={"username": "dave", "password": PASSWORD}
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/users", headers=root, json={"username": "../x", "password": PASSWORD}
        ).status_code
        == 400
    )
    listing = client.get("/users", headers=root)
    assert listing.json()["count"] == 4
    assert "password" not in listing.text and "$argon2" not in listing.text
    assert login(client, "dave").status_code == 200


def test_dataset_upload_is_validated_versioned_and_stored_under_a_generated_name(
    client, people, settings
):
    response = upload(client, auth(client, "alice"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rows"] == 24 and body["label_counts"] == {"pos": 12, "neg": 12}
    assert len(body["version"]) == 64 and body["warnings"] == []
    assert body["name"] == "reviews.csv"
    stored = list(settings.resolved_datasets_dir().iterdir())
    assert [p.name for p in stored] == [f"{body['id']}.csv"]
    assert str(settings.resolved_data_dir()) not in response.text  # no server paths


def test_invalid_dataset_is_refused_with_422_and_leaves_nothing(client, people, settings):
    response = upload(client, auth(client, "alice"), content=b"text,label\na,pos\nb,pos\n")
    assert response.status_code == 422
    assert "at least 2 classes" in response.json()["detail"]
    assert str(settings.resolved_data_dir()) not in response.text
    assert not any(settings.resolved_datasets_dir().iterdir())
    missing_column = upload(client, auth(client, "alice"), text_column="review")
    assert (
        missing_column.status_code == 422
        and "no column 'review'" in missing_column.json()["detail"]
    )


@pytest.mark.parametrize(
    "name",
    [
        "../evil.csv",
        "..\\evil.csv",
        "%2e%2e%2fevil.csv",
        "%252e%252e%252fevil.csv",
        "a;b.csv",
        "a?b.csv",
        "a#b.csv",
        "file://evil.csv",
        "/etc/passwd.csv",
        "sub/evil.csv",
        ".hidden.csv",
        "evil.exe",
    ],
)
def test_unsafe_file_names_are_refused(client, people, settings, name):
    response = upload(client, auth(client, "alice"), name=name)
    assert response.status_code == 400, (name, response.text)
    assert "hint" in response.json()
    assert not settings.resolved_datasets_dir().exists() or not any(
        settings.resolved_datasets_dir().iterdir()
    )


def test_uploads_over_the_limit_are_413(client, people, settings):
    headers = auth(client, "alice")
    big = (
        b"text,label\n" + b"x" * (11 * 1024) + b",pos\ny,neg\n"
    )  # over 10 KiB, under the framing slack
    assert upload(client, headers, content=big).status_code == 413
    huge = b"text,label\n" + b"x" * (200 * 1024) + b",pos\n"  # refused from Content-Length alone
    response = upload(client, headers, content=huge)
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    assert not any(settings.resolved_datasets_dir().iterdir())


def test_other_users_objects_are_404_like_missing_ones(client, people):
    alice, bob, root = auth(client, "alice"), auth(client, "bob"), auth(client, "root")
    dataset = upload(client, alice).json()
    assert client.get(f"/datasets/{dataset['id']}", headers=alice).status_code == 200
    theirs = client.get(f"/datasets/{dataset['id']}", headers=bob)
    missing = client.get("/datasets/00000000-0000-0000-0000-000000000000", headers=bob)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(dataset["id"], "X") == missing.json()["detail"].replace(
        "00000000-0000-0000-0000-000000000000", "X"
    )
    assert client.get("/datasets", headers=bob).json()["count"] == 0
    assert client.get("/datasets", headers=root).json()["count"] == 1
    assert client.get(f"/datasets/{dataset['id']}", headers=root).status_code == 200


def test_every_action_is_audited_and_the_log_is_read_only(client, people):
    alice = auth(client, "alice")
    dataset = upload(client, alice).json()
    upload(client, alice, content=b"text,label\n")
    root = auth(client, "root")
    client.post("/users", headers=root, json={"username": "erin", "password": PASSWORD})
    events = audit_events(client)
    seen = {(e["action"], e["outcome"], e["username"]) for e in events}
    assert {
        ("login", "success", "alice"),
        ("dataset.upload", "success", "alice"),
        ("dataset.upload", "failure", "alice"),
        ("user.create", "success", "root"),
    } <= seen
    upload_event = next(
        e for e in events if e["action"] == "dataset.upload" and e["outcome"] == "success"
    )
    assert (
        upload_event["target"] == f"dataset:{dataset['id']}"
        and upload_event["client"] == "testclient"
    )
    assert audit_events(client, user="alice", action="login")[0]["username"] == "alice"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit_events(client, since=future) == []
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/audit/logs", headers=root).status_code == 405


def test_health_metrics_and_docs_are_public(client):
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}
    client.get("/health")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'loraforge_http_requests_total{method="GET",route="/health",status="200"}' in metrics.text
    )
    assert client.get("/docs").status_code == 200
    assert "/datasets" in client.get("/openapi.json").json()["paths"]


def test_production_refuses_a_default_or_short_secret(tmp_path):
    with pytest.raises(ValidationError, match="LORAFORGE_JWT_SECRET"):
        Settings(env="production")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", jwt_secret="short-secret")
    assert (
        Settings(env="production", jwt_secret="s" * 40).jwt_secret.get_secret_value()
        != DEVELOPMENT_JWT_SECRET
    )


def test_cli_creates_the_first_admin_from_stdin(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from loraforge.cli import app
    from loraforge.settings import get_settings

    monkeypatch.setenv("LORAFORGE_DATA_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(
            app, ["users", "create", "boss", "--admin", "--password-stdin"], input=PASSWORD + "\n"
        )
        assert result.exit_code == 0, result.output
        assert "boss (admin)" in result.output
        again = runner.invoke(
            app, ["users", "create", "boss", "--password-stdin"], input=PASSWORD + "\n"
        )
        assert again.exit_code == 7 and "taken" in again.output
        short = runner.invoke(app, ["users", "create", "kid", "--password-stdin"], input="short\n")
        assert short.exit_code == 2 and "at least 8" in short.output
        with TestClient(create_app(get_settings())) as client:
            assert (
                client.get("/users", headers=auth(client, "boss")).json()["data"][0]["role"]
                == "admin"
            )
    finally:
        get_settings.cache_clear()


def experiment_ids_of_new_jobs(client, monkeypatch, name: str, count: int) -> list[str]:
    """Submit ``count`` jobs named ``name`` as alice (not sent to any worker)."""
    monkeypatch.setattr("loraforge.jobs.celery_app.enqueue", lambda settings, job_id: None)
    headers = auth(client, "alice")
    dataset = upload(client, headers).json()["id"]
    body = {"experiment_name": name, "data": {"dataset_id": dataset, "eval_split": 0.25}}
    tasks = [
        client.post("/train", headers=headers, json=body).json()["task_id"] for _ in range(count)
    ]
    return [client.get(f"/task/{t}", headers=headers).json()["experiment_id"] for t in tasks]


def test_jobs_submitted_in_the_same_second_get_their_own_experiments(client, people, monkeypatch):
    """Experiment ids are <name>-<UTC second>; a second job in that second must not share
    the first one's results folder and MLflow run."""
    from datetime import UTC, datetime

    import loraforge.training.runner as runner

    frozen = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(
        runner, "datetime", type("Frozen", (), {"now": staticmethod(lambda tz: frozen)})
    )
    assert experiment_ids_of_new_jobs(client, monkeypatch, "same", 3) == [
        "same-20261127-120000",
        "same-20261127-120000-2",
        "same-20261127-120000-3",
    ]


def test_an_experiment_id_taken_by_a_racing_replica_is_skipped(client, people, monkeypatch):
    """Two API replicas may both find an id free; the unique index lets one have it and
    the other takes the next candidate."""
    candidates = iter(["race-1", "race-1", "race-2"])
    monkeypatch.setattr("loraforge.jobs.service.new_experiment_id", lambda *a: next(candidates))
    assert experiment_ids_of_new_jobs(client, monkeypatch, "race", 2) == ["race-1", "race-2"]
