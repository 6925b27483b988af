"""`kgbuild eval qa` on a MetaQA-format KB and question file: half the questions train the path
scorer, the rest are answered; with part of the KB dropped, the embeddings that bridge missing
facts are trained on what is left (and reused from their folder)."""

from __future__ import annotations

from qa_samples import QUESTIONS, kb_triples, write_kb, write_questions

from kgbuild.qa.metaqa import EMBED_CONFIG, evaluate_metaqa, format_metaqa


def test_eval_qa_with_a_dropped_kb_trains_embeddings_and_reports_each_group(tmp_path):
    kb = write_kb(tmp_path / "kb.tsv")
    questions = write_questions(tmp_path / "questions.tsv")
    saved = tmp_path / "embeddings"
    report = evaluate_metaqa(kb, questions, drop_kb=0.2, seed=0, completion="embeddings", epochs=3,
                             embeddings=saved, latency_sample=2)
    assert report["kb_triples"] == len(kb_triples()) and report["kb_triples_used"] == round(0.8 * len(kb_triples()))
    emb = report["embeddings"]
    assert emb["model"] == EMBED_CONFIG["model"] and emb["epochs"] == 3
    group = report["groups"]["questions"]
    assert group["train"] + group["test"] == len(QUESTIONS) and 0 <= group["hits@1"] <= 100
    assert group["latency_median_ms"] > 0
    assert "hits@1" in format_metaqa(report)
    weights = saved / "model.pt"
    written = weights.stat().st_mtime_ns
    again = evaluate_metaqa(kb, questions, drop_kb=0.2, seed=0, completion="embeddings", epochs=3,
                            embeddings=saved, latency_sample=0)
    assert again["embeddings"]["epochs"] == 3 and again["embeddings"]["validation"] == emb["validation"]
    assert weights.stat().st_mtime_ns == written  # loaded from the folder, not trained again
