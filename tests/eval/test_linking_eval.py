"""Linking benchmarks: the clustering scores on hand-made clusters, gold span alignment, and
short real runs when ../shared/data is present."""

from pathlib import Path

import pytest

from kgbuild.eval.linking import _spans, align, b_cubed, evaluate_coref, evaluate_kblink, measure_scale, muc
from kgbuild.eval.redocred import to_document
from kgbuild.model import Mention

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_b_cubed_and_muc_on_a_split_cluster():
    gold = ["a", "a", "a", "b"]
    pred = [1, 1, 2, 3]
    p, r = b_cubed(gold, pred)
    assert p == 1.0 and r == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1) / 4)
    (rn, rd), (pn, pd) = muc(gold, pred)
    assert (rn, rd) == (1, 2) and (pn, pd) == (1, 1)


def test_perfect_clustering_scores_one():
    assert b_cubed(["a", "b", "b"], [7, 8, 8]) == (1.0, 1.0)


def test_gold_spans_align_one_to_one_with_predicted_mentions():
    raw = {"title": "t", "sents": [["The", "United", "States", "and", "U.S.", "."]],
           "vertexSet": [[{"name": "The United States", "sent_id": 0, "pos": [0, 3]},
                          {"name": "U.S.", "sent_id": 0, "pos": [4, 5]}]]}
    doc = to_document(raw, 0)
    spans = _spans(raw)
    assert [doc.text[s:e] for s, e, _ in spans] == ["The United States", "U.S."]
    doc.mentions = [Mention(4, 17, "United States", "LOC", "GPE", 0), Mention(22, 26, "U.S.", "LOC", "GPE", 0)]
    assert align(doc, spans) == [(0, 0), (1, 0)]


@pytest.mark.slow
def test_coref_on_three_redocred_documents():
    path = DATA / "redocred" / "dev_revised.json"
    if not path.is_file():
        pytest.skip(f"Re-DocRED not found under {DATA} (../shared/data/redocred/dev_revised.json)")
    result = evaluate_coref(path, limit=3)
    assert result["aligned_mentions"] > 0 and result["b_cubed"]["f1"] > 80


@pytest.mark.slow
def test_kblink_on_ten_webnlg_entries():
    path = DATA / "webnlg" / "v3.0"
    if not (path / "dev").is_dir():
        pytest.skip(f"WebNLG 3.0 not found under {DATA} (../shared/data/webnlg/v3.0)")
    result = evaluate_kblink(path, limit=10)
    assert result["aligned_mentions"] > 0 and result["accuracy"] > 70


@pytest.mark.slow
def test_scale_benchmark_on_a_thousand_entities():
    path = DATA / "fb15k-237" / "entity2wikidata.json"
    if not path.is_file():
        pytest.skip(f"FB15k-237 not found under {DATA} (../shared/data/fb15k-237/entity2wikidata.json)")
    result = measure_scale(path, 1000)
    assert result["entities_out"] < 1000 and result["merge_precision"] > 70
