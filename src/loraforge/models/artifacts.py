"""The saved form of a fine-tuned model: LoRA adapter, tokenizer, label map, and what it needs.

``label_map.json`` keeps labels as the data set named them (ints stay ints);
``loraforge_model.json`` names the base model by its catalog name so the adapter can be
re-attached on another machine, where the bundled model lives at another path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loraforge.errors import NotFound

LABEL_MAP_FILE = "label_map.json"
MODEL_META_FILE = "loraforge_model.json"


@dataclass(frozen=True)
class ModelMeta:
    experiment_id: str
    base_model: str  # as configured: catalog name, hub id or folder
    base_model_source: str  # what it resolved to at training time
    language: str
    max_length: int
    labels: list[Any]


def write_model_meta(folder: Path, meta: ModelMeta) -> None:
    (folder / LABEL_MAP_FILE).write_text(
        json.dumps(
            {"labels": meta.labels, "id2label": dict(enumerate(meta.labels))},
            indent=2,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (folder / MODEL_META_FILE).write_text(
        json.dumps(asdict(meta), indent=2, ensure_ascii=False), encoding="utf-8"
    )


def read_model_meta(folder: Path) -> ModelMeta:
    path = folder / MODEL_META_FILE
    if not path.is_file():
        raise NotFound(f"{folder} holds no loraforge model ({MODEL_META_FILE} is missing)")
    return ModelMeta(**json.loads(path.read_text(encoding="utf-8")))
