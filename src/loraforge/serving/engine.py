"""One base model in memory, many LoRA adapters on it, one mixed batch at a time.

Each served model version is a named PEFT adapter (never merged: ten models on one base
cost ten adapters, a few MB each, not ten base models) with its own classification head
(``heads.RoutedHead``). A batch may mix adapters: its LoRA layers are routed per row with
gathered matrices (``lora_rows``; PEFT's ``adapter_names`` path where that cannot run, e.g.
DoRA), and we route the heads.

Threads: ``forward`` runs on the batcher's inference thread; ``add`` and ``remove`` may
run on another (a hot swap loads in the background). Both take ``_lock``; what is slow in
a load (reading the file, building the head) happens before it, so a swap holds the model
for the few milliseconds PEFT needs to insert the new matrices.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from loraforge.errors import ConfigError
from loraforge.models.catalog import resolve_base_model
from loraforge.serving import heads, lora_rows
from loraforge.serving.adapters import SavedAdapter

log = logging.getLogger("loraforge.serving")

Quantize = Literal["none", "int8"]
QUANTIZE_CHOICES: tuple[str, ...] = ("none", "int8")
PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16")
# A batch of one adapter that is not PEFT's active one: from this many rows on, making it
# active (set_adapter: ~9.5 ms with ten adapters, it visits every module) beats PEFT's
# mixed-batch path (~4.6 ms more than the plain path for 1 row, ~28 ms for 32; MiniLM).
# Only where the gathered path (lora_rows) cannot run: that one costs no more than plain.
SWITCH_AT = 4
# Batches are padded to a multiple of 8 tokens: every distinct (rows x width) shape costs
# oneDNN a cached primitive, and in bf16 a server's memory grew by ~400 MB over a few
# hundred one-text requests of every length (ten adapters: 1.55x one model's peak RSS);
# padded to 8 it grew by 150 MB, at the same speed (measured: 300 forwards, MiniLM).
PAD_MULTIPLE = 8


@dataclass(frozen=True)
class Prediction:
    """One text's answer, the seed's shape, wherever it is served."""

    label: Any
    probability: float
    latency_ms: float
    base_model: str
    language: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "base_model": self.base_model,
            "language": self.language,
        }


def length_batches(ids: list[list[int]], max_batch_tokens: int) -> Iterator[list[int]]:
    """Indices into ``ids``, shortest first, in batches of at most ``max_batch_tokens``
    padded tokens (a text longer than that is a batch of its own)."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    start = 0
    while start < len(order):
        end = start + 1
        # Sorted ascending: the last text of a batch is its longest.
        while end < len(order) and len(ids[order[end]]) * (end - start + 1) <= max_batch_tokens:
            end += 1
        yield order[start:end]
        start = end


@dataclass(frozen=True)
class Loaded:
    """An adapter the engine holds, as the server describes it."""

    name: str  # the engine's own adapter name (PEFT module key)
    labels: list[Any]
    max_length: int
    base_model: str
    language: str
    parameters: int  # adapter + head parameters, for the memory it costs
    load_seconds: float

    def best(self, probabilities: list[float]) -> tuple[Any, float]:
        """The most likely label and its probability."""
        index = max(range(len(probabilities)), key=probabilities.__getitem__)
        return self.labels[index], float(probabilities[index])

    def answer(self, probabilities: list[float], latency_ms: float) -> Prediction:
        label, probability = self.best(probabilities)
        return Prediction(
            label=label,
            probability=round(probability, 6),
            latency_ms=latency_ms,
            base_model=self.base_model,
            language=self.language,
        )


def _lora_config(adapter: SavedAdapter):
    from peft import LoraConfig

    fields = dict(adapter.config)
    # The heads are ours to route (heads.py); PEFT must not wrap them.
    fields["modules_to_save"] = None
    fields["task_type"] = None
    fields["inference_mode"] = True
    known = set(LoraConfig.__dataclass_fields__)
    return LoraConfig(**{k: v for k, v in fields.items() if k in known})


