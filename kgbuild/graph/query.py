"""SPARQL over the run's store, and the result formats `kgbuild query` prints: a table for
people, and the W3C SPARQL results formats (JSON, CSV, TSV) for programs."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyoxigraph import (
    BlankNode,
    Literal,
    NamedNode,
    Quad,
    QueryBoolean,
    QueryResultsFormat,
    QuerySolutions,
    QueryTriples,
    Store,
    Triple,
    parse_query_results,
)

from kgbuild.errors import GraphError
from kgbuild.graph.rdf import PREFIXES, XSD, ontology
from kgbuild.graph.store import as_store, graph_base

RESULT_FORMATS = ("table", "json", "csv", "tsv")

_RESULTS_FORMAT = {
    "json": QueryResultsFormat.JSON,
    "csv": QueryResultsFormat.CSV,
    "tsv": QueryResultsFormat.TSV,
}
_INTEGER = {
    XSD + name
    for name in (
        "integer", "int", "long", "short", "byte", "nonNegativeInteger", "positiveInteger",
        "nonPositiveInteger", "negativeInteger", "unsignedLong", "unsignedInt",
        "unsignedShort", "unsignedByte",
    )
}  # fmt: skip
_FLOAT = {XSD + "double", XSD + "float"}


@dataclass
class QueryResult:
    """The answer to one SPARQL query; which fields are filled depends on the query form."""

    kind: str  # "select", "ask" or "graph" (CONSTRUCT and DESCRIBE)
    columns: list[str] = field(default_factory=list)  # SELECT variables, in query order
    # SELECT rows as Python values: IRIs as str, numbers and booleans as int/float/Decimal/bool,
    # other literals as their lexical str, blank nodes as "_:id", unbound as None
    rows: list[list[Any]] = field(default_factory=list)
    boolean: bool | None = None  # the ASK answer
    triples: list[Triple] = field(default_factory=list)  # CONSTRUCT / DESCRIBE output
    # SELECT and ASK results as W3C JSON: lossless (keeps IRI vs string, datatypes, languages), and what
    # format_result re-serializes from, so the formats come from Oxigraph's own writers
    raw: bytes = field(default=b"", repr=False, compare=False)

    def __len__(self) -> int:
        if self.kind == "select":
            return len(self.rows)
        if self.kind == "graph":
            return len(self.triples)
        return 1


def query(out: str | Path | Store, sparql: str) -> QueryResult:
    """Run one SPARQL query over every graph of the store (named graphs included).

    Common prefixes (rdf, rdfs, xsd, owl, skos, prov, schema, wd, wdt, void, and kg for this
    graph's ontology) need no PREFIX line; a query's own PREFIX wins."""
    answer = run_sparql(as_store(out), sparql)
    try:
        if isinstance(answer, QueryBoolean):
            raw = answer.serialize(format=QueryResultsFormat.JSON)
            return QueryResult(kind="ask", boolean=bool(answer), raw=raw)
        if isinstance(answer, QuerySolutions):
            raw = answer.serialize(format=QueryResultsFormat.JSON)
            solutions = parse_query_results(raw, format=QueryResultsFormat.JSON)
            columns = [v.value for v in solutions.variables]
            rows = [[python_value(s[i]) for i in range(len(columns))] for s in solutions]
            return QueryResult(kind="select", columns=columns, rows=rows, raw=raw)
        return QueryResult(kind="graph", columns=["subject", "predicate", "object"], triples=list(answer))
    except OSError as err:  # Oxigraph evaluates lazily: an error can surface while reading the answer
        raise GraphError(f"the query failed: {_one_line(err)}") from None


def run_sparql(store: Store, sparql: str) -> QueryBoolean | QuerySolutions | QueryTriples:
    """Oxigraph's own answer to one SPARQL query over every graph of `store` (named graphs
    included), with kgbuild's prefixes (see `query`), for callers that serialize it themselves
    (`kgbuild serve`). A syntax error is a GraphError."""
    try:
        return store.query(sparql, prefixes=sparql_prefixes(store), use_default_graph_as_union=True)
    except SyntaxError as err:
        raise GraphError(
            f"SPARQL syntax error: {_one_line(err)}",
            hint="check the query against https://www.w3.org/TR/sparql11-query/",
        ) from None
    except OSError as err:
        raise GraphError(f"the query failed: {_one_line(err)}") from None


def sparql_prefixes(store: Store) -> dict[str, str]:
    """The prefixes a query needs no PREFIX line for: the common ones and kg, this graph's ontology."""
    return {**PREFIXES, "kg": ontology(graph_base(store))}


def python_value(term: Any) -> Any:
    """A query result term as the plain Python value a notebook wants."""
    if term is None:
        return None
    if isinstance(term, NamedNode):
        return term.value
    if isinstance(term, BlankNode):
        return "_:" + term.value
    if isinstance(term, Literal):
        datatype = term.datatype.value
        try:
            if datatype in _INTEGER:
                return int(term.value)
            if datatype in _FLOAT:
                return float(term.value)
            if datatype == XSD + "decimal":
                return Decimal(term.value)
            if datatype == XSD + "boolean":
                return term.value in ("true", "1")
        except ValueError:
            pass  # an ill-typed literal keeps its lexical form
        return term.value
    return str(term)


def format_result(result: QueryResult, fmt: str, width: int = 120) -> str:
    """`result` as text: "table" (for a terminal, `width` columns), or "json", "csv", "tsv" in
    the W3C SPARQL 1.1 results formats. CONSTRUCT output is written as a subject / predicate /
    object result set, so every format works for every query form."""
    if fmt not in RESULT_FORMATS:
        raise GraphError(f"unknown result format {fmt!r}", hint=f"use one of: {', '.join(RESULT_FORMATS)}")
    if fmt == "table":
        return _table(result, width)
    results_format = _RESULTS_FORMAT[fmt]
    if result.kind == "graph":
        return _triples_as_solutions(result.triples).serialize(format=results_format).decode()
    if fmt == "json":
        return result.raw.decode()
    # For ASK, Oxigraph writes a bare "true" / "false" as CSV and TSV.
    parsed = parse_query_results(result.raw, format=QueryResultsFormat.JSON)
    return parsed.serialize(format=results_format).decode()


def _triples_as_solutions(triples: list[Triple]) -> QuerySolutions:
    # Oxigraph has no constructor for result sets; a throwaway in-memory store makes one.
    store = Store()
    store.extend(Quad(t.subject, t.predicate, t.object) for t in triples)
    return store.query(
        "SELECT ?subject ?predicate ?object WHERE { ?subject ?predicate ?object }"
    )


def _table(result: QueryResult, width: int) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if result.kind == "ask":
        return ("yes" if result.boolean else "no") + "\n"
    if result.kind == "graph":
        columns = result.columns
        rows = [[t.subject.value, t.predicate.value, _literal_text(t.object)] for t in result.triples]
    else:
        columns, rows = result.columns, result.rows
    table = Table(*columns, show_lines=False)
    for row in rows:
        # Text, not str: rich would read "[...]" in a literal as markup.
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    buffer = io.StringIO()
    # force_jupyter=False: inside a notebook rich would otherwise display the table instead of
    # writing it to the buffer
    Console(file=buffer, width=width, color_system=None, legacy_windows=False,
            force_jupyter=False, force_terminal=False).print(table)
    noun = "row" if len(rows) == 1 else "rows"
    return buffer.getvalue() + f"{len(rows)} {noun}\n"


def _literal_text(term: Any) -> str:
    return term.value if isinstance(term, (NamedNode, Literal, BlankNode)) else str(term)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
