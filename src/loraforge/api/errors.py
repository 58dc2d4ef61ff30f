"""Typed errors to HTTP statuses, in one place. Every error body is JSON ``{"detail", "hint"}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from loraforge.errors import (
    ConfigError,
    Conflict,
    DatasetError,
    Forbidden,
    InvalidRequest,
    LoraforgeError,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    TrainingError,
    Unauthorized,
)

STATUS: dict[type[LoraforgeError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    DatasetError: 422,
    ConfigError: 422,
    TooManyRequests: 429,
    TrainingError: 500,
}


def status_for(error: LoraforgeError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(error: LoraforgeError) -> JSONResponse:
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"detail": error.message, "hint": error.hint}
    return JSONResponse(status_code=status, content=body, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(LoraforgeError)
    async def _typed(_request: Request, error: LoraforgeError) -> JSONResponse:
        return error_response(error)
