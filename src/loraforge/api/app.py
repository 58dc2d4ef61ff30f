"""The FastAPI application. ``create_app`` builds one for given settings (tests make many)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from loraforge import __version__
from loraforge.api import docs, errors
from loraforge.api.access_log import ObservabilityMiddleware
from loraforge.api.limits import BodyLimitMiddleware
from loraforge.api.routers import (
    audit,
    auth,
    base_models,
    datasets,
    experiments,
    health,
    jobs,
    models,
    users,
)
from loraforge.db.engine import get_engine
from loraforge.settings import Settings, get_settings

# The groups of /docs, in the order a newcomer meets them, each said in words.
TAGS = {
    "auth": "Sign in with a username and password; get a bearer token. Audited.",
    "users": "Admins create, list, disable and re-role users; anyone sees themselves.",
    "datasets": "Upload data sets (validated, versioned, stored), list, analyse, delete.",
    "base models": "The catalog of base models a training config can name.",
    "jobs": "Submit training jobs, watch their progress, cancel them.",
    "experiments": "Training runs (yours; an admin: all): metrics, their MLflow runs, "
    "deletion, and predictions from an experiment or a registered model.",
    "model registry": "The team's registered models: versions, stages (Staging, "
    "Production, Archived) with roles and a promotion gate, history, model cards, "
    "search and recommendation. Every signed-in user can read and predict with them.",
    "mlflow": "Where the MLflow UI is. Public.",
    "audit": "The audit log, for admins.",
    "operations": "Liveness and Prometheus metrics. Public.",
}


def create_service_app() -> FastAPI:
    """The app as ``loraforge api`` serves it: JSON logs, settings from the environment.
    A factory, so that each uvicorn worker process sets up its own logging."""
    from loraforge.monitoring import logs

    logs.configure("api")
    app = create_app()
    # ~160k long-lived objects (FastAPI, pydantic, SQLAlchemy, numpy) exist by now; a full
    # collection scanning them all took 74 ms, long enough to show up as the p99 of every
    # request in flight. Frozen, they are left out of every collection from here on.
    gc.collect()
    gc.freeze()
    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database_url = settings.resolved_database_url()  # resolved once: it touches the filesystem
    get_engine(database_url)  # migrate before the first request
    app = FastAPI(
        title="loraforge",
        version=__version__,
        description="Self-hosted LoRA fine-tuning: data sets, jobs, experiments, a model "
        "registry shared by the team, predictions.\n\n"
        "Every error answers one JSON shape, `ErrorBody`: `detail` (what went wrong, one "
        "line), `hint` (how to fix it, or null) and `errors` (for invalid input, one entry "
        "per field: `field`, `message`, `location`; otherwise empty).",
        # Any route may fail unexpectedly; that answer has the same shape too.
        responses=errors.error_responses(500),
        openapi_tags=[{"name": name, "description": words} for name, words in TAGS.items()],
        # Served by docs.install from the package's own files, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database_url = database_url
    errors.install(app)
    docs.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(ObservabilityMiddleware)
    # Outermost of ours: whatever escapes the handlers is logged once and answered 500.
    app.add_middleware(errors.LastResortMiddleware)
    for router in (
        auth.router,
        users.router,
        datasets.router,
        jobs.router,
        experiments.router,
        experiments.public_router,
        models.router,
        base_models.router,
        audit.router,
        health.router,
    ):
        app.include_router(router)
    return app
