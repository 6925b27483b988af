"""A*Net (kgbuild/embed/astarnet.py): each layer sends from the visited entities of highest
priority along the facts to the receivers of highest priority, leaves unreached entities tied, finds
held-out facts by their paths, and trains, saves and loads like NBFNet."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from embed_samples import write_sample_graph
from embed_samples import write_triples
from path_checks import check_held_out_birthplace, check_saved_copy, inverse_factory

from kgbuild.embed import train_embeddings
from kgbuild.embed.astarnet import AStarNet
from kgbuild.embed.linkpred import evaluate_linkpred
from kgbuild.embed.presets import PRESETS, default_config, register_extensions
from kgbuild.errors import ConfigError

CHAIN = [(f"e{i}", f"r{i % 3}", f"e{(i * 7 + 3) % 20}") for i in range(40)]


def _model(triples, layers: int = 2, dim: int = 8, **kwargs) -> AStarNet:
    register_extensions()
    return AStarNet(triples_factory=inverse_factory(triples), embedding_dim=dim, num_layers=layers, random_seed=0,
                    **kwargs).eval()


@pytest.fixture(scope="module")
def astarnet_out(tmp_path_factory):
    """(OUT, EmbeddingResult): the sample graph with an A*Net trained on the CPU. Only read it."""
    out = write_sample_graph(tmp_path_factory.mktemp("astarnet") / "out")
    settings = ["embedding_dim=16", "model_kwargs.num_layers=3", "model_kwargs.node_ratio=0.5"]
    return out, train_embeddings(out, model="astarnet", device="cpu", seed=0, settings=settings)


def test_astarnet_ranks_the_held_out_birthplace_above_every_person(astarnet_out):
    _, result = astarnet_out
    check_held_out_birthplace(result)
    assert result.config.model == "AStarNet" and result.model.node_ratio == 0.5


def test_saved_astarnet_loads_with_the_same_scores_and_predicts_by_name(astarnet_out, tmp_path):
    out, result = astarnet_out
    assert check_saved_copy(out, result, tmp_path).model.node_ratio == 0.5


def test_a_layer_sends_from_the_best_visited_entities_to_the_best_receivers():
    model = _model(CHAIN, node_ratio=0.1, degree_ratio=0.5)  # 40 entities: 4 senders, 4 facts a query
    n, q = model.num_entities, 3
    torch.manual_seed(1)
    scores = torch.randn(n * q)
    visited = torch.rand(n * q) < 0.5
    send, relation, receivers, inverse = model.select(scores, visited, q, removed=None)
    receive = receivers[inverse]
    facts = {(int(s), int(r), int(t)) for s, r, t in zip(model.sources, model.edge_relations, model.targets)}
    grid, seen = scores.view(n, q), visited.view(n, q)
    for query in range(q):
        mine = send % q == query
        assert torch.equal(receive[mine] % q, send[mine] % q)
        sent = {(int(s), int(r), int(t)) for s, r, t in zip(send[mine] // q, relation[mine], receive[mine] // q)}
        assert sent <= facts
        visited_here = seen[:, query].nonzero().flatten().tolist()
        senders = sorted(visited_here, key=lambda e: -grid[e, query])[:model.nodes_per_layer]
        offered = [f for f in facts if f[0] in senders]
        assert {s for s, _, _ in sent} <= set(senders)
        assert len(sent) == min(len(offered), model.edges_per_layer)
        # every fact left out leads to a receiver of no higher priority than each one taken
        if sent != set(offered):
            lowest_taken = min(grid[t, query] for _, _, t in sent)
            assert all(grid[t, query] <= lowest_taken for f in offered if f not in sent for t in [f[2]])


def test_removed_facts_carry_no_message_and_unreached_entities_tie():
    model = _model(CHAIN, layers=2, node_ratio=1.0, degree_ratio=100.0)
    n, q = model.num_entities, 2
    scores, visited = torch.zeros(n * q), torch.ones(n * q, dtype=torch.bool)
    removed = model.sources % 2 == 0
    send, relation, receivers, inverse = model.select(scores, visited, q, removed=removed)
    sent = {(int(s), int(r)) for s, r in zip(send // q, relation)}
    assert sent == {(int(s), int(r)) for s, r in zip(model.sources[~removed], model.edge_relations[~removed])}
    assert len(send) == q * int((~removed).sum())  # every remaining fact, for each query
    # a chain a0 -> a1 -> a2 -> a3 and a pair b0 -> b1: two layers from a0 never reach a3, b0 or b1
    triples = [("a0", "r", "a1"), ("a1", "r", "a2"), ("a2", "r", "a3"), ("b0", "r", "b1")]
    model = _model(triples, node_ratio=1.0)
    e2i = inverse_factory(triples).entity_to_id
    with torch.inference_mode():
        scores = model.score_t(torch.tensor([[e2i["a0"], 0]]))[0]
    assert scores[e2i["a3"]] == scores[e2i["b0"]] == scores[e2i["b1"]]
    assert scores[e2i["a2"]] != scores[e2i["a3"]]


def test_cpu_chunks_score_like_one_piece_and_training_reaches_every_parameter(monkeypatch):
    from kgbuild.embed import nbfnet
    from kgbuild.embed.nbfnet import NBFNetTrainingLoop

    model = _model(CHAIN, layers=3, node_ratio=0.2)
    assert model.messages_per_query == model.edges_per_layer < model.num_edges
    queries = torch.tensor([[i, i % 6] for i in range(12)])
    with torch.inference_mode():
        whole = model.score_t(queries)
        monkeypatch.setattr(nbfnet, "CPU_CHUNK_FLOATS", 2 * (model.messages_per_query + model.num_entities) * 8)
        assert model.queries_per_chunk() == 2
        assert torch.allclose(model.score_t(queries), whole, atol=1e-6)
    loop = NBFNetTrainingLoop(model=model.train(), triples_factory=inverse_factory(CHAIN), optimizer="adam")
    assert loop.sub_batch_and_slice(batch_size=64, sampler=None, triples_factory=None) == (2, None)
    candidates = torch.randint(20, (12, 5), generator=torch.Generator().manual_seed(0))
    grads = []
    for recompute in (False, True):  # layers recomputed in the backward pass: the same gradients
        model.checkpoint = recompute
        model.zero_grad()
        model.candidate_scores(queries[:, 0], queries[:, 1], candidates).sum().backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    for name in ("query.weight", "priority.weight", "layers.0.relation.weight"):
        assert grads[0][name].abs().sum() > 0
    assert all(torch.allclose(grads[0][name], grads[1][name], atol=1e-6) for name in grads[0])


def test_astarnet_settings_and_refusals():
    assert default_config("astarnet", 300_000, n_relations=237).remove_one_hop  # FB15k-237, as published
    assert not default_config("astarnet", 5000).remove_one_hop
    assert PRESETS["astarnet"].model_kwargs["node_ratio"] == 0.1
    with pytest.raises(ConfigError, match="node_ratio"):
        _model(CHAIN, node_ratio=0.0)


def test_linkpred_benchmark_trains_astarnet_on_files(tmp_path):
    # two groups whose members all know each other; held-out "knows" facts follow from the rest
    triples = [(f"g{g}m{i}", "knows", f"g{g}m{j}") for g in range(2) for i in range(5) for j in range(5) if i != j]
    held = [triples[1], triples[22], triples[7], triples[30]]
    train = [t for t in triples if t not in held]
    config = replace(PRESETS["astarnet"], embedding_dim=8, epochs=30, eval_every=5, batch_size=16,
                     model_kwargs={"num_layers": 2, "node_ratio": 0.3, "degree_ratio": 1.0})
    result = evaluate_linkpred(train=write_triples(tmp_path / "train.txt", train),
                               valid=write_triples(tmp_path / "valid.txt", held[:2]),
                               test=write_triples(tmp_path / "test.txt", held[2:]), config=config, device="cpu", seed=0)
    # 10 entities: a random ranking gives MRR about 0.3; each answer's group is two hops away
    assert result.metrics["mrr"] > 0.6
