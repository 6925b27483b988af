from kgbuild.neural.train import STAGES, format_speed, measure_speed


def test_speed_says_where_the_time_goes(tiny_model, tiny_data):
    result = measure_speed(tiny_model[0], tiny_data, "conll04", device="cpu", batch_size=2, repeat=3)
    assert result["sentences"] == 12 and result["device"] == "cpu"
    for key in ("seconds", "sentences_per_second", "tokenise_seconds", "batch_seconds", "model_seconds",
                "model_sentences_per_second", "host_sentences_per_second"):
        assert result[key] > 0, key
    assert result["transfer_seconds"] >= 0 and result["rest_seconds"] >= 0
    assert result["bound"] in STAGES
    first, stages = format_speed(result).splitlines()
    assert first.startswith(f"{result['sentences_per_second']:,.1f} sentences/s")
    assert "model alone" in stages and "inputs alone" in stages and stages.endswith(f"bound by {result['bound']}")


def test_speed_can_profile_the_timed_run(tiny_model, tiny_data, tmp_path):
    import pstats

    result = measure_speed(tiny_model[0], tiny_data, "conll04", device="cpu", batch_size=2,
                           profile=tmp_path / "predict.prof")
    functions = {name for (_, _, name) in pstats.Stats(result["profile"]).stats}
    assert {"predict", "decoded", "_finish"} <= functions
    assert format_speed(result).splitlines()[-1] == f"profile of predict: {result['profile']} (python -m pstats)"


def test_processes_share_the_texts_and_find_what_one_process_finds(tiny_model, tiny_data):
    from kgbuild.neural.joint import JointExtractor
    from kgbuild.neural.formats import read_examples

    # a sweep: one process, then 2, then 3 (the counts sorted)
    result = measure_speed(tiny_model[0], tiny_data, "conll04", device="cpu", batch_size=2, repeat=3,
                           processes=[3, 2], threads=1)
    one, three = result["one_process"], result["n_processes"]
    two = result["sweep"][0]
    assert result["sentences"] == 12 and [r["processes"] for r in (one, *result["sweep"])] == [1, 2, 3]
    assert three is result["sweep"][-1] and [len(r["process_seconds"]) for r in (one, two, three)] == [1, 2, 3]
    assert result["speedup"] == three["speedup"] == round(three["sentences_per_second"] / one["sentences_per_second"], 2)
    assert two["speedup"] == round(two["sentences_per_second"] / one["sentences_per_second"], 2)
    # the work was divided, not changed: both runs find what predict finds in this process
    examples = read_examples(tiny_data, "conll04") * 3
    found = JointExtractor.load(tiny_model[0], "cpu").predict([e.text for e in examples], [e.words for e in examples])
    expected = (sum(len(p.entities) for p in found), sum(len(p.relations) for p in found))
    assert expected[0] > 0
    assert all((r["entities"], r["relations"]) == expected for r in (one, two, three))
    lines = format_speed(result).splitlines()
    assert lines[1].startswith("1 process x 1 threads") and lines[2].startswith("2 processes x 1 threads")
    assert lines[3].startswith("3 processes x 1 threads") and lines[3].endswith(f"speed-up {three['speedup']}x")
    assert lines[-1] == f"speed-up {result['speedup']}x"


def test_processes_need_a_count_above_one(tiny_model, tiny_data):
    import pytest

    from kgbuild.errors import KgbuildError
    from kgbuild.neural.processes import measure_speed_processes

    with pytest.raises(KgbuildError, match="above 1"):
        measure_speed_processes(tiny_model[0], ["a text"], [[(0, 1)]], "cpu", 2, [1])


def test_processes_and_profile_do_not_mix(tiny_model, tiny_data, tmp_path):
    import pytest

    from kgbuild.errors import KgbuildError

    with pytest.raises(KgbuildError, match="--profile"):
        measure_speed(tiny_model[0], tiny_data, "conll04", device="cpu", processes=2, profile=tmp_path / "p.prof")


def test_shards_cover_the_texts_in_order():
    from kgbuild.neural.processes import shards

    assert shards(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert shards(2, 3) == [(0, 1), (1, 2), (2, 2)]


def test_replayed_forward_passes_give_predicts_own_predictions_without_the_model(tiny_model, tiny_data):
    import pytest

    from kgbuild.neural.formats import read_examples
    from kgbuild.neural.joint import JointExtractor
    from kgbuild.neural.train import ForwardReplay

    examples = read_examples(tiny_data, "conll04") * 3
    texts, words = [e.text for e in examples], [e.words for e in examples]
    model = JointExtractor.load(tiny_model[0], "cpu")
    replay = ForwardReplay(model)
    with replay.recording():
        found = model.predict(texts, words, batch_size=2)
    assert len(replay.spans) == 6 and any(p.entities for p in found)

    def refuse(*args):
        raise AssertionError("the network ran during a replay")

    hook = model.net.encoder.register_forward_pre_hook(refuse)
    try:
        with replay.replaying():
            assert model.predict(texts, words, batch_size=2) == found
        with pytest.raises(AssertionError, match="network ran"):  # the methods are back after the replay
            model.predict(texts, words, batch_size=2)
    finally:
        hook.remove()


def test_speed_reports_the_host_alone(tiny_model, tiny_data):
    import pytest

    result = measure_speed(tiny_model[0], tiny_data, "conll04", device="cpu", batch_size=2, repeat=3)
    assert result["host_alone_seconds"] > 0 and result["host_alone_collector_running_seconds"] > 0
    assert result["host_alone_sentences_per_second"] == pytest.approx(12 / result["host_alone_seconds"], rel=1e-3)
    running = result["host_alone_collector_running_sentences_per_second"]
    assert running == pytest.approx(12 / result["host_alone_collector_running_seconds"], rel=1e-3)
    assert (f"host alone (the model's outputs replayed) {result['host_alone_sentences_per_second']:,.1f} sentences/s "
            f"({running:,.1f} with Python's cyclic collector running)") in format_speed(result)
