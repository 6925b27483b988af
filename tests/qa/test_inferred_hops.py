"""Inferring a missing hop from rules read off the graph (kgbuild/qa/rules.py)."""

from __future__ import annotations

import numpy as np
import pytest

from kgbuild.errors import KgbuildError
from kgbuild.qa import Answerer
from kgbuild.qa.answer import combine_walks
from kgbuild.qa.index import GraphIndex
from kgbuild.qa.load import kb_graph
from kgbuild.qa.rules import RuleCompleter


def test_missing_fact_is_inferred_by_a_rule_that_the_answer_names(people_kb):
    result = Answerer.open(people_kb, completion="rules").answer("where was [Zofia Nowak] born")
    best = result.answers[0]
    assert best.label == "Warsaw" and not best.stated
    step = best.chain[0]
    assert step.inferred and 0 < step.score < 1
    # colleagues at the University of Warsaw were born in Warsaw
    assert step.inferred_by.startswith("rule place_of_birth(x, y) <= employer(x, z), employer(x', z), place_of_birth(x', y)")


def test_without_completion_a_missing_fact_is_not_answered(people_kb):
    result = Answerer.open(people_kb, completion="none").answer("where was [Zofia Nowak] born")
    assert all(a.stated for a in result.answers)


def test_unknown_completion_is_refused_with_the_choices(people_kb):
    with pytest.raises(KgbuildError, match="unknown completion") as err:
        Answerer.open(people_kb, completion="magic")
    assert "rules" in err.value.hint


def _films(n: int = 40) -> list[tuple[str, str, str]]:
    """Films whose writer directed them, and films that share a director sharing a language."""
    triples = []
    for i in range(n):
        person = f"Person {i % 8}"
        triples += [(f"Film {i}", "written_by", person), (f"Film {i}", "directed_by", person),
                    (f"Film {i}", "in_language", "French" if i % 8 < 2 else "English")]
    return triples


def test_rule_precision_is_measured_and_a_parallel_relation_is_proposed():
    triples = [t for t in _films() if t != ("Film 3", "directed_by", "Person 3")]
    index = GraphIndex(kb_graph(triples))
    rules = RuleCompleter(index)
    hop = 2 * index.relation_index[next(r for r in index.relations if r.endswith("directed_by"))]
    assert rules.rules(hop).precision_at_1 == 1.0  # every other film's director is its writer
    film = np.array([index.entity_id[next(e for e in index.entities if e.endswith("/Film%203"))]])
    children, parents, probs, why = rules.propose(film, hop, top=1, explain=True)
    assert index.labels[int(children[0])] == "Person 3" and parents[0] == film[0]
    assert 0 < probs[0] <= 1 and "directed_by(x, y) <= written_by(x, y)" in why[0]


def test_sibling_rule_proposes_the_language_of_films_sharing_a_director():
    triples = [t for t in _films() if t != ("Film 9", "in_language", "French")]
    index = GraphIndex(kb_graph(triples))
    rules = RuleCompleter(index)
    hop = 2 * index.relation_index[next(r for r in index.relations if r.endswith("in_language"))]
    film = np.array([index.entity_id[next(e for e in index.entities if e.endswith("/Film%209"))]])
    children, _, _, _ = rules.propose(film, hop, top=1)
    # the prior says English (32 of 39 films); Person 1's other films are French
    assert index.labels[int(children[0])] == "French"


def _hop(index: GraphIndex, relation: str, inverse: bool = False) -> int:
    return 2 * index.relation_index[next(r for r in index.relations if r.endswith(relation))] + int(inverse)


def _entity(index: GraphIndex, name: str) -> int:
    return index.entity_id[next(e for e in index.entities if e.endswith("/" + name.replace(" ", "%20")))]


