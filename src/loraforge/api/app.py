"""The FastAPI application. ``create_app`` builds one for given settings (tests make many)."""

from __future__ import annotations

from fastapi import FastAPI

from loraforge import __version__
from loraforge.api import errors
from loraforge.api.access_log import ObservabilityMiddleware
from loraforge.api.limits import BodyLimitMiddleware
from loraforge.api.routers import audit, auth, datasets, experiments, health, jobs, users
from loraforge.db.engine import get_engine
from loraforge.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database_url = settings.resolved_database_url()  # resolved once: it touches the filesystem
    get_engine(database_url)  # migrate before the first request
    app = FastAPI(
        title="loraforge",
        version=__version__,
        description="Self-hosted LoRA fine-tuning: data sets, jobs, experiments, predictions.",
    )
    app.state.settings = settings
    app.state.database_url = database_url
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(ObservabilityMiddleware)
    for router in (
        auth.router,
        users.router,
        datasets.router,
        jobs.router,
        experiments.router,
        audit.router,
        health.router,
    ):
        app.include_router(router)
    return app
