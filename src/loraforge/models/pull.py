"""``loraforge models pull``: fetch a base model once, safetensors only, for offline use.

A machine with network access downloads the model into its Hugging Face cache (the one
``HF_HOME`` names) or into a folder (``--to``); that cache or folder is then copied to the
air-gapped machine. Only what loading needs is fetched: the config, the safetensors
weights (every shard its index names) and the tokenizer files. Pickled weights
(``pytorch_model.bin``) are never downloaded: loraforge loads safetensors only, since a
pickle can run code; a model without safetensors weights is refused before any byte moves.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from loraforge.errors import ConfigError, Conflict, Forbidden, NotFound, Unavailable
from loraforge.models.catalog import (
    CATALOG,
    SAFETENSORS,
    SAFETENSORS_INDEX,
    bundled_model_dir,
    cached_snapshot,
    has_safetensors_weights,
)

HUB_TIMEOUT_S = 10.0
# Tokenizer files of the tokenizers transformers knows (WordPiece, BPE, SentencePiece);
# a repository holds a few of them.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
)
CARRY_HINT = (
    "Copy the folder to the offline machine and set model.base_model to it, or copy this "
    "machine's Hugging Face cache (HF_HOME) there."
)


@dataclass
class PullResult:
    name: str
    source: str  # the hub id, or the folder it was copied from
    folder: Path  # where the files are now
    files: list[str] = field(default_factory=list)
    size_bytes: int = 0
    already: bool = False  # nothing was fetched: it was available offline already
    bundled: bool = False

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "folder": str(self.folder),
            "files": self.files,
            "size_bytes": self.size_bytes,
            "already": self.already,
            "bundled": self.bundled,
        }


def files_to_fetch(names: list[str]) -> list[str]:
    """Of a repository's file names, those loading needs: ``config.json``, the weights
    (``model.safetensors``, or the index and the shards at the top level) and the
    tokenizer files. Folders (``onnx/``, ``1_Pooling/``) are other formats: left out."""
    top = {n for n in names if "/" not in n}
    if "config.json" not in top:
        raise ConfigError(
            "the model has no config.json at the top of its repository: it is not a "
            "transformers model loraforge can load",
            hint="Pick a model whose files include config.json and model.safetensors.",
        )
    weights = [SAFETENSORS] if SAFETENSORS in top else []
    if not weights:
        weights = sorted(n for n in top if n.endswith(".safetensors"))
        if SAFETENSORS_INDEX in top:
            weights.insert(0, SAFETENSORS_INDEX)
    if not any(n.endswith(".safetensors") for n in weights):
        pickled = sorted(n for n in top if n.endswith((".bin", ".pt", ".pth", ".ckpt")))
        found = f" (it has {', '.join(pickled)})" if pickled else ""
        raise ConfigError(
            f"the model has no safetensors weights{found}: loraforge loads safetensors only, "
            "because a pickled checkpoint can run code when it is loaded",
            hint="Pick a model that publishes model.safetensors, or convert it yourself "
            "(load it and save_pretrained(..., safe_serialization=True)) and use that folder.",
        )
    return ["config.json", *weights, *(n for n in TOKENIZER_FILES if n in top)]


def _size(folder: Path, files: list[str]) -> int:
    return sum((folder / f).stat().st_size for f in files if (folder / f).is_file())


def _check_target(to: Path, force: bool) -> None:
    if to.exists() and not to.is_dir():
        raise ConfigError(f"{to} is a file, not a folder", hint="Give --to a folder path.")
    if to.is_dir() and any(to.iterdir()) and not force:
        raise Conflict(
            f"{to} exists and is not empty",
            hint="Pick a new folder, or add --force to replace what is there.",
        )


def _place(staged: Path, to: Path) -> None:
    """Move the complete download into ``to``, replacing what is there only now that the
    new files are all here: a failed pull leaves the old folder as it was."""
    to.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if to.exists():
        old = to.with_name(f".{to.name}.old-{staged.name}")
        to.rename(old)
    staged.rename(to)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _staging(to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{to.name}.partial-", dir=to.parent))


def _copy_folder(name: str, source: Path, to: Path | None, force: bool, bundled: bool):
    """A model that is on this machine already (the bundled one, a local folder): nothing
    to pull, unless ``--to`` asks for a copy (e.g. onto a disk that travels)."""
    if to is None:
        files = files_to_fetch([p.name for p in source.iterdir()])  # refuses a pickle-only one
        return PullResult(
            name, str(source), source, files, _size(source, files), already=True, bundled=bundled
        )
    to = to.expanduser().resolve()
    if to == source.resolve():
        raise ConfigError(f"{to} is the model's own folder", hint="Give --to another folder.")
    _check_target(to, force)
    files = files_to_fetch([p.name for p in source.iterdir()])
    staged = _staging(to)
    try:
        for f in files:
            shutil.copy2(source / f, staged / f)
        _place(staged, to)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return PullResult(name, str(source), to, files, _size(to, files), bundled=bundled)


def _hub_errors(repo_id: str, error: Exception) -> Exception:
    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError

    if isinstance(error, GatedRepoError):
        return Forbidden(
            f"the Hugging Face model {repo_id!r} is gated: its owners must grant you access",
            hint="Ask for access on its hub page, then sign in with `hf auth login` and pull again.",
        )
    if isinstance(error, RepositoryNotFoundError):
        return NotFound(
            f"there is no model {repo_id!r} on the Hugging Face hub",
            hint="Check the id (it looks like `org/name`; a private one needs `hf auth login`), "
            "or use a catalog name (`loraforge models`).",
        )
    if isinstance(error, OfflineModeIsEnabled):
        return Unavailable(
            f"cannot pull {repo_id!r}: the hub is switched off here (HF_HUB_OFFLINE=1)",
            hint="Unset HF_HUB_OFFLINE, or pull on a machine with network access. " + CARRY_HINT,
        )
    return Unavailable(
        f"cannot pull {repo_id!r}: the Hugging Face hub cannot be reached ({type(error).__name__})",
        hint="Run `loraforge models pull` on a machine with network access (or set HF_ENDPOINT "
        "to a mirror). " + CARRY_HINT,
    )


def pull_model(
    name: str, to: Path | None = None, *, force: bool = False, endpoint: str | None = None
) -> PullResult:
    """Make ``name`` (a catalog name, a Hugging Face id, or a local folder) loadable offline:
    into the Hugging Face cache, or into the folder ``to``. Already there and no ``force``:
    nothing is fetched. Raises NotFound (no such model), Forbidden (gated), Unavailable
    (hub unreachable or switched off), ConfigError (no safetensors weights, bad id),
    Conflict (``to`` holds other files)."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    entry = CATALOG.get(name)
    if entry is not None and entry.bundled:
        return _copy_folder(name, bundled_model_dir(), to, force, bundled=True)
    folder = Path(name).expanduser()
    if entry is None and folder.is_dir():
        return _copy_folder(name, folder.resolve(), to, force, bundled=False)
    repo_id = entry.source if entry is not None else name
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ConfigError(
            f"{name!r} is neither a catalog name, an existing folder nor a Hugging Face id",
            hint="A Hugging Face id looks like `org/name`; catalog names: "
            + ", ".join(CATALOG)
            + ".",
        ) from None

    if to is not None:
        to = to.expanduser().resolve()
        _check_target(to, force)
    elif not force:
        cached = cached_snapshot(repo_id)
        if cached is not None:
            files = files_to_fetch([p.name for p in cached.iterdir()])
            return PullResult(name, repo_id, cached, files, _size(cached, files), already=True)

    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except Exception as error:  # the client's connect/timeout classes vary with its version
        raise _hub_errors(repo_id, error) from None
    files = files_to_fetch([s.rfilename for s in info.siblings or []])

    staged = _staging(to) if to is not None else None
    try:
        path = snapshot_download(
            repo_id,
            allow_patterns=files,
            local_dir=staged,
            endpoint=endpoint,
            force_download=force,
        )
        got = Path(path)
        if not has_safetensors_weights(got):
            raise Unavailable(
                f"the download of {repo_id!r} is incomplete (config or weights missing)",
                hint="Pull again; the files already fetched are kept in the cache.",
            )
        if staged is not None:
            shutil.rmtree(staged / ".cache", ignore_errors=True)  # the client's bookkeeping
            _place(staged, to)
            got = to
    except (Unavailable, ConfigError):
        raise
    except Exception as error:
        if isinstance(error, OSError) and not isinstance(error, HfHubHTTPError):
            raise  # the disk (full, not writable), not the hub
        raise _hub_errors(repo_id, error) from None
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    return PullResult(name, repo_id, got, files, _size(got, files))


def describe(result: PullResult) -> str:
    size = f"{result.size_bytes / 1e6:,.1f} MB"
    if result.bundled and result.already:
        return f"{result.name} is bundled with loraforge: it works offline, nothing to pull."
    if result.already:
        return f"{result.name} is available offline already: {result.folder} ({size})."
    return f"pulled {result.name} ({len(result.files)} files, {size}) into {result.folder}"
