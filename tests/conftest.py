"""Shared fixtures: a tiny random BERT built on the fly, small data sets, isolated settings."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pandas as pd
import pytest

from loraforge.settings import Settings, get_settings

POSITIVE = ["good", "great", "happy", "love", "excellent", "wonderful", "nice", "fantastic"]
NEGATIVE = ["bad", "awful", "sad", "hate", "terrible", "horrible", "poor", "boring"]
FILLER = ["the", "flight", "was", "movie", "food", "service", "today", "really", "very", "and"]


def make_texts(n: int, *, seed: int = 0) -> pd.DataFrame:
    """Short texts whose label follows from their words: learnable by a tiny model."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = rng.sample(FILLER, 4) + rng.sample(POSITIVE if label == "positive" else NEGATIVE, 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words) + f" #{i}", "label": label})
    return pd.DataFrame(rows)


def build_tiny_bert(folder: Path, corpus: list[str], *, vocab_size: int = 300) -> Path:
    """A 2-layer BERT with random weights and a WordPiece tokenizer trained on ``corpus``
    (so it reads that corpus's scripts, and nothing else, as the real models do)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        corpus, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(folder)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.token_to_id("[PAD]"),
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT with random weights and a WordPiece tokenizer trained just now, on
    English words only."""
    corpus = [*make_texts(400)["text"], " ".join(POSITIVE + NEGATIVE + FILLER)]
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), corpus)


@pytest.fixture(scope="session")
def data_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    train, evaluation = make_texts(96, seed=1), make_texts(32, seed=2)
    paths = {"train": folder / "train.csv", "eval": folder / "eval.csv"}
    train.to_csv(paths["train"], index=False)
    evaluation.to_csv(paths["eval"], index=False)
    return paths


def make_settings(root: Path) -> Settings:
    return Settings(data_dir=root / "state", results_dir=root / "results")


@pytest.fixture(scope="session")
def shared_settings(tmp_path_factory) -> Settings:
    """One data directory for the session: MLflow's store is created once, not per test."""
    return make_settings(tmp_path_factory.mktemp("workspace"))


@pytest.fixture
def env_settings(shared_settings, monkeypatch) -> Settings:
    """The shared settings, also seen by the CLI through LORAFORGE_* variables."""
    monkeypatch.setenv("LORAFORGE_DATA_DIR", str(shared_settings.data_dir))
    monkeypatch.setenv("LORAFORGE_RESULTS_DIR", str(shared_settings.results_dir))
    get_settings.cache_clear()
    yield shared_settings
    get_settings.cache_clear()


def tiny_config_tree(model_dir: Path, files: dict[str, Path], **training) -> dict:
    return {
        "experiment_name": "tiny",
        "model": {"base_model": str(model_dir), "device": "cpu"},
        "data": {
            "train_file": str(files["train"]),
            "eval_file": str(files["eval"]),
            "max_length": 32,
        },
        "lora": {"r": 4, "alpha": 8},
        "training": {
            "epochs": 3,
            "batch_size": 16,
            "learning_rate": 5e-3,
            "logging_steps": 2,
            "precision": "fp32",
            **training,
        },
    }


@pytest.fixture(scope="session")
def tiny_run(tiny_model_dir, data_files, shared_settings):
    """One finished tiny training run shared by the tests that inspect its outputs."""
    from loraforge.config import config_from_tree
    from loraforge.training.runner import run_training

    config = config_from_tree(tiny_config_tree(tiny_model_dir, data_files), source="test")
    return run_training(config, settings=shared_settings)


def add_dataset(session, *, owner_id: int, dataset_id: str = "d1") -> None:
    """A data set row for job tests that never read its file."""
    from loraforge.db.models import Dataset
    from loraforge.jobs.state import now

    session.add(
        Dataset(
            id=dataset_id,
            owner_id=owner_id,
            name="d.csv",
            stored_name=f"{dataset_id}.csv",
            format="csv",
            text_column="text",
            label_column="label",
            version="v" * 64,
            rows=10,
            size_bytes=10,
            label_counts={},
            warnings=[],
            created_at=now(),
        )
    )


UI_APP = str(Path(__file__).parents[1] / "src" / "loraforge" / "ui" / "app.py")


@pytest.fixture
def app(live, monkeypatch):
    """The web UI in Streamlit's AppTest, pointed at the module's live API (its ``live``
    fixture) through the setting `loraforge ui` uses."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LORAFORGE_API_URL", live.url)
    get_settings.cache_clear()
    # The app sets up JSON logging for its process; this process is pytest's.
    handlers = logging.getLogger().handlers[:]
    yield lambda: AppTest.from_file(UI_APP, default_timeout=60)
    logging.getLogger().handlers[:] = handlers
    get_settings.cache_clear()
