"""Writing a run's graph into OUT/store: rebuilt whole, or, on a re-run where little changed,
updated in place with only the quads that changed.

The graph is cut into units that share no quad: the dataset node; each entity's own quads
(entity_quads, its node as subject); each document's statement nodes (fact_quads); each entity's
direct fact triples; each relation's declaration; each document node. OUT/graph.sqlite keeps,
per unit, a digest of what it was built from and its quads (N-Quads, compressed). A re-run
rebuilds only the units whose digest changed: their old quads leave the store and their new ones
go in, in one SPARQL update (one transaction). The store then holds exactly the quads a rebuild
would write (tests compare the two as canonical N-Quads).

A crash cannot leave the two out of step: a rebuild removes the state before it starts and puts
the new one in place after the new store; an update marks the state dirty before touching the
store and clean in the transaction that records the new units. A dirty or missing state, another
base IRI or other relation labels, or a change to more than a quarter of the units (of a large
graph), means a rebuild."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby, islice
from operator import attrgetter
from pathlib import Path

from pyoxigraph import Quad, RdfFormat, Store, serialize

from kgbuild.graph.rdf import dataset_quads, entity_quads, fact_quads
from kgbuild.graph.rdf import _document_quads as document_quads
from kgbuild.graph.spool import FactSpool
from kgbuild.graph.store import STORE_DIR
from kgbuild.model import Entity, Fact

STATE_FILE = "graph.sqlite"
# Above this share of changed units (and this many) a rebuild, a sorted bulk load, is faster
# than an update.
REBUILD_SHARE = 0.25
REBUILD_MIN = 500
_BATCH = 2000  # units per state write
# Quads per bulk load: Oxigraph's bulk loader holds what it is given in memory until it writes,
# so one call with a whole graph grows with the corpus (1M quads: 865 MB peak; in calls of 50,000:
# 124 MB, in the same time).
BULK_QUADS = 50_000

Unit = tuple[str, bytes, Callable[[], list[Quad]]]  # (unit id, digest, its quads when asked)


def _digest(value: object) -> bytes:
    return hashlib.blake2b(repr(value).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _lines(quads: list[Quad]) -> list[bytes]:
    return serialize(quads, format=RdfFormat.N_QUADS).splitlines() if quads else []


def _asserted(triples: list[tuple[str, str, str]]) -> list[Fact]:
    """Facts without an extraction behind them: fact_quads writes only their triples and relations."""
    return [Fact(s, r, o, "", "", 0, 0, 0.0, "") for s, r, o in triples]


def graph_units(entities: Iterable[Entity], statements: Iterable[Fact], triples: Iterable[tuple[str, str, str]],
                base: str, labels: dict[str, str]) -> Iterator[Unit]:
    """Every unit of the graph, its digest computed from its inputs, its quads built only on
    demand. `statements` come ordered by document (FactSpool.statements), `triples` (the distinct
    subject, relation, object) by subject."""
    yield "dataset", _digest(base), lambda: list(dataset_quads(base))
    documents: set[str] = set()
    for e in entities:
        documents.update(e.documents)
        digest = _digest((e.key, e.name, e.type, sorted(e.labels), sorted(e.aliases), e.n_mentions,
                          sorted(e.documents), e.why, e.same_as))
        yield "e:" + e.key, digest, lambda e=e: list(entity_quads([e], base, labels, with_documents=False))
    for doc_id, group in groupby(statements, key=attrgetter("document")):
        documents.add(doc_id)
        facts = list(group)
        digest = _digest(sorted((f.subject, f.relation, f.object, f.sentence, f.start, f.end, f.confidence,
                                 f.extractor) for f in facts))
        yield "d:" + doc_id, digest, lambda facts=facts: list(fact_quads(facts, base, labels, parts=("statements",)))
    relations: dict[str, tuple[str, str, str]] = {}  # relation -> a triple that uses it
    for subject, group in groupby(triples, key=lambda t: t[0]):
        rows = list(group)
        for t in rows:
            relations.setdefault(t[1], t)
        yield "t:" + subject, _digest(rows), lambda rows=rows: list(
            fact_quads(_asserted(rows), base, labels, parts=("triples",)))
    for rel in sorted(relations):
        yield "r:" + rel, _digest(rel), lambda t=relations[rel]: list(
            fact_quads(_asserted([t]), base, labels, parts=("relations",)))
    for doc_id in sorted(documents):
        yield "doc:" + doc_id, _digest(doc_id), lambda doc_id=doc_id: list(document_quads(base, doc_id))


def _params(base: str, labels: dict[str, str]) -> str:
    return json.dumps({"base": base, "labels": labels}, sort_keys=True, default=str)


def _open_state(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS units (unit TEXT PRIMARY KEY, digest BLOB, quads BLOB)")
    return db


def write_graph(out: str | Path, entities: list[Entity], facts: FactSpool, base: str,
                labels: dict[str, str]) -> str:
    """Bring OUT/store to the graph of these entities and spooled facts; "updated" when only the
    changed units were rewritten, "rebuilt" when the store was written whole."""
    out = Path(out)
    params = _params(base, labels)
    if update_graph(out, graph_units(entities, facts.statements(), facts.triples(), base, labels), params):
        return "updated"
    rebuild_graph(out, graph_units(entities, facts.statements(), facts.triples(), base, labels), params)
    return "rebuilt"


def rebuild_graph(out: Path, units: Iterable[Unit], params: str) -> None:
    """Write the whole store beside the old one and swap folders, so a run killed while writing
    leaves the previous graph in place, never a half-written one; record the units."""
    state_path, tmp_path = out / STATE_FILE, out / (STATE_FILE + ".tmp")
    state_path.unlink(missing_ok=True)
    tmp_path.unlink(missing_ok=True)
    db = _open_state(tmp_path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    rows: list[tuple[str, bytes, bytes]] = []

    def quads() -> Iterator[Quad]:
        for unit, digest, make in units:
            built = make()
            lines = _lines(built)
            rows.append((unit, digest, zlib.compress(b"\n".join(lines), 1)))
            if len(rows) >= _BATCH:
                db.executemany("INSERT INTO units VALUES (?, ?, ?)", rows)
                rows.clear()
            yield from built

    staging = out / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    store = Store(str(staging / STORE_DIR))
    stream = quads()
    while chunk := list(islice(stream, BULK_QUADS)):
        store.bulk_extend(chunk)
    store.flush()
    store.optimize()
    del store
    db.executemany("INSERT INTO units VALUES (?, ?, ?)", rows)
    db.execute("INSERT INTO meta VALUES ('params', ?), ('dirty', '0')", (params,))
    db.commit()
    db.close()
    current, old = out / STORE_DIR, out / ".store-old"
    if old.exists():
        shutil.rmtree(old)
    if current.exists():
        os.replace(current, old)
    os.replace(staging / STORE_DIR, current)
    os.replace(tmp_path, state_path)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def update_graph(out: Path, units: Iterable[Unit], params: str) -> bool:
    """Rewrite only the changed units in OUT/store; False (nothing touched) when a rebuild is due."""
    state_path = out / STATE_FILE
    if not state_path.is_file() or not (out / STORE_DIR).is_dir():
        return False
    db = _open_state(state_path)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta.get("params") != params or meta.get("dirty") != "0":
            return False
        old = dict(db.execute("SELECT unit, digest FROM units"))
        changed: list[Unit] = []
        seen: set[str] = set()
        for unit in units:
            seen.add(unit[0])
            if old.get(unit[0]) != unit[1]:
                changed.append(unit)
        gone = [u for u in old if u not in seen]
        if len(changed) + len(gone) > max(REBUILD_MIN, REBUILD_SHARE * len(old)):
            return False
        db.execute("UPDATE meta SET value = '1' WHERE key = 'dirty'")
        db.commit()

        removed: list[bytes] = []
        for unit in [u for u, _, _ in changed if u in old] + gone:
            (blob,) = db.execute("SELECT quads FROM units WHERE unit = ?", (unit,)).fetchone()
            removed.extend(line for line in zlib.decompress(blob).split(b"\n") if line)
        new_rows, added = [], []
        for unit, digest, make in changed:
            lines = _lines(make())
            new_rows.append((unit, digest, zlib.compress(b"\n".join(lines), 1)))
            added.extend(lines)
        store = Store(str(out / STORE_DIR))
        update = []  # units share no quad: what a changed unit keeps is deleted, then inserted again
        if removed:
            update.append("DELETE DATA {\n" + b"\n".join(removed).decode() + "\n}")
        if added:
            update.append("INSERT DATA {\n" + b"\n".join(added).decode() + "\n}")
        if update:
            store.update(" ;\n".join(update))  # one transaction
        store.flush()
        del store

        db.executemany("DELETE FROM units WHERE unit = ?", ((u,) for u in gone))
        db.executemany("INSERT OR REPLACE INTO units VALUES (?, ?, ?)", new_rows)
        db.execute("UPDATE meta SET value = '0' WHERE key = 'dirty'")
        db.commit()
        return True
    finally:
        db.close()
