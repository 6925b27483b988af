"""An existing knowledge base into kgbuild: head<TAB>relation<TAB>tail lines become the same kind
of output folder that `kgbuild run` writes (entities with rdfs:label, relations with labels, an
Oxigraph store), so that query, export, embed, predict and ask work on it.

Loaded facts are asserted without provenance: they come from no document, so they get no
rdf:Statement node."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kgbuild.embed.graph import GraphTriples
from kgbuild.errors import KgbuildError
from kgbuild.graph.rdf import entity_iri, relation_iri
from kgbuild.graph.store import DEFAULT_BASE, write_graph_data
from kgbuild.model import Entity, Fact

LOADER = "kgbuild.load"  # the extractor name loaded facts carry
# Entities of a loaded KB have no kgbuild type; they are MISC, and keys keep the exact name
# (percent-encoded in the IRI), so "Memory" the film and "memory" the tag stay two entities.
KEY_PREFIX = "misc/"


@dataclass
class BadLine:
    """A line of the triple file that was not loaded, and why."""

    line: int  # 1-based line number
    text: str  # the line, cut to 200 characters
    reason: str


@dataclass
class TripleFile:
    """The triples of one file, as names."""

    path: str
    triples: list[tuple[str, str, str]]  # distinct (head, relation, tail) names, in file order
    bad: list[BadLine] = field(default_factory=list)  # lines skipped, with the reason
    duplicates: int = 0  # lines that repeated an earlier triple


@dataclass
class LoadResult:
    """What `kgbuild load` wrote; saved as OUT/load.json."""

    source: str  # the triple file
    out: str  # the output folder
    entities: int  # distinct entities
    relations: int  # distinct relations
    facts: int  # distinct triples written
    duplicates: int  # repeated lines (loaded once)
    skipped: list[BadLine]  # malformed lines, never silently lost
    seconds: float  # time to read and write

    def save(self, directory: str | Path) -> Path:
        import json

        path = Path(directory) / "load.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path


def read_triples(path: str | Path) -> TripleFile:
    """Every head<TAB>relation<TAB>tail line of `path`. Blank lines are ignored; a line with
    another number of fields, or an empty field, is reported in `bad`."""
    p = Path(path)
    if not p.is_file():
        raise KgbuildError(f"triple file {p} not found", hint="pass a file of head<TAB>relation<TAB>tail lines")
    seen: set[tuple[str, str, str]] = set()
    triples: list[tuple[str, str, str]] = []
    bad: list[BadLine] = []
    duplicates = 0
    with p.open(encoding="utf-8", errors="replace", newline="") as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            parts = [x.strip() for x in line.split("\t")]
            if len(parts) != 3:
                bad.append(BadLine(n, line[:200], f"{len(parts)} tab-separated fields, expected 3"))
                continue
            if not all(parts):
                bad.append(BadLine(n, line[:200], "an empty field"))
                continue
            triple = (parts[0], parts[1], parts[2])
            if triple in seen:
                duplicates += 1
                continue
            seen.add(triple)
            triples.append(triple)
    return TripleFile(str(p), triples, bad, duplicates)


def relation_label(rel: str) -> str:
    """"starred_actors" -> "starred actors": relation ids of KB files read as words."""
    return " ".join(rel.replace("_", " ").split())


def entity_key(name: str) -> str:
    return KEY_PREFIX + name


def kb_entities_and_facts(triples: list[tuple[str, str, str]]) -> tuple[list[Entity], list[Fact], dict[str, str]]:
    """Entity and Fact objects for named triples (what the graph writer takes), and the
    relation labels."""
    names = list(dict.fromkeys(n for h, _, t in triples for n in (h, t)))
    entities = [Entity(key=entity_key(n), name=n, type="MISC") for n in names]
    facts = [Fact(subject=entity_key(h), relation=r, object=entity_key(t), document="", sentence="",
                  start=0, end=0, confidence=1.0, extractor=LOADER) for h, r, t in triples]
    labels = {r: relation_label(r) for r in dict.fromkeys(r for _, r, _ in triples)}
    return entities, facts, labels


def kb_graph(triples: list[tuple[str, str, str]], base: str = DEFAULT_BASE) -> GraphTriples:
    """The graph `load_triples` would write, in memory: the same IRIs, names and labels as a
    GraphTriples (what the QA index and the embeddings read), without a store."""
    ents: dict[str, str] = {}
    rels: dict[str, str] = {}
    out = []
    for h, r, t in triples:
        hi = ents.get(h) or ents.setdefault(h, entity_iri(base, entity_key(h)))
        ti = ents.get(t) or ents.setdefault(t, entity_iri(base, entity_key(t)))
        ri = rels.get(r) or rels.setdefault(r, relation_iri(base, r))
        out.append((hi, ri, ti))
    return GraphTriples(
        base=base,
        triples=sorted(set(out)),
        entity_names={iri: [name] for name, iri in ents.items()},
        relation_labels={iri: relation_label(r) for r, iri in rels.items()},
        relation_ids={iri: r for r, iri in rels.items()},
    )


def load_triples(path: str | Path, out: str | Path, base: str = DEFAULT_BASE) -> LoadResult:
    """Write the triples of `path` as the graph of output folder `out` (replacing any graph
    there) and return what was loaded and skipped (also saved as OUT/load.json)."""
    t0 = time.perf_counter()
    data = read_triples(path)
    if not data.triples:
        detail = f"; {len(data.bad)} malformed line(s), the first: line {data.bad[0].line}: {data.bad[0].reason}" if data.bad else ""
        raise KgbuildError(f"no triple could be loaded from {path}{detail}",
                           hint="each line must be head<TAB>relation<TAB>tail")
    entities, facts, labels = kb_entities_and_facts(data.triples)
    write_graph_data(out, entities, facts, base, labels)
    result = LoadResult(source=str(path), out=str(out), entities=len(entities), relations=len(labels),
                        facts=len(facts), duplicates=data.duplicates, skipped=data.bad,
                        seconds=round(time.perf_counter() - t0, 2))
    result.save(out)
    return result
