"""A fine-tuned model answering predictions in this process (``loraforge predict``).

The same engine as the server (serving/engine.py): the adapter on its base model,
unmerged; texts sorted by length and run in batches of at most ``DEFAULT_BATCH_TOKENS``
padded tokens, so short texts are not padded to the longest one.
"""

from __future__ import annotations

import time
from pathlib import Path

from loraforge.models.artifacts import ModelMeta
from loraforge.serving.batcher import DEFAULT_BATCH_TOKENS
from loraforge.serving.engine import Engine, Prediction, length_batches

ADAPTER = "model"


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

        saved = read_adapter(model_dir)
        self.meta: ModelMeta = saved.meta
        self.engine = Engine(
            saved, ADAPTER, device=select_device(device), quantize=quantize, precision=precision
        )

    def predict(
        self, texts: list[str], *, max_batch_tokens: int = DEFAULT_BATCH_TOKENS
    ) -> list[Prediction]:
        """One prediction per text, in order; ``latency_ms`` is the wall time of the batch
        it was in (tokenizing included)."""
        ids = self.engine.tokenize(texts, self.meta.max_length) if texts else []
        loaded = self.engine.adapters[ADAPTER]
        out: list[Prediction | None] = [None] * len(ids)
        for batch in length_batches(ids, max_batch_tokens):
            began = time.perf_counter()
            rows = self.engine.forward([(ADAPTER, ids[i]) for i in batch])
            latency = round((time.perf_counter() - began) * 1000, 2)
            for index, row in zip(batch, rows, strict=True):
                out[index] = loaded.answer(row, latency)
        return out  # type: ignore[return-value]


def final_model_dir(results_dir: Path) -> Path:
    return results_dir / "artifacts" / "final_model"
