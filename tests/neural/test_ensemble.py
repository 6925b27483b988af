"""Ensembles of trained joint models: one folder naming its members, loaded and run as one model."""

import json
import shutil

import pytest
import torch

from kgbuild.errors import ModelLoadError
from kgbuild.neural.joint import JointExtractor, write_ensemble
from kgbuild.neural.train import train

TEXTS = ["John Smith works for Acme Corp .", "Mary Jones lives in Paris .", "Acme Corp is based in Boston ."]


@pytest.fixture(scope="module")
def second_model(tmp_path_factory, tiny_encoder, tiny_data):
    """The tiny model trained again, with another seed and fewer epochs: other probabilities."""
    out = tmp_path_factory.mktemp("second") / "joint"
    train(tiny_data, tiny_data, out, task="re", base_model=str(tiny_encoder), epochs=6, batch_size=4, lr=3e-3,
          head_lr=1e-2, quiet=True, seed=1, threads=1)
    return out


def span_and_pair_probs(model):
    """Type probabilities of every candidate span, and relation probabilities of every ordered pair
    of the first spans, over the first batch of TEXTS."""
    from kgbuild.neural.formats import split_words

    batch = model.batches(model.windows(TEXTS, [split_words(t) for t in TEXTS]), 8)[0]
    ids, mask, case, spans = model.tensors(batch)
    with torch.inference_mode():
        states, probs = model.forward_spans(ids, mask, case, spans)
        rows = spans.tolist()
        first = [k for k, r in enumerate(rows) if r[0] == 0][:4]
        pairs = torch.tensor([[0, h, t, rows[h][3], rows[h][4], rows[t][3], rows[t][4], 1, 2]
                              for h in first for t in first if h != t])
        return probs, model.forward_pairs(states, pairs)


def test_ensemble_averages_its_members_probabilities(tmp_path, tiny_model, second_model):
    first, second = JointExtractor.load(tiny_model[0], "cpu"), JointExtractor.load(second_model, "cpu")
    write_ensemble([tiny_model[0], second_model], tmp_path / "ens")
    both = JointExtractor.load(tmp_path / "ens", "cpu")
    assert len(both.nets) == 2 and both.source == str(tmp_path / "ens")
    (s1, p1), (s2, p2), (s, p) = span_and_pair_probs(first), span_and_pair_probs(second), span_and_pair_probs(both)
    assert not torch.allclose(s1, s2, atol=1e-3)  # the members do differ
    assert torch.allclose(s, (s1 + s2) / 2, atol=1e-6) and torch.allclose(p, (p1 + p2) / 2, atol=1e-6)
    assert torch.allclose(s.sum(-1), torch.ones(len(s)), atol=1e-5)


def test_ensemble_of_one_model_twice_predicts_what_the_model_predicts(tmp_path, tiny_model):
    shutil.copytree(tiny_model[0], tmp_path / "copy")
    write_ensemble([tiny_model[0], tmp_path / "copy"], tmp_path / "twice")
    single = JointExtractor.load(tiny_model[0], "cpu").predict(TEXTS)
    assert JointExtractor.load(tmp_path / "twice", "cpu").predict(TEXTS) == single
    assert any(p.relations for p in single)


def test_ensemble_folder_moves_with_its_members(tmp_path, tiny_model, second_model):
    shutil.copytree(tiny_model[0], tmp_path / "a" / "m1")
    shutil.copytree(second_model, tmp_path / "a" / "m2")
    write_ensemble([tmp_path / "a" / "m1", tmp_path / "a" / "m2"], tmp_path / "a" / "ens")
    marker = json.loads((tmp_path / "a" / "ens" / "kgbuild_model.json").read_text())
    assert marker["kind"] == "kgbuild-ensemble" and marker["members"] == ["../m1", "../m2"]
    expected = JointExtractor.load(tmp_path / "a" / "ens", "cpu").predict(TEXTS)
    shutil.move(tmp_path / "a", tmp_path / "b")
    assert JointExtractor.load(tmp_path / "b" / "ens", "cpu").predict(TEXTS) == expected


def test_members_that_do_not_fit_are_refused_with_the_reason(tmp_path, tiny_model, tiny_encoder, tiny_data):
    ner = tmp_path / "ner"
    train(tiny_data, tiny_data, ner, task="ner", base_model=str(tiny_encoder), epochs=1, batch_size=4, quiet=True,
          threads=1)
    with pytest.raises(ModelLoadError, match="labels differ"):
        write_ensemble([tiny_model[0], ner], tmp_path / "ens")
    with pytest.raises(ModelLoadError, match="two or more"):
        write_ensemble([tiny_model[0]], tmp_path / "one")
    with pytest.raises(ModelLoadError, match="not a model folder"):
        write_ensemble([tiny_model[0], tmp_path], tmp_path / "bad")
    assert not (tmp_path / "ens").exists()


def test_cli_writes_an_ensemble_that_eval_scores(tmp_path, tiny_model, second_model, tiny_data):
    from typer.testing import CliRunner

    from kgbuild.cli import app

    runner = CliRunner()
    made = runner.invoke(app, ["train", "ensemble", str(tiny_model[0]), str(second_model), "-o", str(tmp_path / "ens")])
    assert made.exit_code == 0, made.output
    assert "ensemble of 2 models" in made.output
    scored = runner.invoke(app, ["eval", "re", "--model", str(tmp_path / "ens"), "--data", str(tiny_data),
                                 "--format", "conll04", "--device", "cpu", "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.stdout)
    assert result["entities"]["micro"]["f1"] > 50
