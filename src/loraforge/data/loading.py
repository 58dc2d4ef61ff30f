"""Reading labelled text tables from CSV, TSV, delimited text, JSONL and Parquet.

Only two columns matter: the text and the label (their names are configurable). Empty
cells are missing values; a text that happens to read "NA" or "null" stays a text.
Delimited files are read with the separator they use (sniffed), whatever the extension
says: spreadsheets in many locales save ".csv" with semicolons.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loraforge.errors import DatasetError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",  # delimited text: the separator is sniffed
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


# The separators a delimited file may use, and their names in messages.
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
# The separator an extension promises; None: no promise (sniffed, a comma if unsure).
EXPECTED_SEPARATOR = {"csv": ",", "tsv": "\t", "txt": None}
SNIFF_BYTES = 64 * 1024  # enough rows to tell the separator; the rest is never looked at
FITS = 0.9  # share of sampled rows that must have as many fields as the header


def separator_words(separator: str) -> str:
    """``';' (semicolon)``: the character as written in Python and its name."""
    return f"{separator!r} ({SEPARATORS.get(separator, 'character')})"


def _fit(sample: str, separator: str) -> float:
    """How well ``separator`` splits ``sample``: 0 if the header has fewer than two
    fields, else the share of data rows with as many fields as the header."""
    try:
        rows = [row for row in csv.reader(io.StringIO(sample), delimiter=separator) if row]
    except csv.Error:
        return 0.0
    if not rows or len(rows[0]) < 2:
        return 0.0
    body = rows[1:]
    return sum(len(row) == len(rows[0]) for row in body) / len(body) if body else 1.0


def sniff_separator(sample: str, *, expected: str | None = ",") -> str:
    """The separator of delimited text, from a sample of its first lines.

    The one the extension promises (``expected``) wins when it splits the header and the
    rows alike; then the one ``csv.Sniffer`` finds among , ; tab |; then whichever splits
    best. A file no candidate splits is read with ``expected`` (or a comma), so that its
    error names the line that does not fit.
    """
    if expected and _fit(sample, expected) >= FITS:
        return expected
    try:
        found = csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        found = None
    if found in SEPARATORS and _fit(sample, found) >= FITS:
        return found
    scores = {separator: _fit(sample, separator) for separator in SEPARATORS}
    best = max(scores, key=scores.__getitem__)
    return best if scores[best] > 0.5 else (expected or ",")


def separator_note(fmt: str, separator: str | None) -> str | None:
    """A sentence for the data set's report when the separator is not the one the file's
    extension promises; None when it is (nothing worth saying)."""
    if separator is None or fmt not in EXPECTED_SEPARATOR:
        return None
    expected = EXPECTED_SEPARATOR[fmt]
    if separator == expected:
        return None
    promised = f", not {SEPARATORS[expected]}-separated as .{fmt} suggests" if expected else ""
    return (
        f"read as {SEPARATORS.get(separator, 'character')}-separated text "
        f"(separator: {separator!r}){promised}: check that the columns are the ones you expect"
    )


def _sample(text: str) -> str:
    """About the first ``SNIFF_BYTES`` of a text, cut after its last whole line."""
    if len(text) <= SNIFF_BYTES:
        return text
    head = text[:SNIFF_BYTES]
    return head[: head.rfind("\n") + 1] or head


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(
            f"{path}: unsupported file type {path.suffix or '(no extension)'!r}",
            hint=f"Use one of {', '.join(sorted(FORMATS))}.",
        )
    return fmt


def _decode_utf8(path: Path | str, raw: bytes) -> str:
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
    separator = None
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(raw))
        text = _decode_utf8(path, raw)
        if fmt == "jsonl":
            return _read_jsonl(path, text)
        separator = sniff_separator(_sample(text), expected=EXPECTED_SEPARATOR[fmt])
        table = pd.read_csv(io.StringIO(text), sep=separator, keep_default_na=False, na_values=[""])
        # Read by the report (validation.py) to say which separator was found.
        table.attrs["separator"] = separator
        return table
    except DatasetError:
        raise
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path} has no columns", hint="Add a header row.") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        if separator is not None and isinstance(exc, pd.errors.ParserError):
            raise _unparsable(path, separator, str(exc)) from None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{path} could not be parsed as {fmt}: {first_line}") from None


def _unparsable(path: Path, separator: str, problem: str) -> DatasetError:
    """pandas' tokenizer error in words: the line (as an editor numbers it, header = 1)
    and the separator that was tried."""
    name = SEPARATORS.get(separator, "character")
    read_as = f"{path} could not be read as {name}-separated text (separator: {separator!r})"
    hint = (
        f"Put quotes around texts that contain a {name}, or save the file with one "
        f"separator ({', '.join(repr(s) for s in SEPARATORS)}) throughout."
    )
    if fields := re.search(r"Expected (\d+) fields? in line (\d+), saw (\d+)", problem):
        expected, line, saw = fields.groups()
        return DatasetError(
            f"{read_as}: line {line} has {saw} fields where the header has {expected}",
            hint=hint,
        )
    if quote := re.search(r"EOF inside string starting at row (\d+)", problem):
        return DatasetError(
            f"{read_as}: the quote opened on line {int(quote.group(1)) + 1} is never closed",
            hint='Close the quote, or double a quote inside a quoted text ("").',
        )
    first_line = problem.strip().splitlines()[0] if problem.strip() else "a parser error"
    return DatasetError(f"{read_as}: {first_line}", hint=hint)


def _jsonl_records(source: Path | str, text: str) -> Iterator[dict[str, Any]]:
    """The objects of a JSONL text, one per non-blank line; a line that is not a JSON
    object is refused with its number."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{source}: line {number} is not valid JSON ({exc.msg})",
                hint="JSONL holds one JSON object per line.",
            ) from None
        if not isinstance(record, dict):
            raise DatasetError(f"{source}: line {number} is not a JSON object")
        yield record


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(_jsonl_records(path, text)))


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


