"""IRIs and quads, before any store is involved."""

from __future__ import annotations

import dataclasses

from graph_samples import BASE, KG, RELATION_LABELS, make_entities, make_facts

from kgbuild.graph import entity_iri, entity_quads, fact_quads, relation_iri
from kgbuild.graph.rdf import document_iri, relation_id


def test_entity_iri_keeps_readable_keys_and_encodes_unsafe_characters():
    assert entity_iri(BASE, "person/marie-curie") == BASE + "entity/person/marie-curie"
    assert entity_iri(BASE, "work/a b#c?d") == BASE + "entity/work/a%20b%23c%3Fd"
    assert entity_iri(BASE, "location/kraków") == BASE + "entity/location/krak%C3%B3w"


def test_document_iri_keeps_the_record_number_in_the_path():
    assert document_iri(BASE, "news.jsonl#2") == BASE + "document/news.jsonl%232"


def test_wikidata_property_ids_use_the_wikidata_direct_property_iri():
    assert relation_iri(BASE, "P19") == "http://www.wikidata.org/prop/direct/P19"
    assert relation_id(BASE, relation_iri(BASE, "P19")) == "P19"


def test_other_relation_ids_live_under_base_and_map_back_to_their_id():
    for rel in ("worked_at", "founded by", "P19x", "p19"):
        iri = relation_iri(BASE, rel)
        assert iri.startswith(BASE + "relation/")
        assert " " not in iri
        assert relation_id(BASE, iri) == rel


def test_entity_quads_type_each_entity_with_a_kg_class_and_a_schema_class():
    quads = list(entity_quads(make_entities(), BASE, RELATION_LABELS))
    types = {(q.subject.value, q.object.value) for q in quads if q.predicate.value.endswith("#type")}
    warsaw = BASE + "entity/location/warsaw"
    paris = BASE + "entity/organization/university-of-paris"
    assert (warsaw, KG + "Location") in types
    assert (warsaw, "http://schema.org/AdministrativeArea") in types  # from the GPE label
    assert (paris, "http://schema.org/Organization") in types  # no label: the type's default


def test_a_fact_extracted_twice_is_one_triple_with_two_statements():
    quads = list(fact_quads(make_facts(), BASE, RELATION_LABELS))
    p19 = "http://www.wikidata.org/prop/direct/P19"
    assert sum(q.predicate.value == p19 for q in quads) == 1
    statements = [q for q in quads if q.object.value.endswith("#Statement")]
    assert len(statements) == 4


def test_the_same_extraction_seen_twice_keeps_its_best_confidence():
    fact = make_facts()[0]
    again = dataclasses.replace(fact, confidence=0.99)
    quads = list(fact_quads([fact, again], BASE, RELATION_LABELS))
    scores = [q.object.value for q in quads if q.predicate.value == KG + "confidence"]
    assert scores == ["0.99"]


def test_a_relation_without_a_label_is_labelled_with_its_id():
    quads = list(fact_quads(make_facts()[-1:], BASE, {}))
    labels = [q.object.value for q in quads if q.predicate.value.endswith("#label")]
    assert labels == ["worked_at"]
