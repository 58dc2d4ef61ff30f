"""Training configuration: pydantic models, read from and written to YAML.

Every section forbids unknown keys, so a typo (``lora.rank``) is refused with the key's
name instead of being silently ignored. Defaults are the measured ones from the README's
"Defaults" section: a user who changes nothing gets a good model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loraforge.errors import ConfigError
from loraforge.field_errors import describe_pattern, field_problems

EXPERIMENT_NAME_PATTERN = describe_pattern(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "letters, digits, `.`, `_`, `-` (starting with a letter or digit); at most 64 characters",
)

# A registered model's name; registry/versions.py checks names against the same pattern.
MODEL_NAME_RULE = "letters, digits, `.`, `_`, `-`; at most 64 characters"
MODEL_NAME_PATTERN = describe_pattern(r"^[A-Za-z0-9._-]{1,64}$", MODEL_NAME_RULE)
# Names that are routes under /models: a model called "search" could never be read.
RESERVED_MODEL_NAMES = frozenset({"search", "recommend", "transition"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    base_model: str = Field(
        default="auto",
        min_length=1,
        description="auto: the catalog model for the training data's language (English: the "
        "bundled minilm-l6; Chinese: bert-base-chinese; others: a multilingual one); or a "
        "catalog name (see `loraforge models`), a Hugging Face id or a local folder.",
    )
    allow_low_coverage: bool = Field(
        default=False,
        description="Train even when the base model's tokenizer cannot read more than 15 % "
        "of the training text (unknown or dropped characters): refused otherwise.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="auto picks CUDA, then Apple MPS, then CPU."
    )


class DataSection(_Section):
    train_file: Path
    eval_file: Path | None = None
    eval_split: float | None = Field(
        default=None,
        gt=0.0,
        lt=0.5,
        description="Share of train_file held out for evaluation when there is no eval_file "
        "(0.1 if neither is given).",
    )
    text_column: str = "text"
    label_column: str = "label"
    max_length: int = Field(
        default=128,
        ge=8,
        le=4096,
        description="Longest text in tokens; longer ones are truncated. Batches are padded "
        "only to their longest text.",
    )

    @model_validator(mode="after")
    def _one_eval_source(self) -> DataSection:
        if self.eval_file is not None and self.eval_split is not None:
            raise ValueError("give either data.eval_file or data.eval_split, not both")
        return self

    def effective_eval_split(self) -> float | None:
        if self.eval_file is not None:
            return None
        return self.eval_split if self.eval_split is not None else 0.1


class LoraSection(_Section):
    r: int = Field(
        default=8,
        ge=1,
        le=512,
        description="Rank of the LoRA update matrices: more capacity and parameters as it grows.",
    )
    alpha: float = Field(
        default=16, gt=0, description="Scale of the LoRA update (alpha / r); usually twice r."
    )
    dropout: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Dropout on the LoRA path during training."
    )
    target_modules: list[str] | str | None = Field(
        default=None,
        description="Module names (or one regex) to adapt; null picks the architecture's default.",
    )


class TrainingSection(_Section):
    epochs: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Passes over the training data; one evaluation and checkpoint each.",
    )
    batch_size: int = Field(default=32, ge=1, le=4096, description="Texts per training step.")
    eval_batch_size: int = Field(default=64, ge=1, le=4096)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024)
    learning_rate: float = Field(
        default=2.0e-3,
        gt=0,
        le=1.0,
        description="Peak learning rate; LoRA wants a higher one than full fine-tuning.",
    )
    warmup_ratio: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Share of the steps spent ramping the learning rate up, then linear decay.",
    )
    weight_decay: float = Field(default=0.01, ge=0.0, le=1.0)
    seed: int = Field(  # numpy and torch seeds are 32-bit
        default=42, ge=0, le=2**32 - 1, description="Same seed, same data: same result."
    )
    max_train_samples: int | None = Field(
        default=None, ge=2, description="A stratified cap on training rows, for quick runs."
    )
    max_eval_samples: int | None = Field(default=None, ge=2)
    metric_for_best: Literal["accuracy", "f1_macro"] = Field(
        default="f1_macro", description="Picks the best checkpoint, which becomes the model."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="auto: bf16 where the hardware runs it natively (recent CUDA GPUs, "
        "CPUs with AVX-512 BF16), else fp32.",
    )
    group_by_length: bool = Field(
        default=True, description="Batch texts of similar length together: less padding."
    )
    logging_steps: int = Field(default=10, ge=1)


class RegistrySection(_Section):
    """Register the run's model at the end of a successful run (as the run's owner)."""

    register_as: str | None = Field(
        default=None,
        pattern=MODEL_NAME_PATTERN,
        description="Model name to register the run under (a new version each run); "
        "null: not registered.",
    )
    description: str | None = Field(default=None, max_length=4000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=32)
    task: str | None = Field(
        default=None, min_length=1, max_length=64, description='What the model does: "sentiment".'
    )

    @field_validator("register_as")
    @classmethod
    def _not_reserved(cls, name: str | None) -> str | None:
        if name and name.lower() in RESERVED_MODEL_NAMES:
            raise ValueError("is reserved (an API route): pick another name")
        return name

    @model_validator(mode="after")
    def _registrable(self) -> RegistrySection:
        # The limits registry/versions.py applies at registration: refused here, before a
        # run trains for an hour and then cannot be registered.
        for key, value in self.tags.items():
            if not key or len(key) > 64 or len(value) > 256:
                raise ValueError(
                    f"registry.tags: {key[:64]!r} is too long or empty (keys 1-64 characters, "
                    "values at most 256)"
                )
        return self


class TrainConfig(_Section):
    experiment_name: str = Field(pattern=EXPERIMENT_NAME_PATTERN)
    model: ModelSection = ModelSection()
    data: DataSection
    lora: LoraSection = LoraSection()
    training: TrainingSection = TrainingSection()
    registry: RegistrySection = RegistrySection()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    def flat(self) -> dict[str, Any]:
        """Dotted keys to values, for MLflow params and side-by-side comparison."""
        return flatten(self.model_dump(mode="json"))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` to a raw config tree; the value is parsed as YAML."""
    key, sep, raw_value = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"--set {assignment!r} is not of the form key=value",
            hint="Example: --set training.epochs=1",
        )
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {key}: the value {raw_value!r} is not valid YAML ({exc})"
        ) from exc
    node = tree
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"--set {key}: {where} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _blames(key: str, field: str) -> bool:
    """Whether ``--set key=…`` is behind a problem at ``field``: the key itself, a key
    inside it (``--set lora='{rank: 1}'``) or the unknown section it starts with."""
    return key == field or field.startswith(f"{key}.") or key.startswith(f"{field}.")


