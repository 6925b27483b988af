"""Link-prediction benchmarks on TSV files: CRLF files load like LF ones, triples with unseen
entities are counted, evaluation in small batches ranks like one batch, and the time box ends
training."""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from embed_samples import write_triples

from kgbuild.embed.lcwa import DeviceTargetLCWATrainingLoop
from kgbuild.embed.linkpred import evaluate_linkpred, format_linkpred, load_dataset, unranked
from kgbuild.embed.presets import TrainConfig
from kgbuild.embed.train import evaluation_batch_size, fit, rank_metrics
from kgbuild.errors import KgbuildError

# Four clubs of six members: every member "knows" every other member of their club, and each
# club meets in its own city. One held-out fact per club is learnable from the rest.
CLUBS = {f"club{c}": [f"member{c}_{i}" for i in range(6)] for c in range(4)}
SMALL = TrainConfig(model="DistMult", embedding_dim=32, learning_rate=0.02, batch_size=64, epochs=40,
                    eval_every=10, patience=3)


def _club_triples() -> list[tuple[str, str, str]]:
    triples = []
    for c, (club, members) in enumerate(CLUBS.items()):
        for a in members:
            triples.append((a, "member_of", club))
            triples += [(a, "knows", b) for b in members if b != a]
        triples.append((club, "meets_in", f"city{c}"))
    return triples


@pytest.fixture(scope="module")
def club_files(tmp_path_factory):
    """train / valid / test files with CRLF line ends; valid holds one triple of an unseen entity."""
    folder = tmp_path_factory.mktemp("clubs")
    triples = _club_triples()
    random.Random(0).shuffle(triples)
    held = [t for t in triples if t[1] == "knows"][:16]
    train = [t for t in triples if t not in held]
    valid = held[:8] + [("stranger", "knows", "member0_0")]
    return (write_triples(folder / "train.txt", train, "\r\n"), write_triples(folder / "valid.txt", valid, "\r\n"),
            write_triples(folder / "test.txt", held[8:], "\r\n"))


def test_crlf_files_load_like_lf_files(club_files, tmp_path):
    train, valid, _ = club_files
    lf = write_triples(tmp_path / "train.txt", [tuple(line.split("\t")) for line in
                                         train.read_text().splitlines()], "\n")
    _, crlf_training, validation, testing = load_dataset(train=train, valid=valid)
    _, lf_training, _, _ = load_dataset(train=lf, valid=valid)
    assert crlf_training.entity_to_id == lf_training.entity_to_id
    assert not any(label.endswith("\r") for label in crlf_training.entity_to_id)
    assert set(crlf_training.relation_to_id) == {"member_of", "knows", "meets_in"}
    assert testing is None and validation.num_triples == 8  # the stranger's triple cannot be ranked
    assert unranked(valid, validation) == 1


def test_benchmark_on_files_ranks_held_out_facts_far_above_chance(club_files):
    train, valid, test = club_files
    result = evaluate_linkpred(train=train, valid=valid, test=test, config=SMALL, device="cpu", seed=0)
    assert result.split == "test" and result.evaluation_triples == 8 and result.unranked == 0
    # 28 entities: a random ranking gives MRR about 0.14; club members are easy to tell apart.
    assert result.metrics["mrr"] > 0.5 and result.validation_metrics["mrr"] > 0.5
    # test facts answer valid queries here (members of the same clubs): filtering them raises valid MRR
    assert 0 < result.validation_without_test["mrr"] < result.validation_metrics["mrr"]
    assert "valid:" in format_linkpred(result) and "without filtering the test split" in format_linkpred(result)


def test_evaluation_in_small_batches_ranks_like_one_batch(club_files):
    train, valid, test = club_files
    _, training, validation, testing = load_dataset(train=train, valid=valid, test=test)
    fitted = fit(training, validation, testing, SMALL, device="cpu", seed=0)
    known = [training, validation]
    assert rank_metrics(fitted.model, testing, known, batch_size=1) == pytest.approx(
        rank_metrics(fitted.model, testing, known, batch_size=1024))


def test_cpu_evaluation_batches_are_bounded_by_entities_and_dimension():
    cpu = torch.device("cpu")
    assert evaluation_batch_size(14, 200, cpu) == 1024
    assert evaluation_batch_size(14_541, 200, cpu) == 46  # FB15k-237
    assert evaluation_batch_size(40_943, 500, cpu) == 6  # WN18RR, a wide model
    assert evaluation_batch_size(14_541, 200, torch.device("cuda")) is None  # PyKEEN halves on OOM


