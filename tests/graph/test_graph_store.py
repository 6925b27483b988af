"""Writing the store, and reading entities and provenance back with SPARQL."""

from __future__ import annotations

import pytest
from graph_samples import (
    BASE,
    CURIE,
    KG,
    NEWS,
    P19,
    RELATION_LABELS,
    WARSAW,
    make_entities,
    make_facts,
    readme_queries,
)

from kgbuild.errors import GraphError, StageError
from kgbuild.graph import facts_from_documents, open_store, query, write_graph_data
from kgbuild.model import Document, Mention, RelationMention, Sentence


def test_entity_has_types_label_aliases_and_mention_count(out):
    result = query(out, f"SELECT ?p ?o WHERE {{ <{CURIE}> ?p ?o }}")
    values = {(p, o) for p, o in result.rows}
    assert ("http://www.w3.org/1999/02/22-rdf-syntax-ns#type", KG + "Person") in values
    assert ("http://www.w3.org/1999/02/22-rdf-syntax-ns#type", "http://schema.org/Person") in values
    assert ("http://www.w3.org/2000/01/rdf-schema#label", "Marie Curie") in values
    alt = "http://www.w3.org/2004/02/skos/core#altLabel"
    assert (alt, "Maria Skłodowska") in values and (alt, "Curie") in values
    assert (KG + "mentionCount", 3) in values
    assert (KG + "mergeReason", "'Curie' is the surname of 'Marie Curie'") in values
    assert (KG + "mentionedIn", BASE + "document/news.jsonl%232") in values


def test_p19_fact_uses_the_wikidata_property_iri(out):
    assert query(out, f"ASK {{ <{CURIE}> <{P19}> <{WARSAW}> }}").boolean is True
    label = query(out, f"SELECT ?l WHERE {{ <{P19}> rdfs:label ?l }}").rows
    assert label == [["place of birth"]]


def test_where_does_this_fact_come_from_returns_every_extraction(out):
    _, where = readme_queries()
    result = query(out, where)
    assert result.columns == ["document", "sentence", "start", "end", "confidence", "extractor"]
    assert result.rows == [
        ["bio/curie.txt", "Marie Curie was born in Warsaw.", 0, 31, 0.91, "zeroshot"],
        ["news.jsonl#2", NEWS, 12, 58, 0.75, "zeroshot"],
    ]


def test_what_do_we_know_finds_facts_by_alias_in_any_case(out):
    what, _ = readme_queries()
    result = query(out, what.replace('"Marie Curie"', '"maria skłodowska"'))
    assert result.columns == ["subject", "relation", "object", "sources", "confidence"]
    assert result.rows == [
        ["Marie Curie", "place of birth", "Warsaw", 2, 0.91],
        ["Marie Curie", "spouse", "Pierre Curie", 1, 0.8],
        ["Marie Curie", "worked at", "University of Paris", 1, 0.6],
    ]


def test_what_do_we_know_includes_facts_where_x_is_the_object(out):
    what, _ = readme_queries()
    rows = query(out, what.replace('"Marie Curie"', '"Warsaw"')).rows
    assert rows == [["Marie Curie", "place of birth", "Warsaw", 2, 0.91]]


def test_rewriting_the_store_replaces_the_previous_graph(fresh_out):
    write_graph_data(fresh_out, make_entities()[1:2], [], BASE, RELATION_LABELS)
    assert query(fresh_out, f"ASK {{ <{CURIE}> ?p ?o }}").boolean is False
    assert query(fresh_out, f"ASK {{ <{WARSAW}> ?p ?o }}").boolean is True


def test_write_graph_data_counts_what_it_wrote(tmp_path):
    stats = write_graph_data(tmp_path, make_entities(), make_facts(), BASE, RELATION_LABELS)
    assert (stats.entities, stats.facts, stats.statements) == (4, 3, 4)
    assert stats.quads == len(list(open_store(tmp_path, read_only=True)))


def test_missing_store_raises_graph_error_with_a_hint(tmp_path):
    with pytest.raises(GraphError, match="no graph in") as err:
        open_store(tmp_path / "nowhere", read_only=True)
    assert "kgbuild run" in err.value.hint
    with pytest.raises(GraphError):
        query(tmp_path, "ASK {}")


def _doc() -> Document:
    text = "Marie Curie was born in Warsaw. She met Curie."
    return Document(
        id="bio.txt",
        text=text,
        sentences=[Sentence(0, 31), Sentence(32, 46)],
        mentions=[
            Mention(0, 11, "Marie Curie", "PER", "PERSON", 0, entity="person/marie-curie"),
            Mention(24, 30, "Warsaw", "LOC", "GPE", 0, entity="location/warsaw"),
            Mention(32, 35, "She", "PER", "PERSON", 1, kind="pronoun"),
            Mention(40, 45, "Curie", "PER", "PERSON", 1, entity="person/marie-curie"),
        ],
    )


def test_facts_from_documents_carries_the_evidence_sentence_and_offsets():
    doc = _doc()
    doc.relations = [RelationMention(0, 1, "P19", 0.9, "zeroshot", 0)]
    [fact] = facts_from_documents([doc])
    assert (fact.subject, fact.relation, fact.object) == ("person/marie-curie", "P19", "location/warsaw")
    assert (fact.document, fact.sentence, fact.start, fact.end) == (
        "bio.txt", "Marie Curie was born in Warsaw.", 0, 31,
    )  # fmt: skip
    assert (fact.confidence, fact.extractor) == (0.9, "zeroshot")


def test_a_cross_sentence_fact_cites_both_sentences():
    text = "Pierre Curie was a physicist. He taught in Paris. Later he met Marie Curie."
    doc = Document(id="bio.txt", text=text, sentences=[Sentence(0, 29), Sentence(30, 49), Sentence(50, 75)],
                   mentions=[Mention(0, 12, "Pierre Curie", "PER", "PERSON", 0, entity="person/pierre-curie"),
                             Mention(43, 48, "Paris", "LOC", "GPE", 1, entity="location/paris"),
                             Mention(63, 74, "Marie Curie", "PER", "PERSON", 2, entity="person/marie-curie")])
    doc.relations = [RelationMention(0, 1, "P937", 0.7, "zeroshot", 0),  # adjacent sentences
                     RelationMention(2, 0, "P26", 0.8, "zeroshot", 2)]  # one sentence between
    near, far = facts_from_documents([doc])
    assert (near.sentence, near.start, near.end) == ("Pierre Curie was a physicist. He taught in Paris.", 0, 49)
    assert (far.sentence, far.start, far.end) == (text, 0, 75)
    assert all(doc.text[f.start : f.end] == f.sentence for f in (near, far))


def test_facts_from_documents_skips_unlinked_mentions_and_self_relations():
    doc = _doc()
    doc.relations = [
        RelationMention(2, 1, "P19", 0.9, "zeroshot", 1),  # "She" was not linked
        RelationMention(3, 0, "P26", 0.9, "zeroshot", 1),  # Curie and Marie Curie are one entity
    ]
    assert facts_from_documents([doc]) == []


def test_facts_from_documents_names_the_document_of_a_bad_mention_index():
    doc = _doc()
    doc.relations = [RelationMention(0, 9, "P19", 0.9, "zeroshot", 0)]
    with pytest.raises(StageError, match="bio.txt"):
        facts_from_documents([doc])
