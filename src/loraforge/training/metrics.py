"""Classification metrics: accuracy, macro-F1 and the confusion matrix, in plain numpy."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def classification_metrics(
    labels: np.ndarray, predictions: np.ndarray, num_labels: int
) -> dict[str, float]:
    matrix = confusion_matrix(labels, predictions, num_labels)
    true_positive = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(actual > 0, true_positive / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = actual > 0  # a class absent from the eval set would drag macro-F1 down for nothing
    return {
        "accuracy": float(true_positive.sum() / max(matrix.sum(), 1)),
        "f1_macro": float(f1[present].mean()) if present.any() else 0.0,
    }


def compute_metrics_for(num_labels: int):
    """A ``compute_metrics`` function for the Trainer."""

    def compute(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        predictions = np.asarray(logits).argmax(axis=-1)
        return classification_metrics(
            np.asarray(eval_prediction.label_ids), predictions, num_labels
        )

    return compute
