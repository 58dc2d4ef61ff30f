"""Reading labelled text tables from CSV, TSV, JSONL and Parquet.

Only two columns matter: the text and the label (their names are configurable). Empty
cells are missing values; a text that happens to read "NA" or "null" stays a text.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from loraforge.errors import DatasetError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix or '(no extension)'!r}",
            hint=f"Use one of {', '.join(sorted(FORMATS))}.",
        )
    return fmt


def _decode_utf8(path: Path, raw: bytes) -> str:
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path} is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at byte {exc.start})",
            hint="Re-save the file as UTF-8 (e.g. in a spreadsheet: 'CSV UTF-8').",
        ) from None


def read_table(path: Path) -> pd.DataFrame:
    """The whole table as read, every column; refuses unreadable files with a DatasetError."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(
            f"{path} does not exist", hint="Check the path and the working directory."
        )
    if not path.is_file():
        raise DatasetError(f"{path} is not a file")
    fmt = detect_format(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise DatasetError(
            f"{path} is empty", hint="The file must hold a header and labelled rows."
        )
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(raw))
        text = _decode_utf8(path, raw)
        if fmt == "jsonl":
            return _read_jsonl(path, text)
        return pd.read_csv(
            io.StringIO(text),
            sep="\t" if fmt == "tsv" else ",",
            keep_default_na=False,
            na_values=[""],
        )
    except DatasetError:
        raise
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path} has no columns", hint="Add a header row.") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{path} could not be parsed as {fmt}: {first_line}") from None


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{path}: line {number} is not valid JSON ({exc.msg})",
                hint="JSONL holds one JSON object per line.",
            ) from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: line {number} is not a JSON object")
        records.append(record)
    return pd.DataFrame.from_records(records)


@dataclass(frozen=True)
class Columns:
    text: str = "text"
    label: str = "label"


DEFAULT_COLUMNS = Columns()


def normalise_labels(labels: pd.Series) -> pd.Series:
    """Labels as the data set names them: whole numbers stay ints, everything else is text."""
    non_null = labels.dropna()
    if pd.api.types.is_bool_dtype(non_null):
        return labels.map(lambda v: None if pd.isna(v) else str(v).lower())
    if pd.api.types.is_numeric_dtype(non_null) and (non_null == non_null.round()).all():
        return labels.map(lambda v: None if pd.isna(v) else int(v)).astype(object)
    return labels.map(lambda v: None if pd.isna(v) else str(v).strip()).astype(object)


def select_columns(frame: pd.DataFrame, columns: Columns, *, source: str) -> pd.DataFrame:
    missing = [name for name in (columns.text, columns.label) if name not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns)) or "(none)"
        what = " and ".join(f"{name!r}" for name in missing)
        raise DatasetError(
            f"{source}: no column {what} (columns found: {available})",
            hint="Rename the column, or pass --text-column/--label-column "
            "(data.text_column/data.label_column in a config).",
        )
    texts = frame[columns.text].map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    return pd.DataFrame({"text": texts, "label": normalise_labels(frame[columns.label])})
