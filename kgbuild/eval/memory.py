"""Peak-memory benchmark: whether a run's memory grows with the corpus. Each measured run is a
whole `kgbuild run` in a child process of its own, so its peak resident memory (getrusage
ru_maxrss of that process) is that run's and nothing else's: N documents (texts cycled from a
corpus or Re-DocRED file), and one big text file of S megabytes (the texts joined by blank
lines, repeated)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from kgbuild.errors import KgbuildError
from kgbuild.eval.speed import load_texts

# The child: one run with the default pipeline, then its own high-water mark of resident memory
# and, with workers, the largest of theirs (they are its children, ended and waited for).
_CHILD = """
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from kgbuild.config import load_config
from kgbuild.runner import run
if __name__ == "__main__":
    config = load_config(overrides=sys.argv[4:])
    t = time.perf_counter()
    r = run(sys.argv[1], sys.argv[2], config, workers=int(sys.argv[3]))
    peak = lambda who: round(resource.getrusage(who).ru_maxrss / 1024, 1)
    print(json.dumps({"documents": r.documents, "words": r.words, "seconds": round(time.perf_counter() - t, 1),
                      "peak_mb": peak(resource.RUSAGE_SELF),
                      "worker_peak_mb": peak(resource.RUSAGE_CHILDREN) if int(sys.argv[3]) > 1 else None}))
"""


def peak_of_run(corpus: Path, out: Path, overrides: list[str] | None = None, workers: int = 1) -> dict[str, Any]:
    """Run `kgbuild run corpus -o out` in a child process: documents, words, seconds, peak MB
    (and, with workers, the largest worker's peak MB)."""
    with tempfile.TemporaryDirectory() as tmp:  # spawned workers re-import the child's main module
        script = Path(tmp, "kgbuild_memory_run.py")
        script.write_text(_CHILD, encoding="utf-8")
        proc = subprocess.run([sys.executable, str(script), str(corpus), str(out), str(workers), *(overrides or [])],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        raise KgbuildError(f"the measured run failed: {proc.stderr.strip().splitlines()[-1:]}",
                           hint="run the same corpus with `kgbuild run` to see the whole error")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_corpus(texts: list[str], n_docs: int, folder: Path) -> Path:
    """`n_docs` files holding the texts cycled, 1,000 to a sub-folder."""
    for i in range(n_docs):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:06d}.txt").write_text(texts[i % len(texts)], encoding="utf-8")
    return folder


def write_big_file(texts: list[str], megabytes: float, folder: Path) -> Path:
    """One .txt file of about `megabytes` MB: the texts as paragraphs, repeated."""
    folder.mkdir(parents=True, exist_ok=True)
    target = int(megabytes * 1_000_000)
    size = 0
    with open(folder / "big.txt", "w", encoding="utf-8") as f:
        while size < target:
            for text in texts:
                f.write(text + "\n\n")
                size += len(text.encode("utf-8")) + 2
                if size >= target:
                    break
    return folder


def measure_memory(data: str | Path, docs: list[int], file_mb: list[float], workers: int = 1) -> dict[str, Any]:
    """Peak memory of a run over each corpus size in `docs` and each big-file size in `file_mb`."""
    texts = load_texts(data)
    runs: list[dict[str, Any]] = []
    # a big file must not be skipped for its size
    big = [f"ingest.max_file_mb={max(file_mb) * 2 + 1}"] if file_mb else []
    with tempfile.TemporaryDirectory() as tmp:
        for n in docs:
            corpus = write_corpus(texts, n, Path(tmp, f"docs{n}"))
            runs.append({"corpus": f"{n} documents", **peak_of_run(corpus, Path(tmp, f"out{n}"), workers=workers)})
        for mb in file_mb:
            corpus = write_big_file(texts, mb, Path(tmp, f"file{mb}"))
            runs.append({"corpus": f"one {mb:g} MB file", **peak_of_run(corpus, Path(tmp, f"outf{mb}"), big, workers)})
    by_docs = [r for r in runs if r["corpus"].endswith("documents")]
    ratio = by_docs[-1]["peak_mb"] / by_docs[0]["peak_mb"] if len(by_docs) > 1 else None
    return {"runs": runs, "ratio": round(ratio, 3) if ratio else None, "workers": workers}


def format_memory(r: dict[str, Any]) -> str:
    def worker(x: dict[str, Any]) -> str:
        return f", largest worker {x['worker_peak_mb']:,.0f} MB" if x.get("worker_peak_mb") else ""

    lines = [f"{x['corpus']:>20}: peak {x['peak_mb']:,.0f} MB{worker(x)} ({x['documents']} documents, "
             f"{x['words']:,} words, {x['seconds']:.0f}s)" for x in r["runs"]]
    if r["ratio"] is not None:
        lines.append(f"peak memory, largest / smallest document count: {r['ratio']:.2f}")
    return "\n".join(lines)
