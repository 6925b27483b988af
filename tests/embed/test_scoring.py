"""kgbuild.embed.scoring: PyKEEN's dot-product interactions computed as matrix products, and its
distance interactions as one cdist, give PyKEEN's own scores and gradients, and the switch is
idempotent and reversible."""

from __future__ import annotations

import pytest
import torch

from kgbuild.embed import scoring


@pytest.fixture(autouse=True)
def _installed_after():
    yield
    scoring.install()  # the state every other test runs in


def _model(name: str, **kwargs):
    from pykeen.datasets import Nations
    from pykeen.models import model_resolver

    dataset = Nations(create_inverse_triples=True)
    model = model_resolver.make(name, {"embedding_dim": 16, **kwargs}, triples_factory=dataset.training,
                                random_seed=0)
    model.eval()  # no dropout: both scorings see the same network
    return model, dataset.validation.mapped_triples[:40]


def _scores_and_grads(model, triples):
    model.zero_grad()
    parts = [model.score_t(triples[:, :2]), model.score_h(triples[:, 1:]), model.score_hrt(triples)]
    sum(p.sum() for p in parts).backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return [p.detach().clone() for p in parts], grads


@pytest.mark.parametrize("name, kwargs, cdist_calls, grad_atol", [
    ("TuckER", {}, 0, 1e-5),  # matrix products
    ("DistMult", {}, 0, 1e-5),
    ("ComplEx", {}, 0, 1e-5),  # a real matrix product of the real and imaginary parts
    ("TransE", {}, 2, 1e-4),  # distances: L1, PyKEEN's default for TransE
    ("TransE", {"scoring_fct_norm": 2}, 2, 1e-4),
    ("TransE", {"scoring_fct_norm": 2, "power_norm": True}, 2, 1e-4),
    ("RotatE", {}, 2, 1e-4),
])
def test_kgbuild_scoring_gives_pykeens_scores_and_gradients(name, kwargs, cdist_calls, grad_atol, monkeypatch):
    model, triples = _model(name, **kwargs)
    scoring.uninstall()
    own, own_grads = _scores_and_grads(model, triples)
    scoring.install()
    calls = []
    original = torch.cdist
    monkeypatch.setattr(torch, "cdist", lambda *a, **k: calls.append(1) or original(*a, **k))
    ours, our_grads = _scores_and_grads(model, triples)
    monkeypatch.undo()
    # distances: one cdist for every tail, one for every head; single triples keep PyKEEN's own
    assert len(calls) == cdist_calls
    assert own[0].shape == ours[0].shape == (40, model.num_entities)
    for a, b in zip(own, ours):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert len(own_grads) == len(our_grads) > 0
    for a, b in zip(own_grads, our_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=grad_atol)


def test_tucker_in_training_mode_gives_pykeens_scores_without_dropout():
    """Training mode (batch normalisation on batch statistics) with the dropouts at 0: the
    rewritten TuckER forward computes PyKEEN's scores and gradients."""
    from pykeen.datasets import Nations
    from pykeen.models import model_resolver

    dataset = Nations(create_inverse_triples=True)
    model = model_resolver.make("TuckER", {"embedding_dim": 16, "dropout_0": 0.0, "dropout_1": 0.0, "dropout_2": 0.0},
                                triples_factory=dataset.training, random_seed=0)
    model.train()
    triples = dataset.training.mapped_triples[:64]
    scoring.uninstall()
    own, own_grads = _scores_and_grads(model, triples)
    scoring.install()
    ours, our_grads = _scores_and_grads(model, triples)
    for a, b in zip(own + own_grads, ours + our_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fast_dropout_keeps_each_entry_with_probability_1_minus_p():
    drop = torch.nn.Dropout(0.4)
    x = torch.randn(64, 100, 100, requires_grad=True)
    torch.manual_seed(0)
    y = scoring.fast_dropout(x, drop)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.6) < 0.005
    torch.testing.assert_close(y[kept], x[kept] / 0.6)  # kept entries scaled as torch's dropout does
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.6)  # the gradient flows through the kept ones
    torch.manual_seed(1)
    assert not torch.equal(scoring.fast_dropout(x, drop) != 0, kept)  # a new mask each call
    drop.eval()
    assert scoring.fast_dropout(x, drop) is x  # evaluation: no dropout
    assert scoring.fast_dropout(x, torch.nn.Dropout(0.0)) is x


def test_install_is_idempotent_and_uninstall_restores_pykeen():
    import pykeen.nn.modules as modules
    from pykeen.utils import batched_dot

    scoring.uninstall()
    assert not scoring.installed() and modules.batched_dot is batched_dot
    scoring.install()
    scoring.install()
    assert scoring.installed() and modules.batched_dot is scoring.einsum_dot
    assert modules.TuckERInteraction.forward is scoring._tucker_forward
    assert modules.TransEInteraction.forward is scoring._transe_forward
    assert modules.RotatEInteraction.forward is scoring._rotate_forward
    assert modules.ComplExInteraction.forward is scoring._complex_forward
    scoring.uninstall()
    scoring.uninstall()
    assert modules.batched_dot is batched_dot
    assert modules.TuckERInteraction.forward is not scoring._tucker_forward
    assert modules.TransEInteraction.forward is not scoring._transe_forward
    assert modules.RotatEInteraction.forward is not scoring._rotate_forward
    assert modules.ComplExInteraction.forward is not scoring._complex_forward


def test_matrix_product_models_get_larger_cpu_evaluation_batches():
    from kgbuild.embed.train import evaluation_batch_size

    cpu = torch.device("cpu")
    scoring.install()
    tucker = evaluation_batch_size(40_559, 200, cpu, "TuckER")
    rotate = evaluation_batch_size(40_559, 200, cpu, "RotatE")
    assert rotate == tucker <= 1024  # a cdist holds no batch x entities x width tensor either
    assert evaluation_batch_size(40_559, 200, cpu, "ConvE") < tucker  # PyKEEN's broadcasting still does
    scoring.uninstall()
    assert evaluation_batch_size(40_559, 200, cpu, "RotatE") < tucker
    assert evaluation_batch_size(40_559, 200, torch.device("cuda"), "TuckER") is None  # GPU: PyKEEN adapts


def test_training_uses_the_matrix_product_scoring():
    from kgbuild.embed.linkpred import evaluate_linkpred

    scoring.uninstall()
    result = evaluate_linkpred(dataset="nations", model="distmult", epochs=1, device="cpu")
    assert scoring.installed() and result.metrics["mrr"] > 0


def test_complex_against_every_entity_is_one_real_matrix_product(monkeypatch):
    """Installed, ComplEx scores a batch against every tail and every head without PyKEEN's
    complex einsum (which also computes the imaginary part of each score); single triples keep it."""
    model, triples = _model("ComplEx")
    scoring.install()
    calls = []
    original = scoring._ORIGINAL["complex"]
    monkeypatch.setitem(scoring._ORIGINAL, "complex", lambda *a: calls.append(1) or original(*a))
    model.score_t(triples[:, :2])
    model.score_h(triples[:, 1:])
    assert calls == []
    model.score_hrt(triples)
    assert calls == [1]
