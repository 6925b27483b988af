"""Rules read off the training graph: each shape predicts what it should, with the confidence it
measured; rules rank like a PyKEEN model in PyKEEN's evaluator, save and load to the same scores,
explain their answers, and add to an embedding model's scores."""

from __future__ import annotations

import pytest
import torch
from embed_samples import write_triples

from kgbuild.embed.linkpred import evaluate_linkpred, format_linkpred, load_dataset
from kgbuild.embed.rules import RULES_WEIGHT, WEIGHTS, RulesAndEmbeddings, RuleModel, learn_rules
from kgbuild.embed.train import rank_metrics
from kgbuild.errors import KgbuildError

PEOPLE = [f"person{i}" for i in range(12)]


def _families() -> list[tuple[str, str, str]]:
    """Three generations in four families; everyone born in Paris is a citizen of France, everyone
    born in Rome of Italy; spouses are married both ways; each family's grandparent is its
    parent's parent."""
    triples = []
    for f in range(4):
        grand, parent, child = f"grand{f}", f"parent{f}", f"child{f}"
        triples += [(grand, "parent_of", parent), (parent, "parent_of", child), (grand, "grandparent_of", child),
                    (f"spouse{f}", "married_to", parent), (parent, "married_to", f"spouse{f}")]
    for i, person in enumerate(PEOPLE):
        city, country = ("paris", "france") if i % 2 == 0 else ("rome", "italy")
        triples += [(person, "born_in", city), (person, "citizen_of", country)]
    return triples


HELD_OUT = [("grand3", "grandparent_of", "child3"), ("parent3", "married_to", "spouse3"),
            ("person10", "citizen_of", "france"), ("person11", "citizen_of", "italy")]


@pytest.fixture(scope="module")
def family_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    train = [t for t in _families() if t not in HELD_OUT]
    return write_triples(folder / "train.txt", train, "\n"), write_triples(folder / "valid.txt", HELD_OUT, "\n")


@pytest.fixture(scope="module")
def family_rules(family_files):
    _, training, validation, _ = load_dataset(train=family_files[0], valid=family_files[1])
    model = learn_rules(training.mapped_triples.numpy(), training.num_entities, training.real_num_relations)
    return training, validation, model


def _top_tail(model: RuleModel, training, head: str, relation: str) -> str:
    e, r = training.entity_to_id, training.relation_to_id
    scores = model.predict_t(torch.tensor([[e[head], r[relation]]]))[0]
    return training.entity_id_to_label[int(scores.argmax())]


def test_each_rule_shape_predicts_its_held_out_fact(family_rules):
    training, _, model = family_rules
    assert _top_tail(model, training, "grand3", "grandparent_of") == "child3"  # path: parent_of, parent_of
    assert _top_tail(model, training, "parent3", "married_to") == "spouse3"  # parallel: married_to inverse
    assert _top_tail(model, training, "person10", "citizen_of") == "france"  # constant: born in Paris
    assert _top_tail(model, training, "person11", "citizen_of") == "italy"
    assert set(model.stats.rules) == {"constant", "constant-any", "parallel", "path"}
    assert all(n > 0 for n in model.stats.rules.values())


def test_heads_are_predicted_through_the_inverse_relation(family_rules):
    training, _, model = family_rules
    e, r = training.entity_to_id, training.relation_to_id
    scores = model.predict_h(torch.tensor([[r["grandparent_of"], e["child3"]]]))[0]
    assert training.entity_id_to_label[int(scores.argmax())] == "grand3"


def test_confidence_counts_unseen_negatives(family_rules):
    """citizen_of(X, france) <- born_in(X, paris): 6 training people were born in Paris, 5 of them
    are citizens of France in training (person10's citizenship is held out): confidence 5 / (6 + 5)."""
    training, _, model = family_rules
    e, r = training.entity_to_id, training.relation_to_id
    firing = model.explain(e["person10"], r["citizen_of"], e["france"])[0]
    assert firing.shape == "constant" and firing.p1 == r["born_in"] and firing.d == e["paris"]
    assert firing.confidence == pytest.approx(5 / 11)
    relation, entity = training.relation_id_to_label.__getitem__, training.entity_id_to_label.__getitem__
    assert firing.text(relation, entity, training.real_num_relations) == "born_in(X, paris) => citizen_of(X, france)"


def test_a_head_query_is_explained_by_the_rule_read_backwards(family_rules):
    """(?, citizen_of, france): person10 is proposed by citizen_of(X, france) <- born_in(X, paris)."""
    training, _, model = family_rules
    e, r = training.entity_to_id, training.relation_to_id
    inverse = r["citizen_of"] + training.real_num_relations
    firing = model.explain(e["france"], inverse, e["person10"])[0]
    assert (firing.shape, firing.relation, firing.d, firing.c) == ("constant", r["citizen_of"], e["paris"], e["france"])
    path = model.explain(e["grand3"], r["grandparent_of"], e["child3"])[0]
    relation, entity = training.relation_id_to_label.__getitem__, training.entity_id_to_label.__getitem__
    assert path.text(relation, entity, training.real_num_relations) == \
        "parent_of(X, Z), parent_of(Z, Y) => grandparent_of(X, Y)"


