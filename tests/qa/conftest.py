"""Fixtures of the QA tests: the KB of qa_samples.py loaded with `kgbuild load`, and a path
scorer trained on a few questions about it."""

from __future__ import annotations

from pathlib import Path

import pytest
from qa_samples import write_kb, write_questions


@pytest.fixture(scope="session")
def people_kb(tmp_path_factory) -> Path:
    """OUT of the people KB: loaded, with a trained scorer in OUT/qa and small embeddings. Only read it."""
    from kgbuild.embed import train_embeddings
    from kgbuild.qa.load import load_triples
    from kgbuild.qa.train import train_qa

    root = tmp_path_factory.mktemp("qa")
    out = root / "out"
    load_triples(write_kb(root / "kb.tsv"), out)
    train_qa(out, write_questions(root / "questions.tsv"), hops=2, seed=0)
    train_embeddings(out, model="distmult", epochs=150, device="cpu", seed=0)
    return out