def test_time_box_ends_training_after_the_first_epoch(club_files):
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    fitted = fit(training, validation, None, SMALL, device="cpu", seed=0, max_minutes=0)
    assert len(fitted.curves.losses) == 1 and fitted.metrics["mrr"] > 0


def count_rankings(monkeypatch) -> list[int]:
    """The number of triples of each ranking PyKEEN's RankBasedEvaluator runs from now on."""
    from pykeen.evaluation import RankBasedEvaluator

    ranked: list[int] = []
    evaluate = RankBasedEvaluator.evaluate

    def counted(self, model, triples, *args, **kwargs):
        ranked.append(len(triples))
        return evaluate(self, model, triples, *args, **kwargs)

    monkeypatch.setattr(RankBasedEvaluator, "evaluate", counted)
    return ranked


def test_the_last_validation_is_not_ranked_again_by_the_final_evaluation(club_files, monkeypatch):
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    ranked = count_rankings(monkeypatch)
    config = replace(SMALL, epochs=2 * SMALL.eval_every)
    fitted = fit(training, validation, None, config, device="cpu", seed=0)
    # two validations; the final evaluation, of the last one's weights, ranks nothing again
    assert fitted.curves.validation_epochs == [config.eval_every, config.epochs]
    assert ranked == [validation.num_triples] * 2
    assert fitted.metrics["mrr"] == pytest.approx(fitted.curves.validation_mrr[-1])


def test_remembering_evaluator_ranks_again_when_weights_or_triples_change(club_files, monkeypatch):
    from kgbuild.embed.train import rank_metrics, remembering_evaluator

    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    model = fit(training, validation, None, replace(SMALL, epochs=1), device="cpu", seed=0).model
    ranked = count_rankings(monkeypatch)
    evaluator = remembering_evaluator()
    first = evaluator.evaluate(model, validation.mapped_triples, additional_filter_triples=training.mapped_triples)
    # the same set of known triples, given otherwise (the ranked ones are filtered anyway)
    same = evaluator.evaluate(model, validation.mapped_triples,
                              additional_filter_triples=[training.mapped_triples, validation.mapped_triples])
    assert same is first
    # fit's ranking of reloaded best weights, as the stopper ranked them
    assert rank_metrics(model, validation, [training], evaluator=evaluator)["mrr"] == float(first.get_metric("mrr"))
    assert len(ranked) == 1
    fewer = evaluator.evaluate(model, validation.mapped_triples[:-1], additional_filter_triples=training.mapped_triples)
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    changed = evaluator.evaluate(model, validation.mapped_triples[:-1], additional_filter_triples=training.mapped_triples)
    assert changed is not fewer and len(ranked) == 3


def test_time_box_cuts_the_epoch_in_progress_after_its_current_batch(club_files):
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    config = replace(SMALL, batch_size=8)
    lines: list[str] = []
    cut = fit(training, validation, None, config, device="cpu", seed=0, max_minutes=0, progress=lines.append)
    assert len(cut.curves.losses) == 1 and cut.metrics["mrr"] > 0
    reached = [m for m in map(re.compile(r"epoch 1: time box reached after 1 of its (\d+) batches").fullmatch, lines) if m]
    assert len(reached) == 1 and int(reached[0].group(1)) > 1, lines
    one = fit(training, validation, None, replace(config, epochs=1), device="cpu", seed=0)
    assert cut.curves.losses[0] != one.curves.losses[0]  # one batch's loss, not the whole epoch's


def test_default_model_follows_graph_size():
    from kgbuild.embed.presets import LARGE, LARGE_FEW, LARGE_FEW_GPU, LARGE_GPU, PRESETS, SMALL, default_config

    assert default_config(None, 37).model == PRESETS["rotate"].model  # extracted graphs of a few facts
    assert default_config(None, 1592) == SMALL  # Nations, UMLS, Kinships
    assert default_config(None, 272_115) == LARGE  # relation count unknown
    assert default_config(None, 272_115, n_relations=237) == LARGE  # FB15k-237
    assert default_config(None, 86_835, n_relations=11) == LARGE  # WN18RR on the CPU
    assert default_config("tucker-ce-few", 86_835) == LARGE_FEW  # its earlier default, by name
    assert default_config(None, 1592, n_relations=11) == SMALL  # few relations matter on large graphs only
    assert default_config("tucker", 1592).model_kwargs["relation_dim"] == 200  # a named model keeps its preset
    assert LARGE.model == "ComplEx" and LARGE.embedding_dim == 200 and LARGE.training_loop == "1vsall"
    assert default_config("tucker-ce", 272_115).loss == "crossentropy"  # the earlier large-graph default, by name
    # on a GPU, large graphs get ComplEx-N3; small ones keep the CPU's measured default
    assert default_config(None, 272_115, n_relations=237, device="cuda") == LARGE_GPU
    assert default_config(None, 86_835, n_relations=11, device="cuda") == LARGE_FEW_GPU
    assert LARGE_GPU.model == "ComplEx" and LARGE_GPU.n3 > 0 and LARGE_GPU.training_loop == "1vsall"
    assert LARGE_FEW_GPU.embedding_dim == 2000
    assert default_config(None, 1592, device="cuda") == SMALL
    one_epoch = default_config(None, 86_835, epochs=1)
    assert one_epoch.epochs == 1 and one_epoch.eval_every == 1


