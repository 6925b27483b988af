from kgbuild.neural.train import STAGES, format_speed, measure_speed


def test_speed_says_where_the_time_goes(tiny_model, tiny_data):
    result = measure_speed(tiny_model[0], tiny_data, "conll04", device="cpu", batch_size=2, repeat=3)
    assert result["sentences"] == 12 and result["device"] == "cpu"
    for key in ("seconds", "sentences_per_second", "tokenise_seconds", "batch_seconds", "model_seconds",
                "model_sentences_per_second", "host_sentences_per_second"):
        assert result[key] > 0, key
    assert result["transfer_seconds"] >= 0 and result["rest_seconds"] >= 0
    # the model alone is faster than the whole of predict, of which it is a part
    assert result["model_sentences_per_second"] > result["sentences_per_second"]
    assert result["bound"] in STAGES
    first, stages = format_speed(result).splitlines()
    assert first.startswith(f"{result['sentences_per_second']:,.1f} sentences/s")
    assert "model alone" in stages and "inputs alone" in stages and stages.endswith(f"bound by {result['bound']}")


def test_speed_can_profile_the_timed_run(tiny_model, tiny_data, tmp_path):
    import pstats

    result = measure_speed(tiny_model[0], tiny_data, "conll04", device="cpu", batch_size=2,
                           profile=tmp_path / "predict.prof")
    functions = {name for (_, _, name) in pstats.Stats(result["profile"]).stats}
    assert "predict" in functions and "_predict_batch" in functions
    assert format_speed(result).splitlines()[-1] == f"profile of predict: {result['profile']} (python -m pstats)"
