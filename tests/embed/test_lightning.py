"""Data-parallel training through PyKEEN's PyTorch Lightning integration: two CPU processes."""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("pytorch_lightning")

from kgbuild.embed import read_graph  # noqa: E402
from kgbuild.embed.lightning import train_lightning  # noqa: E402
from kgbuild.embed.presets import default_config  # noqa: E402
from kgbuild.embed.train import split_triples  # noqa: E402


def test_two_processes_train_one_model_on_the_cpu(embedded):
    out, _ = embedded
    graph = read_graph(out)
    config = default_config("rotate", len(graph.triples))
    training, _ = split_triples(graph.triples, config, seed=0)

    result = train_lightning(training, config, processes=2, accelerator="cpu", epochs=5, seed=0)

    assert result.processes == 2
    assert len(set(result.pids)) == 2 and os.getpid() not in result.pids
    # The weights trained in the children come back: they differ from a fresh model's.
    from pykeen.models import model_resolver

    fresh = model_resolver.make(config.model, {"embedding_dim": config.embedding_dim}, triples_factory=training,
                                random_seed=0)
    trained = dict(result.model.state_dict())
    assert any(not torch.allclose(trained[k], v) for k, v in fresh.state_dict().items())


def test_two_processes_train_complex_n3_one_vs_all_with_relation_prediction(embedded):
    from dataclasses import replace

    from pykeen.triples.instances import LCWAInstances

    from kgbuild.embed.lcwa import one_vs_all_triples
    from kgbuild.embed.presets import PRESETS

    out, _ = embedded
    graph = read_graph(out)
    config = replace(PRESETS["complexn3"], embedding_dim=8, batch_size=16, relation_prediction=0.1)
    training, _ = split_triples(graph.triples, config, seed=0)
    triples = one_vs_all_triples(LCWAInstances.from_triples_factory(training))
    assert len(triples) == 2 * training.num_triples  # every fact once in each direction

    result = train_lightning(training, config, processes=2, accelerator="cpu", epochs=3, seed=0)

    assert result.processes == 2 and type(result.model).__name__ == "ComplEx"
    # small-normal start (std 0.001) -> trained weights far from it
    assert float(result.model.entity_representations[0](indices=None).abs().max()) > 0.01


@pytest.mark.parametrize(("preset", "name", "kwargs"), [("nbfnet", "NBFNet", {}),
                                                      ("astarnet", "AStarNet", {"node_ratio": 0.5})])
def test_two_processes_train_path_models_with_their_own_objective(embedded, preset, name, kwargs):
    from dataclasses import replace

    from pykeen.models import model_resolver

    from kgbuild.embed.presets import PRESETS, register_extensions

    out, _ = embedded
    graph = read_graph(out)
    kwargs = {"num_layers": 2, **kwargs}
    config = replace(PRESETS[preset], embedding_dim=8, batch_size=16, negatives=4, model_kwargs=kwargs)
    training, _ = split_triples(graph.triples, config, seed=0)
    register_extensions()
    fresh = model_resolver.make(config.model, {"embedding_dim": 8, **kwargs}, triples_factory=training,
                                random_seed=0)

    result = train_lightning(training, config, processes=2, accelerator="cpu", epochs=2, seed=0)

    assert result.processes == 2 and type(result.model).__name__ == name
    trained = dict(result.model.state_dict())
    assert not torch.allclose(trained["query.weight"], fresh.state_dict()["query.weight"])
    assert not torch.allclose(trained["mlp.0.weight"], fresh.state_dict()["mlp.0.weight"])
    assert torch.equal(trained["sources"], fresh.state_dict()["sources"])  # the graph itself is not learnt
