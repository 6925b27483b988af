"""Query results in every output format, and the errors a user can get."""

from __future__ import annotations

import csv
import io
import json

import pytest
from graph_samples import CURIE, P19, WARSAW, readme_queries

from kgbuild.errors import GraphError
from kgbuild.graph import RESULT_FORMATS, format_result, query


@pytest.fixture
def provenance(out):
    return query(out, readme_queries()[1])


def test_json_is_w3c_sparql_results_json(provenance):
    doc = json.loads(format_result(provenance, "json"))
    assert doc["head"]["vars"] == provenance.columns
    first = doc["results"]["bindings"][0]
    assert first["start"] == {
        "type": "literal",
        "value": "0",
        "datatype": "http://www.w3.org/2001/XMLSchema#integer",
    }
    assert first["document"]["value"] == "bio/curie.txt"


def test_csv_has_a_header_and_one_line_per_row(provenance):
    rows = list(csv.reader(io.StringIO(format_result(provenance, "csv"))))
    assert rows[0] == provenance.columns
    assert rows[2][1] == "Curie, born in Warsaw in 1867, moved to Paris."  # quoted: has commas
    assert len(rows) == 3


def test_tsv_writes_terms_in_sparql_syntax(provenance):
    lines = format_result(provenance, "tsv").splitlines()
    assert lines[0].split("\t") == ["?" + c for c in provenance.columns]
    assert lines[1].split("\t")[0] == '"bio/curie.txt"'
    assert len(lines) == 3


def test_table_shows_every_column_and_row(provenance):
    text = format_result(provenance, "table", width=200)
    for column in provenance.columns:
        assert column in text
    assert "Marie Curie was born in Warsaw." in text
    assert text.endswith("2 rows\n")


def test_table_prints_brackets_in_values_literally(out):
    result = query(out, 'SELECT ?x WHERE { BIND("[bold]x[/bold]" AS ?x) }')
    assert "[bold]x[/bold]" in format_result(result, "table")


def test_ask_answers_in_every_format(out):
    result = query(out, f"ASK {{ <{CURIE}> <{P19}> <{WARSAW}> }}")
    assert result.boolean is True
    assert json.loads(format_result(result, "json"))["boolean"] is True
    assert format_result(result, "csv").strip() == "true"
    assert format_result(result, "table").strip() == "yes"


def test_construct_returns_triples_in_every_format(out):
    result = query(out, f"CONSTRUCT {{ ?s rdfs:label ?l }} WHERE {{ ?s rdfs:label ?l . FILTER(?s = <{CURIE}>) }}")
    assert result.kind == "graph" and len(result.triples) == 1
    bindings = json.loads(format_result(result, "json"))["results"]["bindings"]
    assert bindings[0]["object"]["value"] == "Marie Curie"
    assert "Marie Curie" in format_result(result, "csv")
    assert "Marie Curie" in format_result(result, "table")


def test_query_sees_named_graphs(fresh_out):
    from kgbuild.graph import open_store
    from pyoxigraph import NamedNode, Quad

    store = open_store(fresh_out)
    predicted = NamedNode("http://kgbuild.org/kg/graph/predicted")
    store.add(Quad(NamedNode(WARSAW), NamedNode(P19), NamedNode(CURIE), predicted))
    assert query(store, f"ASK {{ <{WARSAW}> <{P19}> <{CURIE}> }}").boolean is True


def test_bad_sparql_raises_a_one_line_graph_error(out):
    with pytest.raises(GraphError, match="SPARQL syntax error") as err:
        query(out, "SELEC ?x WHERE {\n ?x ?y ?z }")
    assert "\n" not in str(err.value)


def test_unknown_result_format_lists_the_valid_ones(provenance):
    with pytest.raises(GraphError) as err:
        format_result(provenance, "xlsx")
    for fmt in RESULT_FORMATS:
        assert fmt in err.value.hint
