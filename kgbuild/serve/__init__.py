"""`kgbuild serve`: the graph of an output folder over HTTP, read-only: a SPARQL 1.1 Protocol
endpoint that other tools (rdflib's SPARQLStore, SPARQLWrapper, YASGUI, Protégé) can query, and JSON
routes for `ask` and `predict`. Needs `pip install "kgbuild[serve]"` (FastAPI and uvicorn)."""

from __future__ import annotations

from kgbuild.serve.app import create_app, serve

__all__ = ["create_app", "serve"]
