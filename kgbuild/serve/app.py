"""The HTTP application of `kgbuild serve` (see the package docstring): one read-only store, opened
once; the question answerer and the embeddings loaded on their first request.

Routes:
- `/sparql`: the SPARQL 1.1 Protocol's query operation (GET with `query`; POST as a form or as
  `application/sparql-query`). SELECT and ASK answer in the W3C results formats (JSON, XML, CSV,
  TSV), CONSTRUCT and DESCRIBE in an RDF syntax (Turtle, N-Triples, RDF/XML, JSON-LD, ...), chosen
  by the Accept header or a `format` parameter. The default graph is the union of every graph, and
  kgbuild's prefixes need no PREFIX line, as in `kgbuild query`. Updates are refused (403). Without
  a query, GET returns the endpoint's service description.
- `/ask?q=...`: `kgbuild ask --json`'s answer.
- `/predict?head=...&relation=...` (or `tail=`): `kgbuild predict --json`'s candidates.
- `/`: what is served, as JSON; `/docs`: the routes, interactive (FastAPI's OpenAPI page)."""


import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from kgbuild.errors import GraphError, KgbuildError

# media type -> pyoxigraph format name, the default first
RESULT_TYPES = {
    "application/sparql-results+json": "JSON",
    "application/sparql-results+xml": "XML",
    "text/csv": "CSV",
    "text/tab-separated-values": "TSV",
    "application/json": "JSON",
    "application/xml": "XML",
}
GRAPH_TYPES = {
    "text/turtle": "TURTLE",
    "application/n-triples": "N_TRIPLES",
    "application/rdf+xml": "RDF_XML",
    "application/ld+json": "JSON_LD",
    "application/n-quads": "N_QUADS",
    "application/trig": "TRIG",
    "text/n3": "N3",
}
# the `format` parameter's short names (as Fuseki and Virtuoso take them)
FORMAT_NAMES = {
    "json": "application/sparql-results+json", "xml": "application/sparql-results+xml", "csv": "text/csv",
    "tsv": "text/tab-separated-values", "turtle": "text/turtle", "ttl": "text/turtle",
    "ntriples": "application/n-triples", "nt": "application/n-triples", "rdfxml": "application/rdf+xml",
    "jsonld": "application/ld+json", "nquads": "application/n-quads", "trig": "application/trig",
}
SERVICE_DESCRIPTION = """\
@prefix sd: <http://www.w3.org/ns/sparql-service-description#> .
@prefix formats: <http://www.w3.org/ns/formats/> .
<{endpoint}> a sd:Service ;
    sd:endpoint <{endpoint}> ;
    sd:supportedLanguage sd:SPARQL11Query ;
    sd:feature sd:UnionDefaultGraph ;
    sd:resultFormat formats:SPARQL_Results_JSON, formats:SPARQL_Results_XML, formats:SPARQL_Results_CSV,
        formats:SPARQL_Results_TSV, formats:Turtle, formats:N-Triples, formats:RDF_XML, formats:JSON-LD .
"""


# SPARQL's strings, IRIs and comments (skipped), and the SERVICE keyword outside them: not a prefixed
# name's part (ex:service, service:x), a variable (?service) or a language tag (@service)
_SERVICE = re.compile(r'''
    (?P<skip> (?<!\\)(?: """[\s\S]*?""" | \'\'\'[\s\S]*?\'\'\'     # long strings
                      | "(?:[^"\\\n]|\\.)*" | '(?:[^'\\\n]|\\.)*'     # strings
                      | \#[^\n]* )                               # comments (ex:a\#b is a name)
            | <[^<>"{}|^`\\\s]*> )                              # IRIs
    | (?P<service> (?<![\w:?$@]) SERVICE (?![\w:-]) )
''', re.IGNORECASE | re.VERBOSE)


def calls_service(sparql: str) -> bool:
    """Whether a query has a SERVICE clause (a federated query: Oxigraph would fetch the named
    endpoint over HTTP, from the server's network)."""
    return any(m.group("service") for m in _SERVICE.finditer(sparql))


