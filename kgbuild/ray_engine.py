"""`--engine ray`: the document-local stages (ner, relations) run as Ray Data batch jobs on an actor
pool, on one machine or a cluster; reading the corpus, linking and the graph stay in the driver,
as with `--workers`, so the graph is the same as a local run's.

Documents travel as plain rows (kgbuild.parallel.to_row) and come back packed as the cache keeps
them, so the corpus only has to be readable where `kgbuild run` runs. The driver hands Ray the
fresh documents a chunk at a time (CHUNK_DOCS), so its memory stays bounded; each chunk is one
Ray Data job whose actors load the models once."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from kgbuild.config import Config
from kgbuild.errors import KgbuildError
from kgbuild.model import Document
from kgbuild.parallel import add_seconds, fill, from_row, process_packed, to_row, worker_pipeline

# Fresh documents per Ray Data job: big enough that loading the models in each actor once per
# job costs little, small enough that the driver never holds much of the corpus.
CHUNK_DOCS = 4096


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise KgbuildError("--engine ray needs Ray Data, which is not installed",
                           hint='pip install "kgbuild[ray]" (or pip install "ray[data]")') from None
    return ray


class StageActor:
    """One Ray actor: the pipeline's document-local stages, built once, applied to row batches."""

    def __init__(self, config: Config, stages: tuple[str, ...]) -> None:
        self.pipeline = worker_pipeline(config, stages)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        import numpy as np

        docs = [from_row({k: batch[k][i] for k in ("id", "text", "source", "meta")})
                for i in range(len(batch["i"]))]
        blobs, seconds = process_packed(self.pipeline, docs)
        # stage seconds ride on the batch's first row
        times = [json.dumps(seconds)] + [""] * (len(docs) - 1)
        return {"i": batch["i"], "data": np.array(blobs, dtype=object), "seconds": np.array(times, dtype=object)}


class RayWorkers:
    """An actor pool of `workers` actors (1: one per GPU of the cluster, else one per CPU), a GPU
    each where the cluster has GPUs. Connects to `address` ("auto", "ray://host:10001") or,
    without one, to the Ray instance already started in this process, else starts a local one."""

    def __init__(self, config: Config, stages: tuple[str, ...], workers: int = 1,
                 address: str | None = None) -> None:
        ray = import_ray()
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        # kgbuild draws its own progress bar; Ray Data's bars and per-job logs would interleave with it
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.size = workers if workers > 1 else max(1, self.gpus or int(resources.get("CPU", 1)))
        self.config = config
        self.stages = stages
        self.seconds: dict[str, float] = {}

    def map(self, batches: Iterable[tuple[Any, list[Document]]]) -> Iterator[tuple[Any, list[Document], list[bytes]]]:
        """(key, docs) pairs in; (key, the same docs filled with their results, the packed
        results) out, in the same order."""
        chunk: list[tuple[Any, list[Document]]] = []
        n = 0
        for key, docs in batches:
            chunk.append((key, docs))
            n += len(docs)
            if n >= CHUNK_DOCS:
                yield from self._run(chunk)
                chunk, n = [], 0
        yield from self._run(chunk)

    def _run(self, chunk: list[tuple[Any, list[Document]]]) -> Iterator[tuple[Any, list[Document], list[bytes]]]:
        import json

        import ray

        docs = [d for _, batch in chunk for d in batch]
        blobs: list[bytes | None] = [None] * len(docs)
        if docs:
            rows = [{"i": i, **to_row(d)} for i, d in enumerate(docs)]
            ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * self.size))
            ds = ds.map_batches(StageActor, fn_constructor_args=(self.config, self.stages),
                                batch_size=self.config.batch_size, concurrency=min(self.size, len(rows)),
                                num_cpus=1, num_gpus=1 if self.gpus else 0)
            for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for i, blob, seconds in zip(out["i"], out["data"], out["seconds"]):
                    blobs[int(i)] = bytes(blob)
                    if seconds:
                        add_seconds(self.seconds, json.loads(seconds))
        start = 0
        for key, batch in chunk:
            mine = blobs[start:start + len(batch)]
            start += len(batch)
            fill(batch, mine)
            yield key, batch, mine

    def close(self) -> None:
        import ray

        if self._started and ray.is_initialized():
            ray.shutdown()
