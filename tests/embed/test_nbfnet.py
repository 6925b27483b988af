"""NBFNet (kgbuild/embed/nbfnet.py): message passing from the query's head finds held-out facts
by their paths, reaches only as far as its layers, scores heads as tails of inverse queries, trains
on strict negatives with the batch's own facts left out, and saves and loads like any model."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from embed_samples import write_sample_graph
from embed_samples import write_triples
from path_checks import check_held_out_birthplace, check_saved_copy, inverse_factory

from kgbuild.embed import train_embeddings
from kgbuild.embed.lcwa import one_vs_all_triples
from kgbuild.embed.linkpred import evaluate_linkpred
from kgbuild.embed.nbfnet import NBFNet, NBFNetObjective, scatter_extreme, triple_keys
from kgbuild.embed.presets import PRESETS, default_config, register_extensions

SETTINGS = ["embedding_dim=16", "model_kwargs.num_layers=3"]


def _model(triples, layers: int = 2, dim: int = 8) -> NBFNet:
    register_extensions()
    return NBFNet(triples_factory=inverse_factory(triples), embedding_dim=dim, num_layers=layers, random_seed=0).eval()


@pytest.fixture(scope="module")
def nbfnet_out(tmp_path_factory):
    """(OUT, EmbeddingResult): the sample graph with an NBFNet trained on the CPU. Only read it."""
    out = write_sample_graph(tmp_path_factory.mktemp("nbfnet") / "out")
    return out, train_embeddings(out, model="nbfnet", device="cpu", seed=0, settings=SETTINGS)


def test_nbfnet_ranks_the_held_out_birthplace_above_every_person(nbfnet_out):
    _, result = nbfnet_out
    check_held_out_birthplace(result)
    assert result.config.model == "NBFNet" and result.metrics["mrr"] > 0


def test_saved_nbfnet_loads_with_the_same_scores_and_predicts_by_name(nbfnet_out, tmp_path):
    out, result = nbfnet_out
    check_saved_copy(out, result, tmp_path)


def test_an_entity_beyond_the_layers_reach_scores_the_same_whichever_head_asks():
    # a chain a0 -> a1 -> a2 -> a3 and a separate pair b0 -> b1; two layers reach two facts away
    triples = [("a0", "r", "a1"), ("a1", "r", "a2"), ("a2", "r", "a3"), ("b0", "r", "b1")]
    model = _model(triples, layers=2)
    e2i = inverse_factory(triples).entity_to_id
    with torch.inference_mode():
        from_a0, from_a1 = model.score_t(torch.tensor([[e2i["a0"], 0], [e2i["a1"], 0]]))
    for far in ("b0", "b1"):  # no path from either head: scored by their own neighbourhood alone
        assert from_a0[e2i[far]] == from_a1[e2i[far]]
    assert from_a0[e2i["a3"]] != from_a1[e2i["a3"]]  # three facts from a0, two from a1
    assert from_a0[e2i["a2"]] != from_a1[e2i["a2"]]


def test_head_scores_are_tail_scores_of_the_inverse_query():
    triples = [("a", "r", "b"), ("b", "s", "c"), ("c", "r", "a"), ("a", "s", "c")]
    model = _model(triples, layers=3)
    with torch.inference_mode():
        heads = model.predict_h(torch.tensor([[1, 2], [0, 0]]))  # (relation s, tail c), (relation r, tail a)
        tails = model.score_t(torch.tensor([[2, 3], [0, 1]]))  # (c, s inverse), (a, r inverse): ids 2s + 1
    assert torch.allclose(heads, tails)


@pytest.mark.parametrize("reduce", ["amax", "amin"])
def test_scatter_extreme_matches_torch_scatter_reduce_with_ties(reduce):
    torch.manual_seed(0)
    # few distinct values: many ties; none 0, which torch's reference below would count as one more
    # tie (its backward compares the zeros it starts from with the result)
    values = torch.randint(1, 4, (40, 3, 4)).double().requires_grad_()
    start = torch.randint(1, 4, (8, 3, 4)).double().requires_grad_()
    index = torch.randint(8, (40,))
    ours = scatter_extreme(values, index, start, reduce)
    everything = torch.cat([start, values])
    receivers = torch.cat([torch.arange(8), index]).view(-1, 1, 1).expand_as(everything)
    theirs = torch.zeros_like(ours).scatter_reduce(0, receivers, everything, reduce, include_self=False)
    assert torch.equal(ours, theirs)
    grad = torch.randn_like(ours)
    assert torch.allclose(torch.cat(torch.autograd.grad(ours, [start, values], grad)),
                          torch.autograd.grad(theirs, everything, grad)[0])


def test_training_negatives_are_strict_and_the_batch_leaves_its_own_facts_out():
    from pykeen.triples.instances import LCWAInstances

    triples = [(f"p{i}", "knows", f"p{j}") for i in range(6) for j in range(6) if i != j and (i + j) % 3]
    triples += [(f"p{i}", "lives_in", "city") for i in range(6)]
    model = _model(triples).train()
    factory = inverse_factory(triples)
    rows = torch.as_tensor(one_vs_all_triples(LCWAInstances.from_triples_factory(factory)))
    objective = NBFNetObjective(model, rows, negatives=16)
    batch = rows[:10]
    negatives = objective.strict_negatives(batch[:, 0], batch[:, 1])
    n, r = model.num_entities, model.num_relations
    known = set(triple_keys(rows[:, 0], rows[:, 1], rows[:, 2], r, n).tolist())
    drawn = triple_keys(batch[:, :1], batch[:, 1:2], negatives, r, n)
    assert negatives.shape == (10, 16) and not known & set(drawn.flatten().tolist())

    candidates = torch.cat([batch[:, 2:], negatives], dim=1)
    removed = objective.removed_facts(batch, candidates)
    left_out = {(int(h), int(rel), int(t)) for h, rel, t in zip(model.sources[removed], model.edge_relations[removed],
                                                                  model.targets[removed])}
    own = {(int(h), int(rel), int(t)) for h, rel, t in batch} | {(int(t), int(rel) ^ 1, int(h)) for h, rel, t in batch}
    assert left_out == own
    objective.remove_one_hop = True
    removed = objective.removed_facts(batch, candidates)
    pairs = {(int(h), int(c)) for h, row in zip(batch[:, 0], candidates) for c in row}
    for s, t, gone in zip(model.sources.tolist(), model.targets.tolist(), removed.tolist()):
        assert gone == ((s, t) in pairs or (t, s) in pairs)
    loss = objective.loss(batch)
    loss.backward()
    assert loss.item() > 0 and model.query.weight.grad.abs().sum() > 0


def test_large_graphs_with_many_relations_leave_every_fact_between_heads_and_candidates_out():
    assert not default_config("nbfnet", 5000).remove_one_hop
    assert default_config("nbfnet", 300_000, n_relations=237).remove_one_hop  # FB15k-237, as published
    assert not default_config("nbfnet", 90_000, n_relations=11).remove_one_hop


def test_linkpred_benchmark_trains_nbfnet_on_files(tmp_path):
    # two groups whose members all know each other; held-out "knows" facts follow from the rest
    triples = [(f"g{g}m{i}", "knows", f"g{g}m{j}") for g in range(2) for i in range(5) for j in range(5) if i != j]
    held = [triples[1], triples[22], triples[7], triples[30]]
    train = [t for t in triples if t not in held]
    config = replace(PRESETS["nbfnet"], embedding_dim=8, epochs=30, eval_every=5, batch_size=16,
                     model_kwargs={"num_layers": 2})
    result = evaluate_linkpred(train=write_triples(tmp_path / "train.txt", train),
                               valid=write_triples(tmp_path / "valid.txt", held[:2]),
                               test=write_triples(tmp_path / "test.txt", held[2:]), config=config, device="cpu", seed=0)
    # 10 entities: a random ranking gives MRR about 0.3; each answer's group is two hops away
    assert result.metrics["mrr"] > 0.6


def test_cpu_chunks_score_like_one_piece_and_set_the_training_sub_batches(monkeypatch):
    from kgbuild.device import keep_freed_cpu_memory
    from kgbuild.embed import nbfnet

    triples = [(f"e{i}", f"r{i % 3}", f"e{(i * 7 + 3) % 20}") for i in range(40)]
    model = _model(triples, layers=3)
    queries = torch.tensor([[i, i % 6] for i in range(12)])
    with torch.inference_mode():
        whole = model.score_t(queries)
        monkeypatch.setattr(nbfnet, "CPU_CHUNK_FLOATS", 2 * (model.num_edges + model.num_entities) * 8)  # 2 a chunk
        assert nbfnet.cpu_chunk(model.num_edges, model.num_entities, 8) == 2
        assert torch.allclose(model.score_t(queries), whole, atol=1e-6)
    loop = nbfnet.NBFNetTrainingLoop(model=model.train(), triples_factory=inverse_factory(triples), optimizer="adam")
    assert loop.sub_batch_and_slice(batch_size=64, sampler=None, triples_factory=None) == (2, None)
    import platform

    if platform.libc_ver()[0] == "glibc":
        assert keep_freed_cpu_memory() and keep_freed_cpu_memory()  # a second call changes nothing
