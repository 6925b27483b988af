import json
from pathlib import Path

import networkx as nx
import pytest
import rdflib

import kgbuild
from kgbuild.errors import CorpusError
from kgbuild.runner import RunResult, run

WDT = "http://www.wikidata.org/prop/direct/"
RDFS_LABEL = rdflib.RDFS.label


def test_sample_run_finds_named_entities(sample_run):
    g = kgbuild.open_rdflib(sample_run.out)
    labels = {str(o) for o in g.objects(None, RDFS_LABEL)}
    assert {"Marie Curie", "Warsaw", "Alan Turing", "CERN"} <= labels
    assert sample_run.mentions["PER"] > 5 and sample_run.mentions["LOC"] > 5


def test_sample_run_extracts_a_wikidata_relation(sample_run):
    rows = kgbuild.query(sample_run.out, f"""
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        SELECT ?p WHERE {{ ?s rdfs:label "Marie Curie" . ?o rdfs:label "Warsaw" . ?s ?p ?o }}""").rows
    assert WDT + "P19" in [r[0] for r in rows], rows


def test_short_name_and_full_name_are_one_entity(sample_run):
    rows = kgbuild.query(sample_run.out, """
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        SELECT ?e WHERE { ?e rdfs:label "Alan Turing" ; skos:altLabel "Turing" }""").rows
    assert len(rows) == 1


def test_acronym_and_expansion_are_one_entity(sample_run):
    rows = kgbuild.query(sample_run.out, """
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        SELECT ?e WHERE { ?e rdfs:label ?l ; skos:altLabel ?a .
                          FILTER(?l IN ("IBM", "International Business Machines"))
                          FILTER(?a IN ("IBM", "International Business Machines")) }""").rows
    assert len(rows) == 1


def test_provenance_of_a_fact_is_returned_by_sparql(sample_run, sample_corpus):
    rows = kgbuild.query(sample_run.out, """
        PREFIX rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
        PREFIX prov: <http://www.w3.org/ns/prov#>
        PREFIX wdt:  <http://www.wikidata.org/prop/direct/>
        PREFIX kg:   <http://kgbuild.org/kg/ontology/>
        SELECT ?document ?sentence ?start ?end ?confidence ?extractor WHERE {
          ?statement rdf:subject <http://kgbuild.org/kg/entity/person/marie-curie> ;
              rdf:predicate wdt:P19 ; rdf:object <http://kgbuild.org/kg/entity/location/warsaw> ;
              prov:wasDerivedFrom ?doc ; kg:sentence ?sentence ; kg:start ?start ; kg:end ?end ;
              kg:confidence ?confidence ; kg:extractor ?extractor .
          ?doc kg:path ?document . }""").rows
    assert rows, "no provenance for Marie Curie - place of birth - Warsaw"
    document, sentence, start, end, confidence, extractor = rows[0]
    assert document == "science/marie_curie.txt" and extractor == "zeroshot"
    assert 0.0 < confidence <= 1.0
    assert (sample_corpus / document).read_text()[start:end] == sentence
    assert "Warsaw" in sentence


def test_run_report_has_counts_times_versions(sample_run):
    report = json.loads(Path(sample_run.out, "run.json").read_text())
    assert report["documents"] == 6  # 4 files + a .jsonl with 2 records
    assert set(report["seconds"]) >= {"ingest", "ner", "relations", "linking", "graph", "total"}
    assert "spacy" in report["versions"] and report["models"]["ner"]["model"]
    assert RunResult.load(sample_run.out).facts == sample_run.facts


def test_networkx_view_matches_rdf_facts(sample_run):
    g = kgbuild.open_networkx(sample_run.out)
    assert isinstance(g, nx.MultiDiGraph)
    assert g.number_of_edges() == sample_run.facts


def test_bad_files_are_skipped_and_reported(tmp_path, pipeline):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Ada Lovelace was born in London.")
    (corpus / "empty.txt").write_text("")
    (corpus / "blob.txt").write_bytes(bytes(range(256)) * 8)
    result = run(corpus, tmp_path / "out", pipeline=pipeline)
    assert result.documents == 1
    reasons = {s["path"].split("/")[-1]: s["reason"] for s in result.skipped}
    assert set(reasons) == {"empty.txt", "blob.txt"}


def test_missing_corpus_is_corpus_error(tmp_path):
    with pytest.raises(CorpusError):
        run(tmp_path / "nope", tmp_path / "out")


def test_corpus_of_only_bad_files_is_corpus_error_with_report(tmp_path, pipeline):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "empty.txt").write_text("  \n")
    with pytest.raises(CorpusError, match="no readable document"):
        run(corpus, tmp_path / "out", pipeline=pipeline)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["skipped"]
