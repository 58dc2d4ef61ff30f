"""`loraforge models pull` and the offline story: a model fetched once (safetensors only)
loads later on a machine without the network; a model that is not here, on such a machine,
is refused at once with how to fix it, never replaced by an English one.

A fake Hugging Face hub (tests/fakehub.py) serves local folders to the real
huggingface_hub client: no test here uses the internet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_tiny_bert
from fakehub import FakeHub
from test_language_check import chinese_reviews

from loraforge.errors import ConfigError, Conflict, NotFound, Unavailable
from loraforge.models.catalog import available_offline, catalog_listing
from loraforge.models.pull import files_to_fetch, pull_model


@pytest.fixture(scope="module")
def chinese_model_dir(tmp_path_factory) -> Path:
    """Stands for bert-base-chinese on the hub: a tiny BERT whose tokenizer reads Chinese,
    next to files a pull must leave alone (pickled weights, another format's folder)."""
    folder = build_tiny_bert(
        tmp_path_factory.mktemp("hub-bert-base-chinese"),
        chinese_reviews(200, seed=3)["text"].tolist(),
        vocab_size=200,
    )
    (folder / "pytorch_model.bin").write_bytes(b"a pickle: never fetched")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"another format")
    (folder / "README.md").write_text("---\nlanguage: zh\n---\n")
    return folder


@pytest.fixture(scope="module")
def pickled_only_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hub-pickled")
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    return folder


@pytest.fixture
def hub(chinese_model_dir, pickled_only_dir):
    with FakeHub(
        {"bert-base-chinese": chinese_model_dir, "org/pickled": pickled_only_dir}
    ) as server:
        yield server


