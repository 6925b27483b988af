"""KB linking (a link and a NIL), the KB file format and converter, and cross-document merging
of similar names through ANN blocking."""

import json

import pytest

from kgbuild.errors import ConfigError
from kgbuild.linking.kb import KBEntry, KnowledgeBase, read_kb
from kgbuild.linking.kb_convert import convert_fb15k
from kgbuild.linking.rules import RuleLinker
from kgbuild.model import Document, Mention

KB = [
    {"id": "http://www.wikidata.org/entity/Q37033", "label": "International Business Machines",
     "aliases": ["IBM"], "description": "American technology company", "type": "ORG"},
    {"id": "http://www.wikidata.org/entity/Q90", "label": "Paris", "description": "capital of France", "type": "location"},
    {"id": "Q7259", "label": "Ada Lovelace", "description": "English mathematician", "type": "PER"},
]


@pytest.fixture(scope="module")
def kb_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "kb.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in KB))
    return path


def docs_of(*items):
    """One document per (text, type) whose whole text is one name mention."""
    return [Document(f"d{i}", t, mentions=[Mention(0, len(t), t, ty, ty, 0)]) for i, (t, ty) in enumerate(items)]


def test_kb_file_ids_types_and_aliases_are_read(kb_file):
    entries = read_kb(kb_file)
    assert [e.type for e in entries] == ["ORG", "LOC", "PER"]
    assert entries[2].id == "http://kgbuild.org/kg/kb/Q7259"
    assert entries[0].aliases == ["IBM"]


def test_a_bad_kb_line_is_a_config_error_naming_it(tmp_path):
    bad = tmp_path / "kb.jsonl"
    bad.write_text('{"id": "x", "label": "X"}\n{"label": "no id"}\n')
    with pytest.raises(ConfigError, match="line 2"):
        read_kb(bad)


def test_entity_links_to_the_kb_by_alias_and_unknown_one_is_nil(kb_file):
    linker = RuleLinker(kb=str(kb_file))
    docs = linker(docs_of(("IBM", "ORG"), ("Grace Hopper", "PER"), ("Paris", "LOC")))
    entities, remap = linker.finalize()
    by_key = {e.key: e for e in entities}
    ibm = by_key[remap.get(docs[0].mentions[0].entity, docs[0].mentions[0].entity)]
    assert ibm.same_as == ["http://www.wikidata.org/entity/Q37033"]
    hopper = by_key[docs[1].mentions[0].entity]
    assert hopper.same_as == [] and any("NIL" in w for w in hopper.why)
    assert by_key["location/paris"].same_as == ["http://www.wikidata.org/entity/Q90"]


def test_kb_type_disagreement_keeps_the_person_paris_nil():
    kb = KnowledgeBase([KBEntry("urn:paris", "Paris", type="LOC")], encoder=None, threshold=0.8)
    assert kb.link(["Paris"], "LOC", []).entry is not None
    assert kb.link(["Paris"], "PER", []).entry is None


def test_fuzzy_kb_candidate_links_a_misspelt_name():
    kb = KnowledgeBase([KBEntry("urn:t", "Pyotr Ilyich Tchaikovsky"), KBEntry("urn:m", "Modest Mussorgsky")],
                       encoder=None, threshold=0.6)
    assert kb.link(["Pyotr Ilyich Tschaikovsky"], "PER", []).entry.id == "urn:t"


def test_two_entities_linked_to_one_kb_entry_merge(kb_file):
    linker = RuleLinker(kb=str(kb_file), fuzzy_merge=False)
    linker(docs_of(("International Business Machines", "ORG"), ("IBM", "ORG")))
    entities, remap = linker.finalize()
    assert len(entities) == 1 and "both link to" in entities[0].why[-1]


def test_similar_names_merge_across_documents_but_numbers_and_types_keep_apart():
    linker = RuleLinker()
    docs = linker(docs_of(("Pyotr Tchaikovsky", "PER"), ("Pyotr Tschaikovsky", "PER"), ("Apollo 8", "MISC"),
                          ("Apollo 11", "MISC"), ("Paris", "LOC"), ("Paris", "PER")))
    entities, remap = linker.finalize()
    key = [remap.get(d.mentions[0].entity, d.mentions[0].entity) for d in docs]
    assert key[0] == key[1]
    assert key[2] != key[3] and key[4] != key[5]
    merged = next(e for e in entities if e.key == key[0])
    assert any("similar names" in w for w in merged.why)


def test_fb15k_converter_writes_wikidata_iris():
    rows = list(convert_fb15k({"/m/0100mt": {"label": "El Paso", "alternatives": ["El Paso, Texas"],
                                            "description": "county seat", "wikidata_id": "Q16562"}}))
    assert rows == [{"id": "http://www.wikidata.org/entity/Q16562", "label": "El Paso", "aliases": ["El Paso, Texas"],
                     "description": "county seat", "freebase": "/m/0100mt"}]
