"""--workers N runs the document-local stages in N processes and builds the same graph."""

import os

from kgbuild import parallel
from kgbuild.graph.export import canonical_nquads
from kgbuild.runner import run


def test_two_workers_build_the_same_graph_as_one_process(tmp_path, pipeline, sample_corpus, monkeypatch):
    # batches split into jobs of 2 documents, which the workers take as they come free
    monkeypatch.setattr(parallel, "JOB_DOCS", 2)
    one = run(sample_corpus, tmp_path / "one", pipeline=pipeline, use_cache=False)
    pipeline.close()  # a pool another test started would count its own jobs
    try:
        two = run(sample_corpus, tmp_path / "two", pipeline=pipeline, use_cache=False, workers=2)
        assert pipeline._pool.jobs == -(-two.documents // 2)  # every batch split
    finally:
        pipeline.close()
    assert two.documents == one.documents and two.facts == one.facts
    assert canonical_nquads(tmp_path / "two") == canonical_nquads(tmp_path / "one")
    assert two.seconds["ner"] > 0  # worker stage times are reported


def test_a_worker_caps_the_tokenizer_thread_pool_unless_the_user_set_it(monkeypatch):
    from kgbuild.parallel import limit_tokenizer_threads

    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    limit_tokenizer_threads(3)
    assert os.environ["RAYON_NUM_THREADS"] == "3"
    monkeypatch.setenv("RAYON_NUM_THREADS", "8")
    limit_tokenizer_threads(0)
    assert os.environ["RAYON_NUM_THREADS"] == "8"
