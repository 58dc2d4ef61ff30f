"""Request and response bodies, in families per noun. Request bodies refuse unknown fields,
so nobody can set ``owner``, ``status`` or ``role`` by sending extra keys; responses
never carry password hashes or server paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from loraforge.config import EXPERIMENT_NAME_PATTERN, LoraSection, ModelSection, TrainingSection


def _as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC, so say so."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Every datetime in an answer: UTC and marked as such ("2026-11-29T12:00:00Z"), so a
# client never has to guess the time zone.
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

# The values a status-like field can take, listed in the OpenAPI schema.
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ExperimentStatus = Literal["running", "succeeded", "failed", "cancelled"]
DatasetFormat = Literal["csv", "tsv", "jsonl", "parquet"]
Role = Literal["admin", "user"]
AuditOutcome = Literal["success", "failure", "denied"]
ErrorLocation = Literal["body", "query", "path", "header", "cookie", "form"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    field: str = Field(
        description='Dotted path of the field ("training.epochs", "texts.2"); '
        '"" for the request as a whole.'
    )
    message: str = Field(description="What is wrong, in words, and what is accepted.")
    location: ErrorLocation = Field(description="Where the field was sent.")


class ErrorBody(BaseModel):
    """The one shape of every error answer, whatever its status."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "1 field is invalid: training.epochs must be at least 1",
                    "hint": "Fix the fields listed in `errors` and send the request again.",
                    "errors": [
                        {
                            "field": "training.epochs",
                            "message": "must be at least 1",
                            "location": "body",
                        }
                    ],
                },
                {
                    "detail": "experiment demo-20261129-120000 does not exist",
                    "hint": None,
                    "errors": [],
                },
            ]
        }
    )

    detail: str = Field(description="What went wrong, in one line.")
    hint: str | None = Field(description="How to fix it, when there is something to do.")
    errors: list[FieldError] = Field(
        default_factory=list,
        description="One entry per invalid field (validation errors); empty otherwise.",
    )


class Token(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.…",
                    "token_type": "bearer",
                    "expires_at": "2026-11-29T20:00:00Z",
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: UtcDatetime


class UserCreate(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"username": "alice", "password": "a long passphrase", "role": "user"}]
        }
    )

    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: Role = "user"


class UserUpdate(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "admin"}]})

    role: Role | None = None
    is_active: bool | None = None


class UserPublic(BaseModel):
    id: int
    username: str
    role: Role
    is_active: bool
    created_at: UtcDatetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class DatasetPublic(BaseModel):
    id: str
    owner_id: int
    name: str
    format: DatasetFormat
    text_column: str
    label_column: str
    version: str
    rows: int
    size_bytes: int
    label_counts: dict[str, int]
    warnings: list[str]
    created_at: UtcDatetime


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
    at: UtcDatetime
    user_id: int | None
    username: str | None
    action: str
    target: str | None
    outcome: AuditOutcome
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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experiment_name": "reviews-r16",
                    "model": {"base_model": "minilm-l6"},
                    "data": {
                        "dataset_id": "3f2c1d9e-7a5b-4c1e-9d2a-8b6f0e4a1c3d",
                        "eval_split": 0.2,
                    },
                    "lora": {"r": 16, "alpha": 32},
                    "training": {"epochs": 3},
                }
            ]
        }
    )

    experiment_name: str = Field(pattern=EXPERIMENT_NAME_PATTERN)
    model: ModelSection = ModelSection()
    data: JobDataSection
    lora: LoraSection = LoraSection()
    training: TrainingSection = TrainingSection()


class TaskSubmitted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"task_id": "b1946ac9-2b3f-4c8e-a1d0-5e7f9a3c2d10", "status": "queued"}]
        }
    )

    task_id: str
    status: JobStatus


class JobPublic(BaseModel):
    task_id: str
    owner_id: int
    status: JobStatus
    experiment_id: str
    dataset_id: str | None = Field(description="null once the data set has been deleted.")
    eval_dataset_id: str | None
    dataset_version: str
    config: dict[str, Any]
    progress: dict[str, Any] | None
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class ExperimentPublic(BaseModel):
    id: str
    name: str
    status: ExperimentStatus
    owner_id: int | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
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
    learned: bool | None = Field(
        default=None,
        description="false: the run succeeded but its model learned nothing (it answers "
        "(almost) one class, or no better than the most common label; `metrics.quality` "
        "says why and how to fix it); null: no verdict (not finished, or an older run).",
    )


class ExperimentsPublic(BaseModel):
    data: list[ExperimentPublic]
    count: int


def _not_blank(text: str) -> str:
    # A blank text would still get an answer, and a client matching answers to the texts
    # it meant to send would fall out of step: refuse it, naming its index.
    if not text.strip():
        raise ValueError("must not be empty")
    return text


class PredictRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experiment_id": "demo-20261129-120000",
                    "texts": ["what a great flight", "they lost my bag"],
                }
            ]
        }
    )

    experiment_id: str = Field(max_length=100)
    texts: list[Annotated[str, AfterValidator(_not_blank)]] = Field(
        min_length=1,
        max_length=256,
        description="1 to 256 texts, none empty; answers come back in the same order.",
    )


class PredictionPublic(BaseModel):
    label: Any
    probability: float
    latency_ms: float
    base_model: str
    language: str


class PredictionsPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "label": "positive",
                            "probability": 0.996,
                            "latency_ms": 26.99,
                            "base_model": "minilm-l6",
                            "language": "en",
                        }
                    ]
                }
            ]
        }
    )

    data: list[PredictionPublic] = Field(description="One answer per text, in the same order.")
