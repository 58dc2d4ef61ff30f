"""Plain, detached copies of ORM rows: what services hand out instead of live ORM objects."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Self


class FromRow:
    """For a dataclass whose fields are a subset of an ORM row's attributes."""

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]
