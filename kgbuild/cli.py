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
train_app = typer.Typer(no_args_is_help=True, help="Fit models on your own data.")
app.add_typer(train_app, name="train")

ConfigOpt = typer.Option(None, "--pipeline", "-p", help="pipeline TOML (default: built-in defaults = pipelines/default.toml)")
SetOpt = typer.Option(None, "--set", help="override a config key, e.g. --set relations.threshold=0.6 (repeatable)")
# Options shared by the benchmark commands.
LimitOpt = typer.Option(None, "--limit", help="only this many documents")
OffsetOpt = typer.Option(0, "--offset", help="skip this many documents first")
DeviceOpt = typer.Option(None, "--device", help="auto, cpu or cuda")
JsonOpt = typer.Option(False, "--json", help="machine-readable output")
PrecisionOpt = typer.Option("auto", "--precision", help="auto (bf16 or fp16 on a GPU, fp32 on the CPU), fp32, bf16 "
                            "(also on a CPU with bf16 dot products: AVX512-BF16 or AMX) or fp16 (GPU)")


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
        update = "; graph updated in place (only what changed)" if result.graph == "updated" else ""
        typer.echo(f"reused {result.reused} unchanged document(s); {result.removed} removed since the last run{update}")
    if embed:
        from kgbuild.embed import train_embeddings

        summary = train_embeddings(out, device=config.device, quiet=quiet or not sys.stderr.isatty())
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
    workers: int = typer.Option(1, "--workers", min=1, help="kgbuild --workers N against spaCy n_process=N (and both against 1 process)"),
    repeats: int = typer.Option(2, "--repeats", min=1, help="timed runs of each side; the best counts"),
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Words per second of the pipeline as a ratio to spaCy's nlp.pipe, same texts, same process;
    with --workers N also the speed-up from 1 to N processes of both, and of the machine itself."""
    from kgbuild.eval.speed import format_speed, measure_speed

    result = measure_speed(data, _config(pipeline, overrides, device), limit=limit, threads=threads,
                           workers=workers, repeats=repeats)
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
    docs: Optional[list[int]] = typer.Option(None, "--docs", help="corpus sizes to run (repeatable; default 1000 and 10000, none with --file-mb)"),
    file_mb: Optional[list[float]] = typer.Option(None, "--file-mb", help="also run one generated text file of this many MB (repeatable)"),
    workers: int = typer.Option(1, "--workers", min=1, help="run with --workers N (the peaks of the main process and of the largest worker are both reported)"),
    as_json: bool = JsonOpt,
) -> None:
    """Peak resident memory of `kgbuild run` (each in a child process) by corpus size and for one big file."""
    from kgbuild.eval.memory import format_memory, measure_memory

    default = [] if file_mb else [1000, 10000]
    result = measure_memory(data, docs=docs if docs is not None else default, file_mb=file_mb or [], workers=workers)
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


@eval_app.command("pronouns")
def eval_pronouns(
    data: Path = typer.Argument(..., help="Re-DocRED JSON, e.g. ../shared/data/redocred/dev_revised.json"),
    limit: Optional[int] = LimitOpt,
    offset: int = OffsetOpt,
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Pronoun resolution on Re-DocRED with pronouns substituted for later mentions of names."""
    from kgbuild.eval.linking import evaluate_pronouns, format_pronouns

    _require_redocred(data)
    result = evaluate_pronouns(data, _config(pipeline, overrides, device), limit=limit, offset=offset)
    _emit(result, as_json, format_pronouns)


