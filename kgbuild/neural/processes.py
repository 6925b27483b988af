"""Inference of the joint model in several processes sharing one device: `kgbuild eval
speed-neural --processes N`, the way `kgbuild run --workers N` runs the transformers stages.

One process keeps a GPU waiting: its host-side Python (tokenisation into windows, decoding spans
and pairs, building each text's Prediction) takes longer than the model's forward passes (README,
"Joint entity and relation model"). Several processes, each with its own copy of the model on the
same device, overlap one's host work with another's forward passes, so the device stays busy.
The measurement runs one process and then N over the same texts, in the same call, so that the
speed-up is a ratio measured on one machine at one time."""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path
from typing import Any

from kgbuild.errors import KgbuildError

# seconds to wait for a worker to load its model, warm up, or finish its share
_TIMEOUT = 1800.0


def shards(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous (start, stop) ranges that cover range(n), sizes differing by one at most."""
    size, extra = divmod(n, parts)
    bounds = [0]
    for k in range(parts):
        bounds.append(bounds[-1] + size + (k < extra))
    return list(zip(bounds[:-1], bounds[1:]))


def _worker(rank: int, model_dir: str, device: str, texts: list[str], words: list, batch_size: int, threads: int,
            barrier: Any, results: Any, precision: str = "auto") -> None:
    """Load the model, predict this worker's texts once untimed (as `measure_speed` warms up), wait
    for every worker, predict them again, timed, and report (rank, seconds, entities found,
    relations found, peak GPU MB or None, error or None)."""
    import torch

    from kgbuild.neural.joint import JointExtractor, forget_pieces
    from kgbuild.parallel import limit_tokenizer_threads

    try:
        limit_tokenizer_threads(threads)  # N processes, each with a thread per core, would oversubscribe
        torch.set_num_threads(threads)
        model = JointExtractor.load(model_dir, device, precision)
        model.predict(texts, words, batch_size=batch_size)
        cuda = model.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        forget_pieces(model.tokenizer)  # the timed pass tokenises its texts as if never seen
    except Exception as err:  # the others must not wait at the barrier for a worker that is gone
        barrier.abort()
        results.put(_failed(rank, err))
        return
    barrier.wait(_TIMEOUT)
    try:
        t0 = time.perf_counter()
        found = model.predict(texts, words, batch_size=batch_size)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    except Exception as err:
        results.put(_failed(rank, err))
        return
    memory = torch.cuda.max_memory_allocated(model.device) / 2**20 if cuda else None
    results.put((rank, seconds, sum(len(p.entities) for p in found), sum(len(p.relations) for p in found),
                 memory, None))


def _failed(rank: int, err: Exception) -> tuple:
    """A worker's report of an error, in the shape of its result."""
    return (rank, 0.0, 0, 0, None, f"{type(err).__name__}: {err}")


def run_processes(model_dir: str | Path, texts: list[str], words: list, device: str, batch_size: int,
                  processes: int, threads: int, precision: str = "auto") -> dict[str, Any]:
    """Predict `texts` split over `processes` spawned processes that share `device`, timed from the
    moment all of them have loaded and warmed up to the moment the last one is done."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")  # CUDA cannot be used in a forked child
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, daemon=True, args=(rank, str(model_dir), device, texts[a:b], words[a:b],
                                                              batch_size, threads, barrier, results, precision))
               for rank, (a, b) in enumerate(shards(len(texts), processes))]
    for w in workers:
        w.start()
    try:
        try:
            barrier.wait(_TIMEOUT)
        except Exception:
            raise KgbuildError(f"a speed-neural worker failed before the timed run: {_first_error(results)}",
                               hint="run with --processes 1 to see the full error") from None
        t0 = time.perf_counter()
        rows = []
        for _ in workers:
            try:
                rows.append(results.get(timeout=_TIMEOUT))
            except queue.Empty:
                raise KgbuildError("a speed-neural worker did not finish",
                                   hint="run with --processes 1 to see whether one process finishes") from None
        seconds = time.perf_counter() - t0
    finally:
        for w in workers:
            w.join(timeout=60)
            if w.is_alive():
                w.terminate()
    errors = [row[5] for row in rows if row[5]]
    if errors:
        raise KgbuildError(f"a speed-neural worker failed: {errors[0]}", hint="run with --processes 1 to see the full error")
    rows.sort()
    memory = [row[4] for row in rows if row[4] is not None]
    out = {"processes": processes, "threads": threads, "seconds": round(seconds, 3),
           "sentences_per_second": round(len(texts) / seconds, 1),
           "process_seconds": [round(row[1], 3) for row in rows],
           "entities": sum(row[2] for row in rows), "relations": sum(row[3] for row in rows)}
    if memory:
        out["gpu_memory_mb"] = round(sum(memory), 1)  # all processes' peaks together
    return out


def _first_error(results: Any) -> str:
    try:
        return results.get(timeout=5)[5] or "unknown error"
    except queue.Empty:
        return "it stopped without a message"


def measure_speed_processes(model_dir: str | Path, texts: list[str], words: list, device: str, batch_size: int,
                            processes: list[int], threads: int | None = None, precision: str = "auto") -> dict[str, Any]:
    """Sentences per second of one process and of each count in `processes` of processes sharing
    the device, in turn (a sweep that shows where the device or the host saturates), over the same
    texts in the same call, and the ratios; `threads`: torch threads per process (default: the
    machine's cores shared out among the most processes, the same in every run). Each run counts
    the entities and relations it found: the texts are only divided among the processes, so the
    counts agree (up to a borderline span whose score moves with a batch's padding in reduced
    precision). `n_processes` and `speedup` are those of the most processes."""
    counts = sorted(set(processes) - {1})
    if not counts:
        raise KgbuildError("--processes needs a count above 1", hint="for example --processes 8, or "
                           "--processes 2 --processes 4 --processes 8 for a sweep")
    threads = threads or max(1, (os.cpu_count() or 1) // counts[-1])
    one = run_processes(model_dir, texts, words, device, batch_size, 1, threads, precision)
    runs = [run_processes(model_dir, texts, words, device, batch_size, n, threads, precision) for n in counts]
    for run in runs:
        run["speedup"] = round(run["sentences_per_second"] / one["sentences_per_second"], 2)
    out = {"one_process": one, "n_processes": runs[-1], "speedup": runs[-1]["speedup"]}
    if len(runs) > 1:
        out["sweep"] = runs
    return out