@pytest.fixture
def empty_cache(monkeypatch, tmp_path) -> Path:
    """This process's Hugging Face cache: empty, under tmp_path (the real one untouched)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-home" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def fetched(hub: FakeHub) -> set[str]:
    """The files the client downloaded (GET …/resolve/<rev>/<file>)."""
    return {
        r.split("/resolve/", 1)[1].split("/", 1)[1]
        for r in hub.requests
        if r.startswith("GET ") and "/resolve/" in r
    }


def loraforge(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf-home"),
        "LORAFORGE_DATA_DIR": str(tmp_path / "state"),
        "COLUMNS": "200",
        **env,
    }
    if "HF_HUB_OFFLINE" not in env:
        full.pop("HF_HUB_OFFLINE", None)
    return subprocess.run(
        [sys.executable, "-m", "loraforge", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def offline_flags(tmp_path: Path) -> dict[str, bool]:
    listing = loraforge(tmp_path, "models", "--json", HF_HUB_OFFLINE="1")
    assert listing.returncode == 0, listing.stderr
    return {m["name"]: m["available_offline"] for m in json.loads(listing.stdout)["data"]}


def test_pull_once_then_train_checks_pass_offline(tmp_path, hub):
    """The air-gapped story end to end, through the CLI: not available offline → pulled
    (safetensors and tokenizer, nothing pickled) → listed as offline, and `auto` on
    Chinese data finds it, reads the data and checks its coverage with the network off."""
    flags = offline_flags(tmp_path)
    assert flags["minilm-l6"] is True and flags["bert-base-chinese"] is False

    pulled = loraforge(tmp_path, "models", "pull", "bert-base-chinese", HF_ENDPOINT=hub.url)
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    assert "pulled bert-base-chinese" in pulled.stdout
    got = fetched(hub)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= got
    assert not {"pytorch_model.bin", "onnx/model.onnx", "README.md"} & got

    assert offline_flags(tmp_path)["bert-base-chinese"] is True
    data = tmp_path / "zh.csv"
    chinese_reviews(80).to_csv(data, index=False)
    checked = loraforge(tmp_path, "data", "validate", str(data), HF_HUB_OFFLINE="1")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "language Chinese" in checked.stdout
    assert "bert-base-chinese reads 100.0% of the text" in checked.stdout

    # And the loader (what training and serving use) loads it from there, offline.
    load = (
        "from loraforge.models.catalog import resolve_base_model\n"
        "from loraforge.models.loading import load_classifier\n"
        "tok, model = load_classifier(resolve_base_model('bert-base-chinese'), ['neg', 'pos'])\n"
        "print(type(model).__name__, len(tok('很好')['input_ids']))\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1"}
    loaded = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True, env=env, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split()[0] == "BertForSequenceClassification"

    # Again: nothing is fetched.
    before = len(hub.requests)
    again = loraforge(tmp_path, "models", "pull", "bert-base-chinese", HF_ENDPOINT=hub.url)
    assert again.returncode == 0 and "available offline already" in again.stdout
    assert len(hub.requests) == before


def test_pull_to_a_folder_gives_a_loadable_model_and_never_half_replaces_one(
    tmp_path, hub, empty_cache
):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    target = tmp_path / "models" / "zh"
    result = pull_model("bert-base-chinese", target, endpoint=hub.url)
    assert result.folder == target.resolve() and not result.already
    names = {p.name for p in target.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not {"pytorch_model.bin", "onnx", ".cache"} & names
    assert not list(target.parent.glob(".zh.*"))  # no staging folder left behind
    assert available_offline(str(target))
    AutoTokenizer.from_pretrained(target)
    AutoModelForSequenceClassification.from_pretrained(target, num_labels=2, use_safetensors=True)

    with pytest.raises(Conflict) as taken:
        pull_model("bert-base-chinese", target, endpoint=hub.url)
    assert "--force" in taken.value.hint
    (target / "mine.txt").write_text("kept until the new files are all here")
    pull_model("bert-base-chinese", target, force=True, endpoint=hub.url)
    assert not (target / "mine.txt").exists() and (target / "model.safetensors").is_file()


def test_a_model_without_safetensors_is_refused_before_any_byte_moves(tmp_path, hub, empty_cache):
    target = tmp_path / "pickled"
    with pytest.raises(ConfigError) as refused:
        pull_model("org/pickled", target, endpoint=hub.url)
    assert "no safetensors weights (it has pytorch_model.bin)" in refused.value.message
    assert "safe_serialization=True" in refused.value.hint
    assert fetched(hub) == set() and not target.exists()
    assert not list(tmp_path.glob(".pickled.*"))


def test_unknown_model_and_unreachable_hub_say_what_to_do(tmp_path, hub, empty_cache):
    with pytest.raises(NotFound, match="no model 'org/nope' on the Hugging Face hub"):
        pull_model("org/nope", endpoint=hub.url)
    with socket.socket() as probe:  # a port nothing listens on: refused at once
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(Unavailable) as down:
        pull_model("bert-base-chinese", endpoint=closed)
    assert "cannot be reached" in down.value.message and "HF_HOME" in down.value.hint

    offline = loraforge(tmp_path, "models", "pull", "bert-base-chinese", HF_HUB_OFFLINE="1")
    assert offline.returncode == 9
    assert "switched off here (HF_HUB_OFFLINE=1)" in offline.stderr + offline.stdout
    assert "Traceback" not in offline.stderr


def test_the_bundled_model_and_a_local_folder(tmp_path, tiny_model_dir, empty_cache):
    bundled = pull_model("minilm-l6")
    assert bundled.already and bundled.bundled and "model.safetensors" in bundled.files
    copied = pull_model(str(tiny_model_dir), tmp_path / "copy")
    assert (tmp_path / "copy" / "model.safetensors").is_file() and not copied.already
    assert available_offline(str(tmp_path / "copy"))


def test_files_to_fetch_takes_the_shards_and_leaves_the_rest():
    names = [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "pytorch_model.bin",
        "onnx/model.safetensors",
        "tokenizer.json",
        "sentencepiece.bpe.model",
        "1_Pooling/config.json",
    ]
    assert files_to_fetch(names) == [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "tokenizer.json",
        "sentencepiece.bpe.model",
    ]
    with pytest.raises(ConfigError, match=r"no config\.json"):
        files_to_fetch(["model.safetensors"])


def test_auto_on_chinese_data_offline_without_the_model_is_refused_with_the_way_out(
    tmp_path, empty_cache, monkeypatch
):
    """Never a silent fallback to the English model: the refusal names the model `auto`
    chose, the data's language, and `models pull`."""
    from loraforge.config import config_from_tree
    from loraforge.training.preflight import check_run

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "zh.csv"
    chinese_reviews(60).to_csv(data, index=False)
    config = config_from_tree(
        {"experiment_name": "zh", "data": {"train_file": str(data)}}, source="test"
    )
    assert config.model.base_model == "auto"
    with pytest.raises(ConfigError) as refused:
        check_run(config)
    error = refused.value
    assert error.message.startswith("model.base_model: auto chose bert-base-chinese")
    assert "Chinese" in error.message and "HF_HUB_OFFLINE=1" in error.message
    assert "loraforge models pull bert-base-chinese" in error.hint
    assert error.field == "model.base_model"


def test_the_catalog_lists_languages_and_what_is_offline(empty_cache):
    listing = {row["name"]: row for row in catalog_listing()}
    assert listing["minilm-l6"]["available_offline"] and listing["minilm-l6"]["languages"] == ["en"]
    assert not listing["bert-base-chinese"]["available_offline"]
    assert listing["bert-base-chinese"]["languages"] == ["zh"]
    multi = listing["multilingual-minilm-l12"]
    assert multi["language"] == "multi" and {"de", "zh", "ar"} <= set(multi["languages"])
