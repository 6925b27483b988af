"""Within-document clustering beyond names: aliases, nicknames, dotted acronyms and pronouns."""

import pytest

from kgbuild.linking.mentions import find_pronouns
from kgbuild.linking.rules import RuleLinker
from kgbuild.model import Document, Sentence
from kgbuild.ner.spacy_ner import SpacyNER


@pytest.fixture(scope="module")
def ner():
    return SpacyNER()


def linked(ner, text, **options):
    doc = RuleLinker(**options)(ner([Document("doc", text)]))[0]
    return doc, {m.text: m.entity for m in doc.mentions}


def test_alias_in_parentheses_joins_the_full_name(ner):
    doc, keys = linked(ner, "The European Organization for Nuclear Research (CERN) runs the LHC. CERN is in Geneva.")
    assert keys["CERN"] == keys["European Organization for Nuclear Research"]


def test_known_as_alias_joins_the_full_name(ner):
    _, keys = linked(ner, "Deutsche Bahn, known as DB, runs trains. DB is owned by Germany.")
    assert keys["DB"] == keys["Deutsche Bahn"]


def test_quoted_nickname_becomes_part_of_the_full_name(ner):
    doc, keys = linked(ner, 'Wilfried "Willi" Schneider is a racer from Germany. Willi retired in 2010.')
    assert 'Wilfried "Willi" Schneider' in keys
    assert keys["Willi"] == keys['Wilfried "Willi" Schneider']


def test_dotted_acronym_joins_the_full_name(ner):
    _, keys = linked(ner, "The United States signed it. The U.S. later withdrew.")
    assert keys["U.S."] == keys["United States"]


def test_pronoun_refers_to_the_preceding_person(ner):
    doc, _ = linked(ner, "Alan Turing was born in London. He studied at Cambridge.")
    he = [m for m in doc.mentions if m.kind == "pronoun"]
    assert [(m.text, m.type, m.entity) for m in he] == [("He", "PER", "person/alan-turing")]


def test_it_refers_to_an_organisation_not_a_person(ner):
    doc, keys = linked(ner, "Tim Cook runs Apple. It is based in Cupertino.")
    it = next(m for m in doc.mentions if m.kind == "pronoun")
    assert it.entity == keys["Apple"] and it.type == "ORG"


def test_pronoun_mentions_are_appended_so_relation_indexes_stay_valid(ner):
    doc = ner([Document("doc", "Marie Curie won a prize. She lived in Paris.")])[0]
    before = [(m.start, m.text) for m in doc.mentions]
    RuleLinker()([doc])
    assert [(m.start, m.text) for m in doc.mentions[: len(before)]] == before
    assert doc.mentions[-1].kind == "pronoun"


def test_pleonastic_it_and_capitalised_it_are_not_pronouns():
    text = "It is likely that prices rise. The IT team met."
    doc = Document("d", text, sentences=[Sentence(0, 30), Sentence(31, len(text))])
    assert find_pronouns(doc) == []


def test_pronouns_can_be_switched_off(ner):
    doc, _ = linked(ner, "Alan Turing was born in London. He studied at Cambridge.", pronouns=False)
    assert all(m.kind == "name" for m in doc.mentions)
