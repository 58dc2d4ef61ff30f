"""Request and response bodies, in families per noun. Request bodies refuse unknown fields,
so nobody can set ``owner``, ``status`` or ``role`` by sending extra keys; responses
never carry password hashes or server paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from loraforge.config import (
    EXPERIMENT_NAME_PATTERN,
    MODEL_NAME_PATTERN,
    LoraSection,
    ModelSection,
    RegistrySection,
    TrainingSection,
)
from loraforge.field_errors import describe_pattern

# The registry's own limits, so that a request the schema admits is one the service takes.
from loraforge.registry.cards import MAX_PROSE as MAX_CARD_TEXT
from loraforge.registry.recommend import MAX_QUERY
from loraforge.registry.versions import (
    MAX_DESCRIPTION,
    MAX_REASON,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
)


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

# How /predict and `loraforge predict --model` name a registered model version
# (registry.service.resolve_reference reads it; "NAME" alone is NAME@production).
MODEL_REFERENCE_PATTERN = describe_pattern(
    r"^[A-Za-z0-9._-]{1,64}(@[A-Za-z]+|:[0-9]{1,9})?$",
    "the form NAME@production, NAME@staging or NAME:VERSION (e.g. sentiment:3)",
)
MODEL_REFERENCE_WORDS = (
    "A registered model version: `NAME@production` (its Production version), "
    "`NAME@staging` (its newest Staging version) or `NAME:3` (version 3)."
)


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
    language: str | None = Field(
        default=None,
        description="The texts' dominant language (ISO 639-1, e.g. en, zh), detected at upload.",
    )
    languages: dict[str, Any] | None = Field(
        default=None,
        description="What the detection found: each language's share of the sampled texts.",
    )


class DatasetLanguage(BaseModel):
    language: dict[str, Any] = Field(
        description="dominant (ISO 639-1 or null), shares per language, texts sampled."
    )
    base_model: str = Field(description="The model checked: `auto` resolved for the language.")
    chosen_automatically: bool
    coverage: dict[str, Any] | None = Field(
        description="unread_share (unknown or dropped characters) and unknown_token_share "
        "of a sample; null when the model's tokenizer is not on the server."
    )
    warnings: list[str]
    refused: bool = Field(
        description="Training would be refused (over 15 % unread) unless "
        "model.allow_low_coverage is true."
    )


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
    language: dict[str, Any] = Field(
        description="dominant (ISO 639-1 or null), dominant_name, shares per language, "
        "texts sampled and undetermined."
    )


class CatalogModelPublic(BaseModel):
    name: str = Field(description="Usable as model.base_model.")
    source: str = Field(description='Its Hugging Face id, or "bundled".')
    hub_id: str = Field(description="Its Hugging Face id (for the bundled one, its origin).")
    language: str = Field(description='Its language code, or "multi" (see languages).')
    languages: list[str] = Field(description="ISO 639-1 codes of the languages it reads.")
    description: str
    bundled: bool
    available_offline: bool = Field(
        description="Loads on the server without the network: bundled, or its config and "
        "safetensors weights are in the server's Hugging Face cache "
        "(`loraforge models pull NAME` puts them there)."
    )


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
    registry: RegistrySection = Field(
        default_factory=RegistrySection,
        description="`register_as`: register the model, as the job's owner, once the run "
        "succeeds (a new version each run); the job's progress says if that was refused.",
    )


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
                },
                {
                    "model": "tweet-sentiment@production",
                    "texts": ["what a great flight"],
                },
            ]
        }
    )

    experiment_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="A succeeded experiment of yours (an admin: anyone's). Give this or `model`.",
    )
    model: str | None = Field(
        default=None,
        pattern=MODEL_REFERENCE_PATTERN,
        max_length=100,
        description=MODEL_REFERENCE_WORDS + " Any signed-in user may predict with a "
        "registered model. Give this or `experiment_id`.",
        examples=["tweet-sentiment@production"],
    )
    texts: list[Annotated[str, AfterValidator(_not_blank)]] = Field(
        min_length=1,
        max_length=256,
        description="1 to 256 texts, none empty; answers come back in the same order.",
    )

    @model_validator(mode="after")
    def _one_model(self) -> PredictRequest:
        if (self.experiment_id is None) == (self.model is None):
            raise ValueError("must give exactly one of experiment_id or model")
        return self


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


# --- Model registry (issue 10) ------------------------------------------------------------

# Wire values of a version's stage (registry.versions.STAGES; a test keeps them equal).
Stage = Literal["none", "Staging", "Production", "Archived"]
# Stages a version can be moved to; "none" is only where a new version starts.
TargetStage = Literal["Staging", "Production", "Archived"]
# The metrics of a version's snapshot, frozen at registration, that search can sort by.
SnapshotMetric = Literal["f1_macro", "accuracy"]
MODEL_NAME_WORDS = "1-64 letters, digits, `.`, `_` or `-`."
# registry.embeddings.DIMENSION (all-MiniLM-L6-v2; a test keeps them equal).
EMBEDDING_DIMENSION = 384

ModelName = Annotated[
    str,
    Field(
        pattern=MODEL_NAME_PATTERN,
        min_length=1,
        max_length=64,
        description=f"The registered model's name: {MODEL_NAME_WORDS}",
        examples=["tweet-sentiment"],
    ),
]
TagKey = Annotated[str, Field(min_length=1, max_length=MAX_TAG_KEY)]
TagValue = Annotated[str, Field(max_length=MAX_TAG_VALUE)]


class ModelVersionPublic(BaseModel):
    """One version of a registered model, with the lineage a reader needs (its
    experiment, base model, language, labels, MLflow run) and its metric snapshot."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "tweet-sentiment",
                    "version": 2,
                    "reference": "tweet-sentiment:2",
                    "stage": "Production",
                    "experiment_id": "demo-20261129-120000",
                    "owner": "alice",
                    "description": "MiniLM with LoRA r=16 on the demo tweets",
                    "tags": {"team": "support"},
                    "task": "sentiment",
                    "metrics": {
                        "accuracy": 0.91,
                        "f1_macro": 0.9,
                        "eval_data_version": "9f2c…",
                    },
                    "base_model": "minilm-l6",
                    "language": "en",
                    "labels": ["negative", "positive"],
                    "mlflow_run_id": "3e1f0c2a9b8d4e6f8a7b6c5d4e3f2a1b",
                    "mlflow_version": "2",
                    "created_at": "2026-11-29T12:00:00Z",
                    "updated_at": "2026-11-29T12:30:00Z",
                    "intended_use": "Routing customer tweets by mood.",
                    "limitations": "English only; short texts.",
                }
            ]
        }
    )

    name: str
    version: int = Field(description="1, 2, 3 … per model.")
    reference: str = Field(description="`NAME:VERSION`, usable as `model` in POST /predict.")
    stage: Stage
    experiment_id: str = Field(description="The experiment this version was registered from.")
    owner: str | None = Field(
        description="Who registered it; null when the machine's operator did (CLI)."
    )
    description: str | None
    tags: dict[str, str]
    task: str | None = Field(description='What it does, in a word or two ("sentiment").')
    metrics: dict[str, Any] = Field(
        description="Snapshot frozen at registration: accuracy, f1_macro and the eval "
        "data version they were measured on (what the promotion gate compares)."
    )
    base_model: str | None
    language: str | None
    labels: list[Any]
    mlflow_run_id: str | None
    mlflow_version: str | None = Field(description="The version's number in MLflow's registry.")
    created_at: UtcDatetime
    updated_at: UtcDatetime
    intended_use: str | None
    limitations: str | None


