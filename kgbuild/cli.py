"""The `kgbuild` command: parses arguments, calls one library function, prints. The only place
that exits: a KgbuildError becomes a one-line message and exit code 1; anything else keeps its
traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from kgbuild.errors import KgbuildError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build a knowledge graph from a folder of documents, then query and export it.")
eval_app = typer.Typer(no_args_is_help=True, help="Benchmarks: extraction quality and throughput.")
app.add_typer(eval_app, name="eval")

ConfigOpt = typer.Option(None, "--pipeline", "-p", help="pipeline TOML (default: built-in defaults = pipelines/default.toml)")
SetOpt = typer.Option(None, "--set", help="override a config key, e.g. --set relations.threshold=0.6 (repeatable)")
# Options shared by the benchmark commands.
LimitOpt = typer.Option(None, "--limit", help="only this many documents")
OffsetOpt = typer.Option(0, "--offset", help="skip this many documents first")
DeviceOpt = typer.Option(None, "--device", help="auto, cpu or cuda")
JsonOpt = typer.Option(False, "--json", help="machine-readable output")


def _require_redocred(path: Path) -> None:
    if not path.is_file():
        raise KgbuildError(f"{path} not found", hint="pass the path of a Re-DocRED JSON file")


def _emit(result: dict, as_json: bool, formatter) -> None:
    typer.echo(json.dumps(result, indent=2, default=str) if as_json else formatter(result))


def _config(pipeline: Optional[Path], overrides: Optional[list[str]], device: Optional[str] = None):
    from kgbuild.config import load_config
    return load_config(pipeline, overrides or [], device=device)


@app.command()
def run(
    corpus: Path = typer.Argument(..., help="folder (or file) of .txt, .md, .jsonl, .csv, .html, .pdf documents"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder: graph store and run.json"),
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda (default: the config's)"),
    overrides: Optional[list[str]] = SetOpt,
    include: Optional[list[str]] = typer.Option(None, "--include", help="only files whose relative path matches this glob (repeatable)"),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="leave out files whose relative path matches this glob (repeatable)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    no_cache: bool = typer.Option(False, "--no-cache", help="re-process every document, even unchanged ones"),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="processes for the ner and relations stages"),
    engine: Optional[str] = typer.Option(None, "--engine", help="local or ray: where ner and relations run (default: the config's engine)"),
    address: Optional[str] = typer.Option(None, "--address", help="with --engine ray: the cluster to join, e.g. auto (default: start Ray here)"),
    kb: Optional[Path] = typer.Option(None, "--kb", help="knowledge base .jsonl to link entities to (owl:sameAs); same as --set linking.kb=FILE"),
    embed: bool = typer.Option(False, "--embed", help="then train link-prediction embeddings (as `kgbuild embed OUT`)"),
) -> None:
    """Build the knowledge graph of every document under CORPUS into OUT.

    Re-running into the same OUT re-processes only new and changed documents."""
    from kgbuild.runner import run as run_pipeline

    config = _config(pipeline, overrides, device)
    if include:
        config.ingest.include = list(include)
    if exclude:
        config.ingest.exclude = list(exclude)
    if kb is not None:
        if not kb.is_file():
            raise KgbuildError(f"knowledge base {kb} not found", hint="pass --kb FILE.jsonl (python -m kgbuild.linking.kb_convert makes one)")
        config.linking.options["kb"] = str(kb)
    result = run_pipeline(corpus, out, config, quiet=quiet, use_cache=not no_cache, workers=workers,
                          engine=engine, address=address)
    mentions = sum(result.mentions.values())
    typer.echo(
        f"{result.documents} documents, {result.words:,} words, {mentions} mentions, "
        f"{result.entities} entities, {result.facts} facts ({result.statements} with provenance) "
        f"in {result.seconds['total']:.1f}s ({result.words_per_second:,.0f} words/s) -> {out}"
    )
    if result.reused or result.removed:
        typer.echo(f"reused {result.reused} unchanged document(s); {result.removed} removed since the last run")
    if embed:
        from kgbuild.embed import train_embeddings

        summary = train_embeddings(out, device=config.device, quiet=quiet)
        typer.echo(f"embeddings ({summary.config.model}, {summary.epochs} epochs) -> {Path(out) / 'embeddings'}")
    if result.skipped:
        typer.echo(f"skipped {len(result.skipped)} file(s); reasons in {Path(out) / 'run.json'}:")
        for s in result.skipped[:10]:
            typer.echo(f"  {s['path']}: {s['reason']}")
        if len(result.skipped) > 10:
            typer.echo(f"  ... and {len(result.skipped) - 10} more")


@app.command()
def query(
    out: Path = typer.Argument(..., help="output folder of a run"),
    sparql: str = typer.Argument(..., help='SPARQL text, or @file.rq to read it from a file'),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, csv or tsv"),
) -> None:
    """Run a SPARQL query over the graph in OUT."""
    from kgbuild.graph.query import format_result, query as run_query

    if sparql.startswith("@"):
        path = Path(sparql[1:])
        if not path.is_file():
            raise KgbuildError(f"query file {path} not found", hint="pass @path/to/query.rq or the query text")
        sparql = path.read_text(encoding="utf-8")
    typer.echo(format_result(run_query(out, sparql), fmt))


@app.command()
def export(
    out: Path = typer.Argument(..., help="output folder of a run"),
    fmt: str = typer.Option(..., "--format", "-f", help="nt, nq, ttl, jsonld or graphml"),
    file: Path = typer.Option(..., "--output", "-o", help="file to write"),
) -> None:
    """Write the whole graph in OUT to FILE (graphml: the networkx graph)."""
    from kgbuild.graph.export import write_graph

    write_graph(out, file, fmt)
    typer.echo(f"wrote {file}")


@eval_app.command("redocred")
def eval_redocred(
    data: Path = typer.Argument(..., help="Re-DocRED JSON, e.g. ../shared/data/redocred/dev_revised.json"),
    limit: Optional[int] = LimitOpt,
    offset: int = OffsetOpt,
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Entity-mention recall and relation P/R/F1 of the pipeline on Re-DocRED documents."""
    from kgbuild.eval.redocred import evaluate_redocred, format_report

    _require_redocred(data)
    result = evaluate_redocred(data, _config(pipeline, overrides, device), limit=limit, offset=offset)
    _emit(result, as_json, format_report)


