"""The same triples as an rdflib graph (for RDF tooling) and as a networkx MultiDiGraph (for
graph algorithms and embeddings), both read from the run's store."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import networkx as nx
import rdflib
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from pyoxigraph import BlankNode, DefaultGraph, Literal, NamedNode, Store, Triple

from kgbuild.graph.rdf import (
    CLASS_TYPE,
    OWL_OBJECT_PROPERTY,
    PREFIXES,
    RDF,
    RDF_OBJECT,
    RDF_PREDICATE,
    RDF_SUBJECT,
    RDF_TYPE,
    RDFS_LABEL,
    SCHEMA,
    XSD,
    kg,
    ontology,
    relation_id,
)
from kgbuild.graph.store import as_store, graph_base

_XSD_STRING = XSD + "string"
_RDF_LANG_STRING = RDF + "langString"


def to_rdflib(out: str | Path | Store) -> rdflib.Graph:
    """Every triple of the store as an rdflib graph.

    A plain Graph while the store holds only the default graph; an rdflib Dataset (itself a
    Graph, whose triples() sees every graph) once named graphs exist, so they are not lost."""
    store = as_store(out)
    base = graph_base(store)
    named = list(store.named_graphs())
    graph: rdflib.Graph
    if named:
        graph = rdflib.Dataset(default_union=True)
    else:
        graph = rdflib.Graph()
    graph.bind("kg", ontology(base))
    for prefix, iri in PREFIXES.items():
        graph.bind(prefix, iri)

    cache: dict[Any, rdflib.term.Node] = {}

    def term(t: Any) -> rdflib.term.Node:
        node = cache.get(t)
        if node is None:
            node = cache[t] = _rdflib_term(t)
        return node

    if named:
        contexts = {None: graph.graph(DATASET_DEFAULT_GRAPH_ID)}
        for quad in store:
            g = None if isinstance(quad.graph_name, DefaultGraph) else quad.graph_name
            context = contexts.get(g)
            if context is None:
                context = contexts[g] = graph.graph(term(g))
            context.add((term(quad.subject), term(quad.predicate), term(quad.object)))
    else:
        add = graph.add
        for quad in store.quads_for_pattern(None, None, None, DefaultGraph()):
            add((term(quad.subject), term(quad.predicate), term(quad.object)))
    return graph


def _rdflib_term(t: Any) -> rdflib.term.Node:
    if isinstance(t, NamedNode):
        return rdflib.URIRef(t.value)
    if isinstance(t, BlankNode):
        return rdflib.BNode(t.value)
    if isinstance(t, Literal):
        if t.language:
            return rdflib.Literal(t.value, lang=t.language)
        datatype = t.datatype.value
        # rdflib spells a plain string without a datatype; with one it would not compare equal
        # to the same string parsed from a file.
        if datatype in (_XSD_STRING, _RDF_LANG_STRING):
            return rdflib.Literal(t.value)
        return rdflib.Literal(t.value, datatype=rdflib.URIRef(datatype))
    if isinstance(t, Triple):
        raise ValueError("RDF-star quoted triples have no rdflib equivalent")
    raise TypeError(f"not an RDF term: {t!r}")


def to_networkx(out: str | Path | Store) -> nx.MultiDiGraph:
    """Entities as nodes, facts as edges keyed by relation IRI.

    Node attributes: label, type (PER, ORG, ...), schema (schema.org class IRIs, space
    separated), mentions. Edge attributes: relation (id, e.g. "P19"), label, count (statements
    behind the fact) and confidence (the best of them; absent for a fact with no statement).
    Every value is a str, int or float, so the graph writes to GraphML as it is."""
    store = as_store(out)
    base = graph_base(store)
    kg_ns = ontology(base)

    nodes: dict[str, dict[str, Any]] = defaultdict(dict)
    schema: dict[str, set[str]] = defaultdict(set)
    relations: dict[str, str] = {}
    for quad in store.quads_for_pattern(None, RDF_TYPE, None, None):
        subject, cls = quad.subject, quad.object
        if not isinstance(subject, NamedNode) or not isinstance(cls, NamedNode):
            continue
        iri = cls.value
        if iri.startswith(kg_ns) and iri[len(kg_ns) :] in CLASS_TYPE:
            nodes[subject.value]["type"] = CLASS_TYPE[iri[len(kg_ns) :]]
        elif iri.startswith(SCHEMA):
            schema[subject.value].add(iri)
        elif cls == OWL_OBJECT_PROPERTY:
            relations.setdefault(subject.value, relation_id(base, subject.value))

    labels: dict[str, str] = {}
    for quad in store.quads_for_pattern(None, RDFS_LABEL, None, None):
        if isinstance(quad.object, Literal):
            labels.setdefault(quad.subject.value, quad.object.value)
    for quad in store.quads_for_pattern(None, kg(base, "mentionCount"), None, None):
        if quad.subject.value in nodes and isinstance(quad.object, Literal):
            nodes[quad.subject.value]["mentions"] = int(quad.object.value)
    for iri, attrs in nodes.items():
        if iri in labels:
            attrs["label"] = labels[iri]
        if schema.get(iri):
            attrs["schema"] = " ".join(sorted(schema[iri]))

    # Statements per (subject, predicate, object): how many, and the best confidence.
    parts: dict[str, dict[str, str]] = defaultdict(dict)
    for role, predicate in (("s", RDF_SUBJECT), ("p", RDF_PREDICATE), ("o", RDF_OBJECT)):
        for quad in store.quads_for_pattern(None, predicate, None, None):
            parts[quad.subject.value][role] = quad.object.value
    confidence: dict[str, float] = {}
    for quad in store.quads_for_pattern(None, kg(base, "confidence"), None, None):
        if isinstance(quad.object, Literal):
            value = float(quad.object.value)
            statement = quad.subject.value
            confidence[statement] = max(value, confidence.get(statement, value))
    evidence: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for statement, spo in parts.items():
        if len(spo) == 3:
            evidence[(spo["s"], spo["p"], spo["o"])].append(confidence.get(statement, float("nan")))

    graph = nx.MultiDiGraph()
    graph.graph["base"] = base
    graph.add_nodes_from(nodes.items())
    for prop, rel_id in relations.items():
        seen: set[tuple[str, str]] = set()  # a fact can sit in more than one named graph
        for quad in store.quads_for_pattern(None, NamedNode(prop), None, None):
            subject, obj = quad.subject, quad.object
            if not (isinstance(subject, NamedNode) and isinstance(obj, NamedNode)):
                continue
            if (subject.value, obj.value) in seen:
                continue
            seen.add((subject.value, obj.value))
            attrs: dict[str, Any] = {"relation": rel_id, "label": labels.get(prop, rel_id)}
            scores = evidence.get((subject.value, prop, obj.value), [])
            attrs["count"] = len(scores)
            known = [s for s in scores if s == s]  # drop NaN: a statement without a score
            if known:
                attrs["confidence"] = max(known)
            graph.add_edge(subject.value, obj.value, key=prop, **attrs)
    return graph
