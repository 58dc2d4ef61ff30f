"""Checks a training run's inputs before anything heavy is imported or anything recorded.

``run_training`` takes an experiment id, writes a row and a ``results/<id>.partial/``
folder and imports torch before it reads the data; a missing data file found there costs
seconds and leaves a failed experiment behind. ``check_inputs`` finds it in milliseconds
and records nothing; the CLI calls it first, and a worker can too.
"""

from __future__ import annotations

from loraforge.config import TrainConfig
from loraforge.data.files import check_readable
from loraforge.models.availability import check_base_model

FILE_HINT = "Check the path; a relative one starts from the working directory."


def check_inputs(config: TrainConfig) -> None:
    """Raise DatasetError or ConfigError for an input the run cannot start with: a data file
    that is missing, unreadable, empty or of an unknown type, or a base model that cannot be
    loaded: a misspelt catalog name, a folder that is not there, a hub id that is neither
    cached nor on a reachable hub (``models.availability``)."""
    check_readable(config.data.train_file.expanduser(), what="data.train_file", hint=FILE_HINT)
    if config.data.eval_file is not None:
        check_readable(config.data.eval_file.expanduser(), what="data.eval_file", hint=FILE_HINT)
    check_base_model(config.model.base_model)
