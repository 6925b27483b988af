"""`--workers N`: the document-local stages (ner, relations) run in N worker processes, each with
its own models, while the main process reads the corpus, links and writes the graph. Batches come
back in the order they were sent, so the graph is the same as with one process."""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from kgbuild.config import Config
from kgbuild.model import Document

_worker_pipeline: Any = None


def _init(config: Config, stages: tuple[str, ...]) -> None:
    global _worker_pipeline
    import torch

    torch.set_num_threads(1)  # one core per worker; more would oversubscribe the machine
    from kgbuild.runner import Pipeline

    _worker_pipeline = Pipeline(config, stages=stages)


def _process(docs: list[Document]) -> tuple[list[Document], dict[str, float]]:
    _worker_pipeline.seconds.clear()
    docs = _worker_pipeline.process(docs, tuple(_worker_pipeline.stages))
    for d in docs:
        d.parse = None  # large, and no later stage needs it: not worth sending back
    return docs, dict(_worker_pipeline.seconds)


class LocalWorkers:
    """A pool of processes running the given stages on batches, at most 2 batches per worker in
    flight so that memory stays bounded however large the corpus."""

    def __init__(self, config: Config, stages: tuple[str, ...], workers: int) -> None:
        # spawn, not fork: forking a process whose torch and BLAS thread pools are running can hang
        self._pool = mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(config, stages))
        self.size = workers
        self.window = 2 * workers
        self.seconds: dict[str, float] = {}

    def map(self, batches: Iterable[tuple[Any, list[Document]]]) -> Iterator[tuple[Any, list[Document]]]:
        """(key, docs) pairs in, (key, processed docs) out, in the same order."""
        pending: deque = deque()
        for key, docs in batches:
            pending.append((key, self._pool.apply_async(_process, (docs,))))
            if len(pending) >= self.window:
                yield self._finish(*pending.popleft())
        while pending:
            yield self._finish(*pending.popleft())

    def _finish(self, key: Any, job: Any) -> tuple[Any, list[Document]]:
        docs, seconds = job.get()
        for name, s in seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + s
        return key, docs

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
