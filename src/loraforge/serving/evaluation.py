"""A served model's accuracy on its own evaluation data, measured where it is served.

int8 trades a little accuracy for speed; how much is a fact of each model, so the
server measures it when it loads one: the experiment's eval rows are rebuilt from its
resolved config (the same file, or the same seeded split of the training file), checked
against the recorded eval data version, and run through the engine before and after
quantization.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraforge.serving.engine import Engine, length_batches

log = logging.getLogger("loraforge.serving")

MAX_ROWS = 2000  # enough for a figure to ±1 point; bounds the load time
BATCH_TOKENS = 8192


@dataclass(frozen=True)
class EvalRows:
    texts: list[str]
    labels: list[Any]
    version: str


def eval_rows(model_dir: Path) -> EvalRows | None:
    """The rows the experiment was evaluated on, or None (with a log line) when they
    cannot be rebuilt exactly: a file moved or changed since training."""
    from loraforge.config import load_config
    from loraforge.training.inputs import prepare_inputs

    results = model_dir.parent.parent  # results/<id>/artifacts/final_model
    try:
        recorded = json.loads((results / "metrics.json").read_text(encoding="utf-8"))
        wanted = recorded["datasets"]["eval"]["version"]
        inputs = prepare_inputs(load_config(results / "config.yaml"))
    except Exception as error:  # any reason at all: the figure is then not measured
        log.info("no eval data for %s: %s", model_dir, error)
        return None
    if inputs.eval_version != wanted:
        log.info("the eval data of %s changed since training: not measured", model_dir)
        return None
    frame = inputs.eval.head(MAX_ROWS)
    return EvalRows(list(frame["text"]), list(frame["label"]), wanted)


def accuracy(engine: Engine, adapter: str, rows: EvalRows) -> float:
    loaded = engine.adapters[adapter]
    ids = engine.tokenize(rows.texts, loaded.max_length)
    right = 0
    for batch in length_batches(ids, BATCH_TOKENS):
        outputs = engine.forward([(adapter, ids[i]) for i in batch])
        for index, row in zip(batch, outputs, strict=True):
            label, _ = loaded.best(row)
            right += str(label) == str(rows.labels[index])
    return right / len(ids) if ids else 0.0
