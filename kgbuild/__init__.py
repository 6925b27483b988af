"""kgbuild: a folder of documents in, a knowledge graph out.

    import kgbuild
    result = kgbuild.run("corpus/", "out/")        # the pipeline; result.save() wrote out/run.json
    g = kgbuild.open_networkx("out/")              # networkx.MultiDiGraph
    rdf = kgbuild.open_rdflib("out/")              # rdflib.Graph
    rows = kgbuild.query("out/", "SELECT ...")     # SPARQL
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from kgbuild.config import Config
    from kgbuild.runner import Pipeline, RunResult

__all__ = ["run", "load_config", "open_networkx", "open_rdflib", "query", "export", "ask", "load",
           "Config", "Pipeline", "RunResult", "__version__"]


def run(corpus, out, config=None, device: str | None = None, quiet: bool = True) -> "RunResult":
    """Build the graph of every document under `corpus` into `out` (see kgbuild.runner.run)."""
    from kgbuild.runner import run as _run
    return _run(corpus, out, config, device=device, quiet=quiet)


def load_config(path=None, overrides: list[str] | None = None, **top: Any) -> "Config":
    from kgbuild.config import load_config as _load
    return _load(path, overrides, **top)


def open_networkx(out):
    """The graph in a run's output folder as a networkx MultiDiGraph."""
    from kgbuild.graph.views import to_networkx
    return to_networkx(out)


def open_rdflib(out):
    """The graph in a run's output folder as an rdflib Graph."""
    from kgbuild.graph.views import to_rdflib
    return to_rdflib(out)


def query(out, sparql: str):
    """Run SPARQL over a run's graph; returns a kgbuild.graph.query.QueryResult."""
    from kgbuild.graph.query import query as _query
    return _query(out, sparql)


def export(out, path, format: str) -> None:
    """Write the whole graph to `path` as nt, nq, ttl, jsonld or graphml."""
    from kgbuild.graph.export import write_graph
    write_graph(out, path, format)


def ask(out, question: str, top: int = 5, scorer=None, device: str = "cpu"):
    """Answer `question` from the graph in `out`; a kgbuild.qa.AskResult (answers with their
    chains, sources, SPARQL, stated or inferred). For many questions use kgbuild.qa.Answerer."""
    from kgbuild.qa.answer import ask as _ask
    return _ask(out, question, top=top, scorer=scorer, device=device)


def load(triples, out, base: str = "http://kgbuild.org/kg/"):
    """Load a head<TAB>relation<TAB>tail file as the graph of `out`; a kgbuild.qa.LoadResult."""
    from kgbuild.qa.load import load_triples
    return load_triples(triples, out, base)


def __getattr__(name: str):
    # Heavy classes load on first use so that `import kgbuild` stays fast.
    if name in ("Config",):
        from kgbuild import config
        return getattr(config, name)
    if name in ("Pipeline", "RunResult"):
        from kgbuild import runner
        return getattr(runner, name)
    raise AttributeError(name)
