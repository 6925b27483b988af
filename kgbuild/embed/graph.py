"""What the embedding stage reads from a run's store: the entity-to-entity facts of the default
graph (no labels, types, provenance or predictions), and the names that let a user point at an
entity or a relation."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import DefaultGraph, Literal, NamedNode, Store

from kgbuild.graph.rdf import (
    CLASS_TYPE,
    OWL_OBJECT_PROPERTY,
    RDF_OBJECT,
    RDF_PREDICATE,
    RDF_SUBJECT,
    RDF_TYPE,
    RDFS_LABEL,
    SKOS_ALT_LABEL,
    ontology,
    relation_id,
)
from kgbuild.graph.store import as_store, graph_base


@dataclass
class GraphTriples:
    """The facts of one graph as IRIs, with the names people use for them."""

    base: str  # the graph's base IRI
    triples: list[tuple[str, str, str]]  # distinct (head, relation, tail) IRIs, sorted
    entity_names: dict[str, list[str]] = field(default_factory=dict)  # entity IRI -> [rdfs:label, *skos:altLabel]
    relation_labels: dict[str, str] = field(default_factory=dict)  # relation IRI -> rdfs:label
    relation_ids: dict[str, str] = field(default_factory=dict)  # relation IRI -> id ("P19")
    # read_graph(details=True) only: each typed entity's kgbuild type ("PER", "LOC", ...), and each
    # extracted fact's best extraction confidence (a fact absent here was asserted: `kgbuild load`)
    entity_types: dict[str, str] = field(default_factory=dict)
    confidence: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def label(self, iri: str) -> str:
        """The display name of an entity or relation IRI (the IRI itself when it has none)."""
        names = self.entity_names.get(iri)
        if names:
            return names[0]
        return self.relation_labels.get(iri, iri)


def read_graph(out: str | Path | Store, details: bool = False) -> GraphTriples:
    """Every fact between two entities in the default graph of `out`'s store; with `details`,
    also the entities' types and the facts' extraction confidences (what question answering
    weighs answers by).

    Only the default graph is read: predictions written to a named graph never feed back into
    training."""
    store = as_store(out)
    base = graph_base(store)
    entity_prefix = base + "entity/"
    default = DefaultGraph()

    relations: dict[str, str] = {}
    for quad in store.quads_for_pattern(None, RDF_TYPE, OWL_OBJECT_PROPERTY, default):
        if isinstance(quad.subject, NamedNode):
            relations[quad.subject.value] = relation_id(base, quad.subject.value)

    triples: set[tuple[str, str, str]] = set()
    for prop in relations:
        for quad in store.quads_for_pattern(None, NamedNode(prop), None, default):
            s, o = quad.subject, quad.object
            if (isinstance(s, NamedNode) and isinstance(o, NamedNode)
                    and s.value.startswith(entity_prefix) and o.value.startswith(entity_prefix)):
                triples.add((s.value, prop, o.value))

    labels: dict[str, str] = {}
    for quad in store.quads_for_pattern(None, RDFS_LABEL, None, default):
        if isinstance(quad.object, Literal):
            labels.setdefault(quad.subject.value, quad.object.value)
    aliases: dict[str, list[str]] = defaultdict(list)
    for quad in store.quads_for_pattern(None, SKOS_ALT_LABEL, None, default):
        if isinstance(quad.object, Literal) and quad.subject.value.startswith(entity_prefix):
            aliases[quad.subject.value].append(quad.object.value)

    entity_names = {
        iri: [labels[iri], *sorted(aliases.get(iri, []))] if iri in labels else sorted(aliases.get(iri, []))
        for iri in set(labels) | set(aliases)
        if iri.startswith(entity_prefix)
    }
    graph = GraphTriples(
        base=base,
        triples=sorted(triples),
        entity_names=entity_names,
        relation_labels={iri: labels.get(iri, rel_id) for iri, rel_id in relations.items()},
        relation_ids=relations,
    )
    if details:
        graph.entity_types = _entity_types(store, base)
        graph.confidence = _confidences(store, base, triples)
    return graph


def _entity_types(store: Store, base: str) -> dict[str, str]:
    classes = {ontology(base) + name: type_ for name, type_ in CLASS_TYPE.items()}
    entity_prefix = base + "entity/"
    types = {}
    for iri, type_ in classes.items():
        for quad in store.quads_for_pattern(None, RDF_TYPE, NamedNode(iri), DefaultGraph()):
            if quad.subject.value.startswith(entity_prefix):
                types[quad.subject.value] = type_
    return types


def _confidences(store: Store, base: str, triples: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], float]:
    """Each fact's highest confidence over its statements (one per extraction)."""
    default = DefaultGraph()
    parts: dict[str, dict[str, str]] = defaultdict(dict)
    for name, predicate in (("s", RDF_SUBJECT), ("p", RDF_PREDICATE), ("o", RDF_OBJECT)):
        for quad in store.quads_for_pattern(None, predicate, None, default):
            parts[quad.subject.value][name] = quad.object.value
    best: dict[tuple[str, str, str], float] = {}
    for quad in store.quads_for_pattern(None, NamedNode(ontology(base) + "confidence"), None, default):
        part = parts.get(quad.subject.value)
        if part is None or len(part) < 3 or not isinstance(quad.object, Literal):
            continue
        key = (part["s"], part["p"], part["o"])
        if key in triples:
            best[key] = max(best.get(key, 0.0), float(quad.object.value))
    return best
