"""The relation schema a relation backend predicts: ids, English labels, verbalisations and
type constraints. The built-in one is DocRED's 96 Wikidata properties; a config may point at
another JSON file with the same format."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kgbuild.errors import ConfigError
from kgbuild.types import TYPES

DEFAULT_SCHEMA = Path(__file__).with_name("docred_schema.json")


@dataclass(frozen=True)
class Relation:
    """One relation of the schema, e.g. Wikidata P19 "place of birth"."""

    id: str  # schema id, used as RelationMention.relation (Wikidata property id for DocRED)
    label: str  # English label (rdfs:label in the graph)
    description: str  # short description of what links head and tail
    templates: tuple[str, ...]  # sentences with {head} and {tail} slots, e.g. "{head} was born in {tail}"
    domain: frozenset[str]  # kgbuild types the head may have
    range: frozenset[str]  # kgbuild types the tail may have

    def allows(self, head_type: str, tail_type: str) -> bool:
        return head_type in self.domain and tail_type in self.range

    def verbalise(self, head: str = "X", tail: str = "Y") -> list[str]:
        return [t.format(head=head, tail=tail) for t in self.templates]


@dataclass(frozen=True)
class Schema:
    """An ordered list of relations with lookup by id."""

    name: str  # short name, e.g. "docred"
    path: str  # file it was read from
    relations: tuple[Relation, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.relations)

    def __iter__(self):
        return iter(self.relations)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.relations]

    def get(self, rel_id: str) -> Relation:
        for r in self.relations:
            if r.id == rel_id:
                return r
        raise KeyError(rel_id)

    def labels(self) -> dict[str, str]:
        return {r.id: r.label for r in self.relations}

    def allowed_pairs(self) -> set[tuple[str, str]]:
        """(head type, tail type) pairs that at least one relation allows."""
        return {(h, t) for r in self.relations for h in r.domain for t in r.range}


def load_schema(path: str | Path | None = None) -> Schema:
    """Read a schema JSON file (None: the built-in DocRED schema), naming the entry at fault on error."""
    p = Path(path) if path else DEFAULT_SCHEMA
    if not p.is_file():
        raise ConfigError(f"relation schema {p} not found", hint="set relations.schema to a schema JSON file, or leave it empty")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        entries = data["relations"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"relation schema {p} is not valid: {err}",
                          hint='it must be {"relations": [{"id", "label", "templates", "domain", "range"}, ...]}') from None
    relations = []
    for i, e in enumerate(entries):
        try:
            rel = Relation(
                id=str(e["id"]), label=str(e["label"]), description=str(e.get("description", e["label"])),
                templates=tuple(e.get("templates") or ["{head} " + e["label"] + " {tail}"]),
                domain=frozenset(e.get("domain") or TYPES), range=frozenset(e.get("range") or TYPES),
            )
        except (KeyError, TypeError) as err:
            raise ConfigError(f"relation {i} of schema {p} lacks {err}", hint="each relation needs id and label") from None
        bad = (rel.domain | rel.range) - set(TYPES)
        if bad:
            raise ConfigError(f"relation {rel.id} of schema {p} uses unknown type {sorted(bad)[0]!r}",
                              hint=f"types are {', '.join(TYPES)}")
        for t in rel.templates:
            if "{head}" not in t or "{tail}" not in t:
                raise ConfigError(f"template {t!r} of relation {rel.id} lacks {{head}} or {{tail}}")
        relations.append(rel)
    return Schema(name=str(data.get("name", p.stem)), path=str(p), relations=tuple(relations))