# How to name other columns depends on where the user is; each caller passes its own
# words (``columns_hint``) and the core says nothing about command-line options.
COLUMNS_HINTS = {
    "cli": "Pass --text-column / --label-column with the names of the file's columns, "
    "or rename the columns in the file.",
    "config": "Set data.text_column / data.label_column in the config (or --set "
    "data.text_column=NAME), or rename the columns in the file.",
    "api": "Choose the columns with the `text_column` / `label_column` form fields, "
    "or rename the columns in the file.",
    "ui": "Pick the right columns in the drop-downs above.",
}
COLUMNS_HINT = "Rename the columns in the file, or say which columns hold the text and the label."


class MissingColumns(DatasetError):
    """The text or the label column is not in the file: which, and what is there."""

    def __init__(
        self, message: str, *, hint: str | None, missing: list[str], available: list[str]
    ) -> None:
        super().__init__(message, hint=hint)
        self.missing = missing
        self.available = available


def select_columns(
    frame: pd.DataFrame, columns: Columns, *, source: str, columns_hint: str | None = None
) -> pd.DataFrame:
    missing = [name for name in (columns.text, columns.label) if name not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns)) or "(none)"
        what = (
            f"column {missing[0]!r}"
            if len(missing) == 1
            else "columns " + " or ".join(f"{name!r}" for name in missing)
        )
        separator = frame.attrs.get("separator")
        read_as = (
            f"; read with separator {separator_words(separator)}"
            if separator and len(frame.columns) == 1
            else ""
        )
        raise MissingColumns(
            f"{source}: no {what} (columns found: {available}{read_as})",
            hint=columns_hint or COLUMNS_HINT,
            missing=missing,
            available=[str(c) for c in frame.columns],
        )
    texts = frame[columns.text].map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    return pd.DataFrame({"text": texts, "label": normalise_labels(frame[columns.label])})


@dataclass(frozen=True)
class Header:
    """What a file's first lines say: its format, columns and (delimited text) separator."""

    format: str
    columns: list[str] = field(default_factory=list)
    separator: str | None = None


def read_header(content: bytes, file_name: str) -> Header:
    """The columns of a data file from its first bytes, without reading the rest: the
    web UI offers them as drop-downs before anything is uploaded. Refuses what
    ``read_table`` would refuse about the file's type, encoding or header."""
    fmt = detect_format(Path(file_name))
    if not content.strip():
        raise DatasetError(
            f"{file_name} is empty", hint="The file must hold a header and labelled rows."
        )
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            names = pq.ParquetFile(io.BytesIO(content)).schema_arrow.names
        except Exception as exc:  # pyarrow's errors have no common base worth naming
            raise DatasetError(f"{file_name} could not be parsed as parquet: {exc}") from None
        # pandas stores a non-default index as a column of its own: not a data column.
        return Header(fmt, [n for n in names if not n.startswith("__index_level_")])
    head = content[:SNIFF_BYTES]
    try:
        # A cut through a multi-byte character at the end of the sample is not an error.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(
            head, final=len(content) <= SNIFF_BYTES
        )
    except UnicodeDecodeError:
        _decode_utf8(file_name, head)  # raises the message read_table gives
        raise
    if len(content) > SNIFF_BYTES and "\n" in text:
        text = text[: text.rfind("\n") + 1]
    if fmt == "jsonl":
        return Header(fmt, _jsonl_keys(file_name, text))
    separator = sniff_separator(text, expected=EXPECTED_SEPARATOR[fmt])
    try:
        names = pd.read_csv(io.StringIO(text), sep=separator, nrows=0).columns
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{file_name} has no columns", hint="Add a header row.") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise _unparsable(Path(file_name), separator, str(exc)) from None
    return Header(fmt, [str(n) for n in names], separator)


def _jsonl_keys(file_name: str, text: str) -> list[str]:
    """The keys of the objects on the sample's lines, in order of first appearance."""
    keys: dict[str, None] = {}
    for record in _jsonl_records(file_name, text):
        keys.update(dict.fromkeys(map(str, record)))
    return list(keys)


TEXT_NAMES = ("text", "sentence", "review", "content", "tweet")
LABEL_NAMES = ("label", "sentiment", "class", "target", "category")


def likely_column(
    columns: Sequence[str], names: Sequence[str], *, besides: str | None = None
) -> str | None:
    """The column most likely meant by ``names`` (most likely first): a column named
    exactly so (any case), else one whose name contains it as a word ("review_text").
    ``besides``: a column already taken for the other role."""
    candidates = [c for c in columns if c != besides]
    folded = {c: c.strip().lower() for c in candidates}
    for name in names:
        for column, lower in folded.items():
            if lower == name:
                return column
    for name in names:
        for column, lower in folded.items():
            if name in re.split(r"[^a-z0-9]+", lower):
                return column
    return None