@eval_app.command("relphrases")
def eval_relphrases(
    data: Path = typer.Argument(..., help="Re-DocRED JSON, e.g. ../shared/data/redocred/dev_revised.json"),
    limit: Optional[int] = LimitOpt,
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Open relation phrases of Re-DocRED's gold relations: schema mapping and clustering per threshold."""
    from kgbuild.eval.linking import evaluate_relation_phrases, format_relation_phrases

    _require_redocred(data)
    result = evaluate_relation_phrases(data, _config(pipeline, overrides, device), limit=limit)
    _emit(result, as_json, format_relation_phrases)


@app.command()
def embed(
    out: Path = typer.Argument(..., help="output folder of a run"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="rotate, complex, complex-n3, nbfnet, astarnet, transe, tucker, tucker-ce, distmult or any PyKEEN model (default: by graph size)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="most epochs to train (early stopping on validation MRR usually ends sooner)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    seed: int = typer.Option(0, "--seed", help="random seed of the split and the training"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="training setting KEY=VALUE, e.g. embedding_dim=500 (repeatable)"),
    members: int = typer.Option(1, "--members", help="train this many models (seeds SEED, SEED+1, ...) and save their ensemble"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="folder that keeps training resumable: the same command with it goes on where it stopped"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="end training after this many minutes, inside an epoch if need be (evaluation not counted; shared among --members)"),
    rules: bool = typer.Option(True, "--rules/--no-rules", help="also learn rules from the facts: added to the model's scores (weighted by validation MRR) and shown as the reasons of each prediction"),
) -> None:
    """Train link-prediction embeddings of the graph in OUT (saved in OUT/embeddings)."""
    from kgbuild.embed import train_embeddings

    # PyKEEN's progress bars redraw with carriage returns: in a log file they are noise
    result = train_embeddings(out, model=model, epochs=epochs, device=device, seed=seed,
                              quiet=quiet or not sys.stderr.isatty(),
                              settings=settings, members=members, checkpoint=checkpoint, max_minutes=max_minutes,
                              rules=rules)
    m = result.metrics
    scores = (f"validation MRR {m['mrr']:.3f}, Hits@10 {m['hits@10']:.3f}" if m
              else "graph too small for a validation split")
    if result.members and m:
        scores += " (each alone: " + ", ".join(f"{x.metrics['mrr']:.3f}" for x in result.members) + ")"
    if result.rule_counts:
        kept = (f"added at weight {result.rules_weight:g}" if result.rules_weight
                else "left out: they did not raise validation MRR")
        scores += (f"; {sum(result.rule_counts.values())} rules {kept}"
                   + (f" (the model alone: MRR {result.metrics_without_rules['mrr']:.3f})"
                      if result.rules_weight and result.metrics_without_rules else ""))
    typer.echo(
        f"{'ensemble of ' + str(len(result.members)) + ' x ' if result.members else ''}"
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
        for rule in c.because:
            typer.echo(f"       because {rule}")
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
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="end training after this many minutes, inside an epoch if need be (evaluation not counted)"),
    progress: bool = typer.Option(False, "--progress", help="print each validation's MRR and time so far (stderr)"),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="training setting KEY=VALUE, e.g. embedding_dim=500 (repeatable)"),
    known: Optional[list[Path]] = typer.Option(None, "--known", help="more true triples (e.g. a withheld test split), never trained on, also filtered from the rankings (repeatable)"),
    members: int = typer.Option(1, "--members", help="train this many models (seeds SEED, SEED+1, ...) and rank with their ensemble; --max-minutes is shared among them"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="folder that keeps training resumable: the same command with it goes on where it stopped"),
    rules: str = typer.Option("off", "--rules", help="off; add: also learn rules from the training triples and add their scores to the embeddings'; only: rank with the rules alone, training nothing"),
    rules_weight: Optional[float] = typer.Option(None, "--rules-weight", help="with --rules add: the rules' weight against the embeddings' log-probabilities (default: chosen by validation MRR among 0, 1, 3, 10, 30)"),
    as_json: bool = JsonOpt,
) -> None:
    """Filtered both-sides MRR and Hits@1/3/10 of an embedding model (or an ensemble, or rules) on a link-prediction benchmark."""
    from kgbuild.embed.linkpred import evaluate_linkpred, format_linkpred, result_json

    name = dataset or (train.stem if train else "data")
    plot = plot or Path(f"linkpred-{name}-{(model or 'default').lower()}.png")
    result = evaluate_linkpred(dataset=dataset, train=train, valid=valid, test=test, model=model, epochs=epochs,
                               device=device, seed=seed, plot=plot, max_minutes=max_minutes,
                               progress=(lambda line: typer.echo(line, err=True)) if progress else None,
                               settings=settings, known=known, members=members, checkpoint=checkpoint,
                               rules=rules, rules_weight=rules_weight)
    typer.echo(result_json(result) if as_json else format_linkpred(result))


