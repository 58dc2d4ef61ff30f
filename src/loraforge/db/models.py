"""ORM models. The database is the record of truth for experiments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # running | succeeded | failed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    base_model: Mapped[str] = mapped_column(String(300))
    language: Mapped[str | None] = mapped_column(String(16))
    device: Mapped[str | None] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    train_dataset_version: Mapped[str | None] = mapped_column(String(64), index=True)
    eval_dataset_version: Mapped[str | None] = mapped_column(String(64))
    train_rows: Mapped[int | None] = mapped_column(Integer)
    eval_rows: Mapped[int | None] = mapped_column(Integer)
    labels: Mapped[list[Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    results_dir: Mapped[str] = mapped_column(Text)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # None for experiments run from the CLI without a user.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | user
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Dataset(Base):
    """An uploaded data set, stored under a generated name; the user's file name is display only."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    text_column: Mapped[str] = mapped_column(String(255))
    label_column: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    label_counts: Mapped[dict[str, int]] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Detected at upload (data/language.py): the dominant language and the full report.
    # None for data sets uploaded before languages were detected.
    language: Mapped[str | None] = mapped_column(String(16))
    languages: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AuditLog(Base):
    """Append-only: nothing in the API updates or deletes these rows."""

    __tablename__ = "audit_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure | denied
    client: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Job(Base):
    """A fine-tuning job. The row is the record of truth; Celery only carries its id."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the task id
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # None once the data set is deleted (a finished job keeps its history and version).
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    eval_dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    dataset_version: Mapped[str] = mapped_column(String(64))
    # Unique: two jobs sharing an experiment id would share a results folder and MLflow run.
    experiment_id: Mapped[str] = mapped_column(String(100), index=True, unique=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetiredJob(Base):
    """What the job counters need of an ended job whose row went with its experiment: a
    Prometheus counter that goes down reads as a reset, and ``increase()`` would count
    every remaining job again."""

    __tablename__ = "retired_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegisteredModel(Base):
    """A name under which experiments are registered as versions; shared by the team."""

    __tablename__ = "registered_models"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Written by every registration and transition before anything else: the row lock it
    # takes serialises concurrent changes to one model on SQLite and PostgreSQL alike.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        # Exactly one Production version per model, enforced by the database itself so
        # that no code path (or second API process) can leave two.
        Index(
            "ux_model_versions_one_production",
            "name",
            unique=True,
            sqlite_where=text("stage = 'Production'"),
            postgresql_where=text("stage = 'Production'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(ForeignKey("registered_models.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))  # none | Staging | Production | Archived
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    # Frozen at registration: the experiment's numbers the promotion gate compares.
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    task: Mapped[str | None] = mapped_column(String(64))
    intended_use: Mapped[str | None] = mapped_column(Text)
    limitations: Mapped[str | None] = mapped_column(Text)
    # Unit vectors from the bundled MiniLM (registry/embeddings.py), computed once.
    embedding: Mapped[list[float] | None] = mapped_column(JSON)
    data_embedding: Mapped[list[float] | None] = mapped_column(JSON)
    mlflow_version: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelTransition(Base):
    """Append-only history of a model: its registrations (from_stage None) and transitions."""

    __tablename__ = "model_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_username: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    previous_production_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)


class ServiceToken(Base):
    """A long-lived bearer token for a program, not a person (e.g. a client of
    ``loraforge serve``): its scope limits what it may do; revoking it ends it at once."""

    __tablename__ = "service_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the JWT's jti
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(64))
