import pytest

from kgbuild.linking.rules import RuleLinker, acronym, normalise
from kgbuild.model import Document
from kgbuild.ner.spacy_ner import SpacyNER


@pytest.fixture(scope="module")
def ner():
    return SpacyNER()


def link(ner, *texts):
    linker = RuleLinker()
    docs = linker(ner([Document(f"doc{i}", t) for i, t in enumerate(texts)]))
    entities, remap = linker.finalize()
    keys = {m.text: remap.get(m.entity, m.entity) for d in docs for m in d.mentions}
    return keys, {e.key: e for e in entities}


def test_linking_merges_surname_with_full_name(ner):
    keys, entities = link(ner, "Alan Turing was a mathematician. Turing worked at Bletchley Park.")
    assert keys["Turing"] == keys["Alan Turing"] == "person/alan-turing"
    assert "Turing" in entities["person/alan-turing"].aliases
    assert any("short name" in why for why in entities["person/alan-turing"].why)


def test_linking_merges_acronym_with_full_name(ner):
    keys, _ = link(ner, "International Business Machines sells servers. IBM is based in Armonk.")
    assert keys["IBM"] == keys["International Business Machines"]


def test_same_name_in_two_documents_is_one_entity(ner):
    keys, entities = link(ner, "Marie Curie lived in Paris.", "Marie Curie won a Nobel Prize.")
    e = entities[keys["Marie Curie"]]
    assert e.documents == {"doc0", "doc1"}


def test_surname_alone_in_another_document_joins_the_only_full_name(ner):
    keys, entities = link(ner, "Nelson Mandela was born in Mvezo.", "Mandela became President in 1994.")
    assert keys["Mandela"] == keys["Nelson Mandela"]


def test_same_name_different_type_stays_apart(ner):
    keys, entities = link(ner, "Paris Hilton visited Paris in May.")
    paris = [k for k in entities if k.endswith("/paris")]
    assert paris == ["location/paris"] and keys["Paris Hilton"] != keys["Paris"]


def test_normalise_ignores_case_accents_and_determiners():
    assert normalise("The  Université de Paris") == normalise("universite de paris")
    assert acronym("International Business Machines Corporation") == "ibm"
