"""The shipped DocRED relation schema and the schema file format."""

import json

import pytest

from kgbuild.errors import ConfigError
from kgbuild.relations.schema import DEFAULT_SCHEMA, load_schema
from kgbuild.types import TYPES


def test_schema_has_96_docred_properties():
    schema = load_schema()
    assert len(schema) == 96 and len(set(schema.ids)) == 96
    labels = schema.labels()
    assert labels["P19"] == "place of birth"
    assert labels["P131"] == "located in the administrative territorial entity"
    assert labels["P3373"] == "sibling"


def test_every_relation_has_a_template_and_known_types():
    for rel in load_schema():
        assert rel.templates and all("{head}" in t and "{tail}" in t for t in rel.templates)
        assert rel.domain <= set(TYPES) and rel.range <= set(TYPES) and rel.domain and rel.range


def test_place_of_birth_links_a_person_to_a_place():
    p19 = load_schema().get("P19")
    assert p19.allows("PER", "LOC") and not p19.allows("PER", "TIME") and not p19.allows("LOC", "PER")
    assert p19.verbalise("Marie Curie", "Warsaw") == ["Marie Curie was born in Warsaw"]


def test_a_user_schema_file_loads(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "relations": [
        {"id": "founded", "label": "founded", "templates": ["{head} founded {tail}"], "domain": ["PER"], "range": ["ORG"]}]}))
    schema = load_schema(path)
    assert schema.name == "mine" and schema.ids == ["founded"]


def test_unknown_type_in_schema_is_config_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"relations": [{"id": "x", "label": "x", "domain": ["PERSON"], "range": ["LOC"]}]}))
    with pytest.raises(ConfigError, match="unknown type"):
        load_schema(path)


def test_missing_schema_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_schema(tmp_path / "none.json")


def test_shipped_files_are_small():
    assert DEFAULT_SCHEMA.stat().st_size < 1_000_000
    for head in DEFAULT_SCHEMA.parent.glob("head_*.json"):
        assert head.stat().st_size < 1_000_000
