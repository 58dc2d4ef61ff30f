"""ORM models. The database is the record of truth for experiments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
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
