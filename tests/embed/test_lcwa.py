"""kgbuild.embed.lcwa: 1-vs-all training with the labels built on the model's device gives PyKEEN's
own labels, batches and training."""

from __future__ import annotations

import pytest
import torch
from pykeen.datasets import Nations
from pykeen.losses import CrossEntropyLoss
from pykeen.models import ComplEx, DistMult
from pykeen.training import LCWATrainingLoop
from pykeen.triples.instances import LCWAInstances

from kgbuild.embed.lcwa import DeviceTargetLCWATrainingLoop, OneVsAllTrainingLoop


@pytest.fixture(scope="module")
def nations():
    return Nations(create_inverse_triples=True).training


def _loop(cls, training, seed: int = 0):
    model = DistMult(triples_factory=training, embedding_dim=16, loss=CrossEntropyLoss(), random_seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return cls(model=model, triples_factory=training, optimizer=optimizer)


def test_device_labels_are_the_rows_of_pykeens_label_matrix(nations):
    loop = _loop(DeviceTargetLCWATrainingLoop, nations)
    loader = loop._create_training_data_loader(nations, None, batch_size=64, shuffle=True, drop_last=False)
    batch = next(iter(loader))
    instances = LCWAInstances.from_triples_factory(nations)
    expected = torch.stack([instances[int(r)]["target"] for r in batch["rows"]])
    assert torch.equal(batch["pairs"], torch.as_tensor(instances.pairs[batch["rows"].numpy()]))
    assert torch.equal(loop.targets(batch["rows"]), expected)
    assert expected.sum() > len(batch["rows"])  # several true answers per query somewhere: not a one-hot


def test_training_matches_pykeens_loop_loss_for_loss(nations):
    losses = {}
    for cls in (LCWATrainingLoop, DeviceTargetLCWATrainingLoop):
        loop = _loop(cls, nations)
        torch.manual_seed(0)  # the same shuffled batches for both
        losses[cls] = loop.train(triples_factory=nations, num_epochs=3, batch_size=128, label_smoothing=0.1,
                                 use_tqdm=False)
    assert len(losses[DeviceTargetLCWATrainingLoop]) == 3
    assert losses[DeviceTargetLCWATrainingLoop] == pytest.approx(losses[LCWATrainingLoop], rel=1e-5)
    assert losses[DeviceTargetLCWATrainingLoop][-1] < losses[DeviceTargetLCWATrainingLoop][0]


def test_a_non_finite_loss_still_stops_training(nations, monkeypatch):
    from pykeen.training.training_loop import NonFiniteLossError

    loop = _loop(OneVsAllTrainingLoop, nations)
    real = OneVsAllTrainingLoop._process_batch
    monkeypatch.setattr(OneVsAllTrainingLoop, "_process_batch",
                        lambda self, *a, **k: real(self, *a, **k) * float("nan"))
    with pytest.raises(NonFiniteLossError):
        loop.train(triples_factory=nations, num_epochs=1, batch_size=128, use_tqdm=False)


def test_the_loss_stays_on_the_device_until_the_epoch_ends(nations):
    loop = _loop(OneVsAllTrainingLoop, nations)
    loader = loop._create_training_data_loader(nations, None, batch_size=64, shuffle=False, drop_last=False)
    loss = loop._forward_pass(next(iter(loader)), 0, 64, 64, 0.0, None)
    assert isinstance(loss, torch.Tensor) and not loss.requires_grad and loss.numel() == 1
    assert all(p.grad is not None for p in loop.model.parameters())  # the backward pass ran
    losses = loop.train(triples_factory=nations, num_epochs=2, batch_size=128, use_tqdm=False)
    assert all(type(x) is float for x in losses) and losses[1] < losses[0]


def test_one_vs_all_rows_are_the_training_triples_and_their_inverses(nations):
    loop = _loop(OneVsAllTrainingLoop, nations)
    loader = loop._create_training_data_loader(nations, None, batch_size=10**6, shuffle=False, drop_last=False)
    entries = next(iter(loader))["triples"]
    assert len(entries) == 2 * nations.num_triples  # every triple once in each direction
    rows = loop._triples[entries]
    instances = LCWAInstances.from_triples_factory(nations)
    expected = {(int(h), int(r), int(t)) for (h, r), row in zip(instances.pairs, instances.compressed)
                for t in row.indices}
    assert {tuple(x) for x in rows.tolist()} == expected


def _complex_one_vs_all_batch(nations, **loop_kwargs):
    """A ComplEx model's 1-vs-all loop on Nations with `loop_kwargs`, and its first batch of 32 rows."""
    model = ComplEx(triples_factory=nations, embedding_dim=8, loss=CrossEntropyLoss(), regularizer=None,
                    random_seed=0)
    loop = OneVsAllTrainingLoop(model=model, triples_factory=nations,
                                optimizer=torch.optim.Adagrad(model.parameters(), lr=0.1), **loop_kwargs)
    loader = loop._create_training_data_loader(nations, None, batch_size=32, shuffle=True, drop_last=False)
    return loop, next(iter(loader))


def test_one_vs_all_loss_is_cross_entropy_of_each_triples_tail_plus_n3(nations):
    # ComplEx: N3 takes the modulus of each complex entry
    loop, batch = _complex_one_vs_all_batch(nations, n3=0.05)
    loss = loop._process_batch(batch, 0, 32).detach()
    pairs = loop._triples[batch["triples"], :2]
    tails = loop._triples[batch["triples"], 2]
    scores = loop.model.score_t(pairs)
    h = loop.model.entity_representations[0](indices=pairs[:, 0])
    r = loop.model.relation_representations[0](indices=pairs[:, 1])
    t = loop.model.entity_representations[0](indices=tails)
    assert h.is_complex()
    n3 = ((h.real ** 2 + h.imag ** 2) ** 1.5 + (r.real ** 2 + r.imag ** 2) ** 1.5
          + (t.real ** 2 + t.imag ** 2) ** 1.5).sum() / 32
    expected = (torch.nn.functional.cross_entropy(scores, tails) + 0.05 * n3).detach()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(n3) > 0


def test_relation_prediction_adds_cross_entropy_of_each_rows_relation(nations):
    # Chen et al. 2021: each row also predicts its relation (among all, inverses included) from its
    # head and tail; ComplEx's score of (h, r, t) is Re(sum h * r * conj(t)), computed here by hand
    loop, batch = _complex_one_vs_all_batch(nations, relation_prediction=0.25)
    model = loop.model
    loss = loop._process_batch(batch, 0, 32).detach()
    rows = loop._triples[batch["triples"]]
    h = model.entity_representations[0](indices=rows[:, 0])
    t = model.entity_representations[0](indices=rows[:, 2])
    relations = model.relation_representations[0](indices=None)
    assert len(relations) == 2 * nations.real_num_relations
    relation_scores = torch.real((h * t.conj()) @ relations.T)
    expected = (torch.nn.functional.cross_entropy(model.score_t(rows[:, :2]), rows[:, 2])
                + 0.25 * torch.nn.functional.cross_entropy(relation_scores, rows[:, 1])).detach()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    without = OneVsAllTrainingLoop(model=model, triples_factory=nations,
                                   optimizer=torch.optim.Adagrad(model.parameters(), lr=0.1))
    without._triples = loop._triples
    assert float(without._process_batch(batch, 0, 32)) < float(loss)


@pytest.mark.parametrize("cls", ["ComplEx", "DistMult", "TransE"])
def test_relation_scores_agree_with_pykeens_score_r(nations, cls):
    from pykeen.models import model_resolver

    from kgbuild.embed.lcwa import score_relations

    model = model_resolver.make(cls, triples_factory=nations, embedding_dim=8, random_seed=0)
    heads, tails = torch.tensor([0, 3, 7]), torch.tensor([5, 3, 1])
    expected = model.score_r(torch.stack([heads, tails], dim=1))
    assert expected.shape == (3, 2 * nations.real_num_relations)
    assert torch.allclose(score_relations(model, heads, tails), expected, atol=1e-5)


def test_complex_n3_preset_learns_nations():
    from kgbuild.embed.linkpred import evaluate_linkpred

    result = evaluate_linkpred(dataset="nations", model="complex-n3", epochs=20, device="cpu",
                               settings=["embedding_dim=32", "batch_size=128"])
    assert result.config.training_loop == "1vsall" and result.config.optimizer == "adagrad"
    assert result.config.embedding_dim == 32
    assert result.curves.losses[-1] < result.curves.losses[0]
    assert result.metrics["mrr"] > 0.5  # random ranking of 14 entities: about 0.23


def test_epoch_rows_draws_that_many_rows_an_epoch_none_twice(nations):
    from kgbuild.embed.presets import PRESETS, with_settings
    from kgbuild.errors import ConfigError

    model = ComplEx(triples_factory=nations, embedding_dim=8, loss=CrossEntropyLoss(), regularizer=None,
                    random_seed=0)
    loop = OneVsAllTrainingLoop(model=model, triples_factory=nations, epoch_rows=10,
                                optimizer=torch.optim.Adagrad(model.parameters(), lr=0.1))
    loader = loop._create_training_data_loader(nations, None, batch_size=4, shuffle=True, drop_last=False)
    assert len(loader) == 3
    epochs = [torch.cat([batch["triples"] for batch in loader]).tolist() for _ in range(2)]
    for rows in epochs:
        assert len(rows) == len(set(rows)) == 10 and all(0 <= r < len(loop._triples) for r in rows)
    assert epochs[0] != epochs[1]  # a fresh draw each epoch
    whole = OneVsAllTrainingLoop(model=model, triples_factory=nations,
                                 optimizer=torch.optim.Adagrad(model.parameters(), lr=0.1))
    assert len(whole._create_training_data_loader(nations, None, batch_size=4, shuffle=True,
                                                  drop_last=False)) * 4 >= len(whole._triples)
    assert with_settings(PRESETS["astarnet"], ["epoch_rows=5000"]).epoch_rows == 5000
    with pytest.raises(ConfigError, match="epoch_rows applies to"):
        with_settings(PRESETS["transe"], ["epoch_rows=10"])
