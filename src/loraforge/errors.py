"""Errors a user can cause. Each says what was wrong and how to fix it.

They are mapped to CLI exit codes (and later HTTP statuses) in one place each:
``EXIT_CODES`` below for the CLI.
"""

from __future__ import annotations


class LoraforgeError(Exception):
    """Base of every error that is the user's to fix, not a bug of ours."""

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # The input at fault ("model.base_model"), when it is one: the API names it in
        # its `errors` list, as it does for a validation error.
        self.field = field

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class DatasetError(LoraforgeError):
    """A data set that cannot be used: missing, unreadable, or failing validation."""


class ConfigError(LoraforgeError):
    """A training config with an unknown key, a wrong type or an impossible value."""


class NotFound(LoraforgeError):
    """An object (experiment, model, file) that does not exist."""


class Forbidden(LoraforgeError):
    """An object that exists but is not the caller's to use."""


class TrainingError(LoraforgeError):
    """A training run that failed for a reason the user can act on (e.g. out of memory)."""


class Cancelled(LoraforgeError):
    """A run stopped because its job was cancelled."""


class Unauthorized(LoraforgeError):
    """No valid credentials: a missing, expired, tampered or revoked token, or a wrong password."""


class Conflict(LoraforgeError):
    """The request clashes with the current state (e.g. a username that is taken)."""


class TooManyRequests(LoraforgeError):
    """Too many attempts in a short time (e.g. failed logins), or a server whose queue is
    full; ``retry_after_s`` (when known) becomes the HTTP answer's Retry-After."""

    retry_after_s: int | None = None


class TimedOut(LoraforgeError):
    """No answer within the time the server allows a request (HTTP 504)."""


class PayloadTooLarge(LoraforgeError):
    """An upload over the configured size limit."""


class InvalidRequest(LoraforgeError):
    """A request that is well-formed but not acceptable (e.g. an unsafe file name)."""


class InvalidInput(LoraforgeError):
    """A request field that is missing or wrong in a way the schema cannot see (HTTP 422)."""


class Unavailable(LoraforgeError):
    """A service we depend on (e.g. the MLflow store) cannot be reached; nothing was changed."""


EXIT_CODES: dict[type[LoraforgeError], int] = {
    DatasetError: 2,
    ConfigError: 2,
    NotFound: 3,
    Forbidden: 4,
    TrainingError: 5,
    Cancelled: 130,
    Unauthorized: 6,
    Conflict: 7,
    TooManyRequests: 8,
    PayloadTooLarge: 2,
    InvalidRequest: 2,
    InvalidInput: 2,
    Unavailable: 9,
    TimedOut: 9,
}


def exit_code_for(error: LoraforgeError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
