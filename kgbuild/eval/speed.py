"""Throughput benchmark: words per second of a whole `kgbuild run` (ingest, NER, relations,
linking, graph store) against spaCy's own `nlp.pipe` with the same spaCy model on the same
texts, in one process, so that machine noise cancels out in the ratio."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kgbuild.config import Config
from kgbuild.errors import CorpusError


def load_texts(data: str | Path, limit: int | None = None) -> list[str]:
    """Texts of a corpus folder, or of a Re-DocRED JSON file (tokens joined by spaces)."""
    data = Path(data)
    if data.is_file() and data.suffix == ".json":
        docs = json.loads(data.read_text(encoding="utf-8"))
        texts = [" ".join(" ".join(s) for s in d["sents"]) for d in docs]
    else:
        from kgbuild.config import IngestConfig
        from kgbuild.ingest import check_corpus, iter_corpus
        from kgbuild.model import Document

        texts = [d.text for d in iter_corpus(check_corpus(data), IngestConfig()) if isinstance(d, Document)]
    if not texts:
        raise CorpusError(f"no texts in {data}", hint="pass a corpus folder or a Re-DocRED JSON file")
    return texts[:limit] if limit else texts


def _spin(n: int) -> float:
    """Seconds a pure-Python CPU-bound loop of n steps takes (no memory traffic, no I/O)."""
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t


def machine_scaling(processes: int, steps: int = 15_000_000, repeats: int = 3) -> float:
    """How many times one process's throughput `processes` processes of a CPU-bound loop reach
    on this machine: the most any parallel program can scale here (cores shared with other
    machines, frequency drops under load and hyper-threads all show in it)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(_spin, [1000] * processes)  # started before the clock
        one, many = [], []
        for _ in range(repeats):  # one loop alone, then one in each process: the same kind of process
            one.append(pool.apply(_spin, (steps,)))
            t = time.perf_counter()
            pool.map(_spin, [steps] * processes, chunksize=1)
            many.append(time.perf_counter() - t)
    return processes * min(one) / min(many)


def measure_speed(data: str | Path, config: Config, limit: int | None = None, threads: int = 1,
                  repeats: int = 2, workers: int = 1) -> dict[str, Any]:
    """Best-of-`repeats` words/s for spaCy alone and for the whole pipeline, and their ratio.

    With `workers` > 1 the pipeline runs `--workers N` and spaCy `nlp.pipe(n_process=N)`, and
    both also run with one process in the same repeats (interleaved, so that machine noise falls
    on both alike): the speed-up from 1 to N of each, next to the machine's own
    (`machine_scaling`)."""
    import torch

    from kgbuild.ner.spacy_ner import load_spacy
    from kgbuild.runner import Pipeline, run

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for worker processes started from here
    threadpool_limits(threads)  # numpy's and scipy's BLAS in this process, for both sides
    texts = load_texts(data, limit)
    words = sum(len(t.split()) for t in texts)
    ner_opts = config.ner.options
    nlp = load_spacy(ner_opts.get("model", "auto"), exclude=())  # spaCy as shipped
    batch = ner_opts.get("batch_size", 64)
    # with workers the models load in them: the main process only links and writes the graph
    pipeline = Pipeline(config, preload=workers <= 1)
    single = Pipeline(config) if workers > 1 else None  # the 1-process baseline of the speed-up

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "corpus")
        corpus.mkdir()
        for i, text in enumerate(texts):
            (corpus / f"{i:06d}.txt").write_text(text, encoding="utf-8")
        # warm-up: first calls pay for lazy initialisation on both sides (and start the workers)
        list(nlp.pipe(texts[:8], batch_size=batch, n_process=workers))
        run(corpus, Path(tmp, "warm"), pipeline=pipeline, use_cache=False, workers=workers)
        if single is not None:
            run(corpus, Path(tmp, "warm1"), pipeline=single, use_cache=False)

        spacy_s, kg_s, spacy1_s, kg1_s = [], [], [], []
        for r in range(repeats):
            t = time.perf_counter()
            list(nlp.pipe(texts, batch_size=batch, n_process=workers))
            spacy_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = run(corpus, Path(tmp, f"out{r}"), pipeline=pipeline, use_cache=False, workers=workers)
            kg_s.append(time.perf_counter() - t)
            if single is not None:
                t = time.perf_counter()
                list(nlp.pipe(texts, batch_size=batch))
                spacy1_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                run(corpus, Path(tmp, f"one{r}"), pipeline=single, use_cache=False)
                kg1_s.append(time.perf_counter() - t)

    pipeline.close()
    spacy_wps = words / min(spacy_s)
    kg_wps = words / min(kg_s)
    scaling = None
    if single is not None:
        single.close()
        scaling = {"kgbuild": round(min(kg1_s) / min(kg_s), 3), "spacy": round(min(spacy1_s) / min(spacy_s), 3),
                   "machine": round(machine_scaling(workers), 3),
                   "kgbuild_one_process_words_per_second": round(words / min(kg1_s), 1),
                   "spacy_one_process_words_per_second": round(words / min(spacy1_s), 1)}
    return {
        "documents": len(texts),
        "words": words,
        "threads": threads,
        "workers": workers,
        "device": str(pipeline.info()["relations"].get("device", pipeline.device)),
        "spacy_model": nlp.meta.get("kgbuild_loaded_from", nlp.meta.get("name")),
        "spacy_words_per_second": round(spacy_wps, 1),
        "kgbuild_words_per_second": round(kg_wps, 1),
        "ratio": round(kg_wps / spacy_wps, 3),
        "spacy_seconds": [round(s, 3) for s in spacy_s],
        "kgbuild_seconds": [round(s, 3) for s in kg_s],
        "stage_seconds": result.seconds,
        "scaling": scaling,
    }