class RegisteredModelPublic(BaseModel):
    name: str
    description: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version_count: int
    latest: ModelVersionPublic | None = Field(description="The newest version.")
    production: ModelVersionPublic | None = Field(description="The one Production version, if any.")
    staging: list[int] = Field(description="Versions now in Staging.")


class RegisteredModelDetailPublic(RegisteredModelPublic):
    versions: list[ModelVersionPublic] = Field(description="Every version, newest first.")


class RegisteredModelsPublic(BaseModel):
    data: list[RegisteredModelPublic]
    count: int


class TransitionPublic(BaseModel):
    """One line of a model's history: a registration (`from_stage` null, `to_stage`
    "none") or a move between stages."""

    id: int
    name: str
    version: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str | None = Field(description="Username of who did it (`cli:<user>` for the CLI).")
    at: UtcDatetime
    reason: str | None
    metrics: dict[str, Any] | None = Field(description="The version's metric snapshot.")
    previous_production_metrics: dict[str, Any] | None = Field(
        description="The snapshot of the Production version it replaced, for a promotion."
    )
    forced: bool = Field(description="An admin promoted it past the gate.")


class TransitionsPublic(BaseModel):
    data: list[TransitionPublic] = Field(description="Newest first.")
    count: int


class RegisterRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experiment_id": "demo-20261129-120000",
                    "name": "tweet-sentiment",
                    "description": "MiniLM with LoRA r=16 on the demo tweets",
                    "tags": {"team": "support"},
                    "task": "sentiment",
                }
            ]
        }
    )

    experiment_id: str = Field(
        min_length=1, max_length=100, description="A succeeded experiment of yours."
    )
    name: ModelName
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    tags: dict[TagKey, TagValue] | None = Field(
        default=None,
        max_length=MAX_TAGS,
        description=f"At most {MAX_TAGS}; keys 1-{MAX_TAG_KEY} characters, values at most "
        f"{MAX_TAG_VALUE}.",
    )
    task: str | None = Field(
        default=None, min_length=1, max_length=64, description='e.g. "sentiment".'
    )


class TransitionRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "tweet-sentiment",
                    "version": 2,
                    "stage": "Production",
                    "reason": "better macro-F1 on the same eval data",
                    "force": False,
                }
            ]
        }
    )

    name: ModelName
    version: int = Field(ge=1, le=2**31 - 1)
    stage: TargetStage = Field(
        description="none → Staging → Production → Archived; Archived → Staging restores. "
        "Production and Archived need an admin."
    )
    reason: str | None = Field(default=None, max_length=MAX_REASON)
    force: bool = Field(
        default=False,
        description="Admin only, with a reason: promote past the gate (a worse metric, or "
        "one measured on other eval data than the current Production's).",
    )

    @model_validator(mode="after")
    def _force_says_why(self) -> TransitionRequest:
        if self.force and not (self.reason and self.reason.strip()):
            raise ValueError("must give a reason for a forced promotion")
        return self


class CardUpdate(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "intended_use": "Routing customer tweets by mood.",
                    "limitations": "English only; trained on short texts.",
                }
            ]
        }
    )

    intended_use: str | None = Field(default=None, max_length=MAX_CARD_TEXT)
    limitations: str | None = Field(default=None, max_length=MAX_CARD_TEXT)

    @model_validator(mode="after")
    def _something(self) -> CardUpdate:
        if self.intended_use is None and self.limitations is None:
            raise ValueError("must set intended_use, limitations or both")
        return self


class CardPublic(BaseModel):
    card: dict[str, Any] = Field(
        description="The model card's fields: base_model, language, task, description, "
        "metrics, tags, embedding, labels with counts, data set versions, LoRA settings, "
        "per-class scores, confusion matrix, lineage, intended use and limitations."
    )
    readme: str = Field(description="The same card as a Hugging Face README.md.")


class SearchPage(BaseModel):
    data: list[ModelVersionPublic] = Field(description="This page of matching versions.")
    count: int = Field(description="Versions on this page.")
    total: int = Field(description="Versions matching, on all pages.")
    limit: int
    offset: int


class RecommendRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"query": "sentiment of English customer tweets", "limit": 5},
                {"dataset_id": "3f2c1d9e-7a5b-4c1e-9d2a-8b6f0e4a1c3d", "stage": "Production"},
            ]
        }
    )

    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_QUERY,
        description="What you need, in plain words.",
    )
    embedding: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        default=None,
        min_length=EMBEDDING_DIMENSION,
        max_length=EMBEDDING_DIMENSION,
        description=f"A vector from the same sentence model as the cards "
        f"({EMBEDDING_DIMENSION} numbers).",
    )
    dataset_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=36,
        description="An uploaded data set of yours: which model fits it best?",
    )
    language: str | None = Field(default=None, min_length=1, max_length=16)
    stage: Stage | None = Field(default=None, description="Only versions in this stage.")
    include_archived: bool = False
    limit: int = Field(default=5, ge=1, le=50)

    @model_validator(mode="after")
    def _one_source(self) -> RecommendRequest:
        given = [k for k in ("query", "embedding", "dataset_id") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("must give exactly one of query, embedding or dataset_id")
        return self


class RecommendationPublic(BaseModel):
    model: ModelVersionPublic
    score: float = Field(description="Higher fits better (cosine similarity, with boosts).")
    reasons: list[str] = Field(description="Which fields matched, in words.")


class RecommendationsPublic(BaseModel):
    data: list[RecommendationPublic] = Field(description="Best first.")
    count: int


class MlflowRunPublic(BaseModel):
    run_id: str
    experiment_id: str = Field(description="Our experiment this run tracks.")
    status: str = Field(description="MLflow's run status (FINISHED, FAILED, RUNNING …).")
    params: dict[str, str]
    metrics: dict[str, float] = Field(description="Each metric's latest value.")
    artifacts: list[str] = Field(description="Artifact paths, relative to the run's root.")
    ui_url: str = Field(description="The run's page in the MLflow UI.")


class MlflowPublic(BaseModel):
    ui_url: str = Field(description="Where the MLflow UI is (`loraforge up` starts it).")
    tracking_uri: str | None = Field(
        description="The MLflow tracking server, when it is one a client can reach over "
        "HTTP (without credentials); null for the embedded store."
    )
