"""Token counts with a base model's tokenizer, for length checks and statistics."""

from __future__ import annotations

from collections.abc import Sequence

from loraforge.data.validation import TokenCounter
from loraforge.errors import LoraforgeError
from loraforge.models.catalog import resolve_base_model


def token_counter(base_model: str) -> tuple[TokenCounter | None, str | None]:
    """(counter, None), or (None, why) when the tokenizer cannot be loaded (e.g. offline)."""
    try:
        from transformers import AutoTokenizer

        from loraforge.models.loading import ensure_loadable

        resolved = resolve_base_model(base_model)
        ensure_loadable(resolved)
        tokenizer = AutoTokenizer.from_pretrained(resolved.path_or_id)
    except (OSError, ValueError, LoraforgeError) as error:
        return (
            None,
            f"token lengths not checked: no tokenizer for {base_model!r} ({str(error).splitlines()[0]})",
        )

    def count(texts: Sequence[str]) -> list[int]:
        encoded = tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    return count, None