class ServeError(KgbuildError):
    """A request the endpoint cannot answer; `status` is its HTTP status."""

    def __init__(self, message: str, hint: str = "", status: int = 400) -> None:
        super().__init__(message, hint)
        self.status = status


def negotiate(accept: str | None, offers: dict[str, str], asked: str | None = None) -> str:
    """The media type to answer in: the `format` parameter's (`asked`, a short name or a media
    type) when given, else the best of `offers` for the Accept header (ties and `*/*` go to the
    first offer)."""
    import mimeparse

    if asked:
        media = FORMAT_NAMES.get(asked.lower(), asked.lower())
        if media not in offers:
            raise ServeError(f"format {asked!r} does not fit this query", status=406,
                             hint=f"use one of: {', '.join(offers)}")
        return media
    try:
        best = mimeparse.best_match(list(offers)[::-1], accept or "*/*")  # ties go to the last offer
    except ValueError:
        best = next(iter(offers))  # an Accept header that does not parse asks for nothing in particular
    if not best:
        raise ServeError(f"no answer in any type the Accept header allows ({accept})", status=406,
                         hint=f"accept one of: {', '.join(offers)}")
    return best


def answer_sparql(store: Any, sparql: str, accept: str | None, asked: str | None = None) -> tuple[bytes, str]:
    """A query's answer serialized as the request asks: (body, media type)."""
    from pyoxigraph import QueryBoolean, QueryResultsFormat, QuerySolutions, RdfFormat, serialize

    from kgbuild.graph.query import run_sparql, sparql_prefixes

    answer = run_sparql(store, sparql)
    try:
        if isinstance(answer, (QueryBoolean, QuerySolutions)):
            media = negotiate(accept, RESULT_TYPES, asked)
            return answer.serialize(format=getattr(QueryResultsFormat, RESULT_TYPES[media])), media
        media = negotiate(accept, GRAPH_TYPES, asked)
        # pyoxigraph's serialize, not the answer's own: it writes the prefixes (Turtle, TriG, N3)
        return serialize(answer, format=getattr(RdfFormat, GRAPH_TYPES[media]), prefixes=sparql_prefixes(store)), media
    except OSError as err:  # Oxigraph evaluates as it writes: a failure shows here
        raise GraphError(f"the query failed: {' '.join(str(err).split())}") from None
    finally:
        # Oxigraph's answers must be dropped on the thread that made them, not wherever an
        # exception's traceback (which keeps this frame) is let go of
        del answer


def service_description(endpoint: str, accept: str | None, asked: str | None = None) -> tuple[bytes, str]:
    """The endpoint's SPARQL 1.1 service description, in the RDF syntax the request asks for."""
    from pyoxigraph import RdfFormat, parse, serialize

    media = negotiate(accept, GRAPH_TYPES, asked)
    triples = parse(SERVICE_DESCRIPTION.format(endpoint=endpoint), format=RdfFormat.TURTLE)
    prefixes = {"sd": "http://www.w3.org/ns/sparql-service-description#", "formats": "http://www.w3.org/ns/formats/"}
    return serialize(triples, format=getattr(RdfFormat, GRAPH_TYPES[media]), prefixes=prefixes), media


