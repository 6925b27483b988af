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
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

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
# Threads bulk-loading chunks at once: one Oxigraph bulk load of a chunk this size runs on one
# core, and two run side by side into the same store (each writes its own sorted files).
LOADERS = 2

# A unit's quads are built from a spec, (kind, payload) of plain picklable values, so that worker
# processes can build them (build_units) while the main process loads what they return.
Spec = tuple[str, Any]
Unit = tuple[str, bytes, Spec]  # (unit id, digest, what its quads are built from)
Built = tuple[str, bytes, bytes, bytes]  # (unit id, digest, its N-Quads, the same compressed)
_CHUNK_WEIGHT = 4000  # about this many quads per chunk of units sent to a worker


def _digest(value: object) -> bytes:
    return hashlib.blake2b(repr(value).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _lines(quads: list[Quad]) -> list[bytes]:
    return serialize(quads, format=RdfFormat.N_QUADS).splitlines() if quads else []


def _asserted(triples: list[tuple[str, str, str]]) -> list[Fact]:
    """Facts without an extraction behind them: fact_quads writes only their triples and relations."""
    return [Fact(s, r, o, "", "", 0, 0, 0.0, "") for s, r, o in triples]


def unit_quads(spec: Spec, base: str) -> list[Quad]:
    """The quads of one unit."""
    kind, payload = spec
    if kind == "entity":
        return list(entity_quads([payload], base, with_documents=False))
    if kind == "statements":  # one document's spooled statement rows
        return list(fact_quads([Fact(*row) for row in payload], base, parts=("statements",)))
    if kind == "triples":  # one subject's distinct (subject, relation, object)
        return list(fact_quads(_asserted(payload), base, parts=("triples",)))
    if kind == "relation":  # (a triple that uses it, its label or labels)
        triple, names = payload
        return list(fact_quads(_asserted([triple]), base, {triple[1]: names}, parts=("relations",)))
    if kind == "document":
        return list(document_quads(base, payload))
    if kind == "dataset":
        return list(dataset_quads(base))
    raise ValueError(f"unknown graph unit kind {kind!r}")


def build_units(units: list[Unit], base: str) -> list[Built]:
    """Each unit's N-Quads (one line per quad) as they go to the store and, compressed, to the
    state; in order. Run in a worker process or in place."""
    built = []
    for unit, digest, spec in units:
        nquads = b"\n".join(_lines(unit_quads(spec, base)))
        built.append((unit, digest, nquads, zlib.compress(nquads, 1)))
    return built


def graph_units(entities: Iterable[Entity], statements: Iterable[tuple], triples: Iterable[tuple[str, str, str]],
                base: str, labels: dict[str, str]) -> Iterator[Unit]:
    """Every unit of the graph with its digest, computed from its inputs. `statements` are the
    spooled statement rows ordered by document (FactSpool.statement_rows), `triples` (the distinct
    subject, relation, object) ordered by subject."""
    yield "dataset", _digest(base), ("dataset", None)
    documents: set[str] = set()
    for e in entities:
        documents.update(e.documents)
        digest = _digest((e.key, e.name, e.type, sorted(e.labels), sorted(e.aliases), e.n_mentions,
                          sorted(e.documents), e.why, e.same_as))
        yield "e:" + e.key, digest, ("entity", e)
    for doc_id, group in groupby(statements, key=itemgetter(3)):
        documents.add(doc_id)
        rows = list(group)
        # subject, relation, object, sentence, start, end, confidence, extractor
        digest = _digest(sorted((r[0], r[1], r[2], r[4], r[5], r[6], r[7], r[8]) for r in rows))
        yield "d:" + doc_id, digest, ("statements", rows)
    relations: dict[str, tuple[str, str, str]] = {}  # relation -> a triple that uses it
    for subject, group in groupby(triples, key=itemgetter(0)):
        rows = list(group)
        for t in rows:
            relations.setdefault(t[1], t)
        yield "t:" + subject, _digest(rows), ("triples", rows)
    for rel in sorted(relations):
        yield "r:" + rel, _digest(rel), ("relation", (relations[rel], labels.get(rel) or rel))
    for doc_id in sorted(documents):
        yield "doc:" + doc_id, _digest(doc_id), ("document", doc_id)


def _weight(spec: Spec) -> int:
    kind, payload = spec
    if kind == "entity":
        return 6 + len(payload.documents) + len(payload.aliases) + len(payload.why)
    if kind == "statements":
        return 10 * len(payload)
    if kind == "triples":
        return len(payload)
    return 2


def _chunks(units: Iterable[Unit]) -> Iterator[list[Unit]]:
    """Units in chunks of about _CHUNK_WEIGHT quads."""
    chunk: list[Unit] = []
    weight = 0
    for unit in units:
        chunk.append(unit)
        weight += _weight(unit[2])
        if weight >= _CHUNK_WEIGHT:
            yield chunk
            chunk, weight = [], 0
    if chunk:
        yield chunk


def _params(base: str, labels: dict[str, str]) -> str:
    return json.dumps({"base": base, "labels": labels}, sort_keys=True, default=str)


def _open_state(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS units (unit TEXT PRIMARY KEY, digest BLOB, quads BLOB)")
    return db


def write_graph(out: str | Path, entities: list[Entity], facts: FactSpool, base: str,
                labels: dict[str, str], build: Builder | None = None) -> str:
    """Bring OUT/store to the graph of these entities and spooled facts; "updated" when only the
    changed units were rewritten, "rebuilt" when the store was written whole. `build` maps chunks
    of units to their built quads, in order (a worker pool's; default: in this process)."""
    out = Path(out)
    params = _params(base, labels)
    if update_graph(out, graph_units(entities, facts.statement_rows(), facts.triples(), base, labels), params, base):
        return "updated"
    rebuild_graph(out, graph_units(entities, facts.statement_rows(), facts.triples(), base, labels), params, base,
                  build)
    return "rebuilt"


# maps chunks of units to each chunk's build_units result, in order
Builder = Callable[[Iterable[list[Unit]], str], Iterator[list[Built]]]


def build_here(chunks: Iterable[list[Unit]], base: str) -> Iterator[list[Built]]:
    return (build_units(chunk, base) for chunk in chunks)


def rebuild_graph(out: Path, units: Iterable[Unit], params: str, base: str, build: Builder | None = None) -> None:
    """Write the whole store beside the old one and swap folders, so a run killed while writing
    leaves the previous graph in place, never a half-written one; record the units.

    The units' quads are built in chunks by `build` (worker processes, when there are) while this
    process records them and LOADERS threads bulk-load their N-Quads into the store (Oxigraph
    parses and writes without holding the GIL), so building, recording and loading overlap."""
    state_path, tmp_path = out / STATE_FILE, out / (STATE_FILE + ".tmp")
    state_path.unlink(missing_ok=True)
    tmp_path.unlink(missing_ok=True)
    db = _open_state(tmp_path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")

    staging = out / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    store = Store(str(staging / STORE_DIR))
    rows: list[tuple[str, bytes, bytes]] = []
    lines: list[bytes] = []
    n_lines = 0
    loading: deque[Future] = deque()
    with ThreadPoolExecutor(LOADERS, thread_name_prefix="kgbuild-load") as loader:

        def load(data: bytes) -> None:
            # lenient: no IRI re-validation, the quads were built and serialized by pyoxigraph itself
            loading.append(loader.submit(store.bulk_load, data, RdfFormat.N_QUADS, lenient=True))
            while len(loading) > 2 * LOADERS:  # at most two chunks of N-Quads per loader in memory
                loading.popleft().result()

        for built in (build or build_here)(_chunks(units), base):
            for unit, digest, nquads, packed in built:
                rows.append((unit, digest, packed))
                if nquads:
                    lines.append(nquads)
                    n_lines += nquads.count(b"\n") + 1
                    if n_lines >= BULK_QUADS:
                        load(b"\n".join(lines))
                        lines, n_lines = [], 0
            if len(rows) >= _BATCH:
                db.executemany("INSERT INTO units VALUES (?, ?, ?)", rows)
                rows.clear()
        if lines:
            load(b"\n".join(lines))
        while loading:
            loading.popleft().result()
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


def update_graph(out: Path, units: Iterable[Unit], params: str, base: str) -> bool:
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
        for unit, digest, nquads, packed in build_units(changed, base):
            new_rows.append((unit, digest, packed))
            if nquads:
                added.append(nquads)
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
