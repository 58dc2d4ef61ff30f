"""What an API client sees beyond the happy path: the docs pages work offline, every error
has one shape with the problems in words, timestamps carry their zone, and the OpenAPI
schema lists status values, descriptions and the error shape."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker
from test_api import CSV, auth, client, people, settings, upload  # noqa: F401  (fixtures)

from loraforge.api.app import create_app
from loraforge.db.engine import get_engine
from loraforge.tracking import experiments

ERROR_KEYS = {"detail", "hint", "errors"}


def assert_error_shape(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["detail"], str) and body["detail"]
    for item in body["errors"]:
        assert set(item) == {"field", "message", "location"}
    return body


# --- the docs pages, air-gapped -------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        (
            "/docs",
            {
                "swagger-ui-bundle.js": "javascript",
                "swagger-ui.css": "text/css",
                "favicon-32x32.png": "image/png",
            },
        ),
        ("/redoc", {"redoc.standalone.js": "javascript"}),
    ],
)
def test_docs_pages_load_only_assets_served_by_the_api_itself(client, page, assets):  # noqa: F811
    html = client.get(page)
    assert html.status_code == 200
    # Nothing from another host: no CDN, no Google fonts, no online validator.
    assert not re.findall(r"https?://", html.text), re.findall(r"https?://\S+", html.text)
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    for name, content_type in assets.items():
        [url] = [u for u in referenced if u.endswith(name)]
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert content_type in asset.headers["content-type"], (url, asset.headers)
        assert len(asset.content) > 500
    assert "/openapi.json" in html.text


def test_docs_assets_are_package_data():
    """They must reach the wheel: pyproject's package-data names the folder."""
    from pathlib import Path

    import loraforge.api.docs as docs

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"api/static/*/*"' in pyproject
    for relative in ("swagger-ui/swagger-ui-bundle.js", "redoc/redoc.standalone.js"):
        assert (docs.STATIC_DIR / relative).is_file()
    assert (docs.STATIC_DIR / "swagger-ui" / "LICENSE").is_file()
    assert (docs.STATIC_DIR / "redoc" / "LICENSE").is_file()


# --- one error shape --------------------------------------------------------------------


def test_validation_errors_name_each_field_in_words(client, people):  # noqa: F811
    body = assert_error_shape(
        client.post(
            "/train",
            headers=auth(client, "alice"),
            json={
                "experiment_name": "my experiment!",
                "data": {"dataset_id": "x"},
                "training": {"epochs": 0, "epoks": 3},
            },
        ),
        422,
    )
    assert body["errors"] == [
        {
            "field": "experiment_name",
            "message": "may only use letters, digits, `.`, `_`, `-` (starting with a letter "
            "or digit); at most 64 characters",
            "location": "body",
        },
        {"field": "training.epochs", "message": "must be at least 1", "location": "body"},
        {
            "field": "training.epoks",
            "message": "is not a known field: did you mean `epochs`?",
            "location": "body",
        },
    ]
    assert body["detail"].startswith("3 fields are invalid: experiment_name may only use")
    assert "training.epochs must be at least 1" in body["detail"]
    assert "^[A-Za-z0-9]" not in str(body)  # words, not the regex
    assert body["hint"] == "Fix the fields listed in `errors` and send the request again."


def test_query_path_form_and_whole_body_problems_have_the_same_shape(client, people):  # noqa: F811
    root = auth(client, "root")
    query = assert_error_shape(client.get("/audit/logs", headers=root, params={"limit": 0}), 422)
    assert query["errors"] == [
        {"field": "limit", "message": "must be at least 1", "location": "query"}
    ]
    path = assert_error_shape(client.patch("/users/0", headers=root, json={}), 422)
    assert path["errors"][0]["location"] == "path"
    form = assert_error_shape(client.post("/login", data={"username": "root"}), 422)
    assert form["errors"] == [{"field": "password", "message": "is required", "location": "form"}]
    broken = assert_error_shape(
        client.post(
            "/train", headers={**root, "content-type": "application/json"}, content=b"{oops"
        ),
        422,
    )
    assert broken["detail"].startswith("the request body is not valid JSON")
    assert broken["errors"][0]["field"] == ""
    unknown_status = assert_error_shape(
        client.get("/experiments", headers=root, params={"status": "done"}), 422
    )
    assert unknown_status["errors"][0]["message"].startswith("must be one of: running")


def test_starlette_and_typed_errors_have_the_same_shape(client, people):  # noqa: F811
    missing_route = assert_error_shape(client.get("/no-such-thing"), 404)
    assert missing_route["detail"] == "there is no endpoint /no-such-thing"
    assert missing_route["errors"] == []
    wrong_method = assert_error_shape(client.put("/health"), 405)
    assert wrong_method["detail"] == "PUT is not allowed on /health"
    assert_error_shape(client.get("/users/me"), 401)
    assert_error_shape(client.get("/users", headers=auth(client, "alice")), 403)
    assert_error_shape(client.get("/datasets/nope", headers=auth(client, "alice")), 404)


