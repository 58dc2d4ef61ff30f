"""A fine-tuned model answering predictions in this process (``loraforge predict``).

The same engine as the server (serving/engine.py): the adapter on its base model,
unmerged; texts sorted by length and run in batches of at most ``MAX_BATCH_TOKENS``
padded tokens, so short texts are not padded to the longest one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.models.artifacts import ModelMeta

MAX_BATCH_TOKENS = 8192
ADAPTER = "model"


@dataclass(frozen=True)
class Prediction:
    label: Any
    probability: float
    latency_ms: float
    base_model: str
    language: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "base_model": self.base_model,
            "language": self.language,
        }


class Predictor:
    def __init__(
        self,
        model_dir: Path,
        *,
        device: str = "auto",
        quantize: str = "none",
        precision: str = "auto",
    ) -> None:
        from loraforge.models.device import select_device
        from loraforge.serving.adapters import read_adapter
        from loraforge.serving.engine import Engine

        saved = read_adapter(model_dir)
        self.meta: ModelMeta = saved.meta
        self.engine = Engine(
            saved, ADAPTER, device=select_device(device), quantize=quantize, precision=precision
        )

    def predict(
        self, texts: list[str], *, max_batch_tokens: int = MAX_BATCH_TOKENS
    ) -> list[Prediction]:
        """One prediction per text, in order; ``latency_ms`` is the wall time of the batch
        it was in (tokenizing included)."""
        ids = self.engine.tokenize(texts, self.meta.max_length) if texts else []
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[Prediction | None] = [None] * len(ids)
        start = 0
        while start < len(order):
            began = time.perf_counter()
            end = start + 1
            # Sorted ascending: the last text of a batch is its longest.
            while end < len(order) and len(ids[order[end]]) * (end - start + 1) <= max_batch_tokens:
                end += 1
            batch = order[start:end]
            rows = self.engine.forward([(ADAPTER, ids[i]) for i in batch])
            latency = round((time.perf_counter() - began) * 1000, 2)
            for index, row in zip(batch, rows, strict=True):
                best = max(range(len(row)), key=row.__getitem__)
                out[index] = Prediction(
                    label=self.meta.labels[best],
                    probability=round(float(row[best]), 6),
                    latency_ms=latency,
                    base_model=self.meta.base_model,
                    language=self.meta.language,
                )
            start = end
        return out  # type: ignore[return-value]


def final_model_dir(results_dir: Path) -> Path:
    return results_dir / "artifacts" / "final_model"