def test_last_weights_are_kept_when_they_beat_every_validation(club_files):
    # Validation runs at epoch 10 only; the model still improves up to epoch 15, which the
    # pipeline's final evaluation of the validation split shows: those weights are kept.
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    config = replace(SMALL, learning_rate=0.005, epochs=15)
    fitted = fit(training, validation, None, config, device="cpu", seed=0)
    curves = fitted.curves
    assert curves.validation_epochs == [10, 15] and curves.validation_mrr[1] > curves.validation_mrr[0]
    assert curves.best_epoch == 15
    assert fitted.metrics["mrr"] == pytest.approx(curves.validation_mrr[1])
    assert rank_metrics(fitted.model, validation, [training])["mrr"] == pytest.approx(fitted.metrics["mrr"])


def test_the_last_weights_are_kept_when_the_last_validation_is_the_best_by_less_than_the_delta(club_files,
                                                                                                monkeypatch):
    # With a delta no gain can pass, the stopper saves only the first validation's weights as its
    # best; the later validations are higher, the last one highest: the last weights are kept.
    import kgbuild.embed.train as train_module

    monkeypatch.setattr(train_module, "STOPPER_DELTA", 10.0)
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    config = replace(SMALL, learning_rate=0.005, epochs=20, eval_every=5, patience=8)
    fitted = fit(training, validation, None, config, device="cpu", seed=0)
    curves = fitted.curves
    assert curves.validation_epochs == [5, 10, 15, 20]  # no duplicate entry for the last epoch
    assert curves.validation_mrr[-1] == max(curves.validation_mrr) > curves.validation_mrr[0]
    assert curves.best_epoch == 20
    assert fitted.metrics["mrr"] == pytest.approx(curves.validation_mrr[-1])
    assert rank_metrics(fitted.model, validation, [training])["mrr"] == pytest.approx(fitted.metrics["mrr"])


def test_small_graphs_train_with_torchs_dropout_and_the_switch_is_restored(club_files, monkeypatch):
    from kgbuild.embed import scoring

    seen: list[bool] = []
    original = scoring.use_fast_dropout
    monkeypatch.setattr(scoring, "use_fast_dropout", lambda on: seen.append(on) or original(on))
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    fit(training, validation, None, replace(SMALL, epochs=1), device="cpu", seed=0)
    assert seen == [False, True] and scoring.fast_dropout_on()  # off for the small graph, then back on


def test_each_validation_reports_its_mrr_and_the_time_to_reach_it(club_files):
    train, valid, _ = club_files
    lines: list[str] = []
    result = evaluate_linkpred(train=train, valid=valid, config=SMALL, device="cpu", seed=0, progress=lines.append)
    curves = result.curves
    assert len(lines) == len(curves.validation_mrr) == len(curves.validation_seconds) >= 2
    assert lines[0].startswith("epoch 10: validation MRR ")
    assert curves.validation_seconds == sorted(curves.validation_seconds) and curves.validation_seconds[0] >= 0
    assert "s after training began" in format_linkpred(result)
    assert "no test split filtered" in format_linkpred(result)


