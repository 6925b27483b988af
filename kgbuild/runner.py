"""The pipeline: corpus -> documents -> mentions -> relation mentions -> linked entities -> graph.

`run(corpus, out, config)` is the whole job behind `kgbuild run`; `Pipeline` is the part that
turns a batch of documents into annotated documents, for benchmarks and notebooks."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from kgbuild import registry
from kgbuild.cache import DocumentCache, stages_hash
from kgbuild.config import ENGINES, Config, load_config
from kgbuild.errors import ConfigError, CorpusError, StageError
from kgbuild.model import Document, Entity, Skipped

STAGE_ORDER = ("ner", "relations", "linking")
# Stages whose output depends on one document alone: cached per document.
LOCAL_STAGES = ("ner", "relations")
REPORT = "run.json"
_PACKAGES = ("kgbuild", "torch", "spacy", "transformers", "sentence-transformers", "pyoxigraph",
             "rdflib", "networkx")


class _Stages(dict):
    """Stage name -> backend instance; a stage not built yet is built on first access."""

    def __init__(self, build) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, name: str) -> Any:
        self[name] = stage = self._build(name)
        return stage


class Pipeline:
    """The model stages, built from a config by name, applied to batches of documents.

    With `preload` every stage's models load now; without, each stage loads on first use, so a
    driver whose ner and relations run in workers (`--workers`, `--engine ray`) never loads them."""

    def __init__(self, config: Config | None = None, device: str | None = None,
                 stages: tuple[str, ...] = STAGE_ORDER, preload: bool = True) -> None:
        self.config = config or Config()
        self.device = device or self.config.device
        self.names = tuple(stages)
        for name in stages:  # all names checked before any model loads
            registry.get(name, getattr(self.config, name).backend)
        self.stages: dict[str, Any] = _Stages(self._build)
        if preload:
            for name in stages:
                self.stages[name]
        self.seconds: Counter = Counter()  # time spent in each stage
        self._pool = None  # worker processes or Ray actors, started by workers()

    def _build(self, name: str) -> Any:
        if name not in self.names:
            raise KeyError(name)
        stage_cfg = getattr(self.config, name)
        return registry.build(name, stage_cfg.backend, stage_cfg.options, device=self.device)

    def process(self, docs: list[Document], stages: tuple[str, ...] = STAGE_ORDER) -> list[Document]:
        """Run the stages (default: all, in order) on one batch, checking each kept the contract."""
        ids = [d.id for d in docs]
        if not docs:
            return docs
        for name in stages:
            stage = self.stages[name]
            t0 = time.perf_counter()
            out = stage(docs)
            self.seconds[name] += time.perf_counter() - t0
            if not isinstance(out, list) or [getattr(d, "id", None) for d in out] != ids:
                raise StageError(
                    f"stage {name!r} ({type(stage).__name__}) did not return the batch it was given",
                    hint="a stage must return the same list of Documents, same order",
                )
            docs = out
        return docs

    def workers(self, n: int, engine: str = "local", address: str | None = None):
        """A pool running the document-local stages: `n` processes (engine "local",
        kgbuild.parallel) or a Ray Data actor pool (engine "ray", kgbuild.ray_engine; `n` actors,
        or one per GPU / CPU of the cluster when n is 1). Started once and kept for later runs
        with this pipeline, so the models load once."""
        stages = tuple(s for s in LOCAL_STAGES if s in self.names)
        key = (engine, n, address)
        if self._pool is None or self._pool.key != key:
            self.close()
            if engine == "ray":
                from kgbuild.ray_engine import RayWorkers
                self._pool = RayWorkers(self.config, stages, n, address)
            else:
                from kgbuild.parallel import LocalWorkers
                self._pool = LocalWorkers(self.config, stages, n)
            self._pool.key = key
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def reset(self) -> None:
        """Start a new run: the linking stage forgets the entities of the last one."""
        cfg = self.config.linking
        self.stages["linking"] = registry.build("linking", cfg.backend, cfg.options, device=self.device)
        self.seconds.clear()

    def finalize(self) -> tuple[list[Entity], dict[str, str]]:
        return self.stages["linking"].finalize()

    def relation_labels(self) -> dict[str, str | list[str]]:
        """Relation id -> label, or labels (the first is rdfs:label): the schema's, then those of
        the open relation phrases the linking stage merged."""
        linking = self.stages.get("linking")
        merged = linking.relation_labels() if hasattr(linking, "relation_labels") else {}
        return {**self._schema_labels(), **merged}

    def _schema_labels(self) -> dict[str, str]:
        if "relations" not in self.names:
            return {}
        cfg = self.config.relations
        cls = registry.get("relations", cfg.backend)
        if "relations" not in self.stages and hasattr(cls, "labels_for"):
            return cls.labels_for(**cfg.options)  # without loading the stage's model
        stage = self.stages["relations"]
        return stage.labels() if hasattr(stage, "labels") else {}

    def info(self) -> dict[str, Any]:
        """Backend and model of each stage; a stage not loaded here (it runs in workers) is
        described by its config."""
        out = {}
        for name in self.names:
            if name in self.stages:
                s = self.stages[name]
                out[name] = {"backend": getattr(s, "backend_name", type(s).__name__),
                             **(s.info() if hasattr(s, "info") else {})}
            else:
                cfg = getattr(self.config, name)
                out[name] = {"backend": cfg.backend, **cfg.options, "loaded_in": "workers"}
        return out


@dataclass
class RunResult:
    """What a run did; saved as OUT/run.json."""

    out: str  # the output folder
    documents: int = 0  # documents processed
    words: int = 0  # whitespace-separated words processed
    sentences: int = 0  # sentences found
    mentions: dict[str, int] = field(default_factory=dict)  # mentions by kgbuild type
    relation_mentions: int = 0  # relation mentions over the confidence threshold
    entities: int = 0  # entities after linking
    facts: int = 0  # distinct (subject, relation, object) triples
    statements: int = 0  # facts with their provenance (one per evidence sentence)
    reused: int = 0  # documents whose ner and relations results came from the cache
    removed: int = 0  # cached documents no longer in the corpus (their facts left the graph)
    graph: str = ""  # "rebuilt" (store written whole) or "updated" (only changed entities and documents)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage, and "total"
    skipped: list[dict[str, str]] = field(default_factory=list)  # files or records not read, with reasons
    config: dict[str, Any] = field(default_factory=dict)  # the config the run used
    config_hash: str = ""  # hash of that config
    versions: dict[str, str] = field(default_factory=dict)  # python and package versions
    models: dict[str, Any] = field(default_factory=dict)  # backend and model of each stage
    started: str = ""  # UTC start time, ISO 8601
    finished: str = ""  # UTC end time

    @property
    def words_per_second(self) -> float:
        """Processing speed: words over wall time, model loading excluded."""
        busy = self.seconds.get("total", 0.0) - self.seconds.get("load", 0.0)
        return self.words / busy if busy > 0 else 0.0

    def save(self, out: str | Path | None = None) -> Path:
        path = Path(out or self.out) / REPORT
        _write_atomic(path, json.dumps(asdict(self), indent=2, ensure_ascii=False, default=str))
        return path

    @classmethod
    def load(cls, out: str | Path) -> "RunResult":
        path = Path(out) / REPORT
        if not path.is_file():
            from kgbuild.errors import GraphError
            raise GraphError(f"no run report in {out}", hint="run `kgbuild run CORPUS -o OUT` first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def networkx(self):
        """The graph as a networkx MultiDiGraph."""
        from kgbuild.graph.views import to_networkx
        return to_networkx(self.out)

    def rdflib(self):
        """The graph as an rdflib Graph."""
        from kgbuild.graph.views import to_rdflib
        return to_rdflib(self.out)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _progress(quiet: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class WordsPerSecond(ProgressColumn):
        def render(self, task) -> Text:
            words = task.fields.get("words", 0)
            elapsed = task.elapsed or 0.0
            return Text(f"{words / elapsed:,.0f} words/s" if elapsed > 0 else "- words/s", style="cyan")

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("docs"), WordsPerSecond(), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), disable=quiet, transient=False)


def run(corpus: str | Path, out: str | Path, config: Config | str | Path | None = None,
        device: str | None = None, quiet: bool = True, pipeline: Pipeline | None = None,
        use_cache: bool = True, workers: int = 1, engine: str | None = None,
        address: str | None = None) -> RunResult:
    """Build the knowledge graph of every document under `corpus` into the folder `out`.

    `config` is a Config, a path to a pipeline TOML, or None for the defaults. Files that
    cannot be read are skipped and listed, with reasons, in the result and OUT/run.json.
    A `pipeline` already built (models loaded) can be passed in to run several corpora.
    With `use_cache`, documents unchanged since the last run into the same `out` (same text,
    same ner and relations config) reuse their results (kgbuild.cache). `workers` > 1 runs the
    ner and relations stages in that many processes (kgbuild.parallel). `engine` "ray" (default:
    the config's `engine`) runs them on a Ray Data actor pool at `address` (kgbuild.ray_engine)."""
    from kgbuild.graph.incremental import write_graph
    from kgbuild.graph.spool import FactSpool
    from kgbuild.graph.store import facts_from_documents
    from kgbuild.ingest import check_corpus, count_documents, iter_corpus

    if pipeline is not None:
        config = pipeline.config
    elif not isinstance(config, Config):
        config = load_config(config)
    if device and device != config.device:
        config = dataclasses.replace(config, device=device)
    engine = engine or config.engine
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "ray":
        from kgbuild.ray_engine import import_ray
        import_ray()  # a missing Ray is a one-line error before any work
    root = check_corpus(corpus)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CorpusError(f"output path {out} is a file", hint="pass a folder with -o")
    total = count_documents(root, config.ingest)
    if total == 0:
        raise CorpusError(f"{root} holds no documents", hint="add .txt, .md, .jsonl or .html files to it")
    out.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    seconds: Counter = Counter()  # wall time per stage; "load" is model loading
    result = RunResult(out=str(out), config=config.to_dict(), config_hash=config.hash(),
                       versions=_versions(), started=datetime.now(timezone.utc).isoformat())
    own_pipeline = pipeline is None
    if pipeline is None:
        t = time.perf_counter()
        # with workers or Ray the models load there, not here
        pipeline = Pipeline(config, preload=engine == "local" and workers <= 1)
        seconds["load"] = time.perf_counter() - t
    else:
        pipeline.reset()
    result.models = pipeline.info()
    mentions: Counter = Counter()
    spool = FactSpool(out)  # facts go to disk batch by batch: memory does not grow with the corpus
    skipped: list[Skipped] = []

    def documents() -> Iterator[Document]:
        t = time.perf_counter()
        for item in iter_corpus(root, config.ingest):
            seconds["ingest"] += time.perf_counter() - t
            if isinstance(item, Skipped):
                skipped.append(item)
            else:
                yield item
            t = time.perf_counter()
        seconds["ingest"] += time.perf_counter() - t

    cache = DocumentCache(out, stages_hash(config, result.versions)) if use_cache else None
    seen: set[str] = set()

    def with_fresh() -> Iterator[tuple[list[Document], list[Document]]]:
        """(batch, the documents of it that the cache could not serve)."""
        for batch in batched(documents(), config.batch_size):
            seen.update(d.id for d in batch)
            yield batch, [d for d in batch if cache is None or not cache.restore(d)]

    def processed() -> Iterator[tuple[list[Document], list[Document], list[bytes] | None]]:
        """(batch, its fresh documents, their packed results when a worker packed them)."""
        if engine == "local" and workers <= 1:
            for batch, fresh in with_fresh():
                yield batch, pipeline.process(fresh, LOCAL_STAGES), None
            return
        pool = pipeline.workers(workers, engine, address)
        pool.seconds.clear()
        try:
            yield from pool.map(with_fresh())
        finally:
            pipeline.seconds.update(pool.seconds)

    try:
        with _progress(quiet) as progress:
            task = progress.add_task("kgbuild run", total=total, words=0)
            for batch, fresh, blobs in processed():
                if cache is not None:
                    cache.store(fresh, blobs)  # before linking, which rewrites mention types and keys
                pipeline.process(batch, ("linking",))
                for doc in batch:
                    result.documents += 1
                    result.words += doc.n_words
                    result.sentences += len(doc.sentences)
                    mentions.update(m.type for m in doc.mentions)
                    result.relation_mentions += len(doc.relations)
                    doc.parse = None  # the parse is large and no later stage needs it
                spool.add(facts_from_documents(batch))
                progress.update(task, advance=len(batch), words=result.words)

        result.skipped = [{"path": s.path, "reason": s.reason} for s in skipped]
        if result.documents == 0:
            spool.close()
            result.save()
            why = f"; {len(skipped)} file(s) skipped, reasons in {out / REPORT}" if skipped else ""
            raise CorpusError(f"no readable document under {root}{why}",
                              hint="add .txt, .md, .jsonl or .html files to the corpus")

        if cache is not None:
            result.reused = cache.hits
            result.removed = cache.prune(seen)
            cache.close()
        seconds.update(pipeline.seconds)
        t = time.perf_counter()
        entities, remap = pipeline.finalize()
        spool.remap(remap)
        seconds["linking"] += time.perf_counter() - t
        t = time.perf_counter()
        # with local workers, they build the graph's quads too: at this point they have nothing to do
        pool = pipeline._pool if engine == "local" and workers > 1 else None
        build = pool.build_graph if pool is not None else None
        result.graph = write_graph(out, entities, spool, config.base_iri, pipeline.relation_labels(), build)
        seconds["graph"] += time.perf_counter() - t

        result.mentions = dict(sorted(mentions.items()))
        result.entities = len(entities)
        result.facts, result.statements = spool.counts()
        spool.close()
        seconds["total"] = time.perf_counter() - t_start
        result.seconds = {k: round(v, 3) for k, v in seconds.items()}
        result.finished = datetime.now(timezone.utc).isoformat()
        result.save()
        return result
    finally:
        if own_pipeline:
            pipeline.close()  # the worker processes, if any