@eval_app.command("speed")
def eval_speed(
    data: Path = typer.Argument(..., help="a corpus folder, or a Re-DocRED JSON file for its texts"),
    limit: Optional[int] = LimitOpt,
    threads: int = typer.Option(1, "--threads", help="CPU threads for both sides (1: one core)"),
    workers: int = typer.Option(1, "--workers", min=1, help="kgbuild --workers N against spaCy n_process=N"),
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Words per second of the pipeline as a ratio to spaCy's nlp.pipe, same texts, same process."""
    from kgbuild.eval.speed import format_speed, measure_speed

    result = measure_speed(data, _config(pipeline, overrides, device), limit=limit, threads=threads,
                           workers=workers)
    _emit(result, as_json, format_speed)


@eval_app.command("incremental")
def eval_incremental(
    data: Path = typer.Argument(..., help="a corpus folder, or a Re-DocRED JSON file for its texts"),
    docs: int = typer.Option(1000, "--docs", help="corpus size (texts are cycled to reach it)"),
    threads: int = typer.Option(1, "--threads", help="CPU threads"),
    pipeline: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Time to re-run after editing one document, as a fraction of the full run."""
    from kgbuild.eval.speed import format_incremental, measure_incremental

    result = measure_incremental(data, _config(pipeline, overrides), n_docs=docs, threads=threads)
    _emit(result, as_json, format_incremental)


@eval_app.command("memory")
def eval_memory(
    data: Path = typer.Argument(..., help="a corpus folder, or a Re-DocRED JSON file for its texts"),
    docs: Optional[list[int]] = typer.Option(None, "--docs", help="corpus sizes to run (repeatable; default 1000 and 10000)"),
    file_mb: Optional[list[float]] = typer.Option(None, "--file-mb", help="also run one generated text file of this many MB (repeatable)"),
    as_json: bool = JsonOpt,
) -> None:
    """Peak resident memory of `kgbuild run` (each in a child process) by corpus size and for one big file."""
    from kgbuild.eval.memory import format_memory, measure_memory

    result = measure_memory(data, docs=docs if docs is not None else [1000, 10000], file_mb=file_mb or [])
    _emit(result, as_json, format_memory)


@eval_app.command("coref")
def eval_coref(
    data: Path = typer.Argument(..., help="Re-DocRED JSON, e.g. ../shared/data/redocred/dev_revised.json"),
    limit: Optional[int] = LimitOpt,
    offset: int = OffsetOpt,
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Within-document entity clustering (B-cubed, MUC, mention recall) on Re-DocRED."""
    from kgbuild.eval.linking import evaluate_coref, format_coref

    _require_redocred(data)
    result = evaluate_coref(data, _config(pipeline, overrides, device), limit=limit, offset=offset)
    _emit(result, as_json, format_coref)


@app.command()
def embed(
    out: Path = typer.Argument(..., help="output folder of a run"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="rotate, complex, transe, tucker, distmult or any PyKEEN model (default: by graph size)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="most epochs to train (early stopping on validation MRR usually ends sooner)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    seed: int = typer.Option(0, "--seed", help="random seed of the split and the training"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
) -> None:
    """Train link-prediction embeddings of the graph in OUT (saved in OUT/embeddings)."""
    from kgbuild.embed import train_embeddings

    result = train_embeddings(out, model=model, epochs=epochs, device=device, seed=seed, quiet=quiet)
    m = result.metrics
    scores = (f"validation MRR {m['mrr']:.3f}, Hits@10 {m['hits@10']:.3f}" if m
              else "graph too small for a validation split")
    typer.echo(
        f"{result.config.model}: {result.entities} entities, {result.relations} relations, "
        f"{result.training_triples} training / {result.validation_triples} validation facts; "
        f"{result.epochs} epochs (best {result.best_epoch}) in {result.seconds:.1f}s on {result.device}; "
        f"{scores} -> {Path(out) / 'embeddings'}"
    )


@app.command()
def predict(
    out: Path = typer.Argument(..., help="output folder of a run, embedded with `kgbuild embed`"),
    head: Optional[str] = typer.Option(None, "--head", help="entity name, alias or IRI: predict its tails"),
    tail: Optional[str] = typer.Option(None, "--tail", help="entity name, alias or IRI: predict its heads"),
    relation: str = typer.Option(..., "--relation", "-r", help='relation label ("place of birth"), id (P19) or IRI'),
    top: int = typer.Option(10, "--top", "-n", min=1, help="how many candidates"),
    write: bool = typer.Option(False, "--write", help="add the new top candidates to the named graph <base>graph/predicted"),
    as_json: bool = JsonOpt,
) -> None:
    """Rank the missing tail (--head) or head (--tail) of a relation with the trained embeddings."""
    from dataclasses import asdict

    from kgbuild.embed import predict as run_predict

    result = run_predict(out, head=head, relation=relation, tail=tail, top=top, write=write)
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    query = (f"({result.query_label}, {result.relation_label}, ?)" if result.target == "tail"
             else f"(?, {result.relation_label}, {result.query_label})")
    typer.echo(query)
    for c in result.candidates:
        mark = "  [in graph]" if c.known else ""
        typer.echo(f"{c.rank:3d}. {c.score:9.3f}  {c.label}  <{c.iri}>{mark}")
    if write:
        typer.echo(f"wrote {result.written} prediction(s) to <{result.graph}>")


@eval_app.command("linkpred")
def eval_linkpred(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="nations, umls or kinships (inside pykeen)"),
    train: Optional[Path] = typer.Option(None, "--train", help="training triples, tab-separated"),
    valid: Optional[Path] = typer.Option(None, "--valid", help="validation triples (early stopping)"),
    test: Optional[Path] = typer.Option(None, "--test", help="test triples (default: report on --valid)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="PyKEEN model (default: kgbuild's default)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="most epochs to train"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of loss and validation curves (default: linkpred-DATASET-MODEL.png)"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="end training after this many minutes (evaluation not counted)"),
    as_json: bool = JsonOpt,
) -> None:
    """Filtered both-sides MRR and Hits@1/3/10 of an embedding model on a link-prediction benchmark."""
    from kgbuild.embed.linkpred import evaluate_linkpred, format_linkpred, result_json

    name = dataset or (train.stem if train else "data")
    plot = plot or Path(f"linkpred-{name}-{(model or 'default').lower()}.png")
    result = evaluate_linkpred(dataset=dataset, train=train, valid=valid, test=test, model=model, epochs=epochs,
                               device=device, seed=seed, plot=plot, max_minutes=max_minutes)
    typer.echo(result_json(result) if as_json else format_linkpred(result))


@eval_app.command("kblink")
def eval_kblink(
    data: Path = typer.Argument(..., help="WebNLG 3.0 folder holding train/ and dev/, e.g. ../shared/data/webnlg/v3.0"),
    split: str = typer.Option("dev", "--split", help="the split whose texts are linked"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only this many entries"),
    holdout: float = typer.Option(0.0, "--holdout", help="share of the gold entities left out of the KB (their mentions should be NIL)"),
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Accuracy of linking the mentions of WebNLG texts to their DBpedia entities."""
    from kgbuild.eval.linking import evaluate_kblink, format_kblink

    result = evaluate_kblink(data, _config(pipeline, overrides, device), split=split, limit=limit, holdout=holdout)
    _emit(result, as_json, format_kblink)


@eval_app.command("scale")
def eval_scale(
    data: Path = typer.Argument(..., help="FB15k-237 entity2wikidata.json (../shared/data/fb15k-237/)"),
    entities: int = typer.Option(10000, "--entities", "-n", help="how many entities to link"),
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Time, peak memory and merge quality of linking N entities made from FB15k-237 labels."""
    from kgbuild.eval.linking import format_scale, measure_scale

    result = measure_scale(data, entities, _config(pipeline, overrides, device))
    _emit(result, as_json, format_scale)


@app.command()
def version() -> None:
    """Print kgbuild's version."""
    from kgbuild import __version__
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except KgbuildError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
