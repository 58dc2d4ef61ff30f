"""Uploaded data sets: validated, versioned and stored under generated names.

A user's file name is never used as a path: it is checked (no separators, traversal,
encodings or URL syntax), kept for display, and only its extension picks the parser.
The file itself is stored as ``<data dir>/datasets/<uuid>.<ext>``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from loraforge.data.analysis import analyze_frame, length_histogram, length_stats
from loraforge.data.loading import FORMATS, Columns, read_table, select_columns
from loraforge.data.validation import validate_file
from loraforge.db.models import Dataset, Job
from loraforge.db.records import FromRow
from loraforge.errors import Conflict, DatasetError, InvalidRequest, NotFound, PayloadTooLarge
from loraforge.jobs.state import QUEUED, RUNNING

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,200}$")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class DatasetRecord(FromRow):
    id: str
    owner_id: int
    name: str
    format: str
    text_column: str
    label_column: str
    version: str
    rows: int
    size_bytes: int
    label_counts: dict[str, int]
    warnings: list[str]
    created_at: datetime
    language: str | None = None
    languages: dict[str, Any] | None = None


def check_file_name(name: str) -> str:
    """The extension of a safe display name; anything path-like is refused."""
    if not SAFE_NAME.match(name) or ".." in name:
        raise InvalidRequest(
            f"file name {name!r} is not allowed",
            hint="Use a plain name such as reviews.csv: letters, digits, spaces, '.', '_', '-', "
            "no folders, '..', '%', ';', '?', '#' or ':'.",
        )
    extension = Path(name).suffix.lower()
    if extension not in FORMATS:
        raise InvalidRequest(
            f"file type {extension or '(none)'!r} is not supported",
            hint=f"Upload one of {', '.join(sorted(FORMATS))}.",
        )
    return extension


def store_upload(
    session: Session,
    *,
    owner_id: int,
    file_name: str,
    content: BinaryIO,
    columns: Columns,
    datasets_dir: Path,
    max_bytes: int,
    columns_hint: str | None = None,
) -> DatasetRecord:
    extension = check_file_name(file_name)
    datasets_dir.mkdir(parents=True, exist_ok=True)
    dataset_id = str(uuid.uuid4())
    stored_name = f"{dataset_id}{extension}"
    # Written next to its final place and renamed only once valid: nothing half-written stays.
    with tempfile.NamedTemporaryFile(dir=datasets_dir, suffix=extension, delete=False) as handle:
        partial = Path(handle.name)
        size = 0
        while chunk := content.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                handle.close()
                partial.unlink(missing_ok=True)
                raise PayloadTooLarge(f"the upload is larger than {max_bytes // (1024 * 1024)} MB")
            handle.write(chunk)
    try:
        report = validate_file(partial, columns=columns, columns_hint=columns_hint)
        if not report.ok:
            problems = "; ".join(report.errors)
            raise DatasetError(f"{file_name} cannot be used for training: {problems}")
    except DatasetError as error:
        partial.unlink(missing_ok=True)
        # The temporary name means nothing to the user; speak of the file they sent.
        raise DatasetError(
            str(error.message).replace(str(partial), file_name), hint=error.hint
        ) from None
    shutil.move(partial, datasets_dir / stored_name)
    row = Dataset(
        id=dataset_id,
        owner_id=owner_id,
        name=file_name,
        stored_name=stored_name,
        format=FORMATS[extension],
        text_column=columns.text,
        label_column=columns.label,
        version=str(report.version),
        rows=report.rows,
        size_bytes=size,
        label_counts=report.label_counts,
        warnings=report.warnings,
        created_at=datetime.now(UTC),
        language=(report.language or {}).get("dominant"),
        languages=report.language,
    )
    session.add(row)
    session.flush()
    return DatasetRecord.from_row(row)


def get_dataset(
    session: Session, *, dataset_id: str, user_id: int, is_admin: bool
) -> DatasetRecord:
    """Another user's data set is as missing as one that does not exist."""
    row = session.get(Dataset, dataset_id)
    if row is None or (row.owner_id != user_id and not is_admin):
        raise NotFound(f"data set {dataset_id} does not exist")
    return DatasetRecord.from_row(row)


