"""Answering questions from a loaded KB: evidence chains, SPARQL, inferred answers, unknown
topics, and questions that try to inject SPARQL."""

from __future__ import annotations

import re

import pytest

from kgbuild.graph.query import query
from kgbuild.qa import Answerer, path_query


@pytest.fixture(scope="module")
def answerer(people_kb):
    return Answerer.open(people_kb)


def test_one_hop_question_is_answered_with_its_fact_and_a_query_that_returns_it(answerer, people_kb):
    result = answerer.answer("where was [Alan Turing] born")
    best = result.answers[0]
    assert (result.found, result.topic_label) == (True, "Alan Turing")
    assert best.label == "London" and best.stated
    assert [(s.subject_label, s.relation_label, s.object_label, s.inferred) for s in best.chain] == [
        ("Alan Turing", "place of birth", "London", False)]
    assert best.sparql in result.queries_run
    rows = query(people_kb, best.sparql).rows
    assert [r[0] for r in rows] == [best.iri]


def test_two_hop_question_follows_a_chain_of_two_facts(answerer):
    result = answerer.answer("which country was [Mary Jones] born in")
    best = result.answers[0]
    assert best.label == "United Kingdom" and best.stated
    assert len(best.chain) == 2
    assert best.chain[0].subject_label == "Mary Jones"
    assert best.chain[1].object_label == "United Kingdom"
    assert best.chain[0].object_label == best.chain[1].subject_label
    assert "?x1" in best.sparql


def test_missing_fact_is_inferred_by_the_embeddings_and_marked_so(people_kb):
    answerer = Answerer.open(people_kb, completion="embeddings")
    result = answerer.answer("where was [Zofia Nowak] born")
    best = result.answers[0]
    assert best.label == "Warsaw"
    assert not best.stated
    assert best.chain[0].inferred and 0 < best.chain[0].score < 1
    assert best.chain[0].inferred_by == "embeddings"
    # nothing in the graph states it, so the path's query returns no answer
    assert query(answerer.store, best.sparql).rows == []


def test_stated_answers_rank_above_inferred_ones(answerer):
    result = answerer.answer("where was [Marie Curie] born", top=3)
    assert result.answers[0].label == "Warsaw" and result.answers[0].stated
    assert all(a.score <= result.answers[0].score for a in result.answers)


def test_unknown_topic_is_not_in_the_graph_with_the_closest_names(answerer):
    result = answerer.answer("where was [Marie Curry] born")
    assert not result.found and result.answers == []
    assert "not in the graph" in result.message
    assert "Marie Curie" in result.closest


def test_topic_without_brackets_is_found_by_its_name(answerer):
    result = answerer.answer("Where was Alan Turing born?")
    assert result.topic_label == "Alan Turing"
    assert result.answers[0].label == "London"


def _template(sparql: str) -> str:
    """A query with its IRIs blanked and VALUES rows collapsed: what is left is kgbuild's own text."""
    text = re.sub(r"<[^<>]*>", "<IRI>", sparql)
    return re.sub(r"(\s*\(<IRI> <IRI> <IRI>\))+", " (<IRI> <IRI> <IRI>)", text)


@pytest.mark.parametrize("junk", [
    '" } DELETE WHERE { ?s ?p ?o } SELECT * WHERE { "',
    "'); DROP ALL; SELECT ?x WHERE { ?x ?y ?z } #",
    "{ } <http://evil.example/> INSERT DATA { <a> <b> <c> }",
])
def test_sparql_in_a_question_cannot_change_the_query_that_runs(answerer, junk):
    clean = answerer.answer("where was [Alan Turing] born")
    size = len(answerer.store)
    hostile = answerer.answer(f"where was [Alan Turing] born {junk}")
    assert hostile.answers[0].label == "London"
    assert hostile.answers[0].sparql == clean.answers[0].sparql
    assert len(answerer.store) == size
    index = answerer.index
    topic = index.entity_id[hostile.topic]
    # every query that ran is one kgbuild writes for a path of the graph, over the graph's own IRIs
    allowed = {_template(path_query(index, topic, p)) for p in index.paths_from(topic, 3)}
    allowed.add(_template(clean.queries_run[-1]))
    known = set(index.entities) | set(index.relations)
    for text in hostile.queries_run:
        assert _template(text) in allowed
        assert set(re.findall(r"<([^<>]*)>", text)) <= known


def test_quotes_and_braces_in_a_topic_name_never_reach_a_query(answerer):
    result = answerer.answer('where was [Alan "} DELETE {" Turing] born')
    assert not result.found and result.queries_run == []




def test_an_answer_that_several_paths_reach_scores_the_sum_of_their_probabilities():
    # Everyone here led the society they founded, so the training questions label both paths and
    # the scorer splits its probability between them; the answer both reach adds the two.
    from kgbuild.qa.answer import MIN_PATH_SHARE, TOP_PATHS
    from kgbuild.qa.load import kb_graph
    from kgbuild.qa.scorer import question_text
    from kgbuild.qa.train import QAExample, fit_scorer, label_paths, prepare

    people = ["Ada Lovelace", "Charles Babbage", "Mary Somerville", "John Herschel", "Michael Faraday", "Caroline Herschel"]
    cities = ["London", "Paris", "Edinburgh", "Bath", "York", "Hanover"]
    triples = []
    for i, (person, city) in enumerate(zip(people, cities)):
        triples += [(person, "founded", f"Society {i}"), (person, "led", f"Society {i}"), (person, "born_in", city)]
    answerer = Answerer(kb_graph(triples), completion="none")
    examples = [QAExample(f"which society did [{p}] found", [f"Society {i}"]) for i, p in enumerate(people)]
    examples += [QAExample(f"where was [{p}] born", [c]) for p, c in zip(people, cities)]
    data = prepare(answerer, examples)
    paths = label_paths(answerer.index, data, [2] * len(examples), exact=False)
    answerer.scorer = fit_scorer(answerer, data, paths, "linear", seed=0)

    question = "which society did [Ada Lovelace] found"
    result = answerer.answer(question, top=5, run_queries=False)
    index = answerer.index
    topic = index.entity_id[result.topic]
    vector = answerer.encoder.encode([question_text(question, "Ada Lovelace")])[0]
    ranked = answerer.scorer.rank(vector, index, [], None, top=TOP_PATHS)
    ranked = [(p, s) for p, s in ranked if s >= MIN_PATH_SHARE * ranked[0][1]]
    expected: dict[str, list[float]] = {}
    for path, path_score in ranked:
        for node in answerer._walk(topic, path).nodes.tolist():
            expected.setdefault(index.labels[node], []).append(path_score)
    assert result.answers[0].label == "Society 0" and len(expected["Society 0"]) == 2
    assert result.answers[0].score > max(expected["Society 0"])
    for a in result.answers:
        assert a.score == pytest.approx(sum(expected[a.label]), abs=1e-6)


def test_an_ensemble_of_embeddings_also_bridges_the_missing_fact(people_kb, tmp_path):
    import shutil

    from kgbuild.embed import train_embeddings
    from kgbuild.embed.ensemble import EnsembleModel

    out = tmp_path / "out"
    shutil.copytree(people_kb, out)
    train_embeddings(out, model="distmult", epochs=150, device="cpu", seed=0, members=2)
    answerer = Answerer.open(out, completion="embeddings")
    assert isinstance(answerer.embeddings.model, EnsembleModel)
    best = answerer.answer("where was [Zofia Nowak] born").answers[0]
    assert best.label == "Warsaw" and not best.stated
    assert best.chain[0].inferred_by == "embeddings" and 0 < best.chain[0].score < 1
