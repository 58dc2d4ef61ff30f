"""Validation problems in words a person can act on, one per field.

Pydantic says ``String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'``; a
person needs "letters, digits, `.`, `_`, `-`; at most 64 characters". Every place that
shows a validation problem (the API's 422 body, the CLI's config errors, the web UI's
form) goes through ``field_problems`` so the words are the same everywhere.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# A regex a field must match → what it means in words. Registered where the pattern is
# defined (``describe_pattern``), so a pattern and its words never drift apart.
_PATTERN_WORDS: dict[str, str] = {}

# Where FastAPI says a value came from; the first item of its ``loc``.
_LOCATIONS = ("body", "query", "path", "header", "cookie")


def describe_pattern(pattern: str, words: str) -> str:
    """Remember what ``pattern`` means in words; returns the pattern for use in ``Field``."""
    _PATTERN_WORDS[pattern] = words
    return pattern


@dataclass(frozen=True)
class FieldProblem:
    field: str  # dotted path ("training.epochs"); "" for the request or file as a whole
    message: str  # in words: what is wrong and what is accepted
    location: str  # body, query, path, header, form or config

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _number(value: Any) -> str:
    """``0`` for ``0.0``, ``0.5`` for ``0.5``: bounds as a person writes them."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def _kind(item: Mapping[str, Any]) -> str:
    """``characters`` or ``items``: pydantic's length errors say which by their type."""
    return "character" if item["type"].startswith("string_") else "item"


def _sibling_names(model: Any, path: Sequence[Any]) -> list[str]:
    """Field names next to ``path``'s last part, walking a pydantic model class."""
    node = model
    for part in path[:-1]:
        fields = getattr(node, "model_fields", None)
        if not fields or part not in fields:
            return []
        node = _model_in(fields[part].annotation)
        if node is None:
            return []
    return list(getattr(node, "model_fields", {}) or {})


def _model_in(annotation: Any) -> Any:
    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if hasattr(arg, "model_fields"):
            return arg
    return None


def describe(item: Mapping[str, Any], *, model: Any = None, path: Sequence[Any] = ()) -> str:
    """One pydantic error item in words."""
    kind = item["type"]
    ctx = item.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        known = _sibling_names(model, path) if model is not None else []
        name = str(path[-1]) if path else ""
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            return f"is not a known field: did you mean `{close[0]}`?"
        if known:
            return "is not a known field (known: " + ", ".join(known) + ")"
        return "is not a known field"
    if kind == "string_pattern_mismatch":
        words = _PATTERN_WORDS.get(str(ctx.get("pattern")))
        return f"may only use {words}" if words else "has characters that are not allowed here"
    if kind in ("string_too_short", "too_short"):
        least = ctx.get("min_length", 1)
        if least == 1:
            return "must not be empty"
        return f"must have at least {_plural(least, _kind(item))}"
    if kind in ("string_too_long", "too_long"):
        return f"must have at most {_plural(ctx.get('max_length'), _kind(item))}"
    if kind == "greater_than":
        return f"must be greater than {_number(ctx.get('gt'))}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx.get('ge'))}"
    if kind == "less_than":
        return f"must be less than {_number(ctx.get('lt'))}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx.get('le'))}"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type", "decimal_parsing"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("literal_error", "enum"):
        # pydantic says "'auto', 'fp32', 'bf16' or 'fp16'": a plain list is easier to copy.
        expected = re.sub(r" or ", ", ", str(ctx.get("expected", ""))).replace("'", "")
        return f"must be one of: {expected}" if expected else "is not one of the allowed values"
    if kind in ("string_type", "string_unicode"):
        return "must be text"
    if kind in ("list_type", "tuple_type", "set_type"):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of keys to values"
    if kind in ("datetime_parsing", "datetime_type", "datetime_from_date_parsing"):
        return "must be a date and time such as 2026-11-29T12:00:00Z"
    if kind == "json_invalid":
        return "is not valid JSON" + (f" ({ctx['error']})" if ctx.get("error") else "")
    if kind == "value_error":
        # Our own validators' messages, without pydantic's "Value error, " prefix.
        return re.sub(r"^Value error, ", "", str(item.get("msg", "")))
    if kind == "uuid_parsing":
        return "must be an id such as 3f2c1d9e-…"
    return str(item.get("msg", "is not valid"))


def field_problems(
    items: Iterable[Mapping[str, Any]], *, model: Any = None, location: str | None = None
) -> list[FieldProblem]:
    """Pydantic (or FastAPI) error items as one problem per field, in words.

    FastAPI's items start their ``loc`` with where the value came from (``body``,
    ``query`` …); pydantic's own do not, and take ``location`` (e.g. ``config``).
    ``model`` (the class validated against) lets an unknown key suggest the known one.
    """
    problems: list[FieldProblem] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        loc = list(item.get("loc") or ())
        where = location or "body"
        if loc and location is None and loc[0] in _LOCATIONS:
            where = str(loc.pop(0))
        # Pydantic names the member of a union or a tagged type it tried ("list[str]"):
        # not a field a person knows, so it is left out of the path.
        path = [p for p in loc if not (isinstance(p, str) and ("[" in p or p == "function-after"))]
        name = ".".join(str(p) for p in path)
        message = describe(item, model=model, path=path)
        if (name, message) in seen:
            continue
        seen.add((name, message))
        problems.append(FieldProblem(field=name, message=message, location=where))
    return problems


def summary(problems: Sequence[FieldProblem]) -> str:
    """One line for all problems: ``training.epochs must be at least 1; …``."""
    return "; ".join(f"{p.field} {p.message}" if p.field else p.message for p in problems)