def _linear_names(model: nn.Module, skip: tuple[str, ...]) -> list[str]:
    """Every plain Linear of the base model: not LoRA's own matrices, not the heads."""
    names = []
    for name, module in model.named_modules():
        if type(module) is not nn.Linear:
            continue
        parts = name.split(".")
        if "lora_A" in parts or "lora_B" in parts or any(p in skip for p in parts):
            continue
        names.append(name)
    return names


class Int8Linear(nn.Module):
    """A Linear layer as dynamic int8 (weights int8, activations quantized per batch).

    PyTorch's quantized ``Linear`` has ``weight()`` as a method, where PEFT reads
    ``base_layer.weight.device`` when it adds an adapter to a layer: this wrapper keeps an
    empty ``weight`` that answers device and dtype, so adapters can still be added (a hot
    swap) after the base has been quantized.
    """

    def __init__(self, linear: nn.Linear) -> None:
        from torch.ao.quantization import quantize_dynamic

        super().__init__()
        holder = nn.Sequential(linear)
        with warnings.catch_warnings():
            # Deprecated in favour of torchao, but present in our torch and, on CPU, faster
            # than torchao's replacement (measured: README, "Serving").
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions")
            quantize_dynamic(holder, {nn.Linear}, dtype=torch.qint8, inplace=True)
        self.quantized = holder[0]
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", torch.empty(0, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantized(x)

    def packed_bytes(self) -> int:
        weight, bias = self.quantized._weight_bias()
        size = weight.numel() * weight.element_size()
        return size + (0 if bias is None else bias.numel() * bias.element_size())


