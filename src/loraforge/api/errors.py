"""Every error answer, in one place and one shape: ``{"detail", "hint", "errors"}``.

Typed errors map to statuses in ``STATUS``; FastAPI's validation errors become one line
plus one entry per field, in words (``loraforge.field_errors``); Starlette's own errors
(unknown route, wrong method) and anything unexpected (500, logged, no internals) get the
same shape. ``openapi`` documents that shape (``ErrorBody``) for every error status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loraforge.api.schemas import ErrorBody
from loraforge.errors import (
    ConfigError,
    Conflict,
    DatasetError,
    Forbidden,
    InvalidInput,
    InvalidRequest,
    LoraforgeError,
    NotFound,
    PayloadTooLarge,
    TimedOut,
    TooManyRequests,
    TrainingError,
    Unauthorized,
    Unavailable,
)
from loraforge.field_errors import FieldProblem, field_problems
from loraforge.field_errors import summary as problems_summary

logger = logging.getLogger("loraforge.api.errors")

VALIDATION_HINT = "Fix the fields listed in `errors` and send the request again."
WHOLE_BODY_HINT = "Send the request as the API docs (/docs) show it, with their example."

STATUS: dict[type[LoraforgeError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    DatasetError: 422,
    ConfigError: 422,
    InvalidInput: 422,
    TooManyRequests: 429,
    TrainingError: 500,
    Unavailable: 503,
    TimedOut: 504,
}


def status_for(error: LoraforgeError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(
    detail: str, hint: str | None = None, problems: Iterable[FieldProblem] = ()
) -> dict[str, Any]:
    return {"detail": detail, "hint": hint, "errors": [p.to_dict() for p in problems]}


def error_response(error: LoraforgeError) -> JSONResponse:
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if (retry_after := getattr(error, "retry_after_s", None)) is not None:
        headers = {"Retry-After": str(retry_after)}
    # An error about one input (a base model that cannot be loaded) names it as a 422 for
    # an invalid field does, so a client can show it beside that field.
    problems = [FieldProblem(error.field, error.message, "body")] if error.field else []
    return JSONResponse(
        status_code=status,
        content=error_body(error.message, error.hint, problems),
        headers=headers,
    )


def _body_params(dependant: Dependant) -> list[Any]:
    found = list(dependant.body_params)
    for sub in dependant.dependencies:
        found += _body_params(sub)
    return found


def _route_body(request: Request) -> tuple[Any, str]:
    """The model a route's JSON body is validated against (for "did you mean" on unknown
    keys), and where its fields come from: ``form`` for form and multipart routes."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return None, "body"
    params = _body_params(dependant)
    if any(isinstance(p.field_info, Form) for p in params):
        return None, "form"
    # One body parameter is the body itself; several are embedded under their names.
    model = params[0].field_info.annotation if len(params) == 1 else None
    return model, "body"


def _item_for_words(item: Mapping[str, Any]) -> dict[str, Any]:
    """Invalid JSON is a problem of the whole body, not of the character position where
    the parser gave up (which FastAPI puts in ``loc``)."""
    if item.get("type") == "json_invalid":
        return {**item, "loc": ("body",)}
    return dict(item)


def validation_problems(request: Request, items: Iterable[Mapping[str, Any]]) -> list[FieldProblem]:
    model, body_location = _route_body(request)
    problems = field_problems([_item_for_words(i) for i in items], model=model)
    if body_location == "form":
        problems = [
            FieldProblem(p.field, p.message, "form") if p.location == "body" else p
            for p in problems
        ]
    return problems


def validation_detail(problems: list[FieldProblem]) -> str:
    """One line: ``2 fields are invalid: training.epochs must be at least 1; …``."""
    if len(problems) == 1 and not problems[0].field:
        return f"the request {problems[0].location} {problems[0].message}"
    named = [
        p if p.field else FieldProblem(f"the request {p.location}", p.message, p.location)
        for p in problems
    ]
    count = f"{len(problems)} field is" if len(problems) == 1 else f"{len(problems)} fields are"
    return f"{count} invalid: {problems_summary(named)}"


# Starlette's own errors, in words. Anything else keeps Starlette's text.
def _http_detail(request: Request, error: HTTPException) -> tuple[str, str | None]:
    if error.status_code == 404 and error.detail == "Not Found":
        return (
            f"there is no endpoint {request.url.path}",
            "The endpoints are listed in the API docs at /docs.",
        )
    if error.status_code == 405:
        allowed = (error.headers or {}).get("allow") or (error.headers or {}).get("Allow")
        return (
            f"{request.method} is not allowed on {request.url.path}",
            f"Use {allowed}." if allowed else None,
        )
    return str(error.detail), None


class LastResortMiddleware:
    """Anything no handler caught: logged once with its traceback, answered 500 in the
    one error shape, and never with internals (exception text, paths, SQL) in the body.

    A middleware rather than an ``Exception`` handler: Starlette re-raises after such a
    handler, and the server would log the same traceback a second time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception(
                "%s %s: unhandled error",
                scope["method"],
                scope["path"],
                extra={"event": "http.unhandled_error"},
            )
            if started:
                raise  # too late to answer; the server closes the connection
            response = JSONResponse(
                status_code=500,
                content=error_body(
                    "something went wrong on the server; the error is in the server's log",
                    "Try again; if it keeps failing, tell the operator the time of this request.",
                ),
            )
            await response(scope, receive, send)


ERROR_DESCRIPTIONS = {
    400: "The request is well-formed but cannot be accepted.",
    401: "Not signed in, or the token expired or was revoked.",
    403: "Signed in, but without the role this needs.",
    404: "Missing, or another user's (which answers exactly as a missing one).",
    409: "Clashes with the current state; `detail` says with what.",
    413: "The request body is over the upload limit.",
    422: "Invalid input: `errors` lists each field and what is wrong with it.",
    429: "Too many attempts, or the server's queue is full; wait (Retry-After) and try again.",
    500: "An unexpected error; the server's log has the details.",
    503: "A store the server depends on (MLflow) cannot be reached, or a model is not "
    "loaded; nothing was changed.",
    504: "No answer within the server's time limit; try again later.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: the listed statuses answer an ``ErrorBody``."""
    return {
        status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


def _one_error_shape(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents its 422 as ``HTTPValidationError`` (a bare list); ours is an
    ``ErrorBody``, so every reference to the former points to the latter."""
    for operation in (op for path in schema["paths"].values() for op in path.values()):
        for status, response in operation.get("responses", {}).items():
            content = response.get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                content["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
                response["description"] = ERROR_DESCRIPTIONS[int(status)]
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    @app.exception_handler(LoraforgeError)
    async def _typed(_request: Request, error: LoraforgeError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = validation_problems(request, error.errors())
        # A missing or unparsable body has no field to fix: point to the examples instead.
        hint = VALIDATION_HINT if any(p.field for p in problems) else WHOLE_BODY_HINT
        return JSONResponse(
            status_code=422, content=error_body(validation_detail(problems), hint, problems)
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        detail, hint = _http_detail(request, error)
        return JSONResponse(
            status_code=error.status_code,
            content=error_body(detail, hint),
            headers=error.headers,
        )

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = _one_error_shape(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
