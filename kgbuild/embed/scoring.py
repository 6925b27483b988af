"""Scoring against every entity without a batch x entities x dimension tensor, for PyKEEN's
interactions: dot products as matrix products, distances as one torch.cdist.

PyKEEN 1.11 scores a batch of (head, relation) queries against all entities, in 1-N training
(LCWA) and in evaluation, by broadcasting: `batched_dot(x, t)` is `(x * t).sum(-1)` on shapes
(B, 1, d) and (1, E, d), so it builds a B x E x d tensor (WN18RR, batch 128, d 200: 4 GB) and
autograd keeps it for the backward pass. The same sums are a (B, d) x (d, E) matrix product,
which `torch.einsum` computes without that tensor. TuckER (the default model on graphs of a
thousand to 50,000 triples, and on larger ones with few relations on the CPU), ERMLP, ConvE, ConvKB and others end in `batched_dot`; DistMult's
three-way product is rewritten the same way, and ComplEx's complex einsum (which computes the
imaginary part of every score too) becomes one real product of the real and imaginary parts side
by side: half the arithmetic. Scores agree with PyKEEN's to float rounding
(tests/embed/test_scoring.py); `kgbuild eval embed-speed` measures the gain.

TuckER's training step also drops out entries of each query's relation matrix (batch x d x d:
5M numbers for a batch of 128 at d 200). On the CPU `torch.nn.functional.dropout` draws that mask
with `bernoulli_`, slower than uniform draws compared with p (`kgbuild eval embed-speed`
times the step both ways): the same distribution (each entry kept with probability 1 - p and scaled by 1 / (1 - p)), so
`fast_dropout` draws it that way on the CPU and leaves the GPU's fused dropout alone.

TransE and RotatE score by a distance, `-||h + r - t||` and `-||h * r - t||`, which PyKEEN also
broadcasts to a batch x entities x dimension tensor before taking the norm (FB15k-237, 46
queries at d 200 already hold 1 GB). Against every tail (or every head) the same distances are
`torch.cdist` between the queries' rotated or translated vectors and the entity vectors, which
computes the batch x entities distances without that tensor (for the L2 norm as a matrix
product, for L1 pair by pair) and has its own backward pass.

`install()` swaps these in for the whole process and `uninstall()` restores PyKEEN's own; both
are idempotent. Model weights and saved models are untouched."""

from __future__ import annotations

from typing import Any

_ORIGINAL: dict[str, Any] = {}
_fast_dropout_on = True  # off: torch's own dropout everywhere (for comparisons)
# PyKEEN models whose scores against all entities are a matrix product once installed (ComplEx's
# own interaction is a complex one; installed, a real one of half the arithmetic): no batch x
# entities x dimension tensor in their evaluation.
MATMUL_MODELS = frozenset({"TuckER", "DistMult", "ComplEx"})
# Distance models whose scores against all entities are one torch.cdist once installed.
CDIST_MODELS = frozenset({"TransE", "RotatE"})


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


def fast_dropout_on() -> bool:
    """Whether dropout masks are drawn by fast_dropout (see use_fast_dropout)."""
    return _fast_dropout_on


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


def _real_view(x):
    """A complex tensor (..., d) as the real tensor (..., 2d) of its real and imaginary parts."""
    import torch

    return torch.view_as_real(x.resolve_conj()).flatten(-2)


def _complex_forward(self, h, r, t):
    """PyKEEN's ComplExInteraction.forward, `Re(<h, r, conj(t)>)`, as one real matrix product when
    a batch of queries meets every tail or every head: `Re(q * conj(t))` summed is the dot product
    of the real views of q = h * r and t (and `Re(h * w)` that of h and conj(w), w = r * conj(t)).
    PyKEEN's complex einsum computes the imaginary part of every score too, and throws it away:
    twice the arithmetic, in the forward and both backward products."""
    import torch
    from pykeen.utils import ensure_complex

    h, r, t = ensure_complex(h, r, t)
    if r.ndim == 3 and r.shape[1] == 1:
        if _against_all(h, t):
            return einsum_dot(_real_view(h * r), _real_view(t))
        if _against_all(t, h):
            return einsum_dot(_real_view(h), _real_view(torch.conj(r) * t))
    return _ORIGINAL["complex"](self, h, r, t)


