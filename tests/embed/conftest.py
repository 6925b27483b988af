"""Fixtures of the embedding tests: the hand-made graph of embed_samples.py, embedded once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from embed_samples import write_sample_graph


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    """(OUT, EmbeddingResult): the sample graph with embeddings trained on the CPU. Only read it."""
    from kgbuild.embed import train_embeddings

    out = write_sample_graph(tmp_path_factory.mktemp("embed") / "out")
    return out, train_embeddings(out, device="cpu", seed=0)


@pytest.fixture
def embedded_copy(embedded, tmp_path: Path) -> Path:
    """A private copy of the embedded output folder, for tests that write to the store."""
    out, _ = embedded
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return copy
