"""--engine ray runs ner and relations as Ray Data batch jobs on an actor pool and builds the same
graph as the local engine; a re-run sends Ray only the documents the cache cannot serve."""

import shutil

import pytest

from kgbuild.graph.export import canonical_nquads
from kgbuild.runner import run

ray = pytest.importorskip("ray", reason='Ray is optional: pip install "ray[data]"')


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_engine_builds_the_same_graph_as_the_local_engine(tmp_path, local_ray, sample_run, sample_corpus,
                                                             pipeline):
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_corpus, corpus)
    out = tmp_path / "ray"
    first = run(corpus, out, engine="ray", workers=2)
    assert first.documents == sample_run.documents and first.reused == 0
    assert canonical_nquads(out) == canonical_nquads(sample_run.out)
    assert first.seconds["ner"] > 0 and first.models["ner"]["loaded_in"] == "workers"

    (corpus / "science" / "marie_curie.txt").write_text("Ada Lovelace was born in London in 1815.")
    again = run(corpus, out, engine="ray", workers=2)
    assert again.reused == first.documents - 1
    local = tmp_path / "local"
    run(corpus, local, use_cache=False, pipeline=pipeline)
    assert canonical_nquads(out) == canonical_nquads(local)
