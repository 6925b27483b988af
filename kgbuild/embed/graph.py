"""What the embedding stage reads from a run's store: the entity-to-entity facts of the default
graph (no labels, types, provenance or predictions), and the names that let a user point at an
entity or a relation."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pyoxigraph import DefaultGraph, Literal, NamedNode, Store

from kgbuild.graph.rdf import OWL_OBJECT_PROPERTY, RDF_TYPE, RDFS_LABEL, SKOS_ALT_LABEL, relation_id
from kgbuild.graph.store import as_store, graph_base


@dataclass
class GraphTriples:
    """The facts of one graph as IRIs, with the names people use for them."""

    base: str  # the graph's base IRI
    triples: list[tuple[str, str, str]]  # distinct (head, relation, tail) IRIs, sorted
    entity_names: dict[str, list[str]] = field(default_factory=dict)  # entity IRI -> [rdfs:label, *skos:altLabel]
    relation_labels: dict[str, str] = field(default_factory=dict)  # relation IRI -> rdfs:label
    relation_ids: dict[str, str] = field(default_factory=dict)  # relation IRI -> id ("P19")

    def label(self, iri: str) -> str:
        """The display name of an entity or relation IRI (the IRI itself when it has none)."""
        names = self.entity_names.get(iri)
        if names:
            return names[0]
        return self.relation_labels.get(iri, iri)


def read_graph(out: str | Path | Store) -> GraphTriples:
    """Every fact between two entities in the default graph of `out`'s store.

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
    return GraphTriples(
        base=base,
        triples=sorted(triples),
        entity_names=entity_names,
        relation_labels={iri: labels.get(iri, rel_id) for iri, rel_id in relations.items()},
        relation_ids=relations,
    )
