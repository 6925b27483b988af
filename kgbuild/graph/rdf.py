"""Entities and facts as RDF quads: the one place that decides IRIs and vocabulary, so the
store, the views and every export agree on them. Provenance is plain reified statements (no
RDF-star), so any SPARQL engine and every export format carries it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from urllib.parse import quote, unquote

from pyoxigraph import Literal, NamedNode, Quad

from kgbuild.model import Entity, Fact
from kgbuild.types import TYPE_TO_SCHEMA, schema_class

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
PROV = "http://www.w3.org/ns/prov#"
SCHEMA = "http://schema.org/"
WD = "http://www.wikidata.org/entity/"
WDT = "http://www.wikidata.org/prop/direct/"
VOID = "http://rdfs.org/ns/void#"

# Prefixes every query may use without declaring them (a query's own PREFIX wins). `kg:` is not
# here because it depends on the run's base IRI; see ontology().
PREFIXES = {
    "rdf": RDF,
    "rdfs": RDFS,
    "xsd": XSD,
    "owl": OWL,
    "skos": SKOS,
    "prov": PROV,
    "schema": SCHEMA,
    "wd": WD,
    "wdt": WDT,
    "void": VOID,
}

RDF_TYPE = NamedNode(RDF + "type")
RDF_STATEMENT = NamedNode(RDF + "Statement")
RDF_SUBJECT = NamedNode(RDF + "subject")
RDF_PREDICATE = NamedNode(RDF + "predicate")
RDF_OBJECT = NamedNode(RDF + "object")
RDFS_LABEL = NamedNode(RDFS + "label")
SKOS_ALT_LABEL = NamedNode(SKOS + "altLabel")
OWL_OBJECT_PROPERTY = NamedNode(OWL + "ObjectProperty")
PROV_DERIVED_FROM = NamedNode(PROV + "wasDerivedFrom")
VOID_DATASET = NamedNode(VOID + "Dataset")

# kgbuild type -> class name in the KG ontology namespace.
TYPE_CLASS = {
    "PER": "Person",
    "ORG": "Organization",
    "LOC": "Location",
    "TIME": "Time",
    "NUM": "Number",
    "MISC": "Misc",
}
CLASS_TYPE = {name: type_ for type_, name in TYPE_CLASS.items()}

_WIKIDATA_PROPERTY = re.compile(r"^P\d+$")
# Left as they are in IRI path segments; everything else is percent-encoded (UTF-8).
_SAFE = "/-._~"


def ontology(base: str) -> str:
    """The KG ontology namespace of a graph built with `base`."""
    return base + "ontology/"


@lru_cache(maxsize=4096)
def kg(base: str, name: str) -> NamedNode:
    """A term of the KG ontology, e.g. kg(base, "mentionCount")."""
    return NamedNode(ontology(base) + name)


@lru_cache(maxsize=1 << 16)
def entity_iri(base: str, key: str) -> str:
    """IRI of the entity with Entity.key `key` ("person/marie-curie" stays readable).

    Cached: each entity's IRI is needed once per statement that names it, and percent-encoding
    was a third of the time to turn a corpus's facts into quads."""
    return base + "entity/" + quote(key, safe=_SAFE)


@lru_cache(maxsize=1 << 14)
def document_iri(base: str, doc_id: str) -> str:
    """IRI of a document node; "#" and the like in ids are encoded, so they stay in the path."""
    return base + "document/" + quote(doc_id, safe=_SAFE)


def relation_iri(base: str, rel_id: str) -> str:
    """Wikidata's direct-property IRI for ids like "P19"; any other id lives under base.

    Non-Wikidata ids are percent-encoded rather than slugged, so two ids never share an IRI and
    relation_id() gives the id back."""
    if _WIKIDATA_PROPERTY.match(rel_id):
        return WDT + rel_id
    return base + "relation/" + quote(rel_id, safe=_SAFE)


def relation_id(base: str, iri: str) -> str:
    """The relation id behind a relation IRI (the inverse of relation_iri)."""
    if iri.startswith(WDT):
        return iri[len(WDT) :]
    prefix = base + "relation/"
    if iri.startswith(prefix):
        return unquote(iri[len(prefix) :])
    return iri


def statement_iri(base: str, fact: Fact) -> str:
    """Stable IRI of the statement node for one extraction of a fact.

    The extractor is part of the key: two backends that find the same fact in the same sentence
    are two pieces of evidence, not one."""
    key = "\x1f".join(
        [fact.subject, fact.relation, fact.object, fact.document, str(fact.start), fact.extractor]
    )
    return base + "statement/" + hashlib.sha1(key.encode()).hexdigest()[:16]


def dataset_quads(base: str) -> Iterator[Quad]:
    """The node that names the graph itself: readers find the base IRI (and so the `kg:`
    namespace) from it instead of being told."""
    yield Quad(NamedNode(base), RDF_TYPE, VOID_DATASET)


def _document_quads(base: str, doc_id: str) -> Iterator[Quad]:
    node = NamedNode(document_iri(base, doc_id))
    yield Quad(node, RDF_TYPE, kg(base, "Document"))
    yield Quad(node, kg(base, "path"), Literal(doc_id))


