"""kgbuild.embed.lcwa: 1-vs-all training with the labels built on the model's device gives PyKEEN's
own labels, batches and training."""

from __future__ import annotations

import pytest
import torch
from pykeen.datasets import Nations
from pykeen.losses import CrossEntropyLoss
from pykeen.models import DistMult
from pykeen.training import LCWATrainingLoop
from pykeen.triples.instances import LCWAInstances

from kgbuild.embed.lcwa import DeviceTargetLCWATrainingLoop


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