class Served:
    """What one output folder serves: its store (opened at once, so a folder without a graph fails
    at start-up), and the answerer and the embeddings, each loaded by its first request."""

    def __init__(self, out: str | Path, scorer: str | Path | None = None, device: str = "cpu",
                 completion: str = "auto", federated: bool = False) -> None:
        from kgbuild.graph.store import graph_base, open_store

        self.out = Path(out)
        self.store = open_store(out, read_only=True)
        self.base = graph_base(self.store)
        self.scorer, self.device, self.completion = scorer, device, completion
        self.federated = federated  # let SERVICE clauses fetch other endpoints
        self._answerer = None
        self._graph = None  # read_graph of the store, for /predict
        self._embeddings: Any = False  # OUT/embeddings, loaded once for both routes; None: none trained
        # one question at a time: the answerer's encoder and caches are not shared between threads
        self._asking = threading.Lock()
        self._loading = threading.Lock()

    def embeddings(self) -> Any:
        """OUT/embeddings (None when none are trained), loaded by the first route that needs them."""
        with self._loading:
            if self._embeddings is False:
                from kgbuild.embed.train import embeddings_dir, load_embeddings

                trained = (embeddings_dir(self.out) / "summary.json").is_file()  # as Answerer.open checks
                self._embeddings = load_embeddings(self.out) if trained else None
            return self._embeddings

    def ask(self, question: str, top: int) -> dict[str, Any]:
        with self._asking:
            if self._answerer is None:
                from kgbuild.qa.answer import Answerer

                answerer = Answerer.open(self.out, scorer=self.scorer, device=self.device, embeddings=False,
                                         completion=self.completion, store=self.store)
                if (emb := self.embeddings()) is not None:
                    answerer.use_embeddings(emb)
                self._answerer = answerer
            return self._answerer.answer(question, top=top).to_dict()

    def predict(self, head: str | None, relation: str, tail: str | None, top: int) -> dict[str, Any]:
        from dataclasses import asdict

        from kgbuild.embed.graph import read_graph
        from kgbuild.embed.predict import predict
        from kgbuild.embed.train import embeddings_dir

        embeddings = self.embeddings()
        if embeddings is None:  # none trained yet: not found, rather than a bad request
            raise ServeError(f"no embeddings in {embeddings_dir(self.out)}", hint="run `kgbuild embed OUT` first",
                             status=404)
        with self._loading:
            if self._graph is None:
                self._graph = read_graph(self.store)
        return asdict(predict(self.out, head=head, relation=relation, tail=tail, top=top, embeddings=embeddings,
                              graph=self._graph))


