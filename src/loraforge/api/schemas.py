"""Request and response bodies, in families per noun. Request bodies refuse unknown fields,
so nobody can set ``owner``, ``status`` or ``role`` by sending extra keys; responses
never carry password hashes or server paths."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loraforge.config import EXPERIMENT_NAME_PATTERN, LoraSection, ModelSection, TrainingSection


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


class LengthBin(BaseModel):
    start: int
    end: int
    count: int


class DatasetAnalysis(BaseModel):
    id: str
    rows: int
    version: str | None
    labels: dict[str, dict[str, float]]
    chars: dict[str, float] | None
    words: dict[str, float] | None
    tokens: dict[str, float] | None
    chars_histogram: list[LengthBin]
    words_histogram: list[LengthBin]


class CatalogModelPublic(BaseModel):
    name: str
    language: str
    description: str
    bundled: bool


class CatalogPublic(BaseModel):
    data: list[CatalogModelPublic]


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


class JobDataSection(_Request):
    dataset_id: str = Field(max_length=36, description="An uploaded data set (POST /datasets).")
    eval_dataset_id: str | None = Field(default=None, max_length=36)
    eval_split: float | None = Field(default=None, gt=0.0, lt=0.5)
    max_length: int = Field(default=128, ge=8, le=4096)

    @model_validator(mode="after")
    def _one_eval_source(self) -> JobDataSection:
        if self.eval_dataset_id is not None and self.eval_split is not None:
            raise ValueError("give either data.eval_dataset_id or data.eval_split, not both")
        return self


class TrainJobCreate(_Request):
    """The training config of `loraforge train`, with data set ids instead of file paths."""

    experiment_name: str = Field(pattern=EXPERIMENT_NAME_PATTERN)
    model: ModelSection = ModelSection()
    data: JobDataSection
    lora: LoraSection = LoraSection()
    training: TrainingSection = TrainingSection()


class TaskSubmitted(BaseModel):
    task_id: str
    status: str


class JobPublic(BaseModel):
    task_id: str
    owner_id: int
    status: str
    experiment_id: str
    dataset_id: str
    eval_dataset_id: str | None
    dataset_version: str
    config: dict[str, Any]
    progress: dict[str, Any] | None
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class ExperimentPublic(BaseModel):
    id: str
    name: str
    status: str
    owner_id: int | None
    created_at: datetime
    finished_at: datetime | None
    base_model: str
    language: str | None
    device: str | None
    config: dict[str, Any]
    train_dataset_version: str | None
    eval_dataset_version: str | None
    train_rows: int | None
    eval_rows: int | None
    labels: list[Any] | None
    metrics: dict[str, Any] | None
    error: str | None


class ExperimentsPublic(BaseModel):
    data: list[ExperimentPublic]
    count: int


class PredictRequest(_Request):
    experiment_id: str = Field(max_length=100)
    texts: list[str] = Field(min_length=1, max_length=256)


class PredictionPublic(BaseModel):
    label: Any
    probability: float
    latency_ms: float
    base_model: str
    language: str


class PredictionsPublic(BaseModel):
    data: list[PredictionPublic]
