"""The rdflib and networkx views of the store."""

from __future__ import annotations

import pytest
import rdflib
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID as DEFAULT
from graph_samples import CURIE, P19, P26, PIERRE, SORBONNE, WARSAW, WORKED_AT
from pyoxigraph import NamedNode, Quad

from kgbuild.graph import open_store, to_networkx, to_rdflib

PREDICTED = NamedNode("http://kgbuild.org/kg/graph/predicted")


def test_networkx_has_one_edge_per_fact_keyed_by_relation_iri(out):
    graph = to_networkx(out)
    assert sorted(graph.edges(keys=True)) == sorted(
        [(CURIE, WARSAW, P19), (CURIE, PIERRE, P26), (CURIE, SORBONNE, WORKED_AT)]
    )


def test_networkx_edge_counts_statements_and_keeps_the_best_confidence(out):
    born = to_networkx(out).edges[CURIE, WARSAW, P19]
    assert born == {"relation": "P19", "label": "place of birth", "count": 2, "confidence": 0.91}


def test_networkx_nodes_carry_label_type_schema_class_and_mentions(out):
    graph = to_networkx(out)
    assert set(graph.nodes) == {CURIE, WARSAW, PIERRE, SORBONNE}  # documents are not nodes
    assert graph.nodes[WARSAW] == {
        "label": "Warsaw",
        "type": "LOC",
        "schema": "http://schema.org/AdministrativeArea",
        "mentions": 2,
    }


def test_networkx_includes_facts_from_named_graphs_once(fresh_out):
    store = open_store(fresh_out)
    store.add(Quad(NamedNode(PIERRE), NamedNode(P26), NamedNode(CURIE), PREDICTED))
    store.add(Quad(NamedNode(CURIE), NamedNode(P19), NamedNode(WARSAW), PREDICTED))
    graph = to_networkx(store)
    assert graph.edges[PIERRE, CURIE, P26]["count"] == 0  # predicted: no extraction behind it
    assert "confidence" not in graph.edges[PIERRE, CURIE, P26]
    assert graph.number_of_edges(CURIE, WARSAW) == 1


def test_rdflib_graph_holds_every_triple_of_the_store(out):
    graph = to_rdflib(out)
    assert type(graph) is rdflib.Graph
    assert len(graph) == len(list(open_store(out, read_only=True)))
    label = graph.value(rdflib.URIRef(CURIE), rdflib.RDFS.label)
    assert label == rdflib.Literal("Marie Curie")  # a plain string, as parsed from a file
    count = graph.value(rdflib.URIRef(CURIE), rdflib.URIRef("http://kgbuild.org/kg/ontology/mentionCount"))
    assert count.toPython() == 3


@pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")  # rdflib's own `in` check
def test_rdflib_view_keeps_named_graphs_as_a_dataset(fresh_out):
    store = open_store(fresh_out)
    store.add(Quad(NamedNode(PIERRE), NamedNode(P26), NamedNode(CURIE), PREDICTED))
    dataset = to_rdflib(store)
    assert isinstance(dataset, rdflib.Dataset)
    triple = (rdflib.URIRef(PIERRE), rdflib.URIRef(P26), rdflib.URIRef(CURIE))
    assert triple in dataset.graph(rdflib.URIRef(PREDICTED.value))
    assert triple not in dataset.graph(DEFAULT)
    assert triple in dataset  # triples() sees the union, like query()
