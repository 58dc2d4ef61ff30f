"""Tokenised examples for the Trainer, unpadded: the collator pads each batch to its longest."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class TokenizedExamples(torch.utils.data.Dataset):
    def __init__(
        self, texts: Sequence[str], label_ids: Sequence[int], tokenizer, *, max_length: int
    ) -> None:
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        self.items = [
            {**{k: encoded[k][i] for k in keys}, "labels": int(label_ids[i])}
            for i in range(len(texts))
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]

    @property
    def lengths(self) -> list[int]:
        return [len(item["input_ids"]) for item in self.items]

    @property
    def token_count(self) -> int:
        return sum(self.lengths)
