"""Ensembles of embedding models: one member ranks like the model itself, the scores are the mean
of the members' log-probabilities, members of different graphs are refused, and `--members N`
trains N seeds and ranks with their ensemble."""

from __future__ import annotations

import json

import random
from pathlib import Path

import pytest
import torch
from embed_samples import iri, write_triples
from typer.testing import CliRunner

from kgbuild.cli import app
from kgbuild.embed.ensemble import EnsembleModel
from kgbuild.embed.linkpred import evaluate_linkpred, format_linkpred, load_dataset
from kgbuild.embed.presets import TrainConfig
from kgbuild.embed.train import fit, rank_metrics
from kgbuild.errors import KgbuildError

SMALL = TrainConfig(model="DistMult", embedding_dim=32, learning_rate=0.02, batch_size=64, epochs=40,
                    eval_every=10, patience=3)


def _triples():
    """Three teams of five: every player passes to every teammate; one team per stadium."""
    triples = []
    for team in range(3):
        players = [f"player{team}_{i}" for i in range(5)]
        triples += [(a, "passes_to", b) for a in players for b in players if a != b]
        triples += [(p, "plays_for", f"team{team}") for p in players]
        triples.append((f"team{team}", "home", f"stadium{team}"))
    return triples


@pytest.fixture(scope="module")
def team_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teams")
    triples = _triples()
    random.Random(1).shuffle(triples)
    held = [t for t in triples if t[1] == "passes_to"][:10]
    return [write_triples(Path(folder) / "train.txt", [t for t in triples if t not in held]),
            write_triples(Path(folder) / "valid.txt", held)]


@pytest.fixture(scope="module")
def two_models(team_files):
    _, training, validation, _ = load_dataset(train=team_files[0], valid=team_files[1])
    models = [fit(training, validation, None, SMALL, device="cpu", seed=seed).model for seed in (0, 1)]
    return training, validation, models


def test_ensemble_of_one_ranks_like_the_model(two_models):
    training, validation, (model, _) = two_models
    assert rank_metrics(EnsembleModel([model]), validation, [training]) == pytest.approx(
        rank_metrics(model, validation, [training]))


def test_ensemble_scores_are_the_mean_of_member_log_probabilities(two_models):
    _, validation, models = two_models
    batch = validation.mapped_triples[:4]
    expected = sum(torch.log_softmax(m.predict_t(batch[:, :2]), dim=-1) for m in models) / 2
    ensemble = EnsembleModel(models)
    assert torch.allclose(ensemble.predict_t(batch[:, :2]), expected, atol=1e-6)
    # the evaluator's entry point scores the same
    assert torch.allclose(ensemble.predict(hrt_batch=batch, target="tail"), expected, atol=1e-6)
    # heads alike, and the result is a mean of log-probabilities: a log-probability itself at most 0
    heads = ensemble.predict_h(batch[:, 1:])
    expected = sum(torch.log_softmax(m.predict_h(batch[:, 1:]), dim=-1) for m in models) / 2
    assert heads.shape == (4, ensemble.num_entities) and torch.allclose(heads, expected, atol=1e-6)
    assert (heads <= 0).all()


def test_members_of_different_graphs_are_refused(two_models, tmp_path):
    training, _, (model, _) = two_models
    other = tmp_path / "other.txt"
    other.write_text("a\tknows\tb\nb\tknows\tc\nc\tknows\ta\n")
    _, small, _, _ = load_dataset(train=other, valid=other)
    stranger = fit(small, None, None, TrainConfig(model="DistMult", embedding_dim=4, epochs=1), device="cpu").model
    with pytest.raises(KgbuildError, match="ensemble members differ"):
        EnsembleModel([model, stranger])
    with pytest.raises(KgbuildError, match="at least one"):
        EnsembleModel([])


