"""Data set versions: a content hash of the normalised (text, label) rows.

The same rows give the same version whatever the file's name, format or other columns.
Row order is part of the content because it is part of what a seeded run sees.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable


def normalise_text(text: str) -> str:
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def dataset_version(texts: Iterable[str], labels: Iterable[object]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        row = json.dumps([normalise_text(text), str(label)], ensure_ascii=False)
        digest.update(row.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def short_version(version: str) -> str:
    return version[:12]
