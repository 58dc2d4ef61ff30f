"""Before a run: the data's language, the base model for it, and whether its tokenizer can
read the data.

``model.base_model: auto`` (the default) becomes the catalog's model for the detected
language (``catalog.default_for_language``). Whatever the model, its tokenizer's coverage
of a sample of the training texts is measured (``data.coverage``): above ``WARN_SHARE``
unread the run warns, naming the catalog models that read the language; above
``REFUSE_SHARE`` it refuses (exit 2 / HTTP 422) unless ``model.allow_low_coverage`` is
true. The CLI and the API check before anything is recorded; the worker checks again
before its job starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraforge.data.coverage import REFUSE_SHARE, WARN_SHARE, Coverage, tokenizer_coverage
from loraforge.data.language import LanguageReport, detect_languages, language_name
from loraforge.errors import ConfigError, LoraforgeError
from loraforge.models.catalog import (
    AUTO,
    ResolvedModel,
    default_for_language,
    models_for_language,
    resolve_base_model,
)


@dataclass(frozen=True)
class LanguageCheck:
    language: LanguageReport
    base_model: str  # the catalog name, hub id or folder the run uses
    chosen_automatically: bool
    coverage: Coverage | None  # None: the tokenizer is not on this machine (yet)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language.to_dict(),
            "base_model": self.base_model,
            "chosen_automatically": self.chosen_automatically,
            "coverage": self.coverage.to_dict() if self.coverage else None,
            "warnings": list(self.warnings),
        }


def tokenizer_folder(resolved: ResolvedModel) -> Path | None:
    """A folder holding the model's tokenizer files on this machine, or None."""
    if resolved.is_local:
        return Path(resolved.path_or_id)
    from huggingface_hub import try_to_load_from_cache

    # The cached snapshot's folder, found by a file in it: snapshot_download(...,
    # local_files_only=True) refuses a snapshot that holds only some of the repository's
    # files, which is what `models pull` leaves (no pickles, no other formats).
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        try:
            hit = try_to_load_from_cache(resolved.path_or_id, name)
        except ValueError:  # not a hub id (HFValidationError is one)
            return None
        if isinstance(hit, str):
            return Path(hit).parent
    return None  # not cached: the availability check says so, in its words


def _fitting(language: str | None, but_not: str) -> list[str]:
    return [e.name for e in models_for_language(language) if e.name != but_not]


def check_language(
    texts: Sequence[str], base_model: str, *, allow_low_coverage: bool = False
) -> LanguageCheck:
    report = detect_languages(texts)
    automatic = base_model == AUTO
    name = default_for_language(report.dominant).name if automatic else base_model
    resolved = resolve_base_model(name)
    folder = tokenizer_folder(resolved)
    coverage = tokenizer_coverage(folder, texts) if folder is not None else None
    warnings: list[str] = []
    if coverage is not None and coverage.unread_share > WARN_SHARE:
        spoken = language_name(report.dominant) if report.dominant else "this data's language"
        fitting = _fitting(report.dominant, name)
        message = (
            f"the tokenizer of {name} cannot read {coverage.unread_share:.0%} of the training "
            f"text ({coverage.unknown_token_share:.0%} of its tokens are unknown); the data "
            f"is {report.words()}"
        )
        choose = (
            f"Use a base model that reads {spoken}: {', '.join(fitting)} "
            "(or model.base_model: auto)"
            if fitting
            else "Use a base model whose tokenizer reads this script (a Hugging Face id or a "
            "local folder)"
        )
        if coverage.unread_share > REFUSE_SHARE and not allow_low_coverage:
            raise ConfigError(
                message,
                hint=f"{choose}. To train on it anyway, set model.allow_low_coverage: true.",
                field="model.base_model",
            )
        warnings.append(f"{message}. {choose}.")
    return LanguageCheck(
        language=report,
        base_model=name,
        chosen_automatically=automatic,
        coverage=coverage,
        warnings=warnings,
    )


def coverage_of(texts: Sequence[str], base_model: str) -> tuple[dict | None, list[str], str]:
    """For a report on the data (``data validate``, ``data analyze``): the coverage of
    ``base_model`` (auto: the language's model) as a dict, its warnings, and the model
    checked. Never a refusal: the data is fine, the model may not be."""
    try:
        found = check_language(texts, base_model, allow_low_coverage=True)
    except LoraforgeError as error:  # a base model that cannot be named or found
        chosen = (
            default_for_language(detect_languages(texts).dominant).name
            if base_model == AUTO
            else base_model
        )
        return None, [f"tokenizer coverage not checked: {error.message}"], chosen
    coverage = found.coverage
    if coverage is None:
        return (
            None,
            [
                *found.warnings,
                f"tokenizer coverage not checked: {found.base_model} is not on this machine "
                f"yet (`loraforge models pull {found.base_model}` fetches it)",
            ],
            found.base_model,
        )
    return {"base_model": found.base_model, **coverage.to_dict()}, found.warnings, found.base_model


def coverage_for_report(report: Any, path: Path, columns: Any, base_model: str) -> None:
    """``data validate``: the coverage of ``base_model`` into a validation report, its
    warnings among the report's."""
    from loraforge.data.loading import read_table, select_columns

    frame = select_columns(read_table(path), columns, source=str(path))
    coverage, warnings, _ = coverage_of(frame["text"].map(str).tolist(), base_model)
    if coverage is not None:
        report.coverage = coverage
    report.warnings.extend(warnings)
