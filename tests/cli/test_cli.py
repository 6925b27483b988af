"""The command line as a user meets it: real subprocesses, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest


def kgbuild(*args, check=False):
    proc = subprocess.run([sys.executable, "-m", "kgbuild.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


def assert_one_line_error(proc, *words):
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0]


def test_bad_corpus_path_is_one_line_error(tmp_path):
    assert_one_line_error(kgbuild("run", tmp_path / "missing", "-o", tmp_path / "out"), "does not exist")


def test_empty_corpus_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(kgbuild("run", tmp_path / "empty", "-o", tmp_path / "out"), "no documents")


def test_unknown_backend_is_one_line_error_listing_choices(tmp_path, sample_corpus):
    proc = kgbuild("run", sample_corpus, "-o", tmp_path / "out", "--set", "ner.backend=nosuch")
    assert_one_line_error(proc, "nosuch", "spacy")


def test_malformed_config_is_one_line_error(tmp_path, sample_corpus):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ner\nbackend = 'spacy'\n")
    assert_one_line_error(kgbuild("run", sample_corpus, "-o", tmp_path / "out", "-p", bad), "TOML")


def test_query_on_folder_without_graph_is_one_line_error(tmp_path):
    assert_one_line_error(kgbuild("query", tmp_path, "SELECT * WHERE { ?s ?p ?o }"), "kgbuild run")


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory, sample_corpus):
    out = tmp_path_factory.mktemp("cli") / "out"
    proc = kgbuild("run", sample_corpus, "-o", out, "--quiet", "--device", "cpu", check=True)
    assert "entities" in proc.stdout
    return out


def test_cli_run_then_query_as_json(cli_out):
    proc = kgbuild("query", cli_out, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", "--format", "json", check=True)
    n = int(json.loads(proc.stdout)["results"]["bindings"][0]["n"]["value"])
    assert n > 100


def test_cli_query_reads_a_query_file(cli_out, tmp_path):
    q = tmp_path / "labels.rq"
    q.write_text('PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> SELECT ?e WHERE { ?e rdfs:label "CERN" }')
    proc = kgbuild("query", cli_out, f"@{q}", "--format", "csv", check=True)
    assert "entity/organization/cern" in proc.stdout


@pytest.mark.parametrize("fmt", ["nt", "nq", "ttl", "jsonld", "graphml"])
def test_cli_export_every_format(cli_out, tmp_path, fmt):
    target = tmp_path / f"graph.{fmt}"
    kgbuild("export", cli_out, "--format", fmt, "-o", target, check=True)
    assert target.stat().st_size > 1000


def test_run_include_glob_reads_only_matching_files(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "keep.txt").write_text("Ada Lovelace was born in London.")
    (corpus / "skip.md").write_text("# Not read\n\nCharles Babbage lived in London.")
    out = tmp_path / "out"
    kgbuild("run", corpus, "-o", out, "--quiet", "--include", "*.txt", check=True)
    report = json.loads((out / "run.json").read_text())
    assert report["documents"] == 1 and report["config"]["ingest"]["include"] == ["*.txt"]


def test_run_with_embed_trains_embeddings_after_the_graph(tmp_path, sample_corpus):
    out = tmp_path / "out"
    proc = kgbuild("run", sample_corpus, "-o", out, "--quiet", "--device", "cpu", "--embed", check=True)
    assert "embeddings (" in proc.stdout
    assert any((out / "embeddings").iterdir())


def test_eval_command_prints_json_and_text(tmp_path):
    doc = {"title": "Curie", "sents": [["Marie", "Curie", "was", "born", "in", "Warsaw", "."],
                                       ["Curie", "moved", "to", "Paris", "."]],
           "vertexSet": [[{"name": "Marie Curie", "sent_id": 0, "pos": [0, 2], "type": "PER"},
                          {"name": "Curie", "sent_id": 1, "pos": [0, 1], "type": "PER"}],
                         [{"name": "Warsaw", "sent_id": 0, "pos": [5, 6], "type": "LOC"}],
                         [{"name": "Paris", "sent_id": 1, "pos": [3, 4], "type": "LOC"}]],
           "labels": []}
    data = tmp_path / "docs.json"
    data.write_text(json.dumps([doc]), encoding="utf-8")
    result = json.loads(kgbuild("eval", "coref", data, "--json", check=True).stdout)
    assert result["documents"] == 1 and "b_cubed" in result
    text = kgbuild("eval", "coref", data, check=True).stdout
    assert "B-cubed" in text or "b-cubed" in text.lower()
