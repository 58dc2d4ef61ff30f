"""How much of a data set a base model's tokenizer can read.

A tokenizer without the data's script turns it into ``[UNK]`` (the bundled English MiniLM
read 64 % of a Chinese review set's tokens as unknown, and its model learned the majority
class) or drops it silently. Measured on a sample, per character of text (whitespace not
counted), so that tokenizers that split differently compare:

- ``unknown``: characters inside a token the tokenizer calls unknown;
- ``dropped``: characters no token covers at all (a normalizer that removes what it
  cannot map, e.g. some emoji or control characters).

``unread_share`` is both together: the part of the text the model never sees.

The tokenizer is read with the ``tokenizers`` library from the model's ``tokenizer.json``
where there is one (milliseconds, no torch: the API checks uploads with it), else with
transformers' fast tokenizer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Above this share of unread text, a run warns (with the figure and the catalog models that
# fit the data's language): emoji and rare symbols in English tweets stay well under it.
WARN_SHARE = 0.02
# Above this, training refuses unless model.allow_low_coverage is true: a fifth of the
# text unread is no longer a model of the data (the Chinese set on MiniLM: 64 % of tokens).
REFUSE_SHARE = 0.15
SAMPLE = 500


@dataclass(frozen=True)
class Coverage:
    sampled: int  # texts
    characters: int  # non-whitespace characters in them
    unknown: int
    dropped: int
    unknown_tokens: int
    tokens: int

    @property
    def unread_share(self) -> float:
        return (self.unknown + self.dropped) / self.characters if self.characters else 0.0

    @property
    def unknown_token_share(self) -> float:
        return self.unknown_tokens / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "characters": self.characters,
            "unknown_characters": self.unknown,
            "dropped_characters": self.dropped,
            "unread_share": round(self.unread_share, 4),
            "unknown_token_share": round(self.unknown_token_share, 4),
        }

    def words(self) -> str:
        return (
            f"{self.unread_share:.1%} of the text unread "
            f"({self.unknown_token_share:.1%} of tokens unknown)"
        )


class _Reader:
    """One interface over a ``tokenizers.Tokenizer`` and a transformers fast tokenizer:
    (token ids, character offsets) of a text, without special tokens."""

    def __init__(self, source: str | Path) -> None:
        folder = Path(source)
        self._fast = None
        self._transformers = None
        if (folder / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            self._fast = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self._fast.no_truncation()
            self._fast.no_padding()
            unk = self._unk_from_config(folder)
            self.unk_id = self._fast.token_to_id(unk) if unk else None
        else:
            from transformers import AutoTokenizer

            self._transformers = AutoTokenizer.from_pretrained(str(source), use_fast=True)
            self.unk_id = self._transformers.unk_token_id

    @staticmethod
    def _unk_from_config(folder: Path) -> str | None:
        import json

        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = folder / name
            if not path.is_file():
                continue
            value = json.loads(path.read_text(encoding="utf-8")).get("unk_token")
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                return value
        return "[UNK]"

    def read(self, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        if self._fast is not None:
            encoded = self._fast.encode_batch(texts, add_special_tokens=False)
            return [(e.ids, e.offsets) for e in encoded]
        out = self._transformers(texts, add_special_tokens=False, return_offsets_mapping=True)
        return list(zip(out["input_ids"], out["offset_mapping"], strict=True))


def tokenizer_coverage(
    tokenizer_source: str | Path, texts: Sequence[str], *, sample: int = SAMPLE, seed: int = 0
) -> Coverage:
    """Coverage of ``texts`` (a deterministic sample of them) by the tokenizer in
    ``tokenizer_source`` (a model folder)."""
    chosen = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(chosen) > sample:
        chosen = random.Random(seed).sample(chosen, sample)
    reader = _Reader(tokenizer_source)
    characters = unknown = dropped = unknown_tokens = tokens = 0
    for text, (ids, offsets) in zip(chosen, reader.read(chosen), strict=True):
        seen = [False] * len(text)
        unread = [False] * len(text)
        for token_id, (start, end) in zip(ids, offsets, strict=True):
            tokens += 1
            is_unknown = reader.unk_id is not None and token_id == reader.unk_id
            unknown_tokens += is_unknown
            for i in range(start, min(end, len(text))):
                seen[i] = True
                if is_unknown:
                    unread[i] = True
        for i, char in enumerate(text):
            if char.isspace():
                continue
            characters += 1
            if unread[i]:
                unknown += 1
            elif not seen[i]:
                dropped += 1
    return Coverage(
        sampled=len(chosen),
        characters=characters,
        unknown=unknown,
        dropped=dropped,
        unknown_tokens=unknown_tokens,
        tokens=tokens,
    )
