"""Request and response bodies, in families per noun. Request bodies refuse unknown fields,
so nobody can set ``owner``, ``status`` or ``role`` by sending extra keys; responses
never carry password hashes or server paths."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class UserCreate(_Request):
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: Literal["admin", "user"] = "user"


class UserUpdate(_Request):
    role: Literal["admin", "user"] | None = None
    is_active: bool | None = None


class UserPublic(BaseModel):
    id: int
    username: str
    role: str
    is_active: bool
    created_at: datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class DatasetPublic(BaseModel):
    id: str
    owner_id: int
    name: str
    format: str
    text_column: str
    label_column: str
    version: str
    rows: int
    size_bytes: int
    label_counts: dict[str, int]
    warnings: list[str]
    created_at: datetime


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class AuditEventPublic(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    target: str | None
    outcome: str
    client: str | None
    detail: dict[str, Any] | None


class AuditEventsPublic(BaseModel):
    data: list[AuditEventPublic]
    count: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
