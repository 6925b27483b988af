"""Training and evaluating on ranges of one file's records (Re-DocRED: documents), so that one
file gives a training part, a dev part and a held-out part that share no document; and a joint
model trained on Re-DocRED documents scoring Wikidata triples in `kgbuild eval redocred`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgbuild.config import load_config
from kgbuild.errors import KgbuildError
from kgbuild.eval.redocred import evaluate_redocred
from kgbuild.neural.formats import parse_records, ranges_overlap, read_examples
from kgbuild.neural.train import train

ROOT = Path(__file__).resolve().parents[2]


def _doc(title, sents, vertices, labels):
    """A Re-DocRED document from whitespace-tokenised sentences and (name, sentence, type) mentions."""
    tokens = [s.split() for s in sents]
    vertex_set = []
    for mentions in vertices:
        vertex = []
        for name, sid, type_ in mentions:
            n = len(name.split())
            start = next(i for i in range(len(tokens[sid])) if tokens[sid][i : i + n] == name.split())
            vertex.append({"name": name, "sent_id": sid, "pos": [start, start + n], "type": type_})
        vertex_set.append(vertex)
    return {"title": title, "sents": tokens, "vertexSet": vertex_set,
            "labels": [{"h": h, "t": t, "r": r, "evidence": []} for h, t, r in labels]}


CURIE = _doc("Curie", ["Marie Curie was born in Warsaw .", "Warsaw is in Poland ."],
             [[("Marie Curie", 0, "PER")], [("Warsaw", 0, "LOC"), ("Warsaw", 1, "LOC")], [("Poland", 1, "LOC")]],
             [(0, 1, "P19"), (1, 2, "P17"), (0, 2, "P27")])  # P27: head and tail never share a sentence
DOCS = [
    CURIE,
    _doc("Acme", ["John Smith works for Acme Corp .", "Acme Corp is based in Berlin ."],
         [[("John Smith", 0, "PER")], [("Acme Corp", 0, "ORG"), ("Acme Corp", 1, "ORG")], [("Berlin", 1, "LOC")]],
         [(0, 1, "P108"), (1, 2, "P159")]),
    _doc("Jones", ["Mary Jones lives in Paris ."], [[("Mary Jones", 0, "PER")], [("Paris", 0, "LOC")]],
         [(0, 1, "P551")]),
    CURIE,  # the dev record: the same text as record 0, so that dev F1 follows the training
]


@pytest.fixture()
def redocred_file(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text("[\n" + ",\n".join(json.dumps(d) for d in DOCS) + "\n]\n")  # one document a line
    return path


def test_record_ranges_parse_with_open_ends_and_refuse_empty_or_garbled_ones():
    assert parse_records("0:200") == slice(0, 200)
    assert parse_records("200:") == slice(200, None) and parse_records(":5") == slice(None, 5)
    assert parse_records(None) is None and parse_records("") is None
    for bad in ("5:5", "9:3", "a:b", "3", "-1:4"):
        with pytest.raises(KgbuildError, match="not A:B"):
            parse_records(bad)
    assert ranges_overlap(slice(0, 200), slice(199, 250)) and ranges_overlap(None, slice(7, 8))
    assert not ranges_overlap(slice(0, 200), slice(200, 250)) and not ranges_overlap(slice(250, None), slice(None, 250))


def test_redocred_record_range_keeps_whole_documents_with_their_sentences(redocred_file):
    first_two = read_examples(redocred_file, "redocred", slice(0, 2))
    rest = read_examples(redocred_file, "redocred", slice(2, None))
    assert [e.text for e in first_two] == ["Marie Curie was born in Warsaw .", "Warsaw is in Poland .",
                                           "John Smith works for Acme Corp .", "Acme Corp is based in Berlin ."]
    assert [e.text for e in rest] == ["Mary Jones lives in Paris .", "Marie Curie was born in Warsaw .",
                                      "Warsaw is in Poland ."]
    # each example still names the line of its own document in the whole file
    assert {e.source for e in first_two}.isdisjoint(e.source for e in rest)
    assert [e.source for e in first_two + rest] == [e.source for e in read_examples(redocred_file, "redocred")]


def test_training_refuses_overlapping_train_and_dev_records_of_one_file(redocred_file, tmp_path):
    with pytest.raises(KgbuildError, match="overlap"):
        train(redocred_file, redocred_file, tmp_path / "m", fmt="redocred", train_records=slice(0, 3),
              dev_records=slice(2, 4))
    assert not (tmp_path / "m").exists()


def test_joint_model_trained_on_redocred_records_finds_wikidata_triples_end_to_end(redocred_file, tiny_encoder,
                                                                                   tmp_path):
    model = tmp_path / "model"
    result = train(redocred_file, redocred_file, model, fmt="redocred", base_model=str(tiny_encoder), epochs=30,
                   batch_size=4, lr=3e-3, head_lr=1e-2, patience=30, quiet=True, seed=0, threads=1,
                   train_records=slice(0, 3), dev_records=slice(3, 4))
    assert (result.train_examples, result.dev_examples) == (5, 2)  # sentences of documents 0-2 and of 3
    labels = json.loads((model / "labels.json").read_text())
    assert labels["relations"] == ["P108", "P159", "P17", "P19", "P551"]  # no P27: no sentence holds both ends
    assert labels["kgbuild_types"] == {t: t for t in ("LOC", "ORG", "PER")}

    overrides = [f"ner.model={model}", f"relations.model={model}", "device=cpu"]
    config = load_config(ROOT / "pipelines/neural.toml", overrides)
    scores = evaluate_redocred(redocred_file, config, offset=0, limit=3)
    rel = scores["relations"]
    assert rel["gold"] == 6 and rel["tp"] >= 4, scores
    assert scores["same_sentence"]["gold"] == 5 and scores["same_sentence"]["tp"] == rel["tp"]  # P27 is out of reach

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ev = subprocess.run([sys.executable, "-m", "kgbuild.cli", "eval", "re", "--model", str(model), "--data",
                         str(redocred_file), "--format", "redocred", "--records", "2:3", "--json"],
                        capture_output=True, text=True, env=env)
    assert ev.returncode == 0, ev.stderr
    held_out = json.loads(ev.stdout)
    assert held_out["records"] == "2:3" and held_out["examples"] == 1
    assert held_out["relations"]["micro"]["gold"] == 1
