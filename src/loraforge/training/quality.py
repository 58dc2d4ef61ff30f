"""Did the model learn anything? A verdict on the final confusion matrix.

A run that ends with every prediction in one class, or at the accuracy of always
answering the most common label, has produced nothing a user should deploy, however
green "succeeded" looks. The run still succeeds (its files and metrics are real and
useful for diagnosis), but it says so loudly everywhere its result is shown, with the
likely fixes.
"""

from __future__ import annotations

from typing import Any

# One class taking this share of all predictions means the model (almost) ignores its input.
ONE_CLASS_SHARE = 0.95
# Accuracy must beat always-the-majority-class by at least this much (1 point) to count.
MIN_GAIN_OVER_MAJORITY = 0.01


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def assess(
    *,
    labels: list[Any],
    matrix: list[list[int]],
    train_rows: int,
    epochs: float,
    learning_rate: float,
    capped: bool,
    data_warnings: list[str] | None = None,
) -> dict[str, Any]:
    """``matrix[true][predicted]`` counts on the evaluation set, labels in the same order.
    ``data_warnings`` (what validation said of the training data: duplicates, texts with
    conflicting labels, imbalance, tiny classes) come first in the hint: no number of
    epochs fixes contradictory labels."""
    total = sum(sum(row) for row in matrix)
    if total == 0:
        return {"learned": True, "problems": [], "hint": None}
    actual = [sum(row) for row in matrix]
    predicted = [sum(row[j] for row in matrix) for j in range(len(labels))]
    correct = sum(matrix[i][i] for i in range(len(labels)))
    accuracy = correct / total
    majority = max(range(len(labels)), key=actual.__getitem__)
    majority_rate = actual[majority] / total
    dominant = max(range(len(labels)), key=predicted.__getitem__)
    dominant_share = predicted[dominant] / total
    classes_present = sum(1 for count in actual if count > 0)

    problems: list[str] = []
    if classes_present > 1 and dominant_share >= ONE_CLASS_SHARE:
        problems.append(
            f"The model answers {labels[dominant]!r} for {_percent(dominant_share)} of the "
            f"{total} evaluation texts: it (almost) ignores what the text says."
        )
    if accuracy < majority_rate + MIN_GAIN_OVER_MAJORITY:
        problems.append(
            f"Its accuracy ({_percent(accuracy)}) does not beat always answering the most "
            f"common label, {labels[majority]!r} ({_percent(majority_rate)})."
        )
    fixes = _fixes(train_rows=train_rows, epochs=epochs, learning_rate=learning_rate, capped=capped)
    hint = "Likely fixes: " + "; ".join(fixes) + "."
    if data_warnings:
        hint = (
            "Check the training data first: "
            + "; ".join(data_warnings)
            + ". Then the likely fixes: "
            + "; ".join(fixes)
            + "."
        )
    return {
        "learned": not problems,
        "problems": problems,
        "hint": hint if problems else None,
        "majority_label": labels[majority],
        "majority_rate": round(majority_rate, 6),
        "accuracy": round(accuracy, 6),
        "predicted_shares": {
            str(label): round(count / total, 6)
            for label, count in zip(labels, predicted, strict=True)
        },
    }


def _fixes(*, train_rows: int, epochs: float, learning_rate: float, capped: bool) -> list[str]:
    fixes = []
    if epochs < 5:
        fixes.append(
            f"train longer (training.epochs={max(3, round(epochs) * 2)}; this run: {epochs:g})"
        )
    if capped:
        fixes.append("remove the cap on training rows (training.max_train_samples)")
    if train_rows < 2000:
        fixes.append(f"train on more data ({train_rows:,} rows here; a few thousand help a lot)")
    fixes.append(
        f"try another learning rate (training.learning_rate={learning_rate / 2:g} or "
        f"{learning_rate * 2:g}; this run: {learning_rate:g})"
    )
    return fixes
