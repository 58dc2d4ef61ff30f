"""The one settings object. Nothing else in loraforge reads ``os.environ``.

Every value comes from ``LORAFORGE_*`` environment variables or a ``.env`` file in the
working directory. The embedded defaults keep everything beside the working directory:
results in ``./results`` and the database and MLflow store in ``./.loraforge``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    mlflow_artifact_root: Path | None = Field(
        default=None,
        description="Where MLflow puts artifacts of experiments it creates; default data_dir/mlartifacts.",
    )

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