def list_datasets(session: Session, *, user_id: int, is_admin: bool) -> list[DatasetRecord]:
    statement = select(Dataset).order_by(Dataset.created_at.desc())
    if not is_admin:
        statement = statement.where(Dataset.owner_id == user_id)
    return [DatasetRecord.from_row(r) for r in session.scalars(statement)]


def upload_names(session: Session, stored_names: set[str]) -> dict[str, str]:
    """Generated file name → the name it was uploaded under, for showing configs."""
    if not stored_names:
        return {}
    rows = session.execute(
        select(Dataset.stored_name, Dataset.name).where(Dataset.stored_name.in_(stored_names))
    )
    return {stored: name for stored, name in rows}


def dataset_path(record: DatasetRecord, *, datasets_dir: Path, session: Session) -> Path:
    row = session.get(Dataset, record.id)
    if row is None:
        raise NotFound(f"data set {record.id} does not exist")
    return datasets_dir / row.stored_name


def analyze_dataset(
    session: Session, record: DatasetRecord, *, datasets_dir: Path
) -> dict[str, Any]:
    """Label shares and text lengths (characters, words) with histograms, for charts."""
    path = dataset_path(record, datasets_dir=datasets_dir, session=session)
    frame = select_columns(
        read_table(path),
        Columns(text=record.text_column, label=record.label_column),
        source=record.name,
    )
    result = analyze_frame(frame)
    texts = frame["text"].dropna().map(str)
    words = texts.map(lambda t: len(t.split()))
    result["words"] = length_stats(words)
    result["chars_histogram"] = length_histogram(texts.map(len))
    result["words_histogram"] = length_histogram(words)
    return result


def dataset_texts(session: Session, record: DatasetRecord, *, datasets_dir: Path) -> list[str]:
    """The data set's texts, for a language or coverage check."""
    path = dataset_path(record, datasets_dir=datasets_dir, session=session)
    frame = select_columns(
        read_table(path),
        Columns(text=record.text_column, label=record.label_column),
        source=record.name,
    )
    return frame["text"].dropna().map(str).tolist()


def delete_dataset(
    session: Session, *, dataset_id: str, user_id: int | None, is_admin: bool, datasets_dir: Path
) -> Path:
    """Delete a data set's row; returns its stored file, for the caller to remove with
    ``remove_stored_file`` once the deletion is committed (so that a crash in between
    leaves at worst a file nothing points to, never a row without its file).

    Refused (``Conflict``) while a queued or running job trains or evaluates on it.
    Finished jobs keep their history (config, data set version) but lose the reference.
    Another user's data set is ``NotFound``, as a missing one.
    """
    row = session.get(Dataset, dataset_id)
    if row is None or (row.owner_id != user_id and not is_admin):
        raise NotFound(f"data set {dataset_id} does not exist")
    uses = or_(Job.dataset_id == dataset_id, Job.eval_dataset_id == dataset_id)
    active = session.scalars(
        select(Job).where(uses, Job.status.in_((QUEUED, RUNNING))).limit(1)
    ).first()
    if active is not None:
        raise Conflict(
            f"data set {dataset_id} is used by task {active.id} ({active.status})",
            hint=f"Cancel task {active.id} and wait until it has stopped, or let it finish, "
            "then delete the data set.",
        )
    session.execute(update(Job).where(Job.dataset_id == dataset_id).values(dataset_id=None))
    session.execute(
        update(Job).where(Job.eval_dataset_id == dataset_id).values(eval_dataset_id=None)
    )
    stored = datasets_dir / row.stored_name
    session.delete(row)
    session.flush()
    return stored


def remove_stored_file(path: Path) -> str | None:
    """Remove a deleted data set's file; a warning (not an error) if that fails, since
    its row is already gone."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        return f"could not remove {path.name} from the data set folder ({error}); delete it by hand"
    return None
