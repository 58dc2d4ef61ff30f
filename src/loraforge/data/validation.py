"""Validation of a labelled data set: refusals (errors) and warnings.

Errors make a data set unusable for training (the CLI exits 2); warnings are worth a
look but do not stop anything. Messages name rows (1-based, header not counted) so the
user can find them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loraforge.data.loading import (
    COLUMNS_HINTS,
    DEFAULT_COLUMNS,
    Columns,
    detect_format,
    read_table,
    select_columns,
    separator_note,
)
from loraforge.data.versioning import dataset_version
from loraforge.errors import DatasetError

IMBALANCE_RATIO = 5.0  # largest class over smallest; above it a warning
FEW_EXAMPLES = 10  # a class with fewer examples than this cannot be learned or evaluated well
SHOWN_ROWS = 5

TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass
class ValidationReport:
    source: str
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    version: str | None = None
    separator: str | None = None  # of a delimited file, as sniffed; None for JSONL/Parquet
    # data.language.LanguageReport.to_dict() of the texts: recorded with the version.
    language: dict[str, Any] | None = None
    # data.coverage.Coverage.to_dict() for the base model a caller checked (else None).
    coverage: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "ok": self.ok,
            "rows": self.rows,
            "version": self.version,
            "separator": self.separator,
            "label_counts": self.label_counts,
            "language": self.language,
            "coverage": self.coverage,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def _rows(mask: pd.Series) -> str:
    numbers = [int(i) + 1 for i in mask[mask].index[:SHOWN_ROWS]]
    more = int(mask.sum()) - len(numbers)
    shown = ", ".join(map(str, numbers))
    return f"{shown} and {more} more" if more > 0 else shown


def check_frame(
    frame: pd.DataFrame,
    report: ValidationReport,
    *,
    max_length: int | None = None,
    count_tokens: TokenCounter | None = None,
) -> None:
    """Fill ``report`` from a (text, label) frame as made by ``select_columns``."""
    frame = frame.reset_index(drop=True)
    report.rows = len(frame)
    if report.rows == 0:
        report.errors.append("the file has a header but no rows")
        return

    empty_text = frame["text"].map(lambda t: pd.isna(t) or not str(t).strip())
    if empty_text.any():
        report.errors.append(f"{int(empty_text.sum())} empty text(s) at row(s) {_rows(empty_text)}")
    missing_label = frame["label"].map(lambda v: pd.isna(v) or not str(v).strip())
    if missing_label.any():
        report.errors.append(
            f"{int(missing_label.sum())} missing label(s) at row(s) {_rows(missing_label)}"
        )

    usable = frame[~empty_text & ~missing_label]
    counts = usable["label"].map(str).value_counts()
    report.label_counts = {str(k): int(v) for k, v in counts.items()}
    if len(counts) < 2:
        found = ", ".join(repr(k) for k in counts.index) or "none"
        report.errors.append(
            f"a classifier needs at least 2 classes; found {len(counts)} ({found})"
        )

    if report.ok:
        from loraforge.data.language import detect_languages

        report.version = dataset_version(frame["text"], frame["label"])
        found = detect_languages(frame["text"].map(str).tolist())
        report.language = {**found.to_dict(), "words": found.words()}
        _warn(frame, counts, report, max_length=max_length, count_tokens=count_tokens)


def _warn(
    frame: pd.DataFrame,
    counts: pd.Series,
    report: ValidationReport,
    *,
    max_length: int | None,
    count_tokens: TokenCounter | None,
) -> None:
    duplicated = frame.duplicated(subset=["text", "label"], keep="first")
    if duplicated.any():
        report.warnings.append(
            f"{int(duplicated.sum())} duplicate row(s) (same text and label) at row(s) {_rows(duplicated)}"
        )
    labels_per_text = frame.groupby("text")["label"].transform(lambda s: s.map(str).nunique())
    conflicting = labels_per_text > 1
    if conflicting.any():
        report.warnings.append(
            f"{int(conflicting.sum())} row(s) share a text with a different label, at row(s) {_rows(conflicting)}"
        )
    largest, smallest = int(counts.iloc[0]), int(counts.iloc[-1])
    if largest / smallest >= IMBALANCE_RATIO:
        report.warnings.append(
            f"strong class imbalance: {counts.index[0]!r} has {largest} rows, "
            f"{counts.index[-1]!r} only {smallest} ({largest / smallest:.1f}x); "
            "accuracy will flatter the model, watch macro-F1"
        )
    few = [f"{label!r} ({n})" for label, n in counts.items() if n < FEW_EXAMPLES]
    if few:
        report.warnings.append(
            f"class(es) with fewer than {FEW_EXAMPLES} examples: {', '.join(few)}"
        )
    if max_length is not None and count_tokens is not None:
        lengths = pd.Series(count_tokens(list(frame["text"])))
        too_long = lengths > max_length
        if too_long.any():
            report.warnings.append(
                f"{int(too_long.sum())} text(s) are longer than max_length={max_length} tokens "
                f"(longest {int(lengths.max())}) and will be truncated, at row(s) {_rows(too_long)}"
            )


def validate_file(
    path: Path,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    max_length: int | None = None,
    count_tokens: TokenCounter | None = None,
    columns_hint: str | None = None,
) -> ValidationReport:
    """Validate a file; unreadable files raise DatasetError, content problems land in the report.

    ``columns_hint`` says how to name other columns where the caller is (CLI option, API
    form field, ...): see ``loading.COLUMNS_HINTS``."""
    table = read_table(path)
    frame = select_columns(table, columns, source=str(path), columns_hint=columns_hint)
    report = ValidationReport(source=str(path), separator=table.attrs.get("separator"))
    check_frame(frame, report, max_length=max_length, count_tokens=count_tokens)
    if note := separator_note(detect_format(Path(path)), report.separator):
        report.warnings.insert(0, note)
    return report


def load_labelled(
    path: Path,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    columns_hint: str | None = COLUMNS_HINTS["config"],
) -> tuple[pd.DataFrame, ValidationReport]:
    """A validated (text, label) frame, or a DatasetError listing every problem.

    Training calls it with the columns of a config, hence the default hint."""
    table = read_table(path)
    frame = select_columns(table, columns, source=str(path), columns_hint=columns_hint)
    frame = frame.reset_index(drop=True)
    report = ValidationReport(source=str(path), separator=table.attrs.get("separator"))
    check_frame(frame, report)
    if not report.ok:
        problems = "\n".join(f"  - {e}" for e in report.errors)
        raise DatasetError(
            f"{path} cannot be used for training:\n{problems}",
            hint=f"Run `loraforge data validate {path}` for the full report.",
        )
    return frame, report
