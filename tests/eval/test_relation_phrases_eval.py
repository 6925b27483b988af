"""The open relation phrase benchmark on a few Re-DocRED documents."""

from pathlib import Path

import pytest

from kgbuild.eval.linking import evaluate_relation_phrases

REDOCRED = Path(__file__).resolve().parents[3] / "shared" / "data" / "redocred" / "dev_revised.json"


@pytest.mark.skipif(not REDOCRED.is_file(), reason=f"Re-DocRED dev not at {REDOCRED}")
def test_relation_phrase_benchmark_maps_fewer_phrases_at_higher_thresholds():
    result = evaluate_relation_phrases(REDOCRED, limit=8, thresholds=(0.5, 0.9))
    assert result["phrases"] > 0
    low, high = result["mapping"]
    assert low["mapped"] >= high["mapped"]
    assert result["clustering"][0]["clusters"] <= result["clustering"][1]["clusters"]
