"""`kgbuild serve` as a user starts it: a real server process answering over HTTP, and a one-line
error for a folder without a graph."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

pytest.importorskip("fastapi", reason='kgbuild serve needs pip install "kgbuild[serve]"')


def loaded_graph(tmp_path, lines: str):
    """OUT of a small knowledge base loaded with `kgbuild load`'s library function."""
    from kgbuild.qa.load import load_triples

    kb = tmp_path / "kb.tsv"
    kb.write_text(lines, encoding="utf-8")
    load_triples(kb, tmp_path / "out")
    return tmp_path / "out"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_a_folder_without_a_graph_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kgbuild.cli", "serve", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no graph in") and "kgbuild run" in lines[0]


def test_served_graph_answers_sparql_over_http(tmp_path):
    out = loaded_graph(tmp_path, "Ada Lovelace\tcollaborator\tCharles Babbage\nCharles Babbage\tborn in\tLondon\n")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "kgbuild.cli", "serve", str(out), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        sparql = "SELECT ?who WHERE { ?x rdfs:label 'London' . ?person ?p ?x ; rdfs:label ?who }"
        url = f"http://127.0.0.1:{port}/sparql?" + urllib.parse.urlencode({"query": sparql})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server did not answer within a minute"
                time.sleep(0.2)
        assert [b["who"]["value"] for b in body["results"]["bindings"]] == ["Charles Babbage"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_taken_port_is_a_one_line_error(tmp_path):
    out = loaded_graph(tmp_path, "Ada Lovelace\tcollaborator\tCharles Babbage\n")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "kgbuild.cli", "serve", str(out), "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}") and "--port" in lines[0]