@eval_app.command("embed-speed")
def eval_embed_speed(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="nations, umls or kinships (inside pykeen)"),
    train: Optional[Path] = typer.Option(None, "--train", help="training triples, tab-separated"),
    valid: Optional[Path] = typer.Option(None, "--valid", help="validation triples (the evaluated ones)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="PyKEEN model (default: kgbuild's default for the graph)"),
    batches: int = typer.Option(5, "--batches", help="training steps timed"),
    eval_triples: int = typer.Option(256, "--eval-triples", help="validation triples ranked"),
    repeats: int = typer.Option(2, "--repeats", help="best of this many runs of each"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda"),
    as_json: bool = JsonOpt,
) -> None:
    """Training-step and evaluation time with PyKEEN's broadcasting scoring and kgbuild's matrix-product scoring."""
    from kgbuild.eval.embed_speed import format_embed_speed, measure_embed_speed

    result = measure_embed_speed(dataset=dataset, train=train, valid=valid, model=model, batches=batches,
                                 eval_triples=eval_triples, repeats=repeats, device=device)
    _emit(result, as_json, format_embed_speed)


@eval_app.command("path-speed")
def eval_path_speed(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="nations, umls or kinships (inside pykeen)"),
    train: Optional[Path] = typer.Option(None, "--train", help="training triples, tab-separated"),
    valid: Optional[Path] = typer.Option(None, "--valid", help="validation triples (the ranked queries)"),
    model: list[str] = typer.Option(["nbfnet", "astarnet"], "--model", "-m", help="path models compared (repeat); the first is the baseline"),
    batches: int = typer.Option(2, "--batches", help="training batches timed"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="training queries a batch (default: the preset's)"),
    queries: int = typer.Option(16, "--queries", help="validation queries ranked against every entity"),
    repeats: int = typer.Option(2, "--repeats", help="best of this many runs of each"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda"),
    settings: list[str] = typer.Option([], "--set", help="KEY=VALUE on top of each model's preset"),
    as_json: bool = JsonOpt,
) -> None:
    """Training and ranking time of a query for NBFNet and A*Net, and what an epoch would take."""
    from kgbuild.eval.path_speed import format_path_speed, measure_path_speed

    result = measure_path_speed(dataset=dataset, train=train, valid=valid, models=tuple(model), batches=batches,
                                batch_size=batch_size, queries=queries, repeats=repeats, device=device,
                                settings=settings)
    _emit(result, as_json, format_path_speed)


@eval_app.command("embed-loss")
def eval_embed_loss(
    train: Path = typer.Option(..., "--train", help="training triples, tab-separated"),
    valid: Path = typer.Option(..., "--valid", help="validation triples (a sample is ranked)"),
    settings: Optional[list[str]] = typer.Option(None, "--setting", help="LOSS:LEARNING_RATE, e.g. crossentropy:0.003 (repeatable; default: the default's loss and bcewithlogits)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="PyKEEN model (default: kgbuild's default for the graph)"),
    epochs: int = typer.Option(2, "--epochs", help="epochs per setting"),
    sample: int = typer.Option(2000, "--sample", help="validation triples ranked (seeded sample)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    seed: int = typer.Option(0, "--seed", help="random seed of the training and the sample"),
    as_json: bool = JsonOpt,
) -> None:
    """Validation MRR after a few epochs with each loss and learning rate: which setting learns fastest."""
    from kgbuild.eval.embed_loss import compare_losses, format_loss_comparison, parse_setting

    parsed = [parse_setting(s) for s in settings] if settings else None
    result = compare_losses(train, valid, parsed, model=model, epochs=epochs, sample=sample, device=device, seed=seed)
    _emit(result, as_json, format_loss_comparison)


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
def load(
    triples: Path = typer.Argument(..., help="file of head<TAB>relation<TAB>tail lines"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (its graph is replaced)"),
    base: str = typer.Option("http://kgbuild.org/kg/", "--base", help="base IRI of entities and relations"),
) -> None:
    """Load an existing knowledge base into OUT, as `kgbuild run` would have built it."""
    from kgbuild.qa.load import load_triples

    result = load_triples(triples, out, base)
    typer.echo(f"{result.facts:,} facts, {result.entities:,} entities, {result.relations} relations "
               f"in {result.seconds:.1f}s -> {out}")
    if result.duplicates:
        typer.echo(f"{result.duplicates} repeated line(s) loaded once")
    if result.skipped:
        typer.echo(f"skipped {len(result.skipped)} malformed line(s); all listed in {Path(out) / 'load.json'}:")
        for bad in result.skipped[:10]:
            typer.echo(f"  line {bad.line}: {bad.reason}: {bad.text!r}")


@app.command()
def ask(
    out: Path = typer.Argument(..., help="output folder of `kgbuild run` or `kgbuild load`"),
    question: Optional[str] = typer.Argument(None, help="the question; leave it out for an interactive prompt"),
    top: int = typer.Option(5, "--top", "-n", min=1, help="how many answers"),
    scorer: Optional[Path] = typer.Option(None, "--scorer", help="path scorer from `kgbuild train qa` (default: OUT/qa, else zero-shot)"),
    completion: str = typer.Option("auto", "--completion", help="how a missing fact is inferred: auto (rules, then embeddings), rules, embeddings or none"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda"),
    as_json: bool = JsonOpt,
) -> None:
    """Answer a question from the graph in OUT, with the facts, sources and SPARQL behind each answer."""
    from dataclasses import asdict

    from kgbuild.qa.answer import Answerer, format_answers

    answerer = Answerer.open(out, scorer=scorer, device=device, completion=completion)

    def show(text: str) -> None:
        result = answerer.answer(text, top=top)
        typer.echo(json.dumps(asdict(result), indent=2) if as_json else format_answers(result))

    if question is not None:
        show(question)
        return
    while True:
        try:
            text = typer.prompt("question (empty to quit)", default="", show_default=False)
        except (EOFError, typer.Abort):
            break
        if not text.strip():
            break
        show(text)


@app.command()
def serve(
    out: Path = typer.Argument(..., help="output folder of `kgbuild run` or `kgbuild load`"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, "--port", help="TCP port"),
    scorer: Optional[Path] = typer.Option(None, "--scorer", help="path scorer for /ask (default: OUT/qa, else zero-shot)"),
    completion: str = typer.Option("auto", "--completion", help="how /ask infers a missing fact: auto, rules, embeddings or none"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda"),
    federated: bool = typer.Option(False, "--federated", help="let queries call other SPARQL endpoints (SERVICE) from this machine"),
) -> None:
    """Serve the graph in OUT over HTTP, read-only: a SPARQL endpoint at /sparql, /ask and /predict."""
    from kgbuild.serve import serve as run_server

    run_server(out, host=host, port=port, scorer=scorer, device=device, completion=completion, federated=federated,
               started=lambda: typer.echo(f"SPARQL endpoint: http://{host}:{port}/sparql  (questions: /ask?q=..., "
                                          "routes: /docs)"))


@train_app.command("qa")
def train_qa(
    kb: Path = typer.Option(..., "--kb", help="output folder, or a head<TAB>relation<TAB>tail file"),
    questions: Path = typer.Option(..., "--questions", help="question<TAB>answer1|answer2 lines (topic may be in [brackets])"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for the scorer (default: KB/qa for an output folder)"),
    hops: int = typer.Option(3, "--hops", min=1, max=3, help="longest relation path"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
) -> None:
    """Fit the question -> relation-path scorer of `kgbuild ask` on question-answer pairs."""
    from kgbuild.qa.train import train_qa as run_train

    scorer, target = run_train(kb, questions, out, hops=hops, device=device, seed=seed)
    r = scorer.report
    typer.echo(f"{scorer.kind} scorer, {len(scorer.classes)} relation paths, from {r['labelled']} of "
               f"{r['questions']} questions; dev hits@1 {r['dev_hits@1']} -> {target}")


@eval_app.command("qa")
def eval_qa(
    kb: Path = typer.Option(..., "--kb", help="KB triples, e.g. ../shared/data/metaqa/kb/kb.tsv"),
    questions: Path = typer.Option(..., "--questions", help="MetaQA folder (N-hop/qa_dev.txt) or one question file"),
    hops: Optional[list[int]] = typer.Option(None, "--hops", help="1, 2 or 3 (repeatable; default all)"),
    train_fraction: float = typer.Option(0.5, "--train-fraction", help="share of each question file that trains the scorer"),
    drop_kb: float = typer.Option(0.0, "--drop-kb", help="share of KB triples removed at random first (0.5: half KB)"),
    seed: int = typer.Option(0, "--seed", help="seed of the splits and the drop"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only this many questions per file (after the seeded shuffle)"),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="folder to save (and reuse) the incomplete KB's embeddings"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="embedding epochs (with --drop-kb)"),
    latency_sample: int = typer.Option(300, "--latency-sample", help="questions per file timed one at a time"),
    completion: str = typer.Option("rules", "--completion", help="how missing hops are bridged: rules, embeddings, auto or none"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda"),
    as_json: bool = JsonOpt,
) -> None:
    """MetaQA: hits@1 per hop of `kgbuild ask`'s answering on held-out questions, and latency."""
    from kgbuild.qa.metaqa import evaluate_metaqa, format_metaqa

    result = evaluate_metaqa(kb, questions, hops=hops, train_fraction=train_fraction, drop_kb=drop_kb, seed=seed,
                             limit=limit, device=device, embeddings=embeddings, epochs=epochs,
                             latency_sample=latency_sample, completion=completion)
    _emit(result, as_json, format_metaqa)


@eval_app.command("qa-text")
def eval_qa_text(
    data: Path = typer.Argument(..., help="Re-DocRED JSON, e.g. ../shared/data/redocred/dev_revised.json"),
    limit: int = typer.Option(20, "--limit", help="documents to build the graph from"),
    offset: int = OffsetOpt,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="keep the built graph here (default: a temporary folder)"),
    pipeline: Optional[Path] = ConfigOpt,
    device: Optional[str] = DeviceOpt,
    overrides: Optional[list[str]] = SetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """QA on a graph built from text: questions written from Re-DocRED gold relations, hits@1."""
    from kgbuild.qa.textqa import evaluate_textqa, format_textqa

    _require_redocred(data)
    result = evaluate_textqa(data, limit=limit, offset=offset, config=_config(pipeline, overrides, device), out=out)
    _emit(result, as_json, format_textqa)


def _extraction_trainer(task: str):
    """`kgbuild train ner` / `train re`: the same options, one task each."""
    what = "entities" if task == "ner" else "entities and relations (jointly)"

    def command(
        train: Path = typer.Option(..., "--train", help="training data file"),
        dev: Path = typer.Option(..., "--dev", help="dev data file: scored every epoch, the best epoch is kept"),
        fmt: str = typer.Option("auto", "--format", help="conll04, conll2003, casrel, redocred, jsonl or auto (guess)"),
        out: Path = typer.Option(..., "--out", "-o", help="model folder to write"),
        base_model: str = typer.Option("auto", "--base-model", help="encoder: hub name or folder (auto: the packaged all-MiniLM-L6-v2), or a model folder of kgbuild train to go on from its encoder"),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
        epochs: int = typer.Option(20, "--epochs", min=1, help="most epochs (early stopping on dev F1 may end sooner)"),
        seed: int = typer.Option(0, "--seed", help="random seed"),
        batch_size: int = typer.Option(16, "--batch-size", min=1, help="windows per training step"),
        lr: Optional[float] = typer.Option(None, "--lr", help="learning rate of the encoder (default 1e-4; the heads get 10x) or of its adapter (--adapter lora: default 1e-3, the heads the same)"),
        patience: int = typer.Option(5, "--patience", min=1, help="stop after this many epochs without a better dev F1"),
        max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="stop training after this much wall time"),
        limit: Optional[int] = typer.Option(None, "--limit", help="train on the first N examples only"),
        train_records: Optional[str] = typer.Option(None, "--train-records", help="only records A:B of --train (Re-DocRED: documents; CoNLL: sentences; JSONL: lines), e.g. 0:200"),
        dev_records: Optional[str] = typer.Option(None, "--dev-records", help="only records A:B of --dev, e.g. 200:250 (may share a file with --train, not a record)"),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's)"),
        case_features: Optional[bool] = typer.Option(None, "--case-features/--no-case-features", help="word-shape (capitalisation) vectors added to the encoder's inputs (default: on when the encoder's tokenizer lowercases)"),
        select: Optional[str] = typer.Option(None, "--select", help="dev F1 that picks the epoch kept: relations (the default of re), entities, or mean (of both; re only)"),
        ema: float = typer.Option(0.0, "--ema", help="score and keep an exponential moving average of the weights with this decay per step, e.g. 0.998 (0: off)"),
        adapter: str = typer.Option("none", "--adapter", help="none: fine-tune the whole encoder; lora: train a LoRA adapter on it, and store only the adapter (5.4 MB at rank 32 on the packaged encoder, against 87 MB)"),
        lora_rank: int = typer.Option(32, "--lora-rank", min=1, help="rank of the LoRA adapter (--adapter lora)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    ) -> None:
        from kgbuild.neural.formats import parse_records
        from kgbuild.neural.train import train as run_train

        r = run_train(train, dev, out, task=task, fmt=fmt, base_model=base_model, device=device, epochs=epochs,
                      seed=seed, batch_size=batch_size, lr=lr, patience=patience,
                      max_minutes=max_minutes, limit=limit, threads=threads, quiet=quiet,
                      train_records=parse_records(train_records), dev_records=parse_records(dev_records),
                      case_features=case_features, select=select, ema=ema, adapter=adapter, lora_rank=lora_rank)
        rel = f", strict relation F1 {r.dev['relations']['micro']['f1']:.2f}" if task == "re" else ""
        typer.echo(f"{r.train_examples} training / {r.dev_examples} dev texts, {r.epochs} epochs (best {r.best_epoch}) "
                   f"in {r.seconds:.0f}s on {r.device} ({r.precision}); dev entity F1 "
                   f"{r.dev['entities']['micro']['f1']:.2f}{rel} -> {r.model_dir}")

    command.__doc__ = f"Fine-tune a transformer to recognise {what}; writes a model folder for `{'ner' if task == 'ner' else 'relations'} = \"transformers\"`."
    return command


def _extraction_evaluator(task: str):
    def command(
        model: Path = typer.Option(..., "--model", "-m", help="model folder written by `kgbuild train`"),
        data: Path = typer.Option(..., "--data", help="annotated file"),
        fmt: str = typer.Option("auto", "--format", help="conll04, conll2003, casrel, redocred, jsonl or auto (guess)"),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
        batch_size: int = typer.Option(32, "--batch-size", min=1, help="windows per forward pass"),
        records: Optional[str] = typer.Option(None, "--records", help="only records A:B of --data (Re-DocRED: documents), e.g. 250:500"),
        precision: str = PrecisionOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        from kgbuild.neural.formats import parse_records
        from kgbuild.neural.train import evaluate, format_scores

        _emit(evaluate(model, data, fmt, device=device, batch_size=batch_size, task=task,
                       records=parse_records(records), precision=precision), as_json, format_scores)

    command.__doc__ = ("Precision, recall and F1 (micro and macro) of a trained model's entities"
                       + (" and strict relations (both spans, both types, relation type)." if task == "re" else "."))
    return command


for _task in ("ner", "re"):
    train_app.command(_task)(_extraction_trainer(_task))
    eval_app.command(_task)(_extraction_evaluator(_task))


@train_app.command("ensemble")
def train_ensemble(
    models: list[Path] = typer.Argument(..., help="two or more model folders written by `kgbuild train re|ner`"),
    out: Path = typer.Option(..., "--out", "-o", help="ensemble folder to write (it names the members, relative to itself)"),
) -> None:
    """Combine trained models (same labels and tokenizer, e.g. other seeds) into one folder that
    averages their probabilities; use it wherever a model folder goes."""
    from kgbuild.neural.joint import write_ensemble

    marker = write_ensemble(models, out)
    typer.echo(f"ensemble of {len(marker['members'])} models -> {out}")


@train_app.command("half")
def train_half(
    model: Path = typer.Argument(..., help="model folder written by `kgbuild train re|ner`"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the copy"),
    dtype: str = typer.Option("fp16", "--dtype", help="fp16 or bf16"),
) -> None:
    """Copy a trained model folder with its weights stored in half precision (half the size on
    disk); it loads and predicts wherever a model folder goes, its weights widened to float32."""
    from kgbuild.neural.joint import write_half

    result = write_half(model, out, dtype)
    typer.echo(f"{result['dtype']} copy -> {out}: {result['bytes_before'] / 2**20:,.1f} MB -> "
               f"{result['bytes_after'] / 2**20:,.1f} MB")


@eval_app.command("speed-neural")
def eval_speed_neural(
    model: Path = typer.Option(..., "--model", "-m", help="model folder written by `kgbuild train`"),
    data: Path = typer.Option(..., "--data", help="annotated file whose texts are run through the model"),
    fmt: str = typer.Option("auto", "--format", help="conll04, conll2003, casrel, redocred, jsonl or auto (guess)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="windows per forward pass"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only this many texts"),
    repeat: int = typer.Option(1, "--repeat", min=1, help="run the texts this many times (more work per measurement)"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's)"),
    profile: Optional[Path] = typer.Option(None, "--profile", help="write a cProfile of the timed run here (python -m pstats FILE)"),
    precision: str = PrecisionOpt,
    processes: list[int] = typer.Option([1], "--processes", min=1, help="also run this many processes, each with its own copy of the model on the device, and give the speed-up over one (repeat it for a sweep: --processes 2 --processes 4 --processes 8)"),
    as_json: bool = JsonOpt,
) -> None:
    """Sentences per second of a trained joint model (entities and relations), the time of each stage
    (tokenisation, batch building, transfer, the model alone, the rest) and the one that bounds it;
    GPU memory on CUDA. With --processes N: one process, then N sharing the device, and the ratio
    (--threads is then per process); --processes given several times runs each count in turn."""
    from kgbuild.neural.train import format_speed, measure_speed

    _emit(measure_speed(model, data, fmt, device=device, batch_size=batch_size, limit=limit, repeat=repeat,
                        profile=profile, processes=processes, threads=threads, precision=precision), as_json,
          format_speed)


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
