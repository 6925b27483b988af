"""`kgbuild load`: a triple file becomes an output folder that the other commands read."""

from __future__ import annotations

import json

import pytest
from qa_samples import kb_triples, write_kb

from kgbuild.embed.graph import read_graph
from kgbuild.errors import KgbuildError
from kgbuild.graph.query import query
from kgbuild.qa.load import load_triples


def test_load_skips_and_reports_malformed_lines(tmp_path):
    kb = write_kb(tmp_path / "kb.tsv", "only\ttwo fields\n\nMarie Curie\t\tParis\nMarie Curie\tspouse\tPierre Curie\n")
    result = load_triples(kb, tmp_path / "out")
    n = len(kb_triples())
    assert result.facts == n and result.duplicates == 1
    assert [(b.line, b.reason) for b in result.skipped] == [
        (n + 1, "2 tab-separated fields, expected 3"), (n + 3, "an empty field")]
    saved = json.loads((tmp_path / "out" / "load.json").read_text())
    assert [b["line"] for b in saved["skipped"]] == [n + 1, n + 3]


def test_loaded_graph_has_labelled_entities_and_relations(tmp_path):
    out = tmp_path / "out"
    load_triples(write_kb(tmp_path / "kb.tsv"), out)
    graph = read_graph(out)
    assert len(graph.triples) == len(kb_triples())
    assert "place of birth" in graph.relation_labels.values()
    rows = query(out, 'SELECT ?o WHERE { ?s rdfs:label "Marie Curie" . ?s ?p ?x . ?p rdfs:label "spouse" . '
                      '?x rdfs:label ?o }').rows
    assert rows == [["Pierre Curie"]]
    # loaded facts come from no document: no provenance nodes
    assert query(out, "ASK { ?s a rdf:Statement }").boolean is False


def test_file_with_no_loadable_line_is_an_error(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a b c\nno tabs here\n", encoding="utf-8")
    with pytest.raises(KgbuildError, match="no triple could be loaded"):
        load_triples(bad, tmp_path / "out")
