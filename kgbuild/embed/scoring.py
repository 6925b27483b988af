"""Dot-product scoring against every entity as a matrix product, for PyKEEN's interactions.

PyKEEN 1.11 scores a batch of (head, relation) queries against all entities, in 1-N training
(LCWA) and in evaluation, by broadcasting: `batched_dot(x, t)` is `(x * t).sum(-1)` on shapes
(B, 1, d) and (1, E, d), so it builds a B x E x d tensor (WN18RR, batch 128, d 200: 4 GB) and
autograd keeps it for the backward pass. The same sums are a (B, d) x (d, E) matrix product,
which `torch.einsum` computes without that tensor. TuckER (the default model on graphs of a
thousand to 50,000 triples, and on larger ones with few relations on the CPU), ERMLP, ConvE, ConvKB and others end in `batched_dot`; DistMult's
three-way product is rewritten the same way. Scores agree with PyKEEN's to float rounding
(tests/embed/test_scoring.py); `kgbuild eval embed-speed` measures the gain.

TuckER's training step also drops out entries of each query's relation matrix (batch x d x d:
5M numbers for a batch of 128 at d 200). On the CPU `torch.nn.functional.dropout` draws that mask
with `bernoulli_`, slower than uniform draws compared with p (`kgbuild eval embed-speed`
times the step both ways): the same distribution (each entry kept with probability 1 - p and scaled by 1 / (1 - p)), so
`fast_dropout` draws it that way on the CPU and leaves the GPU's fused dropout alone.

`install()` swaps these in for the whole process and `uninstall()` restores PyKEEN's own; both
are idempotent. Model weights and saved models are untouched."""

from __future__ import annotations

from typing import Any

_ORIGINAL: dict[str, Any] = {}
_fast_dropout_on = True  # off: torch's own dropout everywhere (for comparisons)
# PyKEEN models whose scores against all entities are a matrix product once installed (ComplEx's
# own interaction already is one): no batch x entities x dimension tensor in their evaluation.
MATMUL_MODELS = frozenset({"TuckER", "DistMult", "ComplEx"})


def einsum_dot(a, b):
    """`(a * b).sum(-1)` for broadcastable `a` and `b`, computed as a batched matrix product."""
    import torch

    return torch.einsum("...d,...d->...", a, b)


def fast_dropout(x, module):
    """`module(x)` for a `torch.nn.Dropout` module, with the mask drawn from uniform numbers on the
    CPU (see the module docstring): in training mode each entry is kept with probability 1 - p
    and scaled by 1 / (1 - p); in evaluation mode, or with p 0, `x` itself."""
    import torch

    p = module.p
    if not module.training or p == 0:
        return x
    if x.device.type != "cpu" or p >= 1 or not _fast_dropout_on:
        return module(x)
    return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))


def use_fast_dropout(on: bool) -> None:
    """Draw dropout masks with fast_dropout (the default) or, off, with torch's own dropout."""
    global _fast_dropout_on
    _fast_dropout_on = on


def _tucker_forward(self, h, r, t):
    """PyKEEN's TuckERInteraction.forward with its relation-matrix dropout drawn by fast_dropout
    and its final dot product as a matrix product."""
    import torch
    from pykeen.nn.modules import apply_optional_bn

    h = self.head_dropout(apply_optional_bn(x=h, batch_norm=self.head_batch_norm))
    r = fast_dropout(torch.einsum("ijk,...j->...ik", self.core_tensor, r), self.relation_dropout)
    x = apply_optional_bn(x=torch.einsum("...ik,...i->...k", r, h), batch_norm=self.head_relation_batch_norm)
    return einsum_dot(self.head_relation_dropout(x), t)


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
    _ORIGINAL["tucker"] = modules.TuckERInteraction.forward
    modules.batched_dot = einsum_dot
    modules.DistMultInteraction.forward = _distmult_forward
    modules.TuckERInteraction.forward = _tucker_forward


def uninstall() -> None:
    """Restore PyKEEN's own broadcasting scoring (for comparisons)."""
    import pykeen.nn.modules as modules

    if not _ORIGINAL:
        return
    modules.batched_dot = _ORIGINAL.pop("batched_dot")
    modules.DistMultInteraction.forward = _ORIGINAL.pop("distmult")
    modules.TuckERInteraction.forward = _ORIGINAL.pop("tucker")


def installed() -> bool:
    return bool(_ORIGINAL)
