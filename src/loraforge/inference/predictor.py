"""A fine-tuned model answering predictions.

The LoRA adapter is merged into the base weights once at load time: the merged model
runs as fast as the base model, with no adapter overhead per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.errors import NotFound
from loraforge.models.artifacts import ModelMeta, read_model_meta
from loraforge.models.catalog import resolve_base_model

BATCH_SIZE = 32


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
    def __init__(self, model_dir: Path, *, device: str = "auto") -> None:
        import torch
        from peft import PeftModel

        from loraforge.models.device import select_device
        from loraforge.models.loading import load_classifier, quiet_loading

        if not model_dir.is_dir():
            raise NotFound(f"model folder {model_dir} does not exist")
        self.meta: ModelMeta = read_model_meta(model_dir)
        self.device = select_device(device)
        with quiet_loading():
            self.tokenizer, base_model = load_classifier(
                resolve_base_model(self.meta.base_model),
                self.meta.labels,
                tokenizer_source=str(model_dir),
            )
            model = PeftModel.from_pretrained(base_model, str(model_dir))
            self.model = model.merge_and_unload().to(self.device).eval()
        self._torch = torch

    def predict(self, texts: list[str], *, batch_size: int = BATCH_SIZE) -> list[Prediction]:
        """One prediction per text; ``latency_ms`` is the wall time of the batch it was in."""
        torch = self._torch
        out: list[Prediction] = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            began = time.perf_counter()
            encoded = self.tokenizer(
                batch,
                truncation=True,
                max_length=self.meta.max_length,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                probabilities = torch.softmax(self.model(**encoded).logits.float(), dim=-1)
            best = probabilities.max(dim=-1)
            latency = round((time.perf_counter() - began) * 1000, 2)
            for index, probability in zip(best.indices.tolist(), best.values.tolist(), strict=True):
                out.append(
                    Prediction(
                        label=self.meta.labels[index],
                        probability=round(float(probability), 6),
                        latency_ms=latency,
                        base_model=self.meta.base_model,
                        language=self.meta.language,
                    )
                )
        return out


def final_model_dir(results_dir: Path) -> Path:
    return results_dir / "artifacts" / "final_model"
