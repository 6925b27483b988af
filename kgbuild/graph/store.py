"""The run's persistent RDF store: an embedded Oxigraph database in OUT/store that the graph
stage writes once per run and that queries, views and exports read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from pyoxigraph import Store

from kgbuild.errors import GraphError, StageError
from kgbuild.graph.rdf import RDF_TYPE, VOID_DATASET, dataset_quads, entity_quads, fact_quads
from kgbuild.model import Document, Entity, Fact, RelationMention

STORE_DIR = "store"
# Used only when a store carries no void:Dataset node (one not written by write_graph_data).
DEFAULT_BASE = "http://kgbuild.org/kg/"


@dataclass
class GraphStats:
    """What write_graph_data put in the store."""

    entities: int  # entities written
    facts: int  # distinct (subject, relation, object) triples
    statements: int  # extractions behind them (one statement node each)
    quads: int  # quads in the store afterwards


def store_path(out: str | Path) -> Path:
    return Path(out) / STORE_DIR


def open_store(out: str | Path, read_only: bool = False) -> Store:
    """Open the store of output folder `out`.

    Read-only opens can sit beside each other (a notebook and `kgbuild query`), but not beside
    a process that is writing the store."""
    path = store_path(out)
    if not path.is_dir():
        raise GraphError(f"no graph in {out}", hint="run `kgbuild run CORPUS -o OUT` first")
    try:
        return Store.read_only(str(path)) if read_only else Store(str(path))
    except OSError as err:
        raise GraphError(
            f"cannot open the graph store {path}: {_one_line(err)}",
            hint="close other programs using this output folder, or re-run to rebuild it",
        ) from None


def write_graph_data(
    out: str | Path,
    entities: Iterable[Entity],
    facts: Iterable[Fact],
    base: str,
    relation_labels: dict[str, str] | None = None,
) -> GraphStats:
    """Replace the graph in OUT/store with these entities and facts.

    The whole store is replaced, not merged: a graph keeps nothing from an earlier run whose
    entities may have been linked differently."""
    entities = list(entities)
    facts = list(facts)
    path = store_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        store = Store(str(path))
    except OSError as err:
        raise GraphError(
            f"cannot open the graph store {path}: {_one_line(err)}",
            hint="close other programs using this output folder",
        ) from None
    store.clear()
    quads = chain(
        dataset_quads(base),
        entity_quads(entities, base, relation_labels),
        fact_quads(facts, base, relation_labels),
    )
    # bulk_extend writes sorted files straight to disk: far faster than transactions for a
    # whole graph, and it does not hold the graph in memory twice.
    store.bulk_extend(quads)
    store.flush()
    store.optimize()
    return GraphStats(
        entities=len(entities),
        facts=len({(f.subject, f.relation, f.object) for f in facts}),
        statements=len(
            {(f.subject, f.relation, f.object, f.document, f.start, f.extractor) for f in facts if f.document}
        ),
        quads=len(store),
    )


def graph_base(store: Store) -> str:
    """The base IRI the graph in `store` was written with."""
    for quad in store.quads_for_pattern(None, RDF_TYPE, VOID_DATASET, None):
        return quad.subject.value
    return DEFAULT_BASE


def facts_from_documents(docs: Iterable[Document]) -> list[Fact]:
    """Relation mentions whose head and tail were linked to two different entities, as facts
    carrying their evidence sentence and its offsets."""
    facts = []
    for doc in docs:
        for i, rel in enumerate(doc.relations):
            if not (0 <= rel.head < len(doc.mentions) and 0 <= rel.tail < len(doc.mentions)):
                raise StageError(
                    f"document {doc.id}: relation {i} points at mention {rel.head} or {rel.tail}, "
                    f"but the document has {len(doc.mentions)} mentions",
                    hint="the relations stage must index into Document.mentions",
                )
            head = doc.mentions[rel.head].entity
            tail = doc.mentions[rel.tail].entity
            if head is None or tail is None or head == tail:
                continue
            if not doc.sentences:
                # Nothing split it into sentences: the whole text is the evidence.
                start, end = 0, len(doc.text)
            elif 0 <= rel.sentence < len(doc.sentences):
                start, end = _evidence(doc, rel)
            else:
                raise StageError(
                    f"document {doc.id}: relation {i} cites sentence {rel.sentence}, "
                    f"but the document has {len(doc.sentences)} sentences",
                    hint="RelationMention.sentence must index into Document.sentences",
                )
            facts.append(
                Fact(
                    subject=head,
                    relation=rel.relation,
                    object=tail,
                    document=doc.id,
                    sentence=doc.text[start:end],
                    start=start,
                    end=end,
                    confidence=rel.confidence,
                    extractor=rel.extractor,
                )
            )
    return facts


def _evidence(doc: Document, rel: RelationMention) -> tuple[int, int]:
    """Offsets of where a relation mention is stated: its sentence, or, when its head and tail
    mentions sit in two sentences (a cross-sentence relation), from the first of them to the end
    of the last, so that the evidence names both."""
    sents = doc.sentences
    cited = {rel.sentence} | {doc.mentions[m].sentence for m in (rel.head, rel.tail)
                              if 0 <= doc.mentions[m].sentence < len(sents)}
    return sents[min(cited)].start, sents[max(cited)].end


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def as_store(source: str | Path | Store) -> Store:
    """`source` itself when it is an open store, else the store of output folder `source`,
    opened read-only. Lets a server keep one store open and a notebook pass a path."""
    if isinstance(source, Store):
        return source
    return open_store(source, read_only=True)
