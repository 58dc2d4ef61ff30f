"""The interactive API docs (/docs, /redoc), served entirely from the package.

FastAPI's defaults load Swagger UI and ReDoc from a CDN, so on an air-gapped machine both
pages stay blank. The assets are vendored under ``static/`` (see ``static/README.md`` for
where each file comes from, its version and licence) and served by the app itself.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/static/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install(app: FastAPI) -> None:
    """Needs an app built with ``docs_url=None, redoc_url=None``."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="docs-static")

    def _root(request: Request) -> str:
        # Behind a proxy that mounts the API under a prefix, every URL needs that prefix.
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/swagger-ui/favicon-32x32.png",
            # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,  # fonts from Google would be one more thing to fetch
        )
