"""A saved fine-tuned model read as what the engine needs: LoRA weights, head weights, meta.

Training saves a PEFT adapter whose ``modules_to_save`` (the classification head, and
DistilBERT's ``pre_classifier``) are stored in full beside the LoRA matrices. The engine
keeps one base model and many adapters, each with a head of its own size (2 labels, 3
labels …), which PEFT's modules-to-save wrapper cannot mix in one batch; so the head
weights are split off here and routed by ``heads.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.errors import NotFound
from loraforge.models.artifacts import ModelMeta, read_model_meta

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


@dataclass
class SavedAdapter:
    folder: Path
    meta: ModelMeta
    config: dict[str, Any]  # adapter_config.json as saved
    lora: dict[str, Any]  # LoRA tensors, keys as PEFT saved them
    heads: dict[str, Any]  # head tensors, keys relative to the base model ("classifier.weight")
    modules_to_save: list[str]

    @property
    def labels(self) -> list[Any]:
        return self.meta.labels


def read_adapter(folder: Path) -> SavedAdapter:
    """Read a final_model folder (safetensors only) without touching any model."""
    from safetensors.torch import load_file

    if not folder.is_dir():
        raise NotFound(f"model folder {folder} does not exist")
    meta = read_model_meta(folder)
    config_path, weights_path = folder / ADAPTER_CONFIG, folder / ADAPTER_WEIGHTS
    if not config_path.is_file() or not weights_path.is_file():
        raise NotFound(
            f"{folder} holds no LoRA adapter ({ADAPTER_CONFIG} and {ADAPTER_WEIGHTS} are needed)"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    tensors = load_file(str(weights_path), device="cpu")
    lora, heads = {}, {}
    for key, tensor in tensors.items():
        if "lora_" in key:
            lora[key] = tensor
        else:
            heads[key.removeprefix(PEFT_PREFIX)] = tensor
    return SavedAdapter(
        folder=folder,
        meta=meta,
        config=config,
        lora=lora,
        heads=heads,
        modules_to_save=list(config.get("modules_to_save") or []),
    )
