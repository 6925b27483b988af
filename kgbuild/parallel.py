"""`--workers N`: the document-local stages (ner, relations) run in N worker processes, each with
its own models, while the main process reads the corpus, links and writes the graph. Batches come
back in the order they were sent, so the graph is the same as with one process.

Workers send back each document's results packed as the cache keeps them (kgbuild.cache.pack),
not the document: the main process already has the text, and the cache stores the bytes as they
come. The Ray engine (kgbuild.ray_engine) uses the same functions."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from kgbuild.cache import pack, unpack
from kgbuild.config import Config
from kgbuild.model import Document

_worker_pipeline: Any = None


def limit_tokenizer_threads(threads: int) -> None:
    """Cap the threads of the fast tokenizers' pool (Rust's rayon, which starts one per core on
    its first parallel call) in a worker process, unless the user set RAYON_NUM_THREADS: N
    workers each starting a thread per core would put N times the cores' threads on the machine."""
    os.environ.setdefault("RAYON_NUM_THREADS", str(max(1, threads)))


def worker_pipeline(config: Config, stages: tuple[str, ...]) -> Any:
    """The pipeline of one worker: only `stages`, on one core unless it has a GPU."""
    import torch
    from threadpoolctl import threadpool_limits

    # one core per worker; more would oversubscribe the machine. numpy's and scipy's BLAS and the
    # fast tokenizer's Rust pool start a thread per core of their own, which torch's setting does
    # not reach (the tokenizer's is capped before its first call: limit_tokenizer_threads).
    limit_tokenizer_threads(1)
    torch.set_num_threads(1)
    threadpool_limits(1)
    from kgbuild.runner import Pipeline

    return Pipeline(config, stages=stages)


def process_packed(pipeline: Any, docs: list[Document]) -> tuple[list[bytes], dict[str, float]]:
    """Run a worker's stages on `docs`: their packed results, and seconds per stage."""
    pipeline.seconds.clear()
    docs = pipeline.process(docs, pipeline.names)
    return [pack(d) for d in docs], dict(pipeline.seconds)


def fill(docs: list[Document], blobs: list[bytes]) -> None:
    """Put a worker's packed results into the main process's documents."""
    for doc, blob in zip(docs, blobs, strict=True):
        unpack(doc, blob)


def to_row(doc: Document) -> dict[str, str]:
    """A document as plain strings, for engines that ship data rather than objects (Ray)."""
    return {"id": doc.id, "text": doc.text, "source": doc.source, "meta": json.dumps(doc.meta, default=str)}


def from_row(row: dict[str, Any]) -> Document:
    return Document(id=str(row["id"]), text=str(row["text"]), source=str(row["source"]),
                    meta=json.loads(row["meta"]))


def _init(config: Config, stages: tuple[str, ...]) -> None:
    global _worker_pipeline
    _worker_pipeline = worker_pipeline(config, stages)


def _process(docs: list[Document]) -> tuple[list[bytes], dict[str, float]]:
    return process_packed(_worker_pipeline, docs)


# Documents per job sent to a worker: a batch is split into jobs this size, so that at the end of
# a run the workers finish within one small job of each other instead of one whole batch (32
# documents by default) keeping one core busy while the other waits.
JOB_DOCS = 8


class LocalWorkers:
    """A pool of processes running the given stages on batches, at most 2 batches per worker in
    flight so that memory stays bounded however large the corpus."""

    def __init__(self, config: Config, stages: tuple[str, ...], workers: int) -> None:
        # spawn, not fork: forking a process whose torch and BLAS thread pools are running can hang
        self._pool = mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(config, stages))
        self.size = workers
        self.window = 2 * workers
        self.seconds: dict[str, float] = {}
        self.jobs = 0  # jobs sent to the workers

    def map(self, batches: Iterable[tuple[Any, list[Document]]]) -> Iterator[tuple[Any, list[Document], list[bytes]]]:
        """(key, docs) pairs in; (key, the same docs filled with their results, the packed
        results) out, in the same order."""
        pending: deque = deque()
        for key, docs in batches:
            jobs = [self._pool.apply_async(_process, (docs[i:i + JOB_DOCS],)) for i in range(0, len(docs), JOB_DOCS)]
            self.jobs += len(jobs)
            pending.append((key, docs, jobs))
            if len(pending) >= self.window:
                yield self._finish(*pending.popleft())
        while pending:
            yield self._finish(*pending.popleft())

    def starmap(self, fn: Any, args: Iterable[tuple]) -> Iterator[Any]:
        """fn(*a) for each tuple `a` of `args`, run in the workers, results in order; at most
        2 calls per worker in flight. `fn` must be a module-level function (it is pickled by name)."""
        pending: deque = deque()
        for a in args:
            pending.append(self._pool.apply_async(fn, a))
            if len(pending) >= self.window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def build_graph(self, chunks: Iterable[list], base: str) -> Iterator[list]:
        """Build chunks of graph units (kgbuild.graph.incremental.build_units) in the workers: at
        the end of a run they are free, and the graph stage is then most of what is left."""
        from kgbuild.graph.incremental import build_units

        return self.starmap(build_units, ((chunk, base) for chunk in chunks))

    def _finish(self, key: Any, docs: list[Document], jobs: list[Any]) -> tuple[Any, list[Document], list[bytes]]:
        blobs: list[bytes] = []
        for job in jobs:
            part, seconds = job.get()
            add_seconds(self.seconds, seconds)
            blobs += part
        fill(docs, blobs)
        return key, docs, blobs

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


def add_seconds(total: dict[str, float], seconds: dict[str, float]) -> None:
    for name, s in seconds.items():
        total[name] = total.get(name, 0.0) + s
