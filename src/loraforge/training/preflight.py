"""Checks a training run's inputs before anything heavy is imported or anything recorded.

``run_training`` takes an experiment id, writes a row and a ``results/<id>.partial/``
folder and imports torch before it reads the data; a missing data file found there costs
seconds and leaves a failed experiment behind. ``check_inputs`` finds it in milliseconds
and records nothing; the CLI calls it first, and a worker can too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loraforge.config import TrainConfig
from loraforge.data.files import check_readable
from loraforge.errors import ConfigError
from loraforge.models.availability import check_base_model

if TYPE_CHECKING:
    from loraforge.training.language_check import LanguageCheck

from loraforge.models.catalog import AUTO

FILE_HINT = "Check the path; a relative one starts from the working directory."


def check_inputs(config: TrainConfig) -> None:
    """Raise DatasetError or ConfigError for an input the run cannot start with: a data file
    that is missing, unreadable, empty or of an unknown type, or a base model that cannot be
    loaded: a misspelt catalog name, a folder that is not there, a hub id that is neither
    cached nor on a reachable hub (``models.availability``)."""
    check_readable(config.data.train_file.expanduser(), what="data.train_file", hint=FILE_HINT)
    if config.data.eval_file is not None:
        check_readable(config.data.eval_file.expanduser(), what="data.eval_file", hint=FILE_HINT)
    if config.model.base_model != AUTO:  # auto is resolved from the data (check_run)
        check_base_model(config.model.base_model)


def check_run(config: TrainConfig) -> tuple[TrainConfig, LanguageCheck]:
    """``check_inputs``, then the data's language and the base model's coverage of it
    (``language_check``): the config with ``auto`` replaced by the model chosen, and what
    was found. Refuses (ConfigError) a model that cannot read the data, or one that is not
    on this machine, before anything is recorded."""
    from loraforge.data.loading import Columns
    from loraforge.data.validation import load_labelled
    from loraforge.training.language_check import check_language

    check_inputs(config)
    frame, _ = load_labelled(
        config.data.train_file.expanduser(),
        columns=Columns(text=config.data.text_column, label=config.data.label_column),
    )
    found = check_language(
        frame["text"].tolist(),
        config.model.base_model,
        allow_low_coverage=config.model.allow_low_coverage,
    )
    if found.chosen_automatically:
        try:
            check_base_model(found.base_model)
        except ConfigError as error:
            # Said as such: the user never named this model, and nothing falls back to an
            # English one that cannot read the data.
            error.message = (
                f"model.base_model: auto chose {found.base_model} for this data "
                f"({found.language.words()}), but {error.message}"
            )
            raise
    chosen = config.model.model_copy(update={"base_model": found.base_model})
    return config.model_copy(update={"model": chosen}), found