def test_settings_change_fields_and_model_arguments_and_reject_unknown_keys():
    from kgbuild.embed.presets import PRESETS, with_settings
    from kgbuild.errors import ConfigError

    base = PRESETS["complexn3"]
    changed = with_settings(base, ["embedding_dim=64", "n3=0.1", "optimizer=adam", "model_kwargs.regularizer=null"])
    assert (changed.embedding_dim, changed.n3, changed.optimizer) == (64, 0.1, "adam")
    assert changed.model_kwargs["regularizer"] is None
    assert changed.model_kwargs["entity_initializer"] == "small_normal"  # the other arguments kept
    assert base.embedding_dim == 1000  # the preset itself untouched
    assert base.tf32 and with_settings(base, ["tf32=false"]).tf32 is False
    with pytest.raises(ConfigError, match="embedding_dims"):
        with_settings(base, ["embedding_dims=64"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        with_settings(base, ["embedding_dim"])
    # settings that only 1-vs-all training reads are refused elsewhere, not ignored
    with pytest.raises(ConfigError, match="1-vs-all"):
        with_settings(base, ["training_loop=lcwa"])
    assert with_settings(base, ["training_loop=lcwa", "n3=0"]).training_loop == "lcwa"


def test_known_triples_are_filtered_from_the_final_rankings(club_files, tmp_path):
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    entities = sorted(training.entity_to_id)
    rows = [line.split("\t") for line in valid.read_text().splitlines() if not line.startswith("stranger")]
    # every other entity as a true tail of each held-out (head, relation) and as a true head of each
    # (relation, tail): filtered, they leave the held-out answer alone in every ranking
    known = {(h, r, e) for h, r, t in rows for e in entities if e != t} | {(e, r, t) for h, r, t in rows
                                                                           for e in entities if e != h}
    known_file = write_triples(tmp_path / "known.txt", sorted(known) + [("stranger", "knows", "member0_1")], "\n")
    result = evaluate_linkpred(train=train, valid=valid, config=replace(SMALL, epochs=10), device="cpu", seed=0,
                               known=[known_file])
    assert result.metrics["mrr"] == 1.0 and result.validation_metrics["mrr"] == 1.0
    assert result.metrics_without_known["mrr"] < 1.0
    assert result.known_triples == len(known)  # the stranger's triple cannot be a candidate
    assert "--known triples also filtered" in format_linkpred(result)
    assert "no test split filtered" not in format_linkpred(result)
    with pytest.raises(KgbuildError, match="not found"):
        evaluate_linkpred(train=train, valid=valid, config=SMALL, device="cpu", known=[tmp_path / "missing.txt"])


def test_checkpoint_resumes_a_stopped_run_where_it_left_off(club_files, tmp_path, monkeypatch):
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    whole = fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path / "whole")
    stopped = fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path / "run", max_minutes=0)
    assert len(stopped.curves.losses) == 1
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"run.json", "training-seed0.pt", "progress-seed0.json"}
    # PyKEEN looks for the sub-batch that fits in memory only on a fresh start: a resumed run is
    # given the one the first run used
    progress = json.loads((tmp_path / "run" / "progress-seed0.json").read_text())
    assert progress["sub_batch"] == [SMALL.batch_size, None]
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    (tmp_path / "copy" / "progress-seed0.json").write_text(json.dumps({**progress, "sub_batch": [16, None]}))
    used = []
    epoch = DeviceTargetLCWATrainingLoop._train_epoch
    monkeypatch.setattr(DeviceTargetLCWATrainingLoop, "_train_epoch",
                        lambda self, *a, **kw: used.append(kw["sub_batch_size"]) or epoch(self, *a, **kw))
    fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path / "copy")
    assert set(used) == {16}
    monkeypatch.undo()
    resumed = fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path / "run")
    # the time box cut epoch 1 after its first batch: the resumed run goes on from epoch 2
    assert resumed.curves.losses[0] == stopped.curves.losses[0] and len(resumed.curves.losses) > 1
    # stopped at an epoch's end, a run resumes as one run would: the random states come back with
    # the weights and the optimiser
    half = fit(training, validation, None, replace(SMALL, epochs=20), device="cpu", seed=0,
               checkpoint=tmp_path / "longer")
    assert len(half.curves.losses) == 20
    longer = fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path / "longer")
    assert longer.curves.losses == whole.curves.losses and len(whole.curves.losses) == SMALL.epochs
    assert longer.curves.validation_epochs == whole.curves.validation_epochs
    assert longer.curves.best_epoch == whole.curves.best_epoch and longer.metrics == whole.metrics
    assert all(torch.equal(a, b) for a, b in zip(longer.model.state_dict().values(), whole.model.state_dict().values()))
    assert len(longer.curves.validation_seconds) == len(longer.curves.validation_epochs)
    # a finished run is not trained again
    again = fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path / "longer")
    assert again.curves.losses == whole.curves.losses and again.metrics == whole.metrics


def test_checkpoint_folder_of_another_run_is_refused(club_files, tmp_path):
    train, valid, _ = club_files
    _, training, validation, _ = load_dataset(train=train, valid=valid)
    fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path, max_minutes=0)
    with pytest.raises(KgbuildError, match="another run .*config") as err:
        fit(training, validation, None, replace(SMALL, embedding_dim=16), device="cpu", checkpoint=tmp_path)
    assert "empty folder" in err.value.hint
    (tmp_path / "training-seed0.pt").write_bytes(b"cut short")
    with pytest.raises(KgbuildError, match="cannot read the checkpoint"):
        fit(training, validation, None, SMALL, device="cpu", seed=0, checkpoint=tmp_path)
