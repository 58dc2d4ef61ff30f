"""Model cards: what a registered version is, how it was made and how well it does.

Two files per version, under ``<data_dir>/model_registry/NAME/``: ``vN.json`` (the card's
data, for programs: the API, search, the UI) and ``vN.README.md`` (the Hugging Face
model-card format: a YAML header a hub reads, a body a person reads). Both are also logged
as artifacts of the experiment's MLflow run, under ``model_card/NAME/``.

The facts of a card (data, LoRA settings, scores) are gathered once, at registration,
from the experiment's row and results folder: the card then describes what was registered
even after a training file is deleted. Transitions and card edits change only the
version's own fields (stage, owner-written prose, embedding) — ``refresh`` — and rewrite
both files. Nothing here touches the database or MLflow; ``service.py`` does.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from loraforge.monitoring.logs import utc_iso

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("loraforge.registry.cards")

SCHEMA_VERSION = 1
CARDS_DIR = "model_registry"
SAMPLE_TEXTS = 200  # training texts embedded per version: enough for a stable centroid
SAMPLE_SEED = 0
MAX_PROSE = 4000  # intended_use / limitations

_NUMBER = {"type": ["number", "null"]}
_COUNT = {"type": ["integer", "null"], "minimum": 0}
_TEXT = {"type": ["string", "null"]}

# The card's shape, checked by the tests (and by anyone with ``jsonschema``). Keys are
# only ever added; ``schema_version`` goes up when one changes meaning.
CARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "loraforge model card",
    "type": "object",
    "required": [
        "schema_version",
        "name",
        "version",
        "stage",
        "owner",
        "experiment_id",
        "mlflow_run_id",
        "mlflow_version",
        "created_at",
        "updated_at",
        "description",
        "task",
        "tags",
        "base_model",
        "language",
        "labels",
        "metrics",
        "per_class",
        "confusion_matrix",
        "data",
        "lora",
        "parameters",
        "training",
        "quality",
        "packages",
        "intended_use",
        "limitations",
        "embedding",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,64}$"},
        "version": {"type": "integer", "minimum": 1},
        "stage": {"enum": ["none", "Staging", "Production", "Archived"]},
        "owner": _TEXT,
        "experiment_id": {"type": "string"},
        "mlflow_run_id": _TEXT,
        "mlflow_version": _TEXT,
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "description": _TEXT,
        "task": _TEXT,
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "base_model": {"type": "string"},
        "language": _TEXT,
        "labels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "train_count", "eval_count"],
                "properties": {
                    "name": {"type": "string"},
                    "train_count": _COUNT,
                    "eval_count": _COUNT,
                },
            },
        },
        "metrics": {
            "type": "object",
            "required": ["accuracy", "f1_macro"],
            "properties": {"accuracy": _NUMBER, "f1_macro": _NUMBER, "loss": _NUMBER},
        },
        "per_class": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "precision", "recall", "f1", "support"],
                "properties": {
                    "label": {"type": "string"},
                    "precision": {"type": "number"},
                    "recall": {"type": "number"},
                    "f1": {"type": "number"},
                    "support": {"type": "integer"},
                },
            },
        },
        "confusion_matrix": {
            "type": ["object", "null"],
            "required": ["labels", "matrix"],
            "properties": {
                "labels": {"type": "array", "items": {"type": "string"}},
                "matrix": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
        "data": {
            "type": "object",
            "required": ["train", "eval"],
            "properties": {
                side: {
                    "type": "object",
                    "required": ["version", "rows"],
                    "properties": {"version": _TEXT, "rows": _COUNT},
                }
                for side in ("train", "eval")
            },
        },
        "lora": {
            "type": "object",
            "required": ["r", "alpha", "dropout", "target_modules"],
            "properties": {
                "r": _COUNT,
                "alpha": _NUMBER,
                "dropout": _NUMBER,
                "target_modules": {"type": ["array", "string", "null"]},
            },
        },
        "parameters": {
            "type": "object",
            "required": ["trainable"],
            "properties": {"trainable": _COUNT, "total": _COUNT, "trainable_share": _NUMBER},
        },
        "training": {
            "type": "object",
            "required": ["seed", "max_length"],
            "properties": {"seed": _COUNT, "max_length": _COUNT},
        },
        "quality": {
            "type": "object",
            "required": ["learned", "problems"],
            "properties": {
                "learned": {"type": ["boolean", "null"]},
                "problems": {"type": "array", "items": {"type": "string"}},
            },
        },
        "packages": {"type": "object", "additionalProperties": {"type": "string"}},
        "intended_use": {"type": "string"},
        "limitations": {"type": "string"},
        "embedding": {"type": ["array", "null"], "items": {"type": "number"}},
    },
}


@dataclass(frozen=True)
class ModelCard:
    data: dict[str, Any]
    readme: str


@dataclass(frozen=True)
class Facts:
    """What registration learns about an experiment: the card's fixed part, and the
    training texts (a sample) and label names its data embedding is made of."""

    card: dict[str, Any]
    sample_texts: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)


def problems(card: dict[str, Any]) -> list[str]:
    """What is wrong with a card against ``CARD_SCHEMA`` (empty: nothing)."""
    try:
        import jsonschema
    except ImportError:  # not a dependency: without it, the keys are checked
        return [f"missing key {key!r}" for key in CARD_SCHEMA["required"] if key not in card]
    validator = jsonschema.Draft202012Validator(CARD_SCHEMA)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(card)'}: {e.message}"
        for e in validator.iter_errors(card)
    ]


# --- facts from an experiment ------------------------------------------------------------


def _base_model_name(configured: str) -> str:
    """The base model as a card may show it: a catalog name, a hub id, or for a local
    folder only its name (its server path is nobody else's business)."""
    from loraforge.models.catalog import CATALOG

    entry = CATALOG.get(configured)
    if entry is not None:
        return configured if entry.source == "bundled" else entry.source
    if configured.startswith((".", "/", "~")) or Path(configured).expanduser().is_dir():
        return Path(configured).name or configured
    return configured


def _hub_id(base_model: str | None) -> str | None:
    """The Hub's name for a catalog model ("minilm-l6" is a copy of
    sentence-transformers/all-MiniLM-L6-v2): what a model card's header names."""
    from loraforge.models.catalog import CATALOG

    entry = CATALOG.get(base_model or "")
    return entry.hub_name if entry is not None else base_model


def _per_class(labels: list[str], matrix: list[list[int]]) -> list[dict[str, Any]]:
    rows = []
    for i, label in enumerate(labels):
        true_positive = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        actual = sum(matrix[i])
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "label": label,
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "f1": round(f1, 4),
                "support": int(actual),
            }
        )
    return rows