def test_an_inferred_answer_that_several_chains_reach_scores_their_noisy_or():
    # Person 0 wrote films 0, 8, 16, 24 and 32, none of which has a language left: each film's
    # language is guessed on its own, and a language guessed for several films is more likely.
    person_0 = {f"Film {i}" for i in range(0, 40, 8)}
    triples = [t for t in _films() if not (t[0] in person_0 and t[1] == "in_language")]
    answerer = Answerer(kb_graph(triples), completion="rules")
    index = answerer.index
    path = (_hop(index, "written_by", inverse=True), _hop(index, "in_language"))
    walk = answerer._walk(_entity(index, "Person 0"), path)
    films = np.array(sorted(_entity(index, f) for f in person_0))
    children, _, probs, _ = answerer.rules.propose(films, path[1], top=5, explain=True)
    for node, score, inferred in zip(walk.nodes.tolist(), walk.scores.tolist(), walk.inferred.tolist()):
        guesses = probs[children == node]
        assert inferred and len(guesses) == len(films)
        assert score == pytest.approx(1 - np.prod(1 - guesses)) and score > guesses.max()
    assert {index.labels[n] for n in walk.nodes.tolist()} >= {"English"}


def test_a_hop_whose_only_fact_leads_back_to_the_topic_is_inferred():
    # "Other films written by the writer of Film 3": Film 3 is the only film Person 3 still wrote
    # in the graph, but Person 3 directed four more, and a film's director is its writer.
    others = {"Film 11", "Film 19", "Film 27", "Film 35"}
    triples = [t for t in _films() if not (t[0] in others and t[1] == "written_by")]
    graph = kb_graph(triples)
    answerer = Answerer(graph, completion="rules")
    index = answerer.index
    path = (_hop(index, "written_by"), _hop(index, "written_by", inverse=True))
    walk = answerer._walk(_entity(index, "Film 3"), path)
    best = walk.nodes[np.argsort(-walk.scores, kind="stable")[:4]]
    assert {index.labels[n] for n in best.tolist()} == others and walk.inferred.all()
    chain = answerer._chain(walk, int(best[0]))
    assert not chain[0].inferred and chain[1].inferred and "directed_by" in chain[1].inferred_by
    assert not len(Answerer(graph, completion="none")._walk(_entity(index, "Film 3"), path).nodes)


def test_an_answer_stated_on_the_most_likely_path_outranks_inferred_ones_that_add_up_to_more():
    # "Languages of the films Person 0 wrote": the graph states Welsh for Film 0 and has no
    # language for the other four, where the rules guess English; the less likely reading (films
    # Person 0 directed) states English. English's probability summed over both paths is larger,
    # but the best reading states Welsh and guesses English.
    written = {"Film 8", "Film 16", "Film 24", "Film 32"}
    triples = []
    for s, r, o in _films():
        if s == "Film 0" and r == "in_language":
            o = "Welsh"
        if s in written | {"Film 0"} and r == "directed_by":
            o = "Person 9"
        if not (s in written and r == "in_language"):
            triples.append((s, r, o))
    triples += [(f"Film {i}", "directed_by", "Person 0") for i in range(40, 44)]
    triples += [(f"Film {i}", "in_language", "English") for i in range(40, 44)]
    answerer = Answerer(kb_graph(triples), completion="rules")
    index = answerer.index
    person = _entity(index, "Person 0")
    wrote = answerer._walk(person, (_hop(index, "written_by", inverse=True), _hop(index, "in_language")))
    directed = answerer._walk(person, (_hop(index, "directed_by", inverse=True), _hop(index, "in_language")))
    english, welsh = _entity(index, "English"), _entity(index, "Welsh")
    ranked = combine_walks([(0.6, wrote), (0.4, directed)], index.labels)
    score = {node: s for node, s, _, _ in ranked}
    assert score[english] > score[welsh]  # the sum alone would put English first
    node, _, inferred, walk = ranked[0]
    assert node == welsh and not inferred and walk is wrote
    assert ranked[1][0] == english
    # with the paths the other way round, the best reading states English
    assert combine_walks([(0.6, directed), (0.4, wrote)], index.labels)[0][0] == english