def test_413_from_the_size_limit_has_the_same_shape(client, people):  # noqa: F811
    huge = b"text,label\n" + b"x" * (200 * 1024) + b",pos\n"
    body = assert_error_shape(upload(client, auth(client, "alice"), content=huge), 413)
    assert body["detail"] == "the request body is larger than 10 KB"
    assert "LORAFORGE_MAX_UPLOAD_MB" in body["hint"]


def test_an_unexpected_error_is_500_in_the_same_shape_without_internals(settings, caplog):  # noqa: F811
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at /srv/private/path")

    with TestClient(app) as test_client, caplog.at_level("ERROR", "loraforge.api.errors"):
        body = assert_error_shape(test_client.get("/boom"), 500)
    assert "secret" not in str(body) and "/srv" not in str(body)
    assert "server's log" in body["detail"]
    [logged] = [r for r in caplog.records if r.name == "loraforge.api.errors"]
    assert logged.exc_info and "secret internals" in str(logged.exc_info[1])


def test_predict_refuses_blank_texts_naming_their_index(client, people):  # noqa: F811
    body = assert_error_shape(
        client.post(
            "/predict",
            headers=auth(client, "alice"),
            json={"experiment_id": "x", "texts": ["fine", "ok", "  ", ""]},
        ),
        422,
    )
    assert [(e["field"], e["message"]) for e in body["errors"]] == [
        ("texts.2", "must not be empty"),
        ("texts.3", "must not be empty"),
    ]
    assert body["detail"] == (
        "2 fields are invalid: texts.2 must not be empty; texts.3 must not be empty"
    )


# --- time zones ------------------------------------------------------------------------


def _aware(value: str) -> bool:
    return value.endswith(("Z", "+00:00")) and datetime.fromisoformat(value).tzinfo is not None


def test_every_timestamp_in_answers_carries_its_time_zone(client, people, settings, monkeypatch):  # noqa: F811
    monkeypatch.setattr("loraforge.jobs.celery_app.enqueue", lambda settings, job_id: None)
    alice, root = auth(client, "alice"), auth(client, "root")
    dataset = upload(client, alice).json()
    assert _aware(dataset["created_at"])
    task = client.post(
        "/train",
        headers=alice,
        json={"experiment_name": "tz", "data": {"dataset_id": dataset["id"], "eval_split": 0.25}},
    ).json()["task_id"]
    job = client.get(f"/task/{task}", headers=alice).json()
    assert _aware(job["created_at"])
    url = settings.resolved_database_url()
    experiments.create(
        url,
        id="tz-1",
        name="tz",
        base_model="minilm-l6",
        config={},
        results_dir=str(settings.resolved_results_dir() / "tz-1"),
        owner_id=people["alice"].id,
    )
    experiments.mark_failed(url, "tz-1", error="x", results_dir="/r/tz-1.failed")
    experiment = client.get("/experiments/tz-1", headers=alice).json()
    assert _aware(experiment["created_at"]) and _aware(experiment["finished_at"])
    assert _aware(client.get("/users/me", headers=alice).json()["created_at"])
    assert all(_aware(e["at"]) for e in client.get("/audit/logs", headers=root).json()["data"])
    assert _aware(
        client.post("/login", data={"username": "bob", "password": "correct horse battery"}).json()[
            "expires_at"
        ]
    )


def test_sqlite_gives_naive_datetimes_which_are_utc(settings):  # noqa: F811
    """The reason for UtcDatetime: without it the answers above had no zone."""
    from loraforge.db.models import User

    get_engine(settings.resolved_database_url())
    with sessionmaker(bind=get_engine(settings.resolved_database_url()))() as session:
        from loraforge.auth import users

        users.create_user(session, username="naive", password="long enough password")
        session.commit()
        session.expire_all()
        assert session.query(User).one().created_at.tzinfo is None


# --- the OpenAPI schema -----------------------------------------------------------------


def test_openapi_lists_status_values_descriptions_and_the_error_shape(client):  # noqa: F811
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def enum(model: str, field: str) -> list[str]:
        node = components[model]["properties"][field]
        for option in node.get("anyOf", [node]):
            if "enum" in option:
                return option["enum"]
        raise AssertionError(f"{model}.{field} lists no values: {node}")

    assert enum("JobPublic", "status") == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert enum("TaskSubmitted", "status") == enum("JobPublic", "status")
    assert enum("ExperimentPublic", "status") == ["running", "succeeded", "failed", "cancelled"]
    assert enum("DatasetPublic", "format") == ["csv", "tsv", "jsonl", "parquet"]
    assert enum("UserPublic", "role") == ["admin", "user"]
    assert enum("AuditEventPublic", "outcome") == ["success", "failure", "denied"]

    assert set(components["ErrorBody"]["properties"]) == ERROR_KEYS
    assert "HTTPValidationError" not in components
    documented: set[str] = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("description"), where
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    documented.add(status)
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (where, status)
    assert {"401", "403", "404", "409", "413", "422", "500"} <= documented
    for model in ("TrainJobCreate", "PredictRequest", "UserCreate"):
        assert components[model].get("examples"), model
    assert schema["paths"]["/experiments/{experiment_id}"]["delete"]["responses"]["409"]