def format_speed(r: dict[str, Any]) -> str:
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in r["stage_seconds"].items() if k != "total")
    return (
        f"{r['documents']} documents, {r['words']:,} words, {r['threads']} thread(s), "
        f"{r['workers']} worker(s), device {r['device']}\n"
        f"spaCy nlp.pipe ({r['spacy_model']}): {r['spacy_words_per_second']:,.0f} words/s\n"
        f"kgbuild run:                {r['kgbuild_words_per_second']:,.0f} words/s\n"
        f"ratio kgbuild / spaCy:      {r['ratio']:.2f}\n"
        f"last run by stage: {stages}"
    ) + _format_scaling(r)


def _format_scaling(r: dict[str, Any]) -> str:
    sc = r.get("scaling")
    if not sc:
        return ""
    n = r["workers"]
    return (
        f"\nspeed-up from 1 to {n} processes, same repeats (1 process: kgbuild "
        f"{sc['kgbuild_one_process_words_per_second']:,.0f}, spaCy {sc['spacy_one_process_words_per_second']:,.0f} words/s):\n"
        f"  kgbuild {sc['kgbuild']:.2f}x   spaCy {sc['spacy']:.2f}x   "
        f"this machine's ceiling (a CPU-bound loop in {n} processes) {sc['machine']:.2f}x"
    )


def measure_incremental(data: str | Path, config: Config, n_docs: int = 1000, threads: int = 1) -> dict[str, Any]:
    """Time to re-run after editing one of `n_docs` documents, as a fraction of the full run.

    Texts are taken from `data` (cycled when there are fewer than n_docs); both runs use one
    loaded pipeline, so model loading counts in neither."""
    import torch

    from kgbuild.runner import Pipeline, run

    torch.set_num_threads(threads)
    texts = load_texts(data)
    pipeline = Pipeline(config)
    with tempfile.TemporaryDirectory() as tmp:
        corpus, out = Path(tmp, "corpus"), Path(tmp, "out")
        corpus.mkdir()
        for i in range(n_docs):
            (corpus / f"{i:06d}.txt").write_text(texts[i % len(texts)], encoding="utf-8")
        run(Path(tmp, "corpus", "000000.txt"), Path(tmp, "warm"), pipeline=pipeline)
        t = time.perf_counter()
        full = run(corpus, out, pipeline=pipeline)
        full_s = time.perf_counter() - t
        edited = corpus / f"{n_docs // 2:06d}.txt"
        edited.write_text(edited.read_text(encoding="utf-8") + " It was renamed in 2001.", encoding="utf-8")
        t = time.perf_counter()
        again = run(corpus, out, pipeline=pipeline)
        rerun_s = time.perf_counter() - t
    return {"documents": full.documents, "full_seconds": round(full_s, 2), "rerun_seconds": round(rerun_s, 2),
            "fraction": round(rerun_s / full_s, 4), "reused": again.reused, "rerun_stage_seconds": again.seconds}


def format_incremental(r: dict[str, Any]) -> str:
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in r["rerun_stage_seconds"].items() if k != "total")
    return (f"{r['documents']} documents: full run {r['full_seconds']:.1f}s, re-run after editing one "
            f"{r['rerun_seconds']:.2f}s ({r['reused']} reused) = {100 * r['fraction']:.1f}% of the full run\n"
            f"re-run by stage: {stages}")
