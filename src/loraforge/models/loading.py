"""Loading a base model as a sequence classifier, with its tokenizer.

Weights are loaded from safetensors only: a pickle in a model folder can run code.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from loraforge.errors import ConfigError
from loraforge.models.catalog import ResolvedModel


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No progress bars or load reports on the console: for loading a model we trained."""
    from transformers.utils import logging as hf_logging

    progress_bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    # The "newly initialised classifier" report is expected: the trained head comes with the adapter.
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            # transformers 5 deprecation notices raised from inside PEFT: nothing a user can act on.
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if progress_bars:
            hf_logging.enable_progress_bar()


HUB_PROBE_SECONDS = 3.0


def _hub_reachable() -> bool:
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.is_offline_mode():
        return False
    endpoint = urlsplit(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=HUB_PROBE_SECONDS):
            return True
    except OSError:
        return False


def _cached(resolved: ResolvedModel) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(resolved.path_or_id, "config.json"), str)


def ensure_loadable(resolved: ResolvedModel) -> None:
    """Fail in seconds, not after a minute of retries, when a hub model cannot be fetched."""
    if resolved.is_local or _cached(resolved) or _hub_reachable():
        return
    from loraforge.models.availability import fetch_hint

    raise ConfigError(
        f"base model {resolved.name!r} is not in the local Hugging Face cache and the hub "
        "cannot be reached",
        hint=f"To use it, {fetch_hint(resolved.name)}; or use the bundled minilm-l6.",
        field="model.base_model",
    )


def load_classifier(
    resolved: ResolvedModel, labels: list[Any], *, tokenizer_source: str | None = None
):
    """(tokenizer, model) with a classification head sized for ``labels``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ensure_loadable(resolved)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source or resolved.path_or_id)
        model = AutoModelForSequenceClassification.from_pretrained(
            resolved.path_or_id,
            num_labels=len(labels),
            id2label={i: str(label) for i, label in enumerate(labels)},
            label2id={str(label): i for i, label in enumerate(labels)},
            use_safetensors=True,
        )
    except OSError as error:
        raise ConfigError(
            f"could not load base model {resolved.name!r}: {str(error).splitlines()[0]}",
            hint="Check the name; hub models need network access the first time. "
            "minilm-l6 is bundled and works offline.",
        ) from None
    if tokenizer.pad_token is None:
        # Decoder-style models ship without a pad token; padding with EOS is the usual fix.
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model