def _lora_settings(model_dir: Path | None, config: dict[str, Any]) -> dict[str, Any]:
    """From the saved adapter (what was trained, default targets resolved), else the config."""
    lora = dict(config.get("lora") or {})
    settings = {
        "r": lora.get("r"),
        "alpha": lora.get("alpha"),
        "dropout": lora.get("dropout"),
        "target_modules": lora.get("target_modules"),
    }
    path = model_dir / "adapter_config.json" if model_dir is not None else None
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return settings
        targets = saved.get("target_modules")
        settings = {
            "r": saved.get("r", settings["r"]),
            "alpha": saved.get("lora_alpha", settings["alpha"]),
            "dropout": saved.get("lora_dropout", settings["dropout"]),
            "target_modules": sorted(targets) if isinstance(targets, list) else targets,
        }
    return settings


def _adapter_parameters(model_dir: Path | None) -> int | None:
    """Parameters in the saved adapter (LoRA matrices and the trained head), counted from
    the tensor shapes: for runs that did not record their trainable count."""
    path = model_dir / "adapter_model.safetensors" if model_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        from safetensors import safe_open

        total = 0
        with safe_open(str(path), framework="numpy") as tensors:
            for key in tensors.keys():  # noqa: SIM118 — safe_open is not a mapping
                count = 1
                for size in tensors.get_slice(key).get_shape():
                    count *= size
                total += count
        return total
    except Exception as error:  # an unreadable file only costs the card this number
        logger.warning("could not count the parameters in %s: %s", path, error)
        return None


