"""Dot-product scoring against every entity as a matrix product, for PyKEEN's interactions.

PyKEEN 1.11 scores a batch of (head, relation) queries against all entities, in 1-N training
(LCWA) and in evaluation, by broadcasting: `batched_dot(x, t)` is `(x * t).sum(-1)` on shapes
(B, 1, d) and (1, E, d), so it builds a B x E x d tensor (WN18RR, batch 128, d 200: 4 GB) and
autograd keeps it for the backward pass. The same sums are a (B, d) x (d, E) matrix product,
which `torch.einsum` computes without that tensor. TuckER (the default model on graphs of a
thousand triples or more), ERMLP, ConvE, ConvKB and others end in `batched_dot`; DistMult's
three-way product is rewritten the same way. Scores agree with PyKEEN's to float rounding
(tests/embed/test_scoring.py); `kgbuild eval embed-speed` measures the gain.

`install()` swaps these in for the whole process and `uninstall()` restores PyKEEN's own; both
are idempotent. Model weights and saved models are untouched."""

from __future__ import annotations

from typing import Any

_ORIGINAL: dict[str, Any] = {}
# PyKEEN models whose scores against all entities are a matrix product once installed (ComplEx's
# own interaction already is one): no batch x entities x dimension tensor in their evaluation.
MATMUL_MODELS = frozenset({"TuckER", "DistMult", "ComplEx"})


def einsum_dot(a, b):
    """`(a * b).sum(-1)` for broadcastable `a` and `b`, computed as a batched matrix product."""
    import torch

    return torch.einsum("...d,...d->...", a, b)


def _distmult_forward(self, h, r, t):
    import torch

    return torch.einsum("...d,...d,...d->...", h, r, t)


def install() -> None:
    """Use the matrix-product scoring in PyKEEN's interactions (this process)."""
    import pykeen.nn.modules as modules

    if _ORIGINAL:
        return
    _ORIGINAL["batched_dot"] = modules.batched_dot
    _ORIGINAL["distmult"] = modules.DistMultInteraction.forward
    modules.batched_dot = einsum_dot
    modules.DistMultInteraction.forward = _distmult_forward


def uninstall() -> None:
    """Restore PyKEEN's own broadcasting scoring (for comparisons)."""
    import pykeen.nn.modules as modules

    if not _ORIGINAL:
        return
    modules.batched_dot = _ORIGINAL.pop("batched_dot")
    modules.DistMultInteraction.forward = _ORIGINAL.pop("distmult")


def installed() -> bool:
    return bool(_ORIGINAL)
