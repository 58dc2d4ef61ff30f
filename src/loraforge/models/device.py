"""Device and precision choice: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

from functools import lru_cache

import torch

from loraforge.errors import ConfigError


def select_device(requested: str = "auto") -> str:
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "model.device is cuda but no CUDA GPU is visible", hint="Use device: auto."
        )
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "model.device is mps but Apple MPS is not available", hint="Use device: auto."
        )
    return requested


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matmuls run natively instead of being emulated."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def select_precision(requested: str, device: str) -> str:
    if requested != "auto":
        if requested == "fp16" and device == "cpu":
            raise ConfigError(
                "training.precision fp16 needs a GPU", hint="Use bf16 or fp32 on CPU."
            )
        return requested
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"
