"""A run killed with SIGKILL mid-way resumes: the next run re-does only unfinished documents and
ends with exactly the graph of an uninterrupted run."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from kgbuild.graph.export import canonical_nquads as nquads
from kgbuild.runner import run


def cached_docs(out):
    try:
        with sqlite3.connect(out / "cache.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkilled_run_resumes_to_the_same_graph(tmp_path, pipeline, sample_corpus):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "kgbuild.cli", "run", str(sample_corpus), "-o", str(out),
                             "--quiet", "--set", "batch_size=1", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while cached_docs(out) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = cached_docs(out)
    assert 0 < done < 6, f"kill landed outside the run ({done} documents cached)"
    assert not (out / "store").exists()  # the graph is only ever written whole, at the end

    resumed = run(sample_corpus, out, pipeline=pipeline)
    assert resumed.reused == done
    clean = tmp_path / "clean"
    run(sample_corpus, clean, pipeline=pipeline, use_cache=False)
    assert nquads(out) == nquads(clean)
