"""The one settings object. Nothing else in loraforge reads ``os.environ``.

Every value comes from ``LORAFORGE_*`` environment variables or a ``.env`` file in the
working directory. The embedded defaults keep everything beside the working directory:
results in ``./results`` and the database and MLflow store in ``./.loraforge``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loraforge.errors import ConfigError
from loraforge.field_errors import field_problems

# Only for development: production refuses to start with it (see _production_is_safe).
DEVELOPMENT_JWT_SECRET = "loraforge-development-secret-not-for-production"
MIN_JWT_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORAFORGE_", env_file=".env", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(
        default=Path(".loraforge"),
        description="Holds the experiment database and the MLflow store in embedded mode.",
    )
    results_dir: Path = Field(
        default=Path("results"), description="Each experiment gets results_dir/<experiment_id>/."
    )
    database_url: str | None = Field(
        default=None,
        description="Any SQLAlchemy URL; default: SQLite file data_dir/loraforge.db.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="Any MLflow tracking URI; default: SQLite store data_dir/mlflow.db.",
    )
    mlflow_ui_url: str = Field(
        default="http://127.0.0.1:5000",
        pattern=r"^https?://\S+$",
        description="Where people open the MLflow UI (`loraforge up` starts it there); "
        "the API hands it out at GET /mlflow and links runs to it.",
    )
    mlflow_artifact_root: Path | None = Field(
        default=None,
        description="Where MLflow puts artifacts of experiments it creates; default data_dir/mlartifacts.",
    )

    env: Literal["development", "production"] = Field(
        default="development",
        description="production refuses a default or short JWT secret.",
    )
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_JWT_SECRET),
        description=f"HMAC key for access tokens; at least {MIN_JWT_SECRET_LENGTH} characters in production.",
    )
    jwt_expire_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    max_upload_mb: float = Field(default=50.0, gt=0, description="Largest data set upload.")
    login_failure_limit: int = Field(
        default=5, ge=1, description="Failed logins per user and address in the window, then 429."
    )
    login_failure_window_s: int = Field(default=300, ge=1)

    broker_url: str | None = Field(
        default=None,
        description="Celery broker, e.g. redis://127.0.0.1:6379/0; default: kombu's filesystem "
        "transport under data_dir/broker (no server needed).",
    )
    job_lease_s: float = Field(
        default=60.0, gt=0, description="A running job's lease; renewed by heartbeat."
    )
    job_heartbeat_s: float = Field(
        default=2.0, gt=0, description="How often a worker renews and reports progress."
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="Tries before a job that keeps dying is failed."
    )
    job_retry_backoff_s: float = Field(
        default=5.0, ge=0, description="Wait before retrying, times the attempt."
    )
    reaper_interval_s: float = Field(
        default=10.0, gt=0, description="How often workers look for dead jobs."
    )

    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where the web UI finds the API (the UI talks to nothing else).",
    )
    ui_refresh_s: float = Field(
        default=2.0, gt=0, description="How often the web UI refreshes a job it is watching."
    )

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.env == "production":
            secret = self.jwt_secret.get_secret_value()
            if secret == DEVELOPMENT_JWT_SECRET or len(secret) < MIN_JWT_SECRET_LENGTH:
                raise ValueError(
                    "LORAFORGE_ENV=production needs LORAFORGE_JWT_SECRET set to a random value of at "
                    f"least {MIN_JWT_SECRET_LENGTH} characters (e.g. `openssl rand -hex 32`)"
                )
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def resolved_broker_dir(self) -> Path:
        return self.resolved_data_dir() / "broker"

    def resolved_datasets_dir(self) -> Path:
        return self.resolved_data_dir() / "datasets"

    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def resolved_results_dir(self) -> Path:
        return self.results_dir.expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir() / 'loraforge.db'}"

    def resolved_mlflow_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.resolved_data_dir() / 'mlflow.db'}"

    def resolved_mlflow_artifact_root(self) -> Path:
        return (self.mlflow_artifact_root or self.resolved_data_dir() / "mlartifacts").resolve()


ENV_PREFIX = "LORAFORGE_"
SETTINGS_HINT = (
    "Settings come from LORAFORGE_* environment variables or a .env file in the working "
    "directory; .env.example lists them all."
)


def describe_settings_error(error: ValidationError) -> str:
    """Each problem in our words, named by its environment variable: pydantic's own text
    (``[type=value_error, input_value=…]`` and a link) means nothing to someone starting
    a service."""
    lines = []
    for problem in field_problems(error.errors(), model=Settings, location="env"):
        if problem.field:
            name = ENV_PREFIX + problem.field.split(".")[0].upper()
            lines.append(f"{name} {problem.message}")
        else:  # a check across settings (production without a secret) says it all itself
            lines.append(problem.message)
    if len(lines) == 1:
        return lines[0]
    return "invalid settings:\n" + "\n".join(f"  - {line}" for line in lines)


def load_settings(**values: object) -> Settings:
    """Settings from the environment (and ``values``); invalid ones raise a ConfigError."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(describe_settings_error(exc), hint=SETTINGS_HINT) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
