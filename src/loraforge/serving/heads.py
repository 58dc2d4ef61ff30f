"""Classification heads routed per row: each adapter has its own head, of its own size.

PEFT routes LoRA layers by ``adapter_names`` in one mixed batch, but its modules-to-save
wrapper stacks the per-adapter outputs (so every head must have the same width) and only
takes plain ``Linear`` heads (not RoBERTa's dense → tanh → out_proj). ``RoutedHead``
replaces the head module in the base model: it runs each adapter's head on that adapter's
rows and pads narrower outputs with -inf, so a softmax over a row's own labels is exact.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


def head_module_names(model: nn.Module, modules_to_save: list[str]) -> list[str]:
    """The modules PEFT saved in full, by its own rule (a module name ending in an entry)."""
    found = []
    for name, _ in model.named_modules():
        if not name or any(name.startswith(f"{outer}.") for outer in found):
            continue
        if any(name.endswith(target) for target in modules_to_save):
            found.append(name)
    return found


def _submodule(model: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    parent_name, _, child = dotted.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def build_head(template: nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> nn.Module:
    """A copy of ``template`` carrying the adapter's weights (whatever their output size)."""
    head = copy.deepcopy(template)
    expected = {name for name, _ in head.named_parameters()}
    given = {key.removeprefix(f"{prefix}.") for key in tensors if key.startswith(f"{prefix}.")}
    if missing := expected - given:
        raise ValueError(f"the adapter has no weights for {prefix}: {', '.join(sorted(missing))}")
    for name in expected:
        owner, attribute = _submodule(head, name)
        tensor = tensors[f"{prefix}.{name}"]
        setattr(owner, attribute, nn.Parameter(tensor.detach().clone(), requires_grad=False))
        if isinstance(owner, nn.Linear) and attribute == "weight":
            owner.out_features, owner.in_features = tensor.shape  # only shown in repr
    return head.eval()


class RoutedHead(nn.Module):
    """Stands where the base model's head was; ``rows`` says which adapter each row is."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.heads = nn.ModuleDict()
        # Set by the engine right before each forward pass (one thread drives the model).
        self.rows: list[str] = []

    def forward(self, hidden: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        rows = self.rows
        if len(rows) != hidden.shape[0]:
            raise RuntimeError(f"{len(rows)} adapter names for a batch of {hidden.shape[0]}")
        first = rows[0]
        if all(name == first for name in rows):
            return self.heads[first](hidden, *args, **kwargs)
        groups: dict[str, list[int]] = {}
        for index, name in enumerate(rows):
            groups.setdefault(name, []).append(index)
        outputs = {
            name: (index, self.heads[name](hidden[index], *args, **kwargs))
            for name, index in groups.items()
        }
        width = max(out.shape[-1] for _, out in outputs.values())
        sample = next(iter(outputs.values()))[1]
        merged = sample.new_full((hidden.shape[0], *sample.shape[1:-1], width), float("-inf"))
        for index, out in outputs.values():
            merged[index, ..., : out.shape[-1]] = out
        return merged


def install(model: nn.Module, names: list[str]) -> dict[str, tuple[nn.Module, RoutedHead]]:
    """Replace each head module by a RoutedHead; returns name → (template, routed)."""
    installed = {}
    for name in names:
        parent, child = _submodule(model, name)
        template = getattr(parent, child)
        routed = RoutedHead(name)
        setattr(parent, child, routed)
        installed[name] = (template, routed)
    return installed