def entity_quads(
    entities: Iterable[Entity], base: str, relation_labels: dict[str, str] | None = None,
    with_documents: bool = True,
) -> Iterator[Quad]:
    """Types, names, mention counts, documents and merge reasons of each entity, then (with
    `with_documents`) the nodes of the documents they are mentioned in.

    `relation_labels` is unused here; it is accepted so both quad functions take the same
    arguments and a caller can chain them."""
    documents: set[str] = set()
    for entity in entities:
        node = NamedNode(entity_iri(base, entity.key))
        yield Quad(node, RDF_TYPE, kg(base, TYPE_CLASS.get(entity.type, "Misc")))
        schema = {schema_class(entity.type, label) for label in entity.labels}
        for iri in sorted(schema or {SCHEMA + TYPE_TO_SCHEMA.get(entity.type, "Thing")}):
            yield Quad(node, RDF_TYPE, NamedNode(iri))
        yield Quad(node, RDFS_LABEL, Literal(entity.name))
        for alias in sorted(entity.aliases - {entity.name}):
            yield Quad(node, SKOS_ALT_LABEL, Literal(alias))
        yield Quad(node, kg(base, "mentionCount"), Literal(int(entity.n_mentions)))
        for doc_id in sorted(entity.documents):
            yield Quad(node, kg(base, "mentionedIn"), NamedNode(document_iri(base, doc_id)))
            documents.add(doc_id)
        for reason in entity.why:
            yield Quad(node, kg(base, "mergeReason"), Literal(reason))
        for iri in getattr(entity, "same_as", ()):
            yield Quad(node, NamedNode(OWL + "sameAs"), NamedNode(iri))
    if with_documents:
        for doc_id in sorted(documents):
            yield from _document_quads(base, doc_id)


FACT_PARTS = ("relations", "triples", "statements", "documents")


def fact_quads(
    facts: Iterable[Fact], base: str, relation_labels: dict[str, str] | None = None,
    parts: tuple[str, ...] = FACT_PARTS,
) -> Iterator[Quad]:
    """One triple per distinct (subject, relation, object) in the default graph, one statement
    node per extraction (none for a fact with no document: a loaded knowledge-base triple), and
    a label for each relation used (a `relation_labels` value may be a list: rdfs:label the
    first, skos:altLabel the rest).

    An extraction seen twice (same sentence, same extractor, e.g. two mention pairs of the same
    entities) keeps its highest confidence, so a statement node has exactly one of each value.
    `parts` (of FACT_PARTS) limits what is written: the incremental graph writes each part as
    a unit of its own."""
    labels = relation_labels or {}
    triples: set[tuple[str, str, str]] = set()
    statements: dict[str, Fact] = {}
    for fact in facts:
        triples.add((fact.subject, fact.relation, fact.object))
        if not fact.document:
            continue  # a fact from a loaded knowledge base: asserted, with no extraction behind it
        iri = statement_iri(base, fact)
        seen = statements.get(iri)
        if seen is None or fact.confidence > seen.confidence:
            statements[iri] = fact

    for rel_id in sorted({relation for _, relation, _ in triples}) if "relations" in parts else ():
        prop = NamedNode(relation_iri(base, rel_id))
        yield Quad(prop, RDF_TYPE, OWL_OBJECT_PROPERTY)
        # a list of labels: the relation phrases merged into it, the first one its name
        names = labels.get(rel_id) or rel_id
        names = [names] if isinstance(names, str) else list(dict.fromkeys(names))
        yield Quad(prop, RDFS_LABEL, Literal(names[0]))
        for alt in names[1:]:
            yield Quad(prop, SKOS_ALT_LABEL, Literal(alt))
    for subject, relation, obj in sorted(triples) if "triples" in parts else ():
        yield Quad(
            NamedNode(entity_iri(base, subject)),
            NamedNode(relation_iri(base, relation)),
            NamedNode(entity_iri(base, obj)),
        )
    documents: set[str] = set()
    for iri, fact in statements.items() if "statements" in parts else ():
        node = NamedNode(iri)
        yield Quad(node, RDF_TYPE, RDF_STATEMENT)
        yield Quad(node, RDF_SUBJECT, NamedNode(entity_iri(base, fact.subject)))
        yield Quad(node, RDF_PREDICATE, NamedNode(relation_iri(base, fact.relation)))
        yield Quad(node, RDF_OBJECT, NamedNode(entity_iri(base, fact.object)))
        yield Quad(node, PROV_DERIVED_FROM, NamedNode(document_iri(base, fact.document)))
        yield Quad(node, kg(base, "sentence"), Literal(fact.sentence))
        yield Quad(node, kg(base, "start"), Literal(int(fact.start)))
        yield Quad(node, kg(base, "end"), Literal(int(fact.end)))
        yield Quad(node, kg(base, "confidence"), Literal(float(fact.confidence)))
        yield Quad(node, kg(base, "extractor"), Literal(fact.extractor))
        documents.add(fact.document)
    for doc_id in sorted(documents) if "documents" in parts else ():
        yield from _document_quads(base, doc_id)