def describe_validation_error(
    error: ValidationError,
    *,
    source: str = "the training config",
    overrides: Mapping[str, str] | None = None,
) -> str:
    """Each problem in words (``field_errors``: "did you mean `epochs`?"), blamed on where
    it came from: the ``--set key=value`` that set it, or the file (``source``)."""
    overrides = overrides or {}
    from_file: list[str] = []
    from_overrides: list[str] = []
    seen: set[str] = set()
    for item in error.errors():
        for problem in field_problems([item], model=TrainConfig, location="config"):
            blamed = [k for k in overrides if problem.field and _blames(k, problem.field)]
            if blamed:
                key = blamed[-1]
                # "--set training.epochs=abc: must be a whole number"; a problem further up
                # (an unknown section) names its own field.
                subject = "" if key == problem.field else f"{problem.field} "
                line = f"--set {overrides[key]}: {subject}{problem.message}"
                target = from_overrides
            else:
                given = item.get("input")
                shown = (
                    f" (got {given!r})"
                    if item["type"] not in ("missing", "extra_forbidden")
                    and not isinstance(given, dict | list)
                    else ""
                )
                where = problem.field or "(top level)"
                line = f"{where} {problem.message}{shown}"
                target = from_file
            if line not in seen:
                seen.add(line)
                target.append(line)
    if from_overrides and not from_file and len(from_overrides) == 1:
        return from_overrides[0]
    lines = [f"{source}: {line}" for line in from_file] if from_overrides else from_file
    heading = (
        "the training config is not valid:"
        if from_overrides
        else f"{source} is not a valid training config:"
    )
    return heading + "\n" + "\n".join(f"  - {line}" for line in lines + from_overrides)


def config_from_tree(
    tree: Any, *, source: str, overrides: Mapping[str, str] | None = None
) -> TrainConfig:
    """Validate a raw tree; ``overrides`` (dotted key → the ``key=value`` given) lets a
    problem be blamed on the ``--set`` that caused it rather than on the file."""
    if not isinstance(tree, dict):
        raise ConfigError(
            f"{source}: the config must be a YAML mapping of sections, not {type(tree).__name__}"
        )
    try:
        return TrainConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, source=source, overrides=overrides),
            hint="See configs/demo.yaml for every key with its default.",
        ) from None


def load_config(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist",
            hint="Check the path, or start from configs/demo.yaml.",
        )
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if tree is None:
        tree = {}
    applied: dict[str, str] = {}
    if isinstance(tree, dict):
        for assignment in overrides:
            apply_override(tree, assignment)
            applied[assignment.partition("=")[0].strip()] = assignment
    return config_from_tree(tree, source=str(path), overrides=applied)
