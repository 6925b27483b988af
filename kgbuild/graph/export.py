"""Export the run's graph to a file, keyed by format: RDF formats come from Oxigraph's own
writers, GraphML from the networkx view. A file is written beside its target and renamed into
place, so an interrupted export never leaves half a file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import networkx as nx
from pyoxigraph import DefaultGraph, RdfFormat, Store, serialize

from kgbuild.errors import GraphError
from kgbuild.graph.rdf import PREFIXES, ontology
from kgbuild.graph.store import as_store, graph_base
from kgbuild.graph.views import to_networkx

_UNION = "CONSTRUCT { ?s ?p ?o } WHERE { SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }"


def _prefixes(store: Store) -> dict[str, str]:
    return {**PREFIXES, "kg": ontology(graph_base(store))}


def _triples(rdf_format: RdfFormat, prefixes: bool) -> Callable[[Store, Path], None]:
    """A writer for a format without named graphs: the default graph, or the union of every
    graph once named graphs exist, so predicted triples are not silently dropped."""

    def write(store: Store, path: Path) -> None:
        extra = {"prefixes": _prefixes(store)} if prefixes else {}
        if any(True for _ in store.named_graphs()):
            triples = store.query(_UNION, use_default_graph_as_union=True)
            serialize(triples, str(path), rdf_format, **extra)
        else:
            store.dump(str(path), rdf_format, from_graph=DefaultGraph(), **extra)

    return write


def _quads(rdf_format: RdfFormat) -> Callable[[Store, Path], None]:
    """A writer for a format with named graphs: the whole dataset."""

    def write(store: Store, path: Path) -> None:
        store.dump(str(path), rdf_format)

    return write


def _graphml(store: Store, path: Path) -> None:
    nx.write_graphml(to_networkx(store), str(path))


WRITERS: dict[str, Callable[[Store, Path], None]] = {
    "nt": _triples(RdfFormat.N_TRIPLES, prefixes=False),
    "nq": _quads(RdfFormat.N_QUADS),
    "ttl": _triples(RdfFormat.TURTLE, prefixes=True),
    # Oxigraph 0.5 writes JSON-LD itself (expanded form, named graphs as @graph blocks).
    "jsonld": _quads(RdfFormat.JSON_LD),
    "graphml": _graphml,
}
EXPORT_FORMATS = tuple(WRITERS)


def write_graph(out: str | Path | Store, path: str | Path, format: str | None = None) -> Path:
    """Write the graph of output folder `out` to `path` in `format` (one of EXPORT_FORMATS; None:
    taken from the file extension). Returns the path written."""
    path = Path(path)
    fmt = format or path.suffix.lstrip(".").lower()
    writer = WRITERS.get(fmt)
    if writer is None:
        raise GraphError(
            f"unknown export format {fmt!r}" if fmt else f"no export format given for {path}",
            hint=f"use one of: {', '.join(EXPORT_FORMATS)}",
        )
    store = as_store(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name rather than mkstemp: the writer creates the file, so it gets the usual
    # permissions instead of mkstemp's owner-only ones.
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        writer(store, tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise GraphError(f"cannot write {path}: {' '.join(str(err).split())}") from None
        raise
    return path


def canonical_nquads(out: str | Path | Store) -> list[str]:
    """Every quad of the graph as sorted N-Quads lines: two graphs are the same graph exactly
    when these lists are equal (kgbuild mints no blank nodes)."""
    return sorted(as_store(out).dump(format=RdfFormat.N_QUADS).decode("utf-8").splitlines())