def _training_rows(experiment: Any) -> pd.DataFrame | None:
    """The rows the run trained on, read again as the run read them; None when the
    training file is gone or changed (its content version no longer matches)."""
    from loraforge.config import config_from_tree
    from loraforge.training.inputs import prepare_inputs

    folder = Path(experiment.results_dir) if experiment.results_dir else None
    saved = folder / "config.yaml" if folder is not None else None
    try:
        if saved is not None and saved.is_file():
            tree = yaml.safe_load(saved.read_text(encoding="utf-8"))
        else:
            tree = experiment.config
        inputs = prepare_inputs(config_from_tree(tree, source="the experiment's config"))
    except Exception as error:  # gone, moved, unreadable: the card says less, no more
        logger.info("experiment %s: training data not readable: %s", experiment.id, error)
        return None
    if (
        experiment.train_dataset_version
        and inputs.train_version != experiment.train_dataset_version
    ):
        logger.info("experiment %s: the training file changed since the run", experiment.id)
        return None
    return inputs.train


def experiment_facts(experiment: Any) -> Facts:
    """The card's fixed part for an experiment (an ORM row or ``ExperimentRecord``).

    Every source is optional: a run from before a field was recorded, or a row made by
    hand, gives a card with ``None`` where the fact is unknown.
    """
    metrics = dict(experiment.metrics or {})
    config = dict(experiment.config or {})
    final = dict(metrics.get("final") or {})
    folder = Path(experiment.results_dir) if experiment.results_dir else None
    model_dir = folder / "artifacts" / "final_model" if folder is not None else None
    labels = [str(label) for label in (experiment.labels or metrics.get("labels") or [])]
    matrix_info = metrics.get("confusion_matrix") or {}
    matrix = matrix_info.get("matrix")
    if matrix is not None and labels and len(matrix) != len(labels):
        matrix = None  # does not belong to these labels; better none than a wrong one
    eval_counts = [int(sum(row)) for row in matrix] if matrix else [None] * len(labels)

    sample: list[str] = []
    train_counts: dict[str, int] = {}
    read = _training_rows(experiment)
    if read is not None:
        from loraforge.data.splitting import stratified_sample

        train = read
        train_counts = {
            str(k): int(v) for k, v in train["label"].astype(str).value_counts().items()
        }
        picked = stratified_sample(train, n=SAMPLE_TEXTS, seed=SAMPLE_SEED)
        sample = [str(t) for t in picked["text"]]

    datasets = metrics.get("datasets") or {}
    parameters = dict(metrics.get("parameters") or {})
    if parameters.get("trainable") is None:
        parameters["trainable"] = _adapter_parameters(model_dir)
    training = dict(config.get("training") or {})
    data_config = dict(config.get("data") or {})
    quality = metrics.get("quality") or {}
    language = experiment.language if experiment.language not in (None, "", "unknown") else None
    card = {
        "experiment_id": experiment.id,
        "mlflow_run_id": experiment.mlflow_run_id,
        "base_model": _base_model_name(experiment.base_model),
        "language": language,
        "labels": [
            {"name": label, "train_count": train_counts.get(label), "eval_count": eval_counts[i]}
            for i, label in enumerate(labels)
        ],
        "metrics": {
            "accuracy": final.get("accuracy"),
            "f1_macro": final.get("f1_macro"),
            "loss": final.get("loss"),
        },
        "per_class": _per_class(labels, matrix) if matrix else [],
        "confusion_matrix": {"labels": labels, "matrix": matrix} if matrix else None,
        "data": {
            "train": {
                "version": experiment.train_dataset_version,
                "rows": experiment.train_rows,
            },
            "eval": {
                "version": experiment.eval_dataset_version,
                "rows": experiment.eval_rows,
                "split": (datasets.get("eval") or {}).get("split"),
            },
        },
        "lora": _lora_settings(model_dir, config),
        "parameters": {
            "trainable": parameters.get("trainable"),
            "total": parameters.get("total"),
            "trainable_share": parameters.get("trainable_share"),
        },
        "training": {
            "seed": training.get("seed"),
            "epochs": training.get("epochs"),
            "learning_rate": training.get("learning_rate"),
            "batch_size": training.get("batch_size"),
            "max_length": data_config.get("max_length"),
            "device": metrics.get("device") or experiment.device,
            "precision": metrics.get("precision"),
        },
        "quality": {
            "learned": quality.get("learned") if isinstance(quality.get("learned"), bool) else None,
            "problems": [str(p) for p in quality.get("problems") or []],
        },
        "packages": {str(k): str(v) for k, v in (metrics.get("packages") or {}).items()},
    }
    return Facts(card=card, sample_texts=sample, label_names=labels)


