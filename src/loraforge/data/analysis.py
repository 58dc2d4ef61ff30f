"""Distribution analysis: rows, label shares, text lengths in characters and tokens."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loraforge.data.language import detect_languages
from loraforge.data.validation import TokenCounter
from loraforge.data.versioning import dataset_version


def length_stats(lengths: list[int] | pd.Series) -> dict[str, float]:
    values = np.asarray(lengths, dtype=float)
    return {
        "min": int(values.min()),
        "mean": round(float(values.mean()), 1),
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "max": int(values.max()),
    }


def analyze_frame(
    frame: pd.DataFrame, *, count_tokens: TokenCounter | None = None
) -> dict[str, Any]:
    usable = frame.dropna(subset=["text", "label"])
    counts = usable["label"].map(str).value_counts()
    total = int(counts.sum())
    result: dict[str, Any] = {
        "rows": len(frame),
        "version": dataset_version(usable["text"], usable["label"])
        if len(usable) == len(frame)
        else None,
        "labels": {
            str(label): {"count": int(n), "share": round(n / total, 4)}
            for label, n in counts.items()
        },
        "chars": length_stats(usable["text"].map(len)) if total else None,
        "tokens": None,
        # Dominant language(s) and their shares, on a sample (data.language).
        "language": None,
    }
    language = detect_languages(usable["text"].map(str).tolist())
    result["language"] = {**language.to_dict(), "words": language.words()}
    if count_tokens is not None and total:
        result["tokens"] = length_stats(count_tokens(list(usable["text"])))
    return result


def length_histogram(lengths: list[int] | pd.Series, *, bins: int = 20) -> list[dict[str, int]]:
    """Counts of texts per length range, for a chart: ``[{start, end, count}, ...]``, with
    ``end`` exclusive. Lengths are whole numbers, so every bin spans the same whole number
    of them; fractional edges would give some bins one value and others two."""
    values = np.asarray(lengths, dtype=int)
    if not len(values):
        return []
    low, high = int(values.min()), int(values.max())
    width = max(1, -(-(high - low + 1) // bins))  # ceil division
    edges = np.arange(low, high + width + 1, width)
    counts, _ = np.histogram(values, bins=edges)
    return [
        {"start": int(edges[i]), "end": int(edges[i + 1]), "count": int(n)}
        for i, n in enumerate(counts)
    ]
