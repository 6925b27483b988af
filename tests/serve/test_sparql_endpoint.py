"""`kgbuild serve`: the SPARQL 1.1 Protocol endpoint over a real store (results formats, content
negotiation, POST forms, read-only refusal, errors), a live server queried by rdflib's SPARQLStore,
and the /predict and /ask routes."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import rdflib

pytest.importorskip("fastapi", reason='kgbuild serve needs pip install "kgbuild[serve]"')
from fastapi.testclient import TestClient  # noqa: E402

from kgbuild.qa.load import load_triples  # noqa: E402
from kgbuild.serve import create_app  # noqa: E402

TRIPLES = [("Marie Curie", "place of birth", "Warsaw"), ("Pierre Curie", "place of birth", "Paris"),
           ("Marie Curie", "spouse", "Pierre Curie"), ("Warsaw", "country", "Poland"),
           ("Paris", "country", "France"), ("Alan Turing", "place of birth", "London"),
           ("London", "country", "United Kingdom"), ("Jan Kowalski", "place of birth", "Warsaw"),
           ("Jean Dupont", "place of birth", "Paris"), ("John Smith", "place of birth", "London")]
# rdfs and schema need no PREFIX line: the endpoint knows kgbuild's prefixes
LABELS = "SELECT ?label WHERE { ?e a schema:Thing ; rdfs:label ?label } ORDER BY ?label"
NAMES = sorted({h for h, _, _ in TRIPLES} | {t for _, _, t in TRIPLES})


@pytest.fixture(scope="module")
def graph_out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    kb = root / "kb.tsv"
    kb.write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in TRIPLES), encoding="utf-8")
    load_triples(kb, root / "out")
    return root / "out"


@pytest.fixture(scope="module")
def client(graph_out) -> TestClient:
    return TestClient(create_app(graph_out))


def labels_of_json(body: bytes) -> list[str]:
    return [b["label"]["value"] for b in json.loads(body)["results"]["bindings"]]


def test_select_answers_in_json_by_default_with_kgbuild_prefixes(client):
    response = client.get("/sparql", params={"query": LABELS})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/sparql-results+json")
    assert labels_of_json(response.content) == NAMES


def test_pages_of_any_origin_may_query_it(client):
    response = client.get("/sparql", params={"query": LABELS}, headers={"Origin": "https://yasgui.example"})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("accept, media", [
    ("text/csv", "text/csv"),
    ("text/tab-separated-values", "text/tab-separated-values"),
    ("application/sparql-results+xml", "application/sparql-results+xml"),
    ("text/csv;q=0.4, application/sparql-results+xml;q=0.9", "application/sparql-results+xml"),
    ("*/*", "application/sparql-results+json"),
    ("application/*", "application/sparql-results+json"),
])
def test_select_answers_in_the_type_the_accept_header_prefers(client, accept, media):
    response = client.get("/sparql", params={"query": LABELS}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media
    if media == "text/csv":
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == ["label"] and [r[0] for r in rows[1:]] == NAMES
    elif media == "text/tab-separated-values":
        assert response.text.splitlines()[0] == "?label"
        assert [line.strip('"') for line in response.text.splitlines()[1:]] == NAMES
    elif media.endswith("xml"):
        ns = {"r": "http://www.w3.org/2005/sparql-results#"}
        literals = ET.fromstring(response.content).findall(".//r:literal", ns)
        assert [e.text for e in literals] == NAMES


def test_format_parameter_overrides_the_accept_header(client):
    response = client.get("/sparql", params={"query": LABELS, "format": "csv"},
                          headers={"Accept": "application/sparql-results+json"})
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == "label"


def test_ask_query_answers_true_and_false(client):
    yes = client.get("/sparql", params={"query": 'ASK { ?e rdfs:label "Warsaw" }'})
    no = client.get("/sparql", params={"query": 'ASK { ?e rdfs:label "Atlantis" }'})
    assert (json.loads(yes.content)["boolean"], json.loads(no.content)["boolean"]) == (True, False)


@pytest.mark.parametrize("accept, syntax", [("text/turtle", "turtle"), ("application/n-triples", "nt"),
                                            ("application/rdf+xml", "xml"), ("application/ld+json", "json-ld"),
                                            (None, "turtle")])
def test_construct_answers_in_an_rdf_syntax_that_rdflib_reads_back(client, accept, syntax):
    sparql = ('CONSTRUCT { ?e rdfs:label ?label } WHERE { ?e a schema:Thing ; rdfs:label ?label '
              'FILTER(STRSTARTS(?label, "P")) }')
    headers = {"Accept": accept} if accept else {}
    response = client.post("/sparql", content=sparql, headers={"Content-Type": "application/sparql-query", **headers})
    assert response.status_code == 200
    graph = rdflib.Graph().parse(data=response.content, format=syntax)
    assert sorted(str(o) for o in graph.objects(None, rdflib.RDFS.label)) == ["Paris", "Pierre Curie", "Poland"]


def test_post_form_is_a_query(client):
    response = client.post("/sparql", data={"query": LABELS}, headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200 and labels_of_json(response.content) == NAMES


def test_updates_are_refused_and_the_graph_is_unchanged(client):
    before = labels_of_json(client.get("/sparql", params={"query": LABELS}).content)
    delete = "DELETE WHERE { ?s ?p ?o }"
    for response in (client.post("/sparql", data={"update": delete}),
                     client.post("/sparql", content=delete, headers={"Content-Type": "application/sparql-update"})):
        assert response.status_code == 403 and "read-only" in response.text
    # an update sent as a query is not SPARQL Query: a syntax error, and nothing runs
    assert client.get("/sparql", params={"query": delete}).status_code == 400
    assert labels_of_json(client.get("/sparql", params={"query": LABELS}).content) == before == NAMES


def test_syntax_error_is_a_400_with_one_line_that_says_what_to_do(client):
    response = client.get("/sparql", params={"query": "SELEC ?x WHERE {"})
    assert response.status_code == 400
    assert response.text.startswith("SPARQL syntax error") and response.text.count("\n") == 1
    assert "sparql11-query" in response.text


def test_unacceptable_type_and_unknown_format_are_406_naming_the_offered_types(client):
    response = client.get("/sparql", params={"query": LABELS}, headers={"Accept": "image/png"})
    assert response.status_code == 406 and "text/csv" in response.text
    response = client.get("/sparql", params={"query": "CONSTRUCT WHERE { ?s ?p ?o }", "format": "csv"})
    assert response.status_code == 406 and "text/turtle" in response.text


def test_wrong_post_type_and_dataset_parameters_are_refused(client):
    assert client.post("/sparql", content=LABELS, headers={"Content-Type": "text/plain"}).status_code == 415
    response = client.get("/sparql", params={"query": LABELS, "default-graph-uri": "http://example.org/g"})
    assert response.status_code == 400 and "union" in response.text
    assert client.post("/sparql", data={"format": "json"}).status_code == 400


def test_get_without_query_is_the_service_description(client):
    response = client.get("/sparql")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/turtle")
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    graph = rdflib.Graph().parse(data=response.content, format="turtle")
    service = next(graph.subjects(rdflib.RDF.type, sd.Service))
    assert str(graph.value(service, sd.endpoint)).endswith("/sparql")
    assert (service, sd.supportedLanguage, sd.SPARQL11Query) in graph


def test_a_live_server_answers_rdflib_sparqlstore(graph_out):
    import uvicorn
    from rdflib.plugins.stores.sparqlstore import SPARQLStore

    server = uvicorn.Server(uvicorn.Config(create_app(graph_out), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        remote = rdflib.Graph(store=SPARQLStore(f"http://127.0.0.1:{port}/sparql"))
        rows = remote.query("PREFIX schema: <http://schema.org/> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
                            + LABELS)
        assert [str(r[0]) for r in rows] == NAMES
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_predict_without_embeddings_is_404_saying_how_to_train_them(client):
    response = client.get("/predict", params={"head": "Marie Curie", "relation": "place of birth"})
    assert response.status_code == 404
    assert response.json()["hint"] == "run `kgbuild embed OUT` first"


def test_predict_ranks_candidates_with_trained_embeddings(graph_out, tmp_path):
    import shutil

    from kgbuild.embed import train_embeddings

    out = tmp_path / "out"
    shutil.copytree(graph_out, out)
    train_embeddings(out, model="distmult", epochs=20, device="cpu", seed=0, settings=["embedding_dim=8"])
    client = TestClient(create_app(out))
    response = client.get("/predict", params={"head": "Marie Curie", "relation": "place of birth", "top": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["query_label"] == "Marie Curie" and body["relation_label"] == "place of birth"
    assert [c["rank"] for c in body["candidates"]] == [1, 2, 3]
    assert [c["known"] for c in body["candidates"]].count(True) <= 1
    assert {c["label"] for c in body["candidates"]} <= set(NAMES)
    unknown = client.get("/predict", params={"head": "Marie Curry", "relation": "place of birth"})
    assert unknown.status_code == 404 and "Marie Curie" in unknown.json()["hint"]
    both = client.get("/predict", params={"head": "Marie Curie", "tail": "Warsaw", "relation": "place of birth"})
    assert both.status_code == 400 and "exactly one" in both.json()["error"]


@pytest.mark.slow
def test_ask_answers_a_question_with_its_evidence(client):
    response = client.get("/ask", params={"q": "Where was Alan Turing born?", "top": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["found"] and body["topic_label"] == "Alan Turing"
    best = body["answers"][0]
    assert best["label"] == "London" and best["stated"]
    assert best["sparql"] in body["queries_run"]
    missing = client.get("/ask", params={"q": "Where was Zorbulon Quax born?"}).json()
    assert missing["found"] is False and missing["answers"] == []


def test_federated_queries_are_refused_unless_the_server_allows_them(graph_out, client):
    sparql = "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }"
    response = client.get("/sparql", params={"query": sparql})
    assert response.status_code == 403 and "--federated" in response.text
    # the word inside a string, an IRI, a comment or a name is not a SERVICE clause
    harmless = ('# SERVICE <x>\nSELECT ?service WHERE { ?service rdfs:label "SERVICE" ; '
                '<http://example.org/SERVICE> ?o } LIMIT 1')
    assert client.get("/sparql", params={"query": harmless}).status_code == 200
    allowed = TestClient(create_app(graph_out, federated=True)).get("/sparql", params={"query": sparql})
    assert allowed.status_code == 400 and "port 9" in allowed.text  # Oxigraph tried, and said why it did not


def test_without_the_serve_extra_the_error_says_what_to_install(graph_out, monkeypatch):
    from kgbuild.errors import KgbuildError

    monkeypatch.setitem(__import__("sys").modules, "fastapi", None)  # as if it were not installed
    with pytest.raises(KgbuildError) as err:
        create_app(graph_out)
    assert err.value.hint == 'pip install "kgbuild[serve]"'


def test_the_docs_page_can_send_a_query(client):
    spec = client.get("/openapi.json").json()
    for method in ("get", "post"):
        assert [p["name"] for p in spec["paths"]["/sparql"][method]["parameters"]] == ["query", "format"]
    assert client.get("/docs").status_code == 200
