"""The UI's only way to the platform: the HTTP API, with errors turned into exceptions
that carry the API's own ``detail`` and ``hint``."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import httpx

from loraforge.monitoring.logs import task_context

logger = logging.getLogger("loraforge.ui")


class ApiError(Exception):
    """An error answer: ``{detail, hint, errors: [{field, message, location}]}``."""

    def __init__(
        self,
        status: int,
        detail: Any,
        hint: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.hint = hint
        self.errors = errors or []

    @property
    def message(self) -> str:
        """One readable text, also for FastAPI's bare list of validation problems."""
        if isinstance(self.detail, list):
            return "; ".join(f"{field}: {why}" for field, why in self.field_errors().items())
        return str(self.detail)

    def field_errors(self) -> dict[str, str]:
        """What is wrong with each field, in the API's words, by dotted name
        (``training.epochs``); ``""`` for the request as a whole."""
        if self.errors:
            return {str(e.get("field", "")): str(e.get("message", "")) for e in self.errors}
        if isinstance(self.detail, list):  # FastAPI's own shape, from an older API
            from loraforge.field_errors import field_problems

            return {p.field: p.message for p in field_problems(self.detail)}
        return {}


class SignedOut(ApiError):
    """The token is missing, expired or revoked: the user has to sign in again."""


@lru_cache(maxsize=4)
def _connections(base_url: str) -> httpx.Client:
    # One pool per API for the whole UI process (httpx clients are thread-safe): every
    # page run makes several calls, and a client per call would leave sockets behind.
    return httpx.Client(base_url=base_url, timeout=60)


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._http = _connections(base_url)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, headers=self._headers, **kwargs)
        except httpx.HTTPError as error:
            raise ApiError(
                503, f"the API at {self._http.base_url} does not answer ({error})"
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text or response.reason_phrase}
            if not isinstance(body, dict):  # a proxy's answer, not the API's
                body = {"detail": str(body)}
            error_type = SignedOut if response.status_code == 401 else ApiError
            raise error_type(
                response.status_code, body.get("detail"), body.get("hint"), body.get("errors")
            )
        return response.json() if response.content else None  # 204 answers nothing

    def login(self, username: str, password: str) -> dict[str, Any]:
        return self._call("POST", "/login", data={"username": username, "password": password})

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/users/me")

    def models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/models")["data"]

    def datasets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/datasets")["data"]

    def upload_dataset(
        self, name: str, content: bytes, *, text_column: str, label_column: str
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/datasets",
            files={"file": (name, content)},
            data={"text_column": text_column, "label_column": label_column},
        )

    def dataset_analysis(self, dataset_id: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{dataset_id}/analysis")

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        submitted = self._call("POST", "/train", json=body)
        with task_context(submitted["task_id"]):
            logger.info("task %s: submitted from the UI", submitted["task_id"])
        return submitted

    def task(self, task_id: str) -> dict[str, Any]:
        return self._call("GET", f"/task/{task_id}")

    def tasks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tasks")["data"]

    def cancel(self, task_id: str) -> dict[str, Any]:
        with task_context(task_id):
            logger.info("task %s: cancel asked from the UI", task_id)
        return self._call("POST", f"/task/{task_id}/cancel")

    def experiments(self) -> list[dict[str, Any]]:
        return self._call("GET", "/experiments")["data"]

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("DELETE", f"/experiments/{experiment_id}")

    def delete_dataset(self, dataset_id: str) -> None:
        self._call("DELETE", f"/datasets/{dataset_id}")

    def predict(self, experiment_id: str, texts: list[str]) -> list[dict[str, Any]]:
        body = {"experiment_id": experiment_id, "texts": texts}
        return self._call("POST", "/predict", json=body)["data"]

    def users(self) -> list[dict[str, Any]]:
        return self._call("GET", "/users")["data"]

    def create_user(self, username: str, password: str, role: str) -> dict[str, Any]:
        body = {"username": username, "password": password, "role": role}
        return self._call("POST", "/users", json=body)

    def set_active(self, user_id: int, active: bool) -> dict[str, Any]:
        return self._call("PATCH", f"/users/{user_id}", json={"is_active": active})

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v not in (None, "")}
        return self._call("GET", "/audit/logs", params=params)["data"]
