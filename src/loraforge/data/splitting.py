"""Seeded, stratified splitting and sampling: every class keeps its share."""

from __future__ import annotations

import numpy as np
import pandas as pd


def stratified_split(
    frame: pd.DataFrame, *, test_fraction: float, seed: int, label_column: str = "label"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test); each class with 2+ rows gives at least one row to each side."""
    rng = np.random.default_rng(seed)
    test_index: list[int] = []
    for _, group in frame.groupby(frame[label_column].map(str), sort=True):
        index = group.index.to_numpy().copy()
        rng.shuffle(index)
        n_test = round(len(index) * test_fraction)
        if len(index) >= 2:
            n_test = min(max(n_test, 1), len(index) - 1)
        test_index.extend(index[:n_test].tolist())
    test_mask = frame.index.isin(test_index)
    train = frame[~test_mask]
    test = frame[test_mask]
    return _shuffled(train, rng), _shuffled(test, rng)


def stratified_sample(
    frame: pd.DataFrame, *, n: int, seed: int, label_column: str = "label"
) -> pd.DataFrame:
    """At most ``n`` rows, class shares kept."""
    if n >= len(frame):
        return frame
    _, sample = stratified_split(
        frame, test_fraction=n / len(frame), seed=seed, label_column=label_column
    )
    return sample


def _shuffled(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    order = rng.permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)
