"""Fixtures of the graph-stage tests; the sample data lives in graph_samples.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from graph_samples import BASE, RELATION_LABELS, make_entities, make_facts

from kgbuild.graph import write_graph_data


def _write(folder: Path) -> Path:
    write_graph_data(folder, make_entities(), make_facts(), BASE, RELATION_LABELS)
    return folder


@pytest.fixture(scope="session")
def out(tmp_path_factory) -> Path:
    """An output folder whose store holds the hand-made graph. Shared: only read it."""
    return _write(tmp_path_factory.mktemp("graph") / "out")


@pytest.fixture
def fresh_out(tmp_path: Path) -> Path:
    """The same graph in a folder of its own, for tests that change the store."""
    return _write(tmp_path / "out")
