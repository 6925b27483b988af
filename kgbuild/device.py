"""Device placement written once for every model-backed stage: `auto` picks CUDA when a GPU is
visible, and fp16 is used only where it is safe (on CUDA)."""

from __future__ import annotations

from kgbuild.errors import ConfigError


def resolve_device(name: str = "auto"):
    """torch.device for "auto", "cpu", "cuda" or "cuda:N"; a missing GPU is an error only when asked for."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible", hint="use --device auto or cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}", hint="use auto, cpu or cuda")
    return torch.device(name)


def fp32_weights() -> dict:
    """The keyword that makes transformers' from_pretrained load weights in float32 whatever dtype
    the checkpoint was saved in (transformers 5 keeps a checkpoint's own dtype by default, so a
    bf16 or fp16 checkpoint would train with half-precision weights and optimiser steps, and run
    slowly on a CPU); mixed precision comes from autocast, or from .half() on CUDA."""
    import re

    import torch
    import transformers

    major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.float32}  # `dtype` since 4.56


_ALLOCATOR_KEPT = False
# glibc mallopt parameters: M_TRIM_THRESHOLD and M_MMAP_THRESHOLD, and the largest mmap threshold
# glibc accepts on 64-bit machines.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX = -1, -3, 32 * 1024 * 1024


def keep_freed_cpu_memory() -> bool:
    """Make glibc's malloc keep freed blocks of up to 32 MB for reuse instead of giving them back
    to the system; returns whether it could (not glibc: no change). Torch on the CPU allocates every
    intermediate tensor afresh; above glibc's threshold each comes from a new mmap() whose pages
    fault in one by one, and a model whose steps make many tensors of a few megabytes (NBFNet)
    spent more time in the kernel than in arithmetic (kgbuild/embed/nbfnet.py). For the whole
    process, from the first call on; the price is memory that a process keeps once it held it."""
    global _ALLOCATOR_KEPT
    if _ALLOCATOR_KEPT:
        return True
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _ALLOCATOR_KEPT = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and mallopt(M_TRIM_THRESHOLD, 1 << 30))
    return _ALLOCATOR_KEPT