# --- the card ----------------------------------------------------------------------------


def _language_word(code: str | None) -> str | None:
    from loraforge.registry.embeddings import language_word

    return language_word(code)


def default_intended_use(card: dict[str, Any]) -> str:
    """What the model is for, from its facts; the owner may replace it (``update_card``)."""
    labels = ", ".join(label["name"] for label in card.get("labels") or []) or "its labels"
    language = _language_word(card.get("language"))
    texts = f"{language} short texts" if language else "short texts"
    task = f" ({card['task']})" if card.get("task") else ""
    return f"Classifies {texts}{task} into: {labels}."


def default_limitations(card: dict[str, Any]) -> str:
    """What a user should know before relying on it, stated from its facts."""
    sentences = []
    eval_rows = (card.get("data") or {}).get("eval", {}).get("rows")
    if eval_rows is not None:
        sentences.append(
            f"Evaluated on {eval_rows} held-out texts only; results on other data may differ."
        )
    language = _language_word(card.get("language"))
    if language:
        sentences.append(f"Trained on {language} texts; other languages are not supported.")
    max_length = (card.get("training") or {}).get("max_length")
    if max_length:
        sentences.append(f"Texts longer than {max_length} tokens are cut to that length.")
    sentences.append(
        "It knows only the labels above: any text, whatever its subject, gets one of them."
    )
    quality = card.get("quality") or {}
    if quality.get("learned") is False:
        why = " ".join(quality.get("problems") or [])
        sentences.append(
            "The training run's verdict: the model did not learn." + f" {why}" * bool(why)
        )
    return " ".join(sentences)


def build_card(
    facts: Facts,
    *,
    name: str,
    version: int,
    stage: str,
    owner: str | None,
    created_at: datetime,
    updated_at: datetime,
    description: str | None,
    task: str | None,
    tags: dict[str, str],
    mlflow_version: str | None,
    intended_use: str | None,
    limitations: str | None,
    embedding: list[float] | None,
) -> dict[str, Any]:
    """A whole card; the intended use and limitations default to the facts' own words."""
    card: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "stage": stage,
        "owner": owner,
        "experiment_id": facts.card["experiment_id"],
        "mlflow_run_id": facts.card["mlflow_run_id"],
        "mlflow_version": mlflow_version,
        "created_at": utc_iso(created_at),
        "updated_at": utc_iso(updated_at),
        "description": description,
        "task": task,
        "tags": dict(tags or {}),
        **{k: v for k, v in facts.card.items() if k not in ("experiment_id", "mlflow_run_id")},
    }
    card["intended_use"] = intended_use or default_intended_use(card)
    card["limitations"] = limitations or default_limitations(card)
    card["embedding"] = embedding
    return card


def refresh(
    card: dict[str, Any],
    *,
    stage: str,
    owner: str | None,
    updated_at: datetime,
    mlflow_version: str | None,
    intended_use: str | None,
    limitations: str | None,
    embedding: list[float] | None,
) -> dict[str, Any]:
    """The card with its version's changing fields brought up to date; the facts stay."""
    updated = dict(card)
    updated.update(
        stage=stage,
        owner=owner,
        updated_at=utc_iso(updated_at),
        mlflow_version=mlflow_version,
        embedding=embedding,
    )
    updated["intended_use"] = intended_use or default_intended_use(updated)
    updated["limitations"] = limitations or default_limitations(updated)
    return updated


# --- README.md (Hugging Face model card) -------------------------------------------------


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def _modules(targets: Any) -> str:
    if isinstance(targets, list):
        return ", ".join(f"`{t}`" for t in targets)
    return f"`{targets}`" if targets else "the architecture's default"


