"""Facts on disk while a run goes on: each batch's facts are written to a SQLite file in OUT as
soon as the batch is linked, so a run's memory does not grow with the corpus. At the end, the
cross-document merges are applied in SQL and the statements stream into the store, one extraction
each (the highest-confidence one where an extraction was found twice), as fact_quads would write
them from a list."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import attrgetter
from pathlib import Path

from pyoxigraph import Quad, Store

from kgbuild.graph.rdf import fact_quads
from kgbuild.graph.store import store_path
from kgbuild.model import Fact

SPOOL_FILE = ".facts.sqlite"
_FIELDS = ("subject", "relation", "object", "document", "sentence", "start", "end", "confidence", "extractor")
# one row per statement node: the key of statement_iri, highest confidence first
_STATEMENTS = (f"SELECT subject, relation, object, document, sentence, start, \"end\", MAX(confidence), extractor "
               f"FROM facts GROUP BY subject, relation, object, document, start, extractor ORDER BY document")


class FactSpool:
    """The facts of one run, in OUT/.facts.sqlite (removed by `close`)."""

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / SPOOL_FILE
        self.path.unlink(missing_ok=True)  # left over from a killed run: its facts are redone
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        cols = ", ".join(f'"{f}"' for f in _FIELDS)
        self._db.execute(f"CREATE TABLE facts ({cols})")

    def add(self, facts: Iterable[Fact]) -> None:
        rows = ([getattr(f, name) for name in _FIELDS] for f in facts)
        self._db.executemany(f"INSERT INTO facts VALUES ({', '.join('?' * len(_FIELDS))})", rows)

    def remap(self, remap: dict[str, str]) -> None:
        """Point facts at merged entities; drop facts that became self-loops."""
        if not remap:
            return
        db = self._db
        db.execute("CREATE TEMP TABLE remap (old TEXT PRIMARY KEY, new TEXT NOT NULL)")
        db.executemany("INSERT INTO remap VALUES (?, ?)", remap.items())
        for col in ("subject", "object"):
            db.execute(f"UPDATE facts SET {col} = (SELECT new FROM remap WHERE old = facts.{col}) "
                       f"WHERE {col} IN (SELECT old FROM remap)")
        db.execute("DELETE FROM facts WHERE subject = object")
        db.execute("DROP TABLE remap")

    def counts(self) -> tuple[int, int]:
        """(distinct subject-relation-object facts, extractions)."""
        facts = self._db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT subject, relation, object FROM facts)")
        return facts.fetchone()[0], self._db.execute("SELECT COUNT(*) FROM facts").fetchone()[0]

    def triples(self) -> Iterator[tuple[str, str, str]]:
        """The distinct (subject, relation, object), ordered by subject."""
        yield from self._db.execute("SELECT DISTINCT subject, relation, object FROM facts ORDER BY 1, 2, 3")

    def statement_rows(self) -> Iterator[tuple]:
        """One row per statement node, ordered by document: the fields of Fact, in order."""
        yield from self._db.execute(_STATEMENTS)

    def statements(self) -> Iterator[Fact]:
        for row in self.statement_rows():
            yield Fact(*row)

    def quads(self, base: str, relation_labels: dict[str, str]) -> Iterator[Quad]:
        """The quads of every fact, one document's statements at a time: memory holds one
        document's facts. A triple or relation label found in several documents is written once
        per document, and the store keeps it once."""
        for _, facts in groupby(self.statements(), key=attrgetter("document")):
            yield from fact_quads(facts, base, relation_labels)

    def close(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)


def extend_store(out: str | Path, quads: Iterable[Quad]) -> None:
    """Add quads to the store written by write_graph_data, in bulk."""
    store = Store(str(store_path(out)))
    store.bulk_extend(quads)
    store.flush()
    store.optimize()
