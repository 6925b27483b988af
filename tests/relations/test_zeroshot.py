"""The default relation backend on short original sentences, with the real spaCy and MiniLM models
(loaded once per session through the shared `pipeline` fixture)."""

import pytest

from kgbuild import registry
from kgbuild.errors import ConfigError
from kgbuild.model import Document
from kgbuild.relations.schema import load_schema

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stages(pipeline):
    return pipeline.stages["ner"], pipeline.stages["relations"]


def extract(stages, text, threshold=None):
    ner, rel = stages
    doc = Document(id="t", text=text)
    ner([doc])
    old = rel.threshold
    if threshold is not None:
        rel.threshold = threshold
    try:
        rel([doc])
    finally:
        rel.threshold = old
    return doc, {(doc.mentions[r.head].text, r.relation, doc.mentions[r.tail].text): r for r in doc.relations}


def test_born_in_sentence_gives_place_of_birth(stages):
    doc, found = extract(stages, "Marie Curie was born in Warsaw.")
    assert ("Marie Curie", "P19", "Warsaw") in found
    rm = found[("Marie Curie", "P19", "Warsaw")]
    assert rm.extractor == "zeroshot" and rm.sentence == 0


def test_located_in_country_pattern(stages):
    _, found = extract(stages, "The Eiffel Tower is a landmark in Paris, France.")
    assert ("Paris", "P17", "France") in found


def test_type_constraints_block_impossible_pairs(stages):
    _, rel = stages
    schema = rel.schema
    doc, found = extract(stages, "Marie Curie was born in 1867 in Warsaw.", threshold=0.0001)
    assert ("Marie Curie", "P19", "1867") not in found  # place of birth needs a place
    assert found, "a low threshold keeps some relations"
    for rm in doc.relations:
        head, tail = doc.mentions[rm.head], doc.mentions[rm.tail]
        assert schema.get(rm.relation).allows(head.type, tail.type), (head.text, rm.relation, tail.text)


def test_confidence_is_kept_and_threshold_filters(stages):
    text = "Albert Einstein was born in Ulm, Germany, in 1879."
    _, low = extract(stages, text, threshold=0.05)
    _, high = extract(stages, text, threshold=0.8)
    assert set(high) < set(low)
    assert all(0.05 <= r.confidence <= 1.0 for r in low.values())
    assert all(r.confidence >= 0.8 for r in high.values())


def test_no_mentions_no_relations(stages):
    doc, found = extract(stages, "it rained all day and nobody went out.")
    assert found == {} and doc.relations == []


def test_labels_and_info_name_model_schema_and_device(stages):
    _, rel = stages
    assert rel.labels()["P19"] == "place of birth"
    info = rel.info()
    assert info["n_relations"] == 96 and info["device"] in ("cpu", "cuda") and info["model"]
    assert info["head"].endswith(".json")


def test_unknown_option_is_config_error():
    with pytest.raises(ConfigError) as err:
        registry.build("relations", "zeroshot", {"treshold": 0.5}, device="cpu")
    assert "threshold" in err.value.hint


def test_threshold_out_of_range_is_config_error():
    with pytest.raises(ConfigError):
        registry.build("relations", "zeroshot", {"threshold": 1.5}, device="cpu")


def test_works_without_a_parse_and_on_an_empty_batch(stages):
    from kgbuild.model import Mention, Sentence

    _, rel = stages
    text = "Marie Curie was born in Warsaw."
    doc = Document(id="p", text=text, sentences=[Sentence(0, len(text))], mentions=[
        Mention(0, 11, "Marie Curie", "PER", "PERSON", 0), Mention(24, 30, "Warsaw", "LOC", "GPE", 0)])
    old, rel.threshold = rel.threshold, 0.2
    try:
        assert rel([doc]) == [doc]
    finally:
        rel.threshold = old
    # without the dependency path the evidence is weaker, but still points at place of birth
    assert any(r.relation == "P19" and (r.head, r.tail) == (0, 1) for r in doc.relations)
    assert rel([]) == []


def test_head_fitted_for_another_encoder_is_config_error():
    from kgbuild.relations.head import default_head_path

    with pytest.raises(ConfigError, match="fitted for the static encoder"):
        registry.build("relations", "zeroshot", {"encoder": "contextual", "head": str(default_head_path("static"))},
                       device="cpu")


def test_batch_cut_at_the_pair_budget_scores_every_pair_as_one_batch_does(stages, sample_corpus, monkeypatch):
    import kgbuild.relations.zeroshot as zeroshot

    ner, rel = stages
    texts = [p.read_text(encoding="utf-8") for p in sorted(sample_corpus.rglob("*.txt"))]

    def relations():
        docs = ner([Document(id=str(i), text=t) for i, t in enumerate(texts)])
        rel(docs)
        return [[(r.head, r.tail, r.relation, r.confidence) for r in d.relations] for d in docs]

    whole = relations()
    calls = []
    forward = rel.forward
    monkeypatch.setattr(zeroshot, "MAX_BATCH_PAIRS", 1)  # every document its own batch
    monkeypatch.setattr(rel, "forward", lambda batch: calls.append(len(batch)) or forward(batch))
    assert relations() == whole and any(whole)
    assert calls == [1] * len(texts)
