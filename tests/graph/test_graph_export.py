"""Every export format reads back as the graph it was written from."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import rdflib
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID as DEFAULT
from graph_samples import CURIE, P19, P26, PIERRE, WARSAW
from pyoxigraph import NamedNode, Quad
from rdflib.compare import isomorphic

from kgbuild.errors import GraphError
from kgbuild.graph import EXPORT_FORMATS, open_store, to_networkx, to_rdflib, write_graph

# rdflib's own N-Quads and JSON-LD parsers still call its deprecated Dataset API.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")

PREDICTED = NamedNode("http://kgbuild.org/kg/graph/predicted")
RDFLIB_FORMAT = {"nt": "nt", "ttl": "turtle", "nq": "nquads", "jsonld": "json-ld"}


def test_every_export_format_is_covered_by_the_round_trip():
    assert set(EXPORT_FORMATS) == set(RDFLIB_FORMAT) | {"graphml"}


@pytest.mark.parametrize("fmt", ["nt", "ttl"])
def test_triple_formats_round_trip_to_an_isomorphic_graph(out, tmp_path, fmt):
    path = write_graph(out, tmp_path / f"graph.{fmt}", fmt)
    parsed = rdflib.Graph().parse(path, format=RDFLIB_FORMAT[fmt])
    expected = to_rdflib(out)
    assert len(parsed) == len(expected) > 0
    assert isomorphic(parsed, expected)


@pytest.mark.parametrize("fmt", ["nq", "jsonld"])
def test_dataset_formats_round_trip_with_their_named_graphs(fresh_out, tmp_path, fmt):
    store = open_store(fresh_out)
    store.add(Quad(NamedNode(PIERRE), NamedNode(P26), NamedNode(CURIE), PREDICTED))
    path = write_graph(store, tmp_path / f"graph.{fmt}", fmt)
    parsed = rdflib.Dataset().parse(path, format=RDFLIB_FORMAT[fmt])
    expected = to_rdflib(store)
    assert len(parsed.graph(DEFAULT)) == len(expected.graph(DEFAULT)) > 0
    assert isomorphic(parsed.graph(DEFAULT), expected.graph(DEFAULT))
    predicted = rdflib.URIRef(PREDICTED.value)
    assert set(parsed.graph(predicted)) == set(expected.graph(predicted))
    assert len(parsed.graph(predicted)) == 1


def test_triple_formats_include_named_graph_triples(fresh_out, tmp_path):
    store = open_store(fresh_out)
    store.add(Quad(NamedNode(PIERRE), NamedNode(P26), NamedNode(CURIE), PREDICTED))
    store.add(Quad(NamedNode(CURIE), NamedNode(P19), NamedNode(WARSAW), PREDICTED))  # also in default
    total = len(set((q.subject, q.predicate, q.object) for q in store))
    parsed = rdflib.Graph().parse(write_graph(store, tmp_path / "graph.nt"), format="nt")
    assert len(parsed) == total
    assert (rdflib.URIRef(PIERRE), rdflib.URIRef(P26), rdflib.URIRef(CURIE)) in parsed
    lines = (tmp_path / "graph.nt").read_text().splitlines()
    assert len(lines) == len(set(lines))  # written once, though stored twice


def test_graphml_round_trips_nodes_edges_and_attributes(out, tmp_path):
    path = write_graph(out, tmp_path / "graph.graphml", "graphml")
    parsed = nx.read_graphml(path, force_multigraph=True)
    expected = to_networkx(out)
    assert dict(parsed.nodes(data=True)) == dict(expected.nodes(data=True))
    assert sorted(parsed.edges(keys=True, data=True)) == sorted(expected.edges(keys=True, data=True))


def test_jsonld_is_json(out, tmp_path):
    doc = json.loads(write_graph(out, tmp_path / "graph.jsonld").read_text())
    assert any(node.get("@id") == CURIE for node in doc)


def test_format_is_taken_from_the_extension_when_not_given(out, tmp_path):
    path = write_graph(out, tmp_path / "graph.ttl")
    assert "@prefix" in path.read_text()


def test_unknown_format_lists_the_valid_ones_and_writes_nothing(out, tmp_path):
    with pytest.raises(GraphError) as err:
        write_graph(out, tmp_path / "graph.xlsx", "xlsx")
    for fmt in EXPORT_FORMATS:
        assert fmt in err.value.hint
    assert list(tmp_path.glob("graph*")) == []


def test_a_failed_export_leaves_no_file_behind(out, tmp_path, monkeypatch):
    import kgbuild.graph.export as export

    def crash(store, path):
        path.write_text("half a gra")
        raise RuntimeError("disk full")

    monkeypatch.setitem(export.WRITERS, "nt", crash)
    target = tmp_path / "graph.nt"
    target.write_text("previous export\n")
    with pytest.raises(RuntimeError):
        write_graph(out, target, "nt")
    assert target.read_text() == "previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["graph.nt"]
