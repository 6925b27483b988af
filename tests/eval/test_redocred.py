"""The Re-DocRED benchmark: scoring rules on a hand-made document, and a real run on 3 documents
when the dataset is present."""

from collections import Counter
from pathlib import Path

import pytest

from kgbuild.eval.redocred import evaluate_redocred, format_report, match_document, to_document
from kgbuild.model import Document, Mention, RelationMention

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "redocred" / "dev_revised.json"

RAW = {
    "title": "Ada",
    "sents": [["Ada", "Lovelace", "was", "born", "in", "London", "."], ["London", "is", "in", "England", "."]],
    "vertexSet": [
        [{"name": "Ada Lovelace", "sent_id": 0, "pos": [0, 2], "type": "PER"}],
        [{"name": "London", "sent_id": 0, "pos": [5, 6], "type": "LOC"},
         {"name": "London", "sent_id": 1, "pos": [0, 1], "type": "LOC"}],
        [{"name": "England", "sent_id": 1, "pos": [3, 4], "type": "LOC"}],
    ],
    "labels": [{"h": 0, "t": 1, "r": "P19"}, {"h": 1, "t": 2, "r": "P131"}, {"h": 1, "t": 2, "r": "P17"}],
}


def _doc(relations):
    doc = to_document(RAW, 0)
    assert doc.text == "Ada Lovelace was born in London . London is in England ."
    for text, type_ in (("Ada Lovelace", "PER"), ("London", "LOC"), ("England", "LOC"), ("London", "LOC")):
        start = doc.text.find(text, doc.mentions[-1].end if doc.mentions else 0)
        doc.mentions.append(Mention(start, start + len(text), text, type_, "GPE", 0))
    doc.relations = [RelationMention(h, t, r, c, "test", 0) for h, r, t, c in relations]
    return doc


def test_correct_triple_counts_once_and_duplicates_are_false_positives():
    # mentions 1 and 3 are both "London": one entity, so the second P131 is the same prediction
    doc = _doc([(0, "P19", 1, 0.9), (1, "P131", 2, 0.8), (3, "P131", 2, 0.7), (1, "P19", 2, 0.6)])
    c = match_document(doc, RAW)
    assert c["tp"] == Counter({"P19": 1, "P131": 1})
    assert sum(c["pred"].values()) == 3  # P19, P131 (deduplicated), wrong P19
    assert sum(c["gold"].values()) == 3
    assert c["mentions_found"] == c["mentions_gold"] == 4


def test_names_match_after_normalisation():
    doc = _doc([(0, "P19", 1, 0.9)])
    doc.mentions[0].text = "ada lovelace,"
    assert match_document(doc, RAW)["tp"]["P19"] == 1


def test_wrong_direction_is_not_a_match():
    doc = _doc([(1, "P19", 0, 0.9)])
    assert match_document(doc, RAW)["tp"]["P19"] == 0


def test_gold_triples_across_sentences_are_counted_apart_from_those_within_one():
    raw = {**RAW, "labels": RAW["labels"] + [{"h": 0, "t": 2, "r": "P27"}]}  # Ada (sentence 0), England (1)
    c = match_document(_doc([(0, "P19", 1, 0.9), (0, "P27", 2, 0.8)]), raw)
    assert c["tp"] == Counter({"P19": 1, "P27": 1})
    assert (c["same_sentence_gold"], c["same_sentence_tp"]) == (3, 1)  # P27 is found but lies across sentences


@pytest.mark.slow
def test_three_redocred_documents_are_scored(pipeline):
    if not DATA.is_file():
        pytest.skip(f"Re-DocRED data not found: put dev_revised.json in ../shared/data/redocred ({DATA})")
    result = evaluate_redocred(DATA, limit=3, offset=0, pipeline=pipeline)
    assert result["documents"] == 3 and result["words"] > 100
    rel = result["relations"]
    assert rel["gold"] > 0 and rel["predicted"] > 0 and 0 <= rel["f1"] <= 100
    assert 0 < result["mention_recall"] <= 100
    report = format_report(result)
    assert "F1" in report and "P131" in report
