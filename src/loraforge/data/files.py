"""Pre-flight checks of input files, cheap enough to run before anything else.

A missing or unreadable file must fail in a fraction of a second, naming the file, not
after transformers is imported or an experiment row is written. So this module imports
nothing heavy (no pandas): the CLI, the training layer and a worker can all call it first.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from loraforge.errors import DatasetError

# The suffixes data/loading.py reads (its FORMATS); a test keeps the two lists equal.
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".parquet")


def check_readable(
    path: Path | str,
    *,
    what: str = "",
    suffixes: Iterable[str] | None = DATA_SUFFIXES,
    hint: str | None = None,
) -> Path:
    """``path`` if it is an existing, readable, non-empty file of a known type; else a
    DatasetError saying which of those it is not. ``what`` names the file in the message
    (e.g. ``data.train_file``); ``suffixes=None`` accepts any file type."""
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    if not path.exists():
        raise DatasetError(
            f"{name} does not exist", hint=hint or "Check the path and the working directory."
        )
    if not path.is_file():
        raise DatasetError(f"{name} is not a file", hint=hint or "Give the path of a file.")
    if suffixes is not None:
        known = tuple(suffixes)
        if path.suffix.lower() not in known:
            raise DatasetError(
                f"{name}: unsupported file type {path.suffix or '(no extension)'!r}",
                hint=f"Use one of {', '.join(sorted(known))}.",
            )
    try:
        with path.open("rb") as handle:
            first = handle.read(1)
    except OSError as exc:
        raise DatasetError(
            f"{name} cannot be read ({exc.strerror or type(exc).__name__})",
            hint=hint or "Check the file's permissions.",
        ) from None
    if not first:
        raise DatasetError(f"{name} is empty", hint=hint)
    return path