def test_members_option_trains_each_seed_and_ranks_with_the_ensemble(team_files):
    train, valid = team_files
    lines: list[str] = []
    result = evaluate_linkpred(train=train, valid=valid, config=SMALL, device="cpu", seed=3, members=2,
                               progress=lines.append)
    assert [m.seed for m in result.members] == [3, 4]
    assert any(line.startswith("member 2 of 2 (seed 4): epoch") for line in lines)
    # 18 entities: a random ranking gives MRR about 0.2; teammates are easy to tell apart
    assert result.metrics["mrr"] > 0.5 and all(m.metrics["mrr"] > 0.5 for m in result.members)
    text = format_linkpred(result)
    assert text.startswith("ensemble of 2 x DistMult") and "seed 4," in text
    assert evaluate_linkpred(train=train, valid=valid, config=SMALL, device="cpu", seed=3).members == []
    with pytest.raises(KgbuildError, match="at least one model"):
        evaluate_linkpred(train=train, valid=valid, config=SMALL, device="cpu", members=0)


def test_cli_members_prints_the_ensemble_and_each_member(team_files, tmp_path):
    train, valid = team_files
    result = CliRunner().invoke(app, ["eval", "linkpred", "--train", str(train), "--valid", str(valid), "-m", "distmult",
                                      "--epochs", "2", "--device", "cpu", "--members", "2",
                                      "--plot", str(tmp_path / "curves.png")])
    assert result.exit_code == 0, result.output
    assert "ensemble of 2 x DistMult" in result.output and "each alone:" in result.output
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_cli_checkpoint_keeps_each_members_training_resumable(team_files, tmp_path):
    train, valid = team_files
    def args(*settings: str) -> list[str]:
        return ["eval", "linkpred", "--train", str(train), "--valid", str(valid), "-m", "distmult", "--epochs", "2",
                "--device", "cpu", "--members", "2", "--checkpoint", str(tmp_path / "ck"), "--json",
                "--plot", str(tmp_path / "curves.png"),
                *(x for setting in settings for x in ("--set", setting))]

    first = CliRunner().invoke(app, args())
    assert first.exit_code == 0, first.output
    assert {"training-seed0.pt", "training-seed1.pt", "run.json"} <= {p.name for p in (tmp_path / "ck").iterdir()}
    again = CliRunner().invoke(app, args())  # both members finished: nothing trains, the same figures
    assert again.exit_code == 0 and json.loads(again.output)["metrics"] == json.loads(first.output)["metrics"]
    other = CliRunner().invoke(app, args("embedding_dim=8"))  # other settings: refused, the folder left alone
    assert isinstance(other.exception, KgbuildError) and "another run" in str(other.exception)


def test_embed_members_saves_an_ensemble_that_loads_and_predicts_the_same(embedded_copy):
    from kgbuild.embed import load_embeddings, predict, train_embeddings

    out = embedded_copy
    result = train_embeddings(out, device="cpu", seed=0, members=2, settings=["embedding_dim=16", "epochs=20"])
    assert isinstance(result.model, EnsembleModel) and [m.seed for m in result.members] == [0, 1]
    assert (out / "embeddings" / "model-1.pt").is_file() and 0 < result.metrics["mrr"] <= 1
    loaded = load_embeddings(out)
    assert isinstance(loaded.model, EnsembleModel) and [m.seed for m in loaded.members] == [0, 1]
    e2i, r2i = result.training.entity_to_id, result.training.relation_to_id
    query = torch.tensor([[e2i[iri("Marie Curie")], r2i["http://www.wikidata.org/prop/direct/P19"]]])
    with torch.inference_mode():
        assert torch.allclose(loaded.model.predict_t(query), result.model.predict_t(query), atol=1e-5)
    ranked = predict(out, head="Marie Curie", relation="place of birth", top=3)
    assert len(ranked.candidates) == 3
    # a member's weights gone: a clear error, not a smaller ensemble
    saved = (out / "embeddings" / "model-1.pt").read_bytes()
    (out / "embeddings" / "model-1.pt").unlink()
    with pytest.raises(KgbuildError, match="model-1.pt is missing: the ensemble has 2 models"):
        load_embeddings(out)
    (out / "embeddings" / "model-1.pt").write_bytes(saved)
    # one model again: the ensemble's other weights go, and a single model loads
    train_embeddings(out, device="cpu", seed=0, settings=["embedding_dim=16", "epochs=5"])
    assert not (out / "embeddings" / "model-1.pt").exists()
    assert not isinstance(load_embeddings(out).model, EnsembleModel) and load_embeddings(out).members == []