class Engine:
    """A base model (fp32 or dynamic int8 on CPU, bf16 on CUDA) and its adapters."""

    def __init__(
        self,
        first: SavedAdapter,
        name: str,
        *,
        device: str = "cpu",
        quantize: Quantize = "none",
        precision: str = "fp32",
    ) -> None:
        from peft import PeftModel

        from loraforge.models.device import select_precision
        from loraforge.models.loading import load_classifier, quiet_loading

        if precision not in PRECISION_CHOICES:
            raise ConfigError(f"precision must be one of {', '.join(PRECISION_CHOICES)}")

        if quantize not in QUANTIZE_CHOICES:
            raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE_CHOICES)}")
        if quantize == "int8" and device != "cpu":
            raise ConfigError(
                "int8 is the CPU path (dynamic quantization); on CUDA the engine runs bf16",
                hint="Leave --quantize at none on a GPU.",
            )
        self.base_model = first.meta.base_model
        self.device = device
        # bf16 where the hardware runs it natively (a GPU, or a CPU with AVX-512 BF16 or
        # AMX), as training does; int8 computes in int8 and fp32.
        self.precision = "fp32" if quantize == "int8" else select_precision(precision, device)
        if self.precision == "fp16" and not device.startswith("cuda"):
            self.precision = "fp32"
        on_gpu = device.startswith("cuda")
        # On a GPU the weights themselves are half precision; on a CPU they stay fp32 and
        # the matmuls run in bf16 under autocast (LoRA matrices and heads included).
        self.dtype = (
            {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)
            if on_gpu
            else torch.float32
        )
        self._autocast_cpu = self.precision == "bf16" and device == "cpu"
        self.merged: str | None = None
        self._lock = threading.Lock()
        began = time.perf_counter()
        with quiet_loading():
            self.tokenizer, model = load_classifier(
                resolve_base_model(first.meta.base_model),
                first.labels,
                tokenizer_source=str(first.folder),
            )
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.modules_to_save = first.modules_to_save
        self.head_names = heads.head_module_names(model, self.modules_to_save)
        if not self.head_names:
            raise ConfigError(f"no classification head found in {first.meta.base_model!r}")
        self._routed = heads.install(model, self.head_names)
        model.to(device=device, dtype=self.dtype)
        with quiet_loading():
            self.model = PeftModel(model, _lora_config(first), adapter_name=name)
        self.model.eval()
        self.adapters: dict[str, Loaded] = {}
        self._active = name  # PEFT's active adapter: what a one-adapter batch runs
        self._router = (
            lora_rows.RowRouter(self.model, torch.bfloat16 if self._autocast_cpu else None)
            if lora_rows.supported(self.model)
            else None
        )
        self._insert(first, name, began)
        self.quantize = "none"
        if quantize == "int8":
            self.quantize_int8()
        self.base_load_seconds = time.perf_counter() - began

    # --- adapters -------------------------------------------------------------------

    def _check_compatible(self, adapter: SavedAdapter) -> None:
        if adapter.meta.base_model != self.base_model:
            raise ConfigError(
                f"{adapter.meta.experiment_id} was trained on {adapter.meta.base_model!r}, "
                f"this engine holds {self.base_model!r}"
            )
        if list(adapter.modules_to_save) != list(self.modules_to_save):
            raise ConfigError(
                f"{adapter.meta.experiment_id} saves other head modules "
                f"({adapter.modules_to_save}) than the engine routes ({self.modules_to_save})"
            )

    def _heads_for(self, adapter: SavedAdapter) -> dict[str, nn.Module]:
        return {
            name: heads.build_head(template, adapter.heads, name).to(
                device=self.device, dtype=self.dtype
            )
            for name, (template, _) in self._routed.items()
        }

    def _insert(self, adapter: SavedAdapter, name: str, began: float) -> None:
        built = self._heads_for(adapter)
        if name not in self.model.peft_config:
            self.model.add_adapter(name, _lora_config(adapter))
        try:
            self._copy_lora(adapter, name)
        except ConfigError:
            self.model.delete_adapter(name)
            raise
        self.model.eval()  # modules PEFT just created (LoRA dropout) start in training mode
        for head_name, (_, routed) in self._routed.items():
            routed.heads[name] = built[head_name]
        if self._router is not None:
            self._router.invalidate([*self.adapters, name])
        parameters = sum(t.numel() for t in adapter.lora.values()) + sum(
            t.numel() for t in adapter.heads.values()
        )
        self.adapters[name] = Loaded(
            name=name,
            labels=list(adapter.labels),
            max_length=adapter.meta.max_length,
            base_model=adapter.meta.base_model,
            language=adapter.meta.language,
            parameters=parameters,
            load_seconds=round(time.perf_counter() - began, 3),
        )

    def _copy_lora(self, adapter: SavedAdapter, name: str) -> None:
        """Copy the saved LoRA matrices into adapter ``name``'s parameters, one by one.

        Not ``set_peft_model_state_dict``: it loads a state dict into the whole model,
        which int8 layers refuse (their packed weights are not in an adapter's file)."""
        wanted = {
            key: param
            for key, param in self.model.named_parameters()
            if f".{name}." in key and "lora_" in key
        }
        unmatched = []
        with torch.no_grad():
            for key, tensor in adapter.lora.items():
                # "….query.lora_A.weight" is saved without the adapter's name.
                module, _, leaf = key.rpartition(".")
                target = f"{module}.{name}.{leaf}"
                param = wanted.pop(target, None)
                if param is None or param.shape != tensor.shape:
                    unmatched.append(key)
                    continue
                param.copy_(tensor.to(device=param.device, dtype=param.dtype))
        if unmatched or wanted:
            raise ConfigError(
                f"the adapter of {adapter.meta.experiment_id} does not fit "
                f"{self.base_model!r}: {len(unmatched)} saved LoRA weights have no layer, "
                f"{len(wanted)} layers got no weights"
            )

    def merge(self) -> None:
        """Fold the only adapter into the base weights: about 20 % faster (measured:
        README, "Serving"), for a process that serves one fixed model. Before int8."""
        with self._lock:
            if len(self.adapters) != 1 or self.quantize == "int8":
                raise ValueError("only a single adapter on a float base can be merged")
            (name,) = self.adapters
            self.model.merge_adapter([name])
            self.merged = name

    def add(self, adapter: SavedAdapter, name: str) -> Loaded:
        """Load one more adapter; safe while another thread runs ``forward``."""
        began = time.perf_counter()
        self._check_compatible(adapter)
        with self._lock:
            if name in self.adapters:
                raise ValueError(f"adapter {name!r} is already loaded")
            if self.merged is not None:
                self.model.unmerge_adapter()  # several adapters run unmerged
                self.merged = None
            self._insert(adapter, name, began)
            if self.quantize == "int8":
                self._quantize()  # the new LoRA layers' base layers, if any are new
        return self.adapters[name]

    def remove(self, name: str) -> None:
        with self._lock:
            if name not in self.adapters:
                return
            if len(self.adapters) == 1:
                raise ValueError("the engine's last adapter cannot be removed")
            if name in self.model.active_adapters:
                # PEFT's "active" adapter only matters without adapter_names (never here);
                # moving it first spares the warning delete_adapter gives.
                self._active = next(n for n in self.adapters if n != name)
                self.model.set_adapter(self._active)
            self.model.delete_adapter(name)
            for _, routed in self._routed.values():
                del routed.heads[name]
            del self.adapters[name]
            if self._router is not None:
                self._router.invalidate(list(self.adapters))

    def quantize_int8(self) -> None:
        """From now on: dynamic int8 base weights (a caller may measure accuracy first)."""
        with self._lock:
            self._quantize()
            self.quantize = "int8"
            self.precision, self._autocast_cpu = "fp32", False
            if self._router is not None:  # its stacks were bf16 for autocast
                self._router.compute_dtype = None
                self._router.invalidate(list(self.adapters))

    def _quantize(self) -> None:
        """Dynamic int8 on the base model's Linear layers; LoRA matrices and heads stay fp32."""
        for name in _linear_names(self.model, skip=("heads",)):
            parent, _, child = name.rpartition(".")
            owner = self.model.get_submodule(parent) if parent else self.model
            setattr(owner, child, Int8Linear(getattr(owner, child)))

    # --- inference ------------------------------------------------------------------

    def tokenize(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Token ids without padding (the batcher pads a whole batch at once). Call from
        one thread only: a fast tokenizer's truncation setting is shared state."""
        return self.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]

    def forward(self, rows: list[tuple[str, list[int]]]) -> list[list[float]]:
        """Probabilities for each (adapter, token ids) row, over that adapter's labels."""
        width = -(-max(len(ids) for _, ids in rows) // PAD_MULTIPLE) * PAD_MULTIPLE
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (_, ids) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[i, : len(ids)] = 1
        names = [name for name, _ in rows]
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._autocast_cpu)
        with self._lock, torch.inference_mode(), autocast:
            for _, routed in self._routed.values():
                routed.rows = names
            inputs = {
                "input_ids": input_ids.to(self.device),
                "attention_mask": mask.to(self.device),
            }
            one = len(set(names)) == 1
            if one and self._active == names[0]:
                # PEFT's active adapter (or the merged one): the plain path.
                logits = self.model(**inputs).logits.float()
            elif self._router is not None:
                # Gathered LoRA (lora_rows): two bmm per layer, whatever the adapters.
                self._router.rows = self._router.slot_of(names).to(self.device)
                try:
                    logits = self.model(**inputs).logits.float()
                finally:
                    self._router.rows = None
            elif one and len(rows) >= SWITCH_AT:
                self.model.set_adapter(names[0])
                self._active = names[0]
                logits = self.model(**inputs).logits.float()
            else:
                logits = self.model(**inputs, adapter_names=names).logits.float()
            sizes = [len(self.adapters[name].labels) for name in names]
        out = []
        for i, size in enumerate(sizes):
            out.append(torch.softmax(logits[i, :size], dim=-1).tolist())
        return out

    def memory_bytes(self) -> int:
        """Parameters and buffers of the whole model (packed int8 weights included)."""
        total = 0
        for tensor in list(self.model.parameters()) + list(self.model.buffers()):
            total += tensor.numel() * tensor.element_size()
        for module in self.model.modules():
            if isinstance(module, Int8Linear):
                total += module.packed_bytes()
        return total
