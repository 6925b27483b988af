"""Re-running into the same output folder re-processes only what changed."""

import shutil

import kgbuild
from kgbuild.graph.export import canonical_nquads as nquads
from kgbuild.runner import run


def labels(out):
    rows = kgbuild.query(out, "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
                              "SELECT ?l WHERE { ?e rdfs:label ?l }").rows
    return {r[0] for r in rows}





def test_rerun_reuses_unchanged_documents_and_redoes_edited_ones(tmp_path, pipeline, sample_corpus):
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_corpus, corpus)
    out = tmp_path / "out"
    first = run(corpus, out, pipeline=pipeline)
    assert first.reused == 0
    again = run(corpus, out, pipeline=pipeline)
    assert again.reused == first.documents
    (corpus / "science" / "marie_curie.txt").write_text("Ada Lovelace was born in London in 1815.")
    edited = run(corpus, out, pipeline=pipeline)
    assert edited.reused == first.documents - 1
    assert "Ada Lovelace" in labels(out) and "Marie Curie" not in labels(out)


def test_cached_run_gives_the_same_graph_as_a_fresh_run(tmp_path, pipeline, sample_corpus):
    out = tmp_path / "out"
    run(sample_corpus, out, pipeline=pipeline)
    cached = run(sample_corpus, out, pipeline=pipeline)
    assert cached.reused == cached.documents
    fresh_out = tmp_path / "fresh"
    run(sample_corpus, fresh_out, pipeline=pipeline, use_cache=False)
    assert nquads(out) == nquads(fresh_out)


def test_deleted_file_leaves_the_graph(tmp_path, pipeline, sample_corpus):
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_corpus, corpus)
    out = tmp_path / "out"
    run(corpus, out, pipeline=pipeline)
    assert "Nelson Mandela" in labels(out)
    (corpus / "business" / "nelson_mandela.txt").unlink()
    result = run(corpus, out, pipeline=pipeline)
    assert result.removed == 1 and "Nelson Mandela" not in labels(out)


def test_changed_relations_config_is_not_served_from_the_cache(tmp_path, sample_corpus):
    from kgbuild.cache import stages_hash
    from kgbuild.config import load_config

    a = stages_hash(load_config(), {"kgbuild": "x"})
    assert a == stages_hash(load_config(), {"kgbuild": "x"})
    assert a != stages_hash(load_config(overrides=["relations.threshold=0.7"]), {"kgbuild": "x"})
    assert a == stages_hash(load_config(overrides=["linking.cross_document=false"]), {"kgbuild": "x"})


def test_rerun_updates_the_store_in_place_to_the_graph_of_a_fresh_run(tmp_path, pipeline, sample_corpus):
    corpus = tmp_path / "corpus"
    shutil.copytree(sample_corpus, corpus)
    out = tmp_path / "out"
    assert run(corpus, out, pipeline=pipeline).graph == "rebuilt"
    curie = corpus / "science" / "marie_curie.txt"
    curie.write_text(curie.read_text() + "\n\nPierre Curie was born in Paris in 1859.\n")
    (corpus / "business" / "nelson_mandela.txt").unlink()
    (corpus / "science" / "lovelace.txt").write_text("Ada Lovelace was born in London in 1815.")
    edited = run(corpus, out, pipeline=pipeline)
    assert edited.graph == "updated" and edited.removed == 1
    fresh = tmp_path / "fresh"
    run(corpus, fresh, pipeline=pipeline, use_cache=False)
    assert nquads(out) == nquads(fresh)
    assert "Ada Lovelace" in labels(out) and "Nelson Mandela" not in labels(out)


def test_update_interrupted_before_it_finished_makes_the_next_run_rebuild(tmp_path, pipeline, sample_corpus):
    import sqlite3

    from kgbuild.graph.incremental import STATE_FILE

    out = tmp_path / "out"
    run(sample_corpus, out, pipeline=pipeline)
    with sqlite3.connect(out / STATE_FILE) as db:  # what a kill during an update leaves behind
        db.execute("UPDATE meta SET value = '1' WHERE key = 'dirty'")
    again = run(sample_corpus, out, pipeline=pipeline)
    assert again.graph == "rebuilt"
    assert run(sample_corpus, out, pipeline=pipeline).graph == "updated"
    fresh = tmp_path / "fresh"
    run(sample_corpus, fresh, pipeline=pipeline, use_cache=False)
    assert nquads(out) == nquads(fresh)
