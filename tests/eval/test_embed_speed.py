"""`kgbuild eval embed-speed`: PyKEEN's scoring against kgbuild's on the same model, in one run."""

from __future__ import annotations

from kgbuild.embed import scoring
from kgbuild.eval.embed_speed import format_embed_speed, measure_embed_speed


def test_embed_speed_times_both_scorings_and_compares_their_scores():
    result = measure_embed_speed(dataset="nations", batches=2, eval_triples=16, repeats=1)
    assert result["model"] == "TuckER" and result["eval_triples"] == 16
    for key in ("pykeen_seconds_per_step", "kgbuild_seconds_per_step",
                "pykeen_ms_per_eval_triple", "kgbuild_ms_per_eval_triple", "torch_dropout_seconds_per_step",
                "pykeen_ms_per_batch_labels", "kgbuild_ms_per_batch_labels"):
        assert result[key] > 0
    assert result["max_score_difference"] < 1e-3  # the same model scores the same either way
    assert scoring.installed() and scoring._fast_dropout_on  # left as every other run uses it
    text = format_embed_speed(result)
    assert "training step" in text and "evaluation" in text and "torch's own dropout" in text
    assert "labels of a training batch" in text


def test_embed_speed_times_torch_dropout_only_for_tucker():
    result = measure_embed_speed(dataset="nations", model="distmult", batches=1, eval_triples=8, repeats=1)
    assert result["torch_dropout_seconds_per_step"] is None
    assert "torch's own dropout" not in format_embed_speed(result)


def test_embed_speed_builds_models_that_start_from_kgbuilds_initializer():
    from pykeen.nn.init import initializer_resolver

    initializer_resolver.lookup_dict.pop("smallnormal", None)  # as in a fresh process
    result = measure_embed_speed(dataset="nations", model="complex-n3", batches=1, eval_triples=8, repeats=1)
    assert result["model"] == "ComplEx" and result["kgbuild_seconds_per_step"] > 0
