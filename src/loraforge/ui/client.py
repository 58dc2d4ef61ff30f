"""The UI's only way to the platform: the HTTP API, with errors turned into exceptions
that carry the API's own ``detail`` and ``hint``."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any
from urllib.parse import quote

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


def _part(value: str) -> str:
    """One path segment: a name can never reach another route."""
    return quote(str(value), safe="")


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

    def base_models(self) -> list[dict[str, Any]]:
        """The base-model catalog (was ``GET /models`` before the registry took that name)."""
        return self._call("GET", "/base-models")["data"]

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

    def dataset_language(self, dataset_id: str, base_model: str) -> dict[str, Any]:
        return self._call(
            "GET", f"/datasets/{dataset_id}/language", params={"base_model": base_model}
        )

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

    def predict(
        self, experiment_id: str | None, texts: list[str], *, model: str | None = None
    ) -> list[dict[str, Any]]:
        """From an experiment, or from a registry reference (``NAME@production``,
        ``NAME@staging``, ``NAME:3``) passed as ``model``."""
        body: dict[str, Any] = {"texts": texts}
        if model is not None:
            body["model"] = model
        else:
            body["experiment_id"] = experiment_id
        return self._call("POST", "/predict", json=body)["data"]

    def mlflow(self) -> dict[str, Any]:
        """Where the MLflow UI is (``ui_url``); public."""
        return self._call("GET", "/mlflow")

    def mlflow_run(self, run_id: str) -> dict[str, Any]:
        """An experiment's MLflow run (owner or admin), with ``ui_url`` when known."""
        return self._call("GET", f"/experiments/mlflow/{_part(run_id)}")

    # Model registry --------------------------------------------------------------------

    def register_model(
        self,
        experiment_id: str,
        name: str,
        *,
        description: str | None = None,
        task: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {"experiment_id": experiment_id, "name": name}
        extra = {"description": description, "task": task, "tags": tags}
        body.update({k: v for k, v in extra.items() if v})
        return self._call("POST", "/models", json=body)

    def registered_models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/models")["data"]

    def registered_model(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/models/{_part(name)}")

    def model_version(self, name: str, version: int) -> dict[str, Any]:
        return self._call("GET", f"/models/{_part(name)}/versions/{int(version)}")

    def search_models(
        self, *, tags: dict[str, str] | None = None, **filters: Any
    ) -> dict[str, Any]:
        """``{data, count, total, limit, offset}``; empty filters are left out."""
        params: list[tuple[str, Any]] = [
            (k, str(v).lower() if isinstance(v, bool) else v)
            for k, v in filters.items()
            if v not in (None, "", False)
        ]
        params += [("tag", f"{k}:{v}") for k, v in (tags or {}).items()]
        return self._call("GET", "/models/search", params=params)

    def recommend(
        self,
        *,
        query: str | None = None,
        dataset_id: str | None = None,
        language: str | None = None,
        stage: str | None = None,
        limit: int = 5,
    ) -> list[dict[str, Any]]:
        """``[{model, score, reasons}]``, best first."""
        asked = {"query": query, "dataset_id": dataset_id, "language": language, "stage": stage}
        body: dict[str, Any] = {k: v for k, v in asked.items() if v}
        body["limit"] = limit
        return self._call("POST", "/models/recommend", json=body)["data"]

    def transition(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        reason: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        body = {"name": name, "version": int(version), "stage": stage, "force": force}
        if reason:
            body["reason"] = reason
        return self._call("POST", "/models/transition", json=body)

    def model_history(self, name: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/models/{_part(name)}/history")["data"]

    def model_card(self, name: str, version: int) -> dict[str, Any]:
        """``{card: {...}, readme: "..."}``."""
        return self._call("GET", f"/models/{_part(name)}/versions/{int(version)}/card")

    def update_card(
        self,
        name: str,
        version: int,
        *,
        intended_use: str | None = None,
        limitations: str | None = None,
    ) -> dict[str, Any]:
        body = {"intended_use": intended_use, "limitations": limitations}
        return self._call(
            "PATCH",
            f"/models/{_part(name)}/versions/{int(version)}/card",
            json={k: v for k, v in body.items() if v is not None},
        )

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