def test_rules_rank_in_pykeens_evaluator(family_rules):
    training, validation, model = family_rules
    metrics = rank_metrics(model, validation, [training])
    assert metrics["hits@1"] >= 0.75
    assert metrics["mrr"] > 0.8


def test_saved_rules_load_to_the_same_scores(family_rules, tmp_path):
    training, _, model = family_rules
    path = model.save(tmp_path / "rules.npz")
    loaded = RuleModel.load(path, training.mapped_triples.numpy())
    batch = training.mapped_triples[:20]
    for target in ("head", "tail"):
        assert torch.equal(model.predict(batch, target), loaded.predict(batch, target))
    assert loaded.stats == model.stats


def test_rules_added_to_an_embedding_model(family_rules):
    """Weight 0 is the embedding's log-softmax; a large weight puts the rules' answer first even
    when the embedding model (untrained here) prefers another."""
    from pykeen.models import DistMult

    training, _, rules = family_rules
    embedding = DistMult(triples_factory=training, embedding_dim=8, random_seed=0)
    e, r = training.entity_to_id, training.relation_to_id
    query = torch.tensor([[e["grand3"], r["grandparent_of"]]])
    alone = torch.log_softmax(embedding.predict_t(query), dim=-1)
    assert torch.allclose(RulesAndEmbeddings(embedding, rules, 0.0).predict_t(query), alone)
    combined = RulesAndEmbeddings(embedding, rules, RULES_WEIGHT).predict_t(query)
    assert int(combined[0].argmax()) == e["child3"]


def test_eval_linkpred_with_rules_only_and_added(family_files):
    train, valid = family_files
    only = evaluate_linkpred(train=train, valid=valid, rules="only", device="cpu")
    assert only.epochs == 0 and only.metrics["mrr"] > 0.8
    assert only.rule_counts["path"] > 0
    assert format_linkpred(only).startswith("rules on train.txt")
    added = evaluate_linkpred(train=train, valid=valid, rules="add", epochs=2, device="cpu")
    assert set(added.weight_mrr) == set(WEIGHTS)
    assert added.weight_mrr[added.rules_weight] == max(added.weight_mrr.values())
    assert added.metrics["mrr"] > added.metrics_without_rules["mrr"]
    assert added.metrics["mrr"] == pytest.approx(added.weight_mrr[added.rules_weight], abs=1e-4)
    assert "the embeddings alone:" in format_linkpred(added)
    given = evaluate_linkpred(train=train, valid=valid, rules="add", rules_weight=3.0, epochs=2, device="cpu")
    assert given.rules_weight == 3.0 and not given.weight_mrr


def test_unknown_rules_mode_is_refused(family_files):
    with pytest.raises(KgbuildError, match="unknown --rules 'both'"):
        evaluate_linkpred(train=family_files[0], valid=family_files[1], rules="both", device="cpu")
    with pytest.raises(KgbuildError, match="no --members"):
        evaluate_linkpred(train=family_files[0], valid=family_files[1], rules="only", members=3, device="cpu")


def test_rules_beat_chance_on_nations():
    """Nations (inside pykeen): rules alone, the test split."""
    result = evaluate_linkpred(dataset="nations", rules="only", device="cpu")
    assert result.metrics["mrr"] > 0.75
    assert result.validation_without_test["mrr"] < result.validation_metrics["mrr"]


def test_embed_keeps_its_rules_and_predict_gives_their_reasons(embedded):
    """Zofia Nowak works for the University of Warsaw, whose other people were born in Warsaw."""
    from kgbuild.embed import load_embeddings, predict
    from kgbuild.embed.rules import RULES_FILE

    out, result = embedded
    assert (out / "embeddings" / RULES_FILE).is_file() and result.rule_counts["constant"] > 0
    # the weight is the one that ranked the held-out facts best, and beat the model alone
    assert set(result.weight_mrr) == {f"{w:g}" for w in WEIGHTS}
    assert result.weight_mrr[f"{result.rules_weight:g}"] == max(result.weight_mrr.values()) > result.weight_mrr["0"]
    loaded = load_embeddings(out)
    assert loaded.rules is not None and loaded.rules_weight == result.rules_weight
    top = predict(out, head="Zofia Nowak", relation="place of birth", top=1, embeddings=loaded).candidates[0]
    assert top.label == "Warsaw"
    assert "employer(X, University of Warsaw) => place of birth(X, Warsaw)" in " ".join(top.because)


def test_embed_without_rules_ranks_by_the_model_alone(tmp_path):
    from embed_samples import write_sample_graph

    from kgbuild.embed import load_embeddings, predict, train_embeddings
    from kgbuild.embed.rules import RULES_FILE

    out = write_sample_graph(tmp_path / "out")
    result = train_embeddings(out, device="cpu", seed=0, rules=False, epochs=5)
    assert result.rules is None and not result.rule_counts
    assert not (out / "embeddings" / RULES_FILE).exists()
    loaded = load_embeddings(out)
    assert loaded.scorer is loaded.model
    assert all(not c.because for c in predict(out, head="Zofia Nowak", relation="P19", top=3, embeddings=loaded).candidates)
