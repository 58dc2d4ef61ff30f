"""The fake hub (tests/fakehub.py) through the real huggingface_hub client: no internet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
from fakehub import FakeHub, fake_hub_factory  # noqa: F401
from huggingface_hub import HfApi, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

REPO = "org/tiny"
PATTERNS = ["config.json", "*.safetensors", "tokenizer*"]
WANTED = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "tiny"
    (folder / "extra").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(os.urandom(5000))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "README.md").write_text("# tiny\n")
    (folder / "extra" / "notes.txt").write_text("not wanted\n")
    return folder


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(root).parts
    }


def _wanted(model_dir: Path) -> dict[str, bytes]:
    return {name: data for name, data in _files(model_dir).items() if name in WANTED}


def test_snapshot_into_the_cache_then_from_it(model_dir: Path, tmp_path: Path):
    with FakeHub({REPO: model_dir}) as hub:
        kwargs = {"endpoint": hub.url, "cache_dir": tmp_path / "cache", "allow_patterns": PATTERNS}
        path = Path(snapshot_download(REPO, **kwargs))
        assert path.is_relative_to(tmp_path / "cache")
        assert _files(path) == _wanted(model_dir)
        assert any(r.startswith("GET /org/tiny/resolve/") for r in hub.requests)

        hub.requests.clear()
        assert Path(snapshot_download(REPO, **kwargs)) == path
        assert not [r for r in hub.requests if "/resolve/" in r or "/tree/" in r], hub.requests


def test_snapshot_into_a_local_dir(model_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    with FakeHub({REPO: model_dir}) as hub:
        kwargs = {"endpoint": hub.url, "local_dir": out, "allow_patterns": PATTERNS}
        assert Path(snapshot_download(REPO, cache_dir=tmp_path / "cache", **kwargs)) == out
        assert _files(out) == _wanted(model_dir)
        hub.requests.clear()
        snapshot_download(REPO, cache_dir=tmp_path / "cache", **kwargs)
        assert not [r for r in hub.requests if r.startswith("GET /org/tiny/resolve/")]


def test_model_info_tree_and_single_files(model_dir: Path, tmp_path: Path):
    with FakeHub({REPO: model_dir}) as hub:
        api = HfApi(endpoint=hub.url)
        info = api.model_info(REPO)
        assert {s.rfilename for s in info.siblings} == set(_files(model_dir))
        assert len(info.sha) == 40 and api.repo_info(REPO, revision="main").sha == info.sha
        sizes = {s.rfilename: s.size for s in api.model_info(REPO, files_metadata=True).siblings}
        assert sizes["model.safetensors"] == 5000

        tree = {f.path: f for f in api.list_repo_tree(REPO, recursive=True)}
        assert set(_files(model_dir)) < set(tree) and "extra" in tree
        assert tree["model.safetensors"].lfs.size == 5000
        top = {f.path for f in api.list_repo_tree(REPO)}
        assert "extra" in top and "extra/notes.txt" not in top

        got = hf_hub_download(REPO, "extra/notes.txt", endpoint=hub.url, cache_dir=tmp_path / "c")
        assert Path(got).read_bytes() == b"not wanted\n"
        with pytest.raises(RemoteEntryNotFoundError):
            hf_hub_download(REPO, "missing.bin", endpoint=hub.url, cache_dir=tmp_path / "c")


def test_unknown_repo(model_dir: Path, tmp_path: Path, fake_hub_factory):  # noqa: F811
    hub = fake_hub_factory({REPO: model_dir})
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("org/nope", endpoint=hub.url, cache_dir=tmp_path / "cache")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("org/nope")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/nope", "config.json", endpoint=hub.url, cache_dir=tmp_path / "c")


def test_default_endpoint_by_monkeypatching(model_dir: Path, tmp_path: Path, monkeypatch):
    with FakeHub({REPO: model_dir}) as hub:
        constants = huggingface_hub.constants
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert hf_hub_url(REPO, "config.json").startswith(hub.url)
        path = Path(snapshot_download(REPO, allow_patterns=PATTERNS))
        assert path.is_relative_to(tmp_path / "cache")
        assert _files(path) == _wanted(model_dir)
        assert HfApi().model_info(REPO).id == REPO


def test_subprocess_by_env(model_dir: Path, tmp_path: Path):
    script = (
        "import sys; from huggingface_hub import snapshot_download;"
        "print(snapshot_download(sys.argv[1], allow_patterns=sys.argv[2:]))"
    )
    with FakeHub({REPO: model_dir}) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
        env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home")}
        done = subprocess.run(
            [sys.executable, "-c", script, REPO, *PATTERNS],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_relative_to(tmp_path / "hf-home" / "hub")
    assert _files(path) == _wanted(model_dir)