def _short(version: str | None) -> str | None:
    return version[:12] if version else None


def readme_header(card: dict[str, Any]) -> dict[str, Any]:
    """The YAML header a model hub reads (https://huggingface.co/docs/hub/model-cards)."""
    tags = card.get("tags") or {}
    data = card.get("data") or {}
    datasets = [
        v
        for v in (
            _short(data.get("train", {}).get("version")),
            _short(data.get("eval", {}).get("version")),
        )
        if v
    ]
    keywords = ["loraforge", "lora", "text-classification"]
    if card.get("task"):
        keywords.append(str(card["task"]))
    keywords += [f"{k}:{v}" for k, v in sorted(tags.items()) if k != "license"]
    metrics = card.get("metrics") or {}
    results = [
        {"type": "accuracy", "name": "Accuracy", "value": metrics.get("accuracy")},
        {
            "type": "f1",
            "name": "Macro F1",
            "value": metrics.get("f1_macro"),
            "args": {"average": "macro"},
        },
    ]
    eval_version = _short(data.get("eval", {}).get("version"))
    header: dict[str, Any] = {}
    if card.get("language"):
        header["language"] = [card["language"]]
    header.update(
        {
            "license": tags.get("license", "other"),
            "library_name": "peft",
            "base_model": _hub_id(card.get("base_model")),
            "pipeline_tag": "text-classification",
            "tags": keywords,
            "datasets": datasets,
            "metrics": ["accuracy", "f1"],
            "model-index": [
                {
                    "name": card["name"],
                    "results": [
                        {
                            "task": {"type": "text-classification", "name": "Text Classification"},
                            "dataset": {
                                "type": "loraforge-eval",
                                "name": f"evaluation data {eval_version or '(unknown version)'}",
                                "split": "eval",
                            },
                            "metrics": [r for r in results if r["value"] is not None],
                        }
                    ],
                }
            ],
        }
    )
    return header


