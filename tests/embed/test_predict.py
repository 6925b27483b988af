"""Link prediction by name and by IRI, the errors a user sees, and predictions written apart
from extracted facts."""

from __future__ import annotations

import pytest
from embed_samples import BASE, iri

from kgbuild.embed import UnknownEntityError, UnknownRelationError, predict, read_graph
from kgbuild.graph import query, to_networkx

P19 = "http://www.wikidata.org/prop/direct/P19"
P26 = "http://www.wikidata.org/prop/direct/P26"


def test_names_and_iris_give_the_same_ranking(embedded):
    out, result = embedded
    by_name = predict(out, head="zofia nowak", relation="Place of Birth", top=5, embeddings=result)
    by_iri = predict(out, head=iri("Zofia Nowak"), relation=P19, top=5, embeddings=result)
    by_id = predict(out, head="Zofia Nowak", relation="P19", top=5, embeddings=result)
    assert by_name.candidates == by_iri.candidates == by_id.candidates
    assert by_name.candidates[0].label == "Warsaw"
    assert by_name.head == iri("Zofia Nowak") and by_name.relation == P19


def test_alias_finds_the_entity_and_known_facts_are_marked(embedded):
    out, result = embedded
    answer = predict(out, tail="Maria Skłodowska", relation="spouse", top=22, embeddings=result)
    assert answer.target == "head" and answer.tail == iri("Marie Curie")
    known = [c for c in answer.candidates if c.known]
    assert [c.iri for c in known] == [iri("Pierre Curie")]
    assert all(c.iri != iri("Marie Curie") for c in answer.candidates)


def test_unknown_entity_name_lists_the_closest_names(embedded):
    out, result = embedded
    with pytest.raises(UnknownEntityError) as err:
        predict(out, head="Zofia Novak", relation="P19", embeddings=result)
    assert "Zofia Novak" in str(err.value) and "'Zofia Nowak'" in err.value.hint


def test_unknown_relation_lists_the_closest_labels(embedded):
    out, result = embedded
    with pytest.raises(UnknownRelationError) as err:
        predict(out, head="Zofia Nowak", relation="place of brith", embeddings=result)
    assert "'place of birth'" in err.value.hint


def test_write_puts_new_predictions_in_the_predicted_graph_only(embedded_copy):
    out = embedded_copy
    facts_before = read_graph(out).triples
    edges_before = sorted(to_networkx(out).edges(keys=True))
    answer = predict(out, tail="Marie Curie", relation="spouse", top=3, write=True)
    new = [c for c in answer.candidates if not c.known]
    assert answer.written == len(new) > 0 and answer.graph == BASE + "graph/predicted"

    rows = query(out, f"""SELECT ?s ?score WHERE {{ GRAPH <{answer.graph}> {{
        ?p a kg:Prediction ; rdf:subject ?s ; rdf:predicate <{P26}> ; rdf:object <{iri("Marie Curie")}> ;
           kg:score ?score }} }}""").rows
    assert sorted(s for s, _ in rows) == sorted(c.iri for c in new)
    assert {round(score, 4) for _, score in rows} == {round(c.score, 4) for c in new}
    # No predicted triple is asserted anywhere, and the extracted facts are untouched.
    assert not query(out, f"ASK {{ GRAPH <{answer.graph}> {{ ?s <{P26}> ?o }} }}").boolean
    assert read_graph(out).triples == facts_before
    assert sorted(to_networkx(out).edges(keys=True)) == edges_before
    # Writing again replaces the same predictions instead of adding copies.
    predict(out, tail="Marie Curie", relation="spouse", top=3, write=True)
    again = query(out, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{answer.graph}> {{ ?p a kg:Prediction }} }}")
    assert again.rows[0][0] == len(new)
