"""Shared fixtures: the sample corpus is run once per test session with the real default models."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "kgbuild" / "resources" / "sample_corpus"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_corpus() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def pipeline():
    """The default pipeline with its models loaded once."""
    from kgbuild.runner import Pipeline

    return Pipeline()


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, pipeline):
    """RunResult of the default pipeline over the shipped sample corpus."""
    from kgbuild.runner import run

    out = tmp_path_factory.mktemp("sample_out")
    return run(SAMPLE, out, pipeline=pipeline)