def render_readme(card: dict[str, Any]) -> str:
    """The card as a Hugging Face README.md: YAML header, then prose and tables."""
    name, version, stage = card["name"], card["version"], card["stage"]
    header = yaml.safe_dump(readme_header(card), sort_keys=False, allow_unicode=True)
    labels = card.get("labels") or []
    metrics = card.get("metrics") or {}
    data = card.get("data") or {}
    lora = card.get("lora") or {}
    params = card.get("parameters") or {}
    training = card.get("training") or {}
    packages = card.get("packages") or {}
    reference = f"{name}@production" if stage == "Production" else f"{name}:{version}"
    lines = [
        "---",
        header.rstrip(),
        "---",
        "",
        f"# {name} — version {version}",
        "",
        f"Stage: **{stage}**" + (f" · owner: {card['owner']}" if card.get("owner") else ""),
        "",
    ]
    if card.get("description"):
        lines += [card["description"], ""]
    lines += ["## What it does", "", card["intended_use"], ""]
    if labels:
        lines += [
            "## Labels",
            "",
            "| Label | Training texts | Evaluation texts |",
            "| --- | ---: | ---: |",
            *(
                f"| {_cell(lb['name'])} | {_cell(lb['train_count'])} | {_cell(lb['eval_count'])} |"
                for lb in labels
            ),
            "",
        ]
    lines += [
        "## How to use it",
        "",
        "With loraforge (this version, or whichever is in Production at the time):",
        "",
        "```bash",
        f'loraforge predict --model {name}:{version} "a text to classify"',
        f'loraforge predict --model {name}@production "a text to classify"',
        "```",
        "",
        "Over HTTP: `POST /predict` with "
        f'`{{"model": "{reference}", "texts": ["a text to classify"]}}`. '
        f"In MLflow: `models:/{name}@production` while it is the Production version.",
        "",
        "## Training data",
        "",
        "| Split | Data version | Texts |",
        "| --- | --- | ---: |",
        f"| train | `{_cell(_short(data.get('train', {}).get('version')))}` | "
        f"{_cell(data.get('train', {}).get('rows'))} |",
        f"| eval | `{_cell(_short(data.get('eval', {}).get('version')))}` | "
        f"{_cell(data.get('eval', {}).get('rows'))} |",
        "",
        "## Training",
        "",
        f"- Base model: `{card.get('base_model')}`"
        + (f" ({_language_word(card.get('language'))})" if card.get("language") else ""),
        f"- LoRA: r={lora.get('r')}, alpha={lora.get('alpha')}, dropout={lora.get('dropout')}, "
        f"target modules: {_modules(lora.get('target_modules'))}",
        f"- Trainable parameters: {_cell(params.get('trainable'))}"
        + (f" of {params['total']}" if params.get("total") else ""),
        f"- Seed {_cell(training.get('seed'))}, {_cell(training.get('epochs'))} epochs, "
        f"learning rate {_cell(training.get('learning_rate'))}, "
        f"max length {_cell(training.get('max_length'))} tokens",
    ]
    if packages:
        lines.append("- Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(packages.items())))
    lines += [
        "",
        "## Results",
        "",
        "| Metric | Value |",
        "| --- | ---: |",
        f"| Accuracy | {_score(metrics.get('accuracy'))} |",
        f"| Macro F1 | {_score(metrics.get('f1_macro'))} |",
        "",
    ]
    if card.get("per_class"):
        lines += [
            "### Per class",
            "",
            "| Label | Precision | Recall | F1 | Support |",
            "| --- | ---: | ---: | ---: | ---: |",
            *(
                f"| {_cell(row['label'])} | {_score(row['precision'])} | {_score(row['recall'])} "
                f"| {_score(row['f1'])} | {row['support']} |"
                for row in card["per_class"]
            ),
            "",
        ]
    matrix = card.get("confusion_matrix")
    if matrix:
        names = [_cell(n) for n in matrix["labels"]]
        lines += [
            "### Confusion matrix (rows: true label, columns: predicted)",
            "",
            "| | " + " | ".join(names) + " |",
            "| --- |" + " ---: |" * len(names),
            *(
                f"| {names[i]} | " + " | ".join(str(v) for v in row) + " |"
                for i, row in enumerate(matrix["matrix"])
            ),
            "",
        ]
    lines += [
        "## Limitations",
        "",
        card["limitations"],
        "",
        "## Lineage",
        "",
        f"- Experiment: `{card['experiment_id']}`",
        f"- MLflow run: `{card.get('mlflow_run_id') or '-'}`, "
        f"registered model version `{card.get('mlflow_version') or '-'}`",
        f"- Registered {card['created_at']}, last changed {card['updated_at']}",
        "",
    ]
    return "\n".join(lines)


# --- files ---------------------------------------------------------------------------------


def card_paths(data_dir: Path, name: str, version: int) -> tuple[Path, Path]:
    folder = data_dir / CARDS_DIR / name
    return folder / f"v{version}.json", folder / f"v{version}.README.md"


def to_json(card: dict[str, Any]) -> str:
    return json.dumps(card, indent=2, ensure_ascii=False) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    # Written beside the target and renamed over it: a reader sees the old card or the
    # new one, never half of one.
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def render(card: dict[str, Any]) -> ModelCard:
    return ModelCard(data=card, readme=render_readme(card))


def write(data_dir: Path, card: ModelCard) -> tuple[Path, Path]:
    json_path, readme_path = card_paths(data_dir, card.data["name"], card.data["version"])
    _write_atomically(json_path, to_json(card.data))
    _write_atomically(readme_path, card.readme)
    return json_path, readme_path


def write_to(folder: Path, card: ModelCard) -> list[Path]:
    """The two files in ``folder`` under their registry names (for logging to MLflow)."""
    version = card.data["version"]
    paths = [folder / f"v{version}.json", folder / f"v{version}.README.md"]
    paths[0].write_text(to_json(card.data), encoding="utf-8")
    paths[1].write_text(card.readme, encoding="utf-8")
    return paths


def read(data_dir: Path, name: str, version: int) -> ModelCard | None:
    """The stored card, or None when its files are missing or unreadable."""
    json_path, readme_path = card_paths(data_dir, name, version)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        readme = readme_path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None
    return ModelCard(data=data, readme=readme)
