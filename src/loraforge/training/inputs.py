"""The rows a run trains and evaluates on, with their label map and dataset versions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from loraforge.config import TrainConfig
from loraforge.data.loading import Columns
from loraforge.data.splitting import stratified_sample, stratified_split
from loraforge.data.validation import load_labelled
from loraforge.data.versioning import dataset_version
from loraforge.errors import DatasetError


@dataclass(frozen=True)
class RunInputs:
    train: pd.DataFrame
    eval: pd.DataFrame
    labels: list[Any]  # index = class id; values as the data set names them
    train_version: str  # content hash of the training file
    eval_version: str  # content hash of the evaluation rows actually used
    train_file: Path
    eval_file: Path | None
    train_warnings: tuple[str, ...] = ()  # what validation warned about the training file

    @property
    def label_ids(self) -> dict[str, int]:
        return {str(label): i for i, label in enumerate(self.labels)}

    def ids(self, frame: pd.DataFrame) -> list[int]:
        mapping = self.label_ids
        return [mapping[str(label)] for label in frame["label"]]


def _sort_key(label: Any) -> tuple[int, Any]:
    return (0, label) if isinstance(label, int) else (1, str(label))


def prepare_inputs(config: TrainConfig) -> RunInputs:
    data = config.data
    columns = Columns(text=data.text_column, label=data.label_column)
    seed = config.training.seed
    train_file = data.train_file.expanduser().resolve()
    train, train_report = load_labelled(train_file, columns=columns)
    eval_file = None
    if data.eval_file is not None:
        eval_file = data.eval_file.expanduser().resolve()
        evaluation, _ = load_labelled(eval_file, columns=columns)
    else:
        split = data.effective_eval_split()
        train, evaluation = stratified_split(train, test_fraction=split, seed=seed)

    labels = sorted(set(train["label"]), key=_sort_key)
    known = {str(label) for label in labels}
    unseen = sorted({str(label) for label in evaluation["label"]} - known)
    if unseen:
        raise DatasetError(
            f"the evaluation data has label(s) the training data lacks: {', '.join(unseen)}",
            hint="Every evaluation label must occur in the training data.",
        )
    if config.training.max_train_samples:
        train = stratified_sample(train, n=config.training.max_train_samples, seed=seed)
    if config.training.max_eval_samples:
        evaluation = stratified_sample(evaluation, n=config.training.max_eval_samples, seed=seed)
    return RunInputs(
        train=train.reset_index(drop=True),
        eval=evaluation.reset_index(drop=True),
        labels=labels,
        train_version=str(train_report.version),  # set: load_labelled refuses invalid data
        eval_version=dataset_version(evaluation["text"], evaluation["label"]),
        train_file=train_file,
        eval_file=eval_file,
        train_warnings=tuple(train_report.warnings),
    )
