"""Entity tags from the packaged spaCy pipeline as an input feature of the joint model
(kgbuild/neural/tags.py, `kgbuild train re --tag-features auto`)."""

import json

import pytest
import torch

from kgbuild.neural.formats import split_words
from kgbuild.neural.joint import CASE_SHAPES, JointExtractor, windows_of, word_shape
from kgbuild.neural.tags import OUTSIDE, EntityTagger
from kgbuild.neural.train import evaluate, train


@pytest.fixture(scope="module")
def tagger():
    return EntityTagger("auto")


def _tags(tagger, text):
    words = split_words(text)
    (tags,) = tagger.word_tags([text], [words])
    return {text[a:b]: t for (a, b), t in zip(words, tags)}


def test_words_get_the_tag_of_their_spacy_token(tagger):
    tags = _tags(tagger, "Marie Curie moved to Paris in 1891 .")
    person = 2 + 2 * tagger.labels.index("PERSON")
    assert tags["Marie"] == person and tags["Curie"] == person + 1  # B- then I-
    assert tags["moved"] == tags["to"] == tags["."] == OUTSIDE
    assert tags["Paris"] == 2 + 2 * tagger.labels.index("GPE")
    assert tags["1891"] == 2 + 2 * tagger.labels.index("DATE")
    assert tagger.count == 2 + 2 * len(tagger.labels)


def test_a_word_inside_a_token_continues_its_entity_and_unknown_labels_are_outside(tagger):
    (tags,) = tagger.word_tags(["New-York"], [[(0, 3), (4, 8)]])  # one spaCy token, two words
    assert tags == [2 + 2 * tagger.labels.index("GPE"), 3 + 2 * tagger.labels.index("GPE")]
    only_people = EntityTagger("auto", labels=["PERSON"])
    (tags,) = only_people.word_tags(["He visited Paris ."], [split_words("He visited Paris .")])
    assert tags == [OUTSIDE] * 4  # GPE is not among the labels the model was trained with
    assert tagger.word_tags(["", "x"], [[], [(0, 1)]]) == [[], [OUTSIDE]]


def test_training_with_tag_features_saves_loads_and_predicts_the_same(tmp_path, tiny_encoder, tiny_data):
    out = tmp_path / "tags"
    result = train(tiny_data, tiny_data, out, task="re", base_model=str(tiny_encoder), epochs=4, batch_size=4,
                   lr=3e-3, head_lr=1e-2, patience=4, quiet=True, seed=0, threads=1, tag_features="auto")
    config = json.loads((out / "training_config.json").read_text())
    assert config["tag_features"]["model"].startswith("en_core_web_sm")
    assert "PERSON" in config["tag_features"]["labels"]
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    model = JointExtractor.load(out, "cpu")
    assert model.net.tags.weight.abs().sum() > 0  # learned from zero, saved and loaded
    assert model.net.tags.num_embeddings == model.tagger.count
    again = evaluate(out, tiny_data, "conll04", device="cpu")
    assert again["entities"] == result.dev["entities"] and again["relations"] == result.dev["relations"]

    # every subword carries its word's shape and its word's tag in one id
    text = "John Smith works for Acme Corp ."
    words = split_words(text)
    (win,) = model.windows([text], [words])
    tags = model.tagger.word_tags([text], [words])[0]
    for k, w in enumerate(win.words):
        word = text[words[w][0] : words[w][1]]
        assert set(win.case_ids[win.first[k] : win.last[k] + 1]) == {word_shape(word) + len(CASE_SHAPES) * tags[w]}
    (plain,) = windows_of(0, text, words, model.tokenizer, model.max_length)
    assert max(plain.case_ids) < len(CASE_SHAPES)  # without tags: shapes only

    # the tags change what the model reads: zeroing their vectors changes its span scores
    ids, mask, case, spans = model.tensors([win])
    with torch.inference_mode():
        before = model.forward_spans(ids, mask, case, spans)[1]
        model.net.tags.weight.zero_()
        after = model.forward_spans(ids, mask, case, spans)[1]
    assert not torch.allclose(before, after)


def test_an_ensemble_needs_members_with_the_same_tag_features(tmp_path, tiny_encoder, tiny_data):
    from kgbuild.errors import ModelLoadError
    from kgbuild.neural.joint import write_ensemble

    common = dict(task="re", base_model=str(tiny_encoder), epochs=1, batch_size=4, quiet=True, threads=1)
    train(tiny_data, tiny_data, tmp_path / "a", **common)
    train(tiny_data, tiny_data, tmp_path / "b", tag_features="auto", **common)
    with pytest.raises(ModelLoadError, match="tag features differ"):
        write_ensemble([tmp_path / "a", tmp_path / "b"], tmp_path / "ens")
