"""Searching the registry: filters, a metric floor, sorting and paging.

The team registry is shared: every signed-in user sees every registered version, so
there is no owner filter here. SQL narrows by the columns it holds (stage, name, task and,
through the experiment, base model and language); tags and the metric snapshot are JSON,
filtered and sorted in Python over the few columns needed, and only the page asked for is
built into VersionInfo (with its experiment and owner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from loraforge.db.engine import session_scope
from loraforge.db.models import Experiment, ModelVersion
from loraforge.errors import InvalidRequest
from loraforge.registry.records import VersionInfo, version_infos
from loraforge.registry.versions import ARCHIVED, STAGES
from loraforge.settings import Settings

METRICS = ("accuracy", "f1_macro")
SORTS = ("metric", "date")
MAX_LIMIT = 100
LANGUAGE_CODES = {"english": "en", "chinese": "zh", "中文": "zh", "英文": "en"}


@dataclass(frozen=True)
class SearchPage:
    items: list[VersionInfo]
    total: int  # matches before paging
    limit: int
    offset: int


def check_stage(stage: str | None) -> str | None:
    """The stage's canonical spelling ("production" → "Production"); others refused."""
    if stage is None:
        return None
    canonical = {s.lower(): s for s in STAGES}.get(str(stage).strip().lower())
    if canonical is None:
        raise InvalidRequest(
            f"unknown stage {stage!r}",
            hint=f"Use one of {', '.join(STAGES)}.",
            field="stage",
        )
    return canonical


def language_code(language: str | None) -> str | None:
    """'zh', 'ZH' or 'Chinese' → 'zh': experiments store the ISO code."""
    if language is None or not str(language).strip():
        return None
    text = str(language).strip().lower()
    return LANGUAGE_CODES.get(text, text)


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InvalidRequest(
            f"unknown metric {metric!r}",
            hint=f"Use one of {', '.join(METRICS)}.",
            field="metric",
        )
    return metric


def _check_paging(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}", field="limit"
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidRequest(f"offset must be 0 or more, not {offset!r}", field="offset")


def _metric_value(metrics: dict[str, Any] | None, metric: str) -> float | None:
    value = (metrics or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def visible_stages(stage: str | None, include_archived: bool) -> tuple[str, ...] | None:
    """The stages a listing shows; None for all. Archived is hidden unless asked for."""
    if stage is not None:
        return (stage,)
    if include_archived:
        return None
    return tuple(s for s in STAGES if s != ARCHIVED)


def _statement(
    *,
    name: str | None,
    base_model: str | None,
    language: str | None,
    task: str | None,
    stages: tuple[str, ...] | None,
    experiment_id: str | None = None,
) -> Select:
    statement = select(
        ModelVersion.id, ModelVersion.tags, ModelVersion.metrics, ModelVersion.created_at
    )
    if stages is not None:
        statement = statement.where(ModelVersion.stage.in_(stages))
    if experiment_id:
        statement = statement.where(ModelVersion.experiment_id == experiment_id.strip())
    if name:
        # autoescape: "_" and "%" are legal in names and must not act as wildcards.
        statement = statement.where(
            func.lower(ModelVersion.name).contains(name.strip().lower(), autoescape=True)
        )
    if task:
        statement = statement.where(
            func.lower(ModelVersion.task).contains(task.strip().lower(), autoescape=True)
        )
    if base_model or language:
        statement = statement.join(Experiment, Experiment.id == ModelVersion.experiment_id)
        if base_model:
            statement = statement.where(
                func.lower(Experiment.base_model) == base_model.strip().lower()
            )
        if language:
            statement = statement.where(func.lower(Experiment.language) == language)
    return statement


def search_versions(
    session: Session,
    *,
    name: str | None = None,
    base_model: str | None = None,
    language: str | None = None,
    task: str | None = None,
    tags: dict[str, str] | None = None,
    stage: str | None = None,
    include_archived: bool = False,
    metric: str = "f1_macro",
    min_metric: float | None = None,
    sort: Literal["metric", "date"] = "metric",
    descending: bool = True,
    limit: int = 20,
    offset: int = 0,
    experiment_id: str | None = None,
) -> SearchPage:
    """``search`` inside the caller's session."""
    metric = check_metric(metric)
    stage = check_stage(stage)
    if sort not in SORTS:
        raise InvalidRequest(
            f"unknown sort {sort!r}", hint=f"Use one of {', '.join(SORTS)}.", field="sort"
        )
    if min_metric is not None and (
        isinstance(min_metric, bool)
        or not isinstance(min_metric, (int, float))
        or not math.isfinite(min_metric)
    ):
        raise InvalidRequest(f"min_metric must be a number, not {min_metric!r}", field="min_metric")
    if tags is not None and (
        not isinstance(tags, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
    ):
        raise InvalidRequest("tags must map text keys to text values", field="tags")
    _check_paging(limit, offset)

    rows = session.execute(
        _statement(
            name=name,
            base_model=base_model,
            language=language_code(language),
            task=task,
            stages=visible_stages(stage, include_archived),
            experiment_id=experiment_id,
        )
    ).all()
    wanted = dict(tags or {})
    matches: list[tuple[int, float | None, datetime]] = []
    for row_id, row_tags, metrics, created_at in rows:
        row_tags = row_tags or {}
        if any(row_tags.get(k) != v for k, v in wanted.items()):
            continue
        value = _metric_value(metrics, metric)
        if min_metric is not None and (value is None or value < min_metric):
            continue
        matches.append((row_id, value, created_at))

    sign = -1 if descending else 1
    if sort == "metric":
        # Versions without the metric come last in either order; ties: newest first.
        matches.sort(key=lambda m: (m[1] is None, sign * (m[1] or 0.0), -m[2].timestamp(), m[0]))
    else:
        matches.sort(key=lambda m: (sign * m[2].timestamp(), sign * m[0]))

    page_ids = [m[0] for m in matches[offset : offset + limit]]
    items: list[VersionInfo] = []
    if page_ids:
        by_id = {
            row.id: row
            for row in session.scalars(select(ModelVersion).where(ModelVersion.id.in_(page_ids)))
        }
        items = version_infos(session, [by_id[i] for i in page_ids])
    return SearchPage(items=items, total=len(matches), limit=limit, offset=offset)


def search(
    settings: Settings,
    *,
    name: str | None = None,
    base_model: str | None = None,
    language: str | None = None,
    task: str | None = None,
    tags: dict[str, str] | None = None,
    stage: str | None = None,
    include_archived: bool = False,
    metric: str = "f1_macro",
    min_metric: float | None = None,
    sort: Literal["metric", "date"] = "metric",
    descending: bool = True,
    limit: int = 20,
    offset: int = 0,
    experiment_id: str | None = None,
) -> SearchPage:
    """Registered versions matching every filter given, one page of them, with the total.

    name, task: case-insensitive substring; base_model, language: case-insensitive exact
    (language also as a word, "Chinese"); tags: every pair must match; stage: exact, and
    Archived versions only with ``include_archived`` or ``stage="Archived"``;
    ``min_metric`` keeps versions whose ``metric`` (accuracy or f1_macro, from the
    snapshot frozen at registration) is at least that; ``experiment_id``: the versions
    registered from that experiment.
    """
    with session_scope(settings.resolved_database_url()) as session:
        return search_versions(
            session,
            name=name,
            base_model=base_model,
            language=language,
            task=task,
            tags=tags,
            stage=stage,
            include_archived=include_archived,
            metric=metric,
            min_metric=min_metric,
            sort=sort,
            descending=descending,
            limit=limit,
            offset=offset,
            experiment_id=experiment_id,
        )
