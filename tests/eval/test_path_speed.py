"""`kgbuild eval path-speed`: NBFNet and A*Net priced on the same graph in one run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kgbuild.cli import app
from kgbuild.errors import ConfigError
from kgbuild.eval.path_speed import measure_path_speed


def test_path_speed_prices_a_training_and_a_ranked_query_of_both_models():
    result = measure_path_speed(dataset="nations", batches=1, batch_size=8, queries=4, repeats=1,
                                settings=["model_kwargs.num_layers=2"])
    nbfnet, astarnet = result["models"]["nbfnet"], result["models"]["astarnet"]
    assert result["ranked_queries"] == 4 and result["training_rows"] == 2 * 1592  # Nations' training triples
    assert nbfnet["messages_per_query_layer"] == 2 * 1592  # every fact, both directions
    assert astarnet["messages_per_query_layer"] < nbfnet["messages_per_query_layer"]
    assert astarnet["model_kwargs"]["node_ratio"] == 0.1 and nbfnet["batch_size"] == 8
    for figures in (nbfnet, astarnet):
        assert figures["seconds_per_training_query"] > 0 and figures["seconds_per_ranked_query"] > 0
        assert figures["epoch_hours"] == pytest.approx(figures["seconds_per_training_query"] * 2 * 1592 / 3600)
    assert result["speedups"]["astarnet"]["training"] > 0


def test_path_speed_command_prints_both_models_and_refuses_an_embedding_model():
    out = CliRunner().invoke(app, ["eval", "path-speed", "--dataset", "nations", "--batches", "1", "--batch-size", "4",
                                   "--queries", "2", "--repeats", "1", "--set", "model_kwargs.num_layers=1"])
    assert out.exit_code == 0, out.output
    assert "astarnet against nbfnet" in out.output and "messages a query and layer" in out.output
    with pytest.raises(ConfigError, match="not a path model"):
        measure_path_speed(dataset="nations", models=("rotate",), batches=1, queries=1, repeats=1)