def create_app(out: str | Path, scorer: str | Path | None = None, device: str = "cpu",
               completion: str = "auto", federated: bool = False) -> Any:
    """The FastAPI application serving the graph in `out` (module docstring). `federated` lets
    queries call other endpoints (SERVICE); off, such a query is refused (403)."""
    try:
        from fastapi import FastAPI, Query, Request
        from fastapi.middleware.cors import CORSMiddleware
        from fastapi.responses import JSONResponse, Response
        from starlette.concurrency import run_in_threadpool
    except ImportError:
        raise KgbuildError("kgbuild serve needs FastAPI and uvicorn", hint='pip install "kgbuild[serve]"') from None
    from kgbuild import __version__
    from kgbuild.embed.predict import UnknownEntityError, UnknownRelationError

    served = Served(out, scorer=scorer, device=device, completion=completion, federated=federated)
    app = FastAPI(title="kgbuild", version=__version__,
                  description=f"The knowledge graph in {served.out}: SPARQL, questions and link prediction.")
    # read-only, so any page may query it, as Oxigraph's own server allows
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["*"])

    def error(err: KgbuildError, status: int) -> JSONResponse:
        return JSONResponse({"error": err.args[0], "hint": err.hint}, status_code=status)

    def sparql_error(err: KgbuildError, status: int) -> Response:
        # the protocol leaves error bodies free; plain text reads well in a browser and in a log
        return Response(str(err) + "\n", status_code=status, media_type="text/plain")

    @app.get("/")
    def index() -> dict[str, Any]:
        """What is served, and where."""
        return {"kgbuild": __version__, "graph": str(served.out.resolve()), "base": served.base,
                "sparql": "/sparql", "ask": "/ask?q=QUESTION", "predict": "/predict?head=NAME&relation=LABEL",
                "docs": "/docs"}

    @app.get("/sparql")
    @app.post("/sparql")
    async def sparql(request: Request,
                     # declared so that /docs can send a query; read below from the request itself,
                     # as the protocol also allows a form or a query body, and refuses repeats
                     query: str | None = Query(None, description="SPARQL query (no PREFIX needed for rdfs:, "
                                               "schema:, wdt:, kg: and the other common prefixes)"),
                     format: str | None = Query(None, description="json, xml, csv, tsv, turtle, ntriples, rdfxml, "
                                                "jsonld, nquads or trig (else the Accept header decides)")) -> Response:
        """SPARQL 1.1 Protocol query operation (read-only)."""
        params: dict[str, list[str]] = {k: request.query_params.getlist(k) for k in request.query_params}
        try:
            if request.method == "POST":
                kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
                body = (await request.body()).decode("utf-8", errors="replace")
                if kind == "application/sparql-query":
                    params["query"] = [body]
                elif kind == "application/x-www-form-urlencoded":
                    for key, values in parse_qs(body, keep_blank_values=True).items():
                        params.setdefault(key, []).extend(values)
                elif kind == "application/sparql-update":
                    params["update"] = [body]
                else:
                    raise ServeError(f"a POST of {kind or 'no content type'} is not a SPARQL request", status=415,
                                     hint="send application/sparql-query or a form with query=")
            if "update" in params:
                raise ServeError("this endpoint is read-only: SPARQL updates are refused", status=403,
                                 hint="build the graph with `kgbuild run` or `kgbuild load`")
            if params.get("default-graph-uri") or params.get("named-graph-uri"):
                raise ServeError("default-graph-uri and named-graph-uri are not supported",
                                 hint="the default graph is the union of every graph; name graphs with GRAPH in "
                                      "the query")
            queries = params.get("query", [])
            accept, asked = request.headers.get("accept"), (params.get("format") or [None])[0]
            if len(queries) > 1:
                raise ServeError("more than one query in the request", hint="send one query= parameter")
            if not queries or not queries[0].strip():
                if request.method == "POST":
                    raise ServeError("no query in the request", hint="send the query as query=...")
                body, media = service_description(str(request.url.remove_query_params(list(request.query_params))),
                                                  accept, asked)
            else:
                if not served.federated and calls_service(queries[0]):
                    raise ServeError("federated queries (SERVICE) are off: the server would fetch other endpoints",
                                     status=403, hint="start `kgbuild serve --federated` to allow them")
                body, media = await run_in_threadpool(answer_sparql, served.store, queries[0], accept, asked)
        except ServeError as err:
            return sparql_error(err, err.status)
        except KgbuildError as err:  # a syntax error, or a query that failed
            return sparql_error(err, 400)
        text = media.startswith("text/") or media.endswith(("json", "xml"))
        return Response(body, media_type=media + ("; charset=utf-8" if text else ""))

    @app.get("/ask")
    def ask(q: str = Query(..., description="the question, in English"),
            top: int = Query(5, ge=1, le=100, description="how many answers")) -> Any:
        """The answers to a question, with the facts, sources and SPARQL behind each (`kgbuild ask --json`)."""
        try:
            return served.ask(q, top)
        except KgbuildError as err:
            return error(err, 400)

    @app.get("/predict")
    def predict(relation: str = Query(..., description='relation label ("place of birth"), id (P19) or IRI'),
                head: str | None = Query(None, description="entity name, alias or IRI: rank its tails"),
                tail: str | None = Query(None, description="entity name, alias or IRI: rank its heads"),
                top: int = Query(10, ge=1, le=1000, description="how many candidates")) -> Any:
        """Ranked candidates for the missing side of a fact, from the trained embeddings (`kgbuild predict --json`)."""
        try:
            return served.predict(head, relation, tail, top)
        except (UnknownEntityError, UnknownRelationError) as err:
            return error(err, 404)
        except ServeError as err:
            return error(err, err.status)
        except KgbuildError as err:
            return error(err, 400)

    return app


def serve(out: str | Path, host: str = "127.0.0.1", port: int = 8000, scorer: str | Path | None = None,
          device: str = "cpu", completion: str = "auto", federated: bool = False, log_level: str = "info",
          started: Any = None) -> None:
    """Serve the graph in `out` until interrupted (uvicorn); `started()` is called once the graph is
    open and the port free, just before the server starts."""
    import socket

    app = create_app(out, scorer=scorer, device=device, completion=completion, federated=federated)
    import uvicorn

    # uvicorn logs a taken port and exits with code 3 after starting up; say it in one line first
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise KgbuildError(f"cannot listen on {host}:{port}: {err.strerror or err}",
                           hint="choose another --port, or stop the program that uses this one") from None
    if started is not None:
        started()
    uvicorn.run(app, host=host, port=port, log_level=log_level)
