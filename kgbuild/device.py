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
