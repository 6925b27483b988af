import json

import pytest

from kgbuild.neural.formats import FormatError, guess_format, read_examples

from neural_samples import write_conll04


def spans(ex):
    return [(ex.text[s:e], t) for s, e, t in ex.entities]


def test_conll04_tokens_become_character_spans(tmp_path):
    ex = read_examples(write_conll04(tmp_path / "c.json"), "conll04")[0]
    assert spans(ex) == [("John Smith", "Peop"), ("Acme Corp", "Org")]
    assert ex.relations == [(0, 1, "Work_For")]
    assert [ex.text[s:e] for s, e in ex.words][:3] == ["John", "Smith", "works"]


def test_conll2003_reads_iob2_and_skips_docstart(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n"
                    "\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\nNew B-LOC\nYork I-LOC\nB-LOC-ish O\n")
    examples = read_examples(path, "conll2003")
    assert [spans(e) for e in examples] == [[("EU", "ORG"), ("German", "MISC")], [("Peter Blackburn", "PER")],
                                            [("New York", "LOC")]]
    assert examples[1].source.endswith(":7")


def test_conll2003_bad_tag_names_file_line_and_field(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU B-ORG\nrejects X-ORG\n")
    with pytest.raises(FormatError, match=r"bad\.txt:2: field 'tag'"):
        read_examples(path, "conll2003")


def test_casrel_surface_strings_are_found_in_the_text(tmp_path):
    path = tmp_path / "casrel.json"
    path.write_text(json.dumps([{"text": "Rolando Maran was born in Italy and manages Carrarese Calcio .",
                                 "triple_list": [["Rolando Maran", "birthPlace", "Italy"],
                                                 ["Rolando Maran", "club", "Carrarese Calcio"],
                                                 ["Rolando Maran", "spouse", "Nobody Here"]]}]))
    ex = read_examples(path, "casrel")[0]
    assert spans(ex) == [("Rolando Maran", "ENT"), ("Italy", "ENT"), ("Carrarese Calcio", "ENT")]
    assert ex.relations == [(0, 1, "birthPlace"), (0, 2, "club")]  # the string not in the text is dropped


def test_redocred_gives_one_example_per_sentence_with_same_sentence_relations(tmp_path):
    doc = {"title": "t", "sents": [["Marie", "Curie", "was", "born", "in", "Warsaw", "."], ["She", "lived", "in", "Paris", "."]],
           "vertexSet": [[{"name": "Marie Curie", "sent_id": 0, "pos": [0, 2], "type": "PER"}],
                         [{"name": "Warsaw", "sent_id": 0, "pos": [5, 6], "type": "LOC"}],
                         [{"name": "Paris", "sent_id": 1, "pos": [3, 4], "type": "LOC"}]],
           "labels": [{"h": 0, "t": 1, "r": "P19", "evidence": [0]}, {"h": 0, "t": 2, "r": "P551", "evidence": [1]}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps([doc]))
    first, second = read_examples(path, "redocred")
    assert spans(first) == [("Marie Curie", "PER"), ("Warsaw", "LOC")] and first.relations == [(0, 1, "P19")]
    assert spans(second) == [("Paris", "LOC")] and second.relations == []  # its head is in another sentence


def test_jsonl_user_annotations(tmp_path):
    path = tmp_path / "mine.jsonl"
    rec = {"text": "Ada Lovelace worked with Charles Babbage.",
           "entities": [{"start": 0, "end": 12, "type": "PER"}, {"start": 25, "end": 40, "type": "PER"}],
           "relations": [{"head": 0, "tail": 1, "type": "colleague"}]}
    path.write_text(json.dumps(rec) + "\n\n" + json.dumps({"text": "No entities here."}) + "\n")
    a, b = read_examples(path)
    assert guess_format(path) == "jsonl"
    assert spans(a) == [("Ada Lovelace", "PER"), ("Charles Babbage", "PER")] and a.relations == [(0, 1, "colleague")]
    assert b.entities == [] and b.relations == []


@pytest.mark.parametrize("record, field", [
    ({"text": "abc", "entities": [{"start": 0, "end": 9, "type": "PER"}]}, "entities[0].end"),
    ({"text": "abc", "entities": [{"start": 0, "end": 1}]}, "entities[0].type"),
    ({"text": "abc", "entities": [{"start": 0, "end": 1, "type": "X"}], "relations": [{"head": 0, "tail": 3, "type": "r"}]},
     "relations[0].tail"),
    ({"entities": []}, "text"),
])
def test_malformed_jsonl_record_names_file_line_and_field(tmp_path, record, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(FormatError) as err:
        read_examples(path, "jsonl")
    assert f"bad.jsonl:2: field {field!r}" in str(err.value)


def test_malformed_conll04_record_names_its_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[\n{"tokens": ["a"], "entities": [], "relations": []},\n{"tokens": ["b"], "entities": [{"type": "X", "start": 0}]}\n]')
    with pytest.raises(FormatError, match=r"c\.json:3: field 'entities\[0\]\.end' is missing"):
        read_examples(path, "conll04")
