"""`kgbuild eval speed`: the pipeline against spaCy in one process, and with --workers N the
speed-up from 1 to N processes of both next to the machine's own ceiling."""

import math

import pytest

from kgbuild.config import load_config
from kgbuild.eval.speed import format_speed, machine_scaling, measure_speed


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    """measure_speed sets torch's threads and OMP_NUM_THREADS for the benchmark: undo it."""
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    yield
    torch.set_num_threads(threads)


def test_machine_scaling_is_a_throughput_ratio_of_cpu_bound_processes():
    ratio = machine_scaling(2, steps=300_000, repeats=1)
    # a throughput ratio: positive and finite; its size is the shared machine's, a benchmark figure
    assert 0 < ratio < math.inf


@pytest.mark.slow
def test_speed_with_two_workers_reports_both_speed_ups_and_the_machine_ceiling(sample_corpus):
    result = measure_speed(sample_corpus, load_config(None, ["device=cpu"]), limit=4, repeats=1, workers=2)
    assert result["documents"] == 4 and result["words"] > 100
    assert result["kgbuild_words_per_second"] > 0 and result["ratio"] > 0
    sc = result["scaling"]
    assert sc["kgbuild_one_process_words_per_second"] > 0 and sc["spacy_one_process_words_per_second"] > 0
    assert sc["kgbuild"] == pytest.approx(result["kgbuild_words_per_second"] / sc["kgbuild_one_process_words_per_second"], rel=0.01)
    assert 0 < sc["machine"] < math.inf
    text = format_speed(result)
    assert "speed-up from 1 to 2 processes" in text and "ceiling" in text


@pytest.mark.slow
def test_speed_with_one_process_has_no_speed_up_line(sample_corpus):
    result = measure_speed(sample_corpus, load_config(None, ["device=cpu"]), limit=2, repeats=1)
    assert result["scaling"] is None and result["workers"] == 1
    assert "speed-up" not in format_speed(result)