def _against_all(query, entities) -> bool:
    """Whether `query` (batch, 1, d) meets `entities` (1, n, d): every query against every entity,
    as PyKEEN's score_t and score_h shape them."""
    return (query.ndim == entities.ndim == 3 and query.shape[1] == 1 and entities.shape[0] == 1
            and query.shape[2] == entities.shape[2])


def _distances(query, entities, p, power_norm: bool):
    """Negative L_p distances (batch, n) between query rows (batch, 1, d) and entities (1, n, d),
    complex vectors as their real and imaginary parts; `power_norm`: the p-th power of each."""
    import torch

    if query.is_complex():
        query, entities = torch.view_as_real(query).flatten(-2), torch.view_as_real(entities).flatten(-2)
    dist = torch.cdist(query[:, 0], entities[0], p=float(p))
    return -(dist.pow(p) if power_norm else dist)


def _transe_forward(self, h, r, t):
    """PyKEEN's TransEInteraction.forward, `-||h + r - t||_p`, as one cdist when a batch of
    queries meets every tail (h + r against t) or every head (t - r against h)."""
    if r.ndim == 3 and r.shape[1] == 1:
        if _against_all(h, t):
            return _distances(h + r, t, self.p, self.power_norm)
        if _against_all(t, h):
            return _distances(t - r, h, self.p, self.power_norm)
    return _ORIGINAL["transe"](self, h, r, t)


def _rotate_forward(self, h, r, t):
    """PyKEEN's RotatEInteraction.forward, `-||h * r - t||_2` with unit-modulus relations, as one
    cdist when a batch of queries meets every tail (h * r against t) or every head (t * conj(r)
    against h, PyKEEN's own rewriting for that case)."""
    import torch
    from pykeen.utils import ensure_complex

    h, r, t = ensure_complex(h, r, t)
    if r.ndim == 3 and r.shape[1] == 1:
        if _against_all(h, t):
            return _distances(h * r, t, 2, False)
        if _against_all(t, h):
            return _distances(t * torch.conj(r), h, 2, False)
    return _ORIGINAL["rotate"](self, h, r, t)


def install() -> None:
    """Use the matrix-product scoring in PyKEEN's interactions (this process)."""
    import pykeen.nn.modules as modules

    if _ORIGINAL:
        return
    _ORIGINAL["batched_dot"] = modules.batched_dot
    _ORIGINAL["distmult"] = modules.DistMultInteraction.forward
    _ORIGINAL["tucker"] = modules.TuckERInteraction.forward
    _ORIGINAL["transe"] = modules.TransEInteraction.forward
    _ORIGINAL["rotate"] = modules.RotatEInteraction.forward
    _ORIGINAL["complex"] = modules.ComplExInteraction.forward
    modules.batched_dot = einsum_dot
    modules.DistMultInteraction.forward = _distmult_forward
    modules.TuckERInteraction.forward = _tucker_forward
    modules.TransEInteraction.forward = _transe_forward
    modules.RotatEInteraction.forward = _rotate_forward
    modules.ComplExInteraction.forward = _complex_forward


def uninstall() -> None:
    """Restore PyKEEN's own broadcasting scoring (for comparisons)."""
    import pykeen.nn.modules as modules

    if not _ORIGINAL:
        return
    modules.batched_dot = _ORIGINAL.pop("batched_dot")
    modules.DistMultInteraction.forward = _ORIGINAL.pop("distmult")
    modules.TuckERInteraction.forward = _ORIGINAL.pop("tucker")
    modules.TransEInteraction.forward = _ORIGINAL.pop("transe")
    modules.RotatEInteraction.forward = _ORIGINAL.pop("rotate")
    modules.ComplExInteraction.forward = _ORIGINAL.pop("complex")


def installed() -> bool:
    return bool(_ORIGINAL)
