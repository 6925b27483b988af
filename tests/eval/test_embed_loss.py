"""`kgbuild eval embed-loss`: each (loss, learning rate) trained from the same seed and ranked
on the same seeded validation sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgbuild.cli import app
from kgbuild.errors import KgbuildError
from kgbuild.eval.embed_loss import compare_losses, format_loss_comparison, parse_setting


def _files(folder: Path) -> tuple[Path, Path]:
    """Four clubs whose members all know each other; valid holds one 'knows' fact per member."""
    train, valid = [], []
    for c in range(4):
        members = [f"m{c}_{i}" for i in range(6)]
        for i, a in enumerate(members):
            train.append((a, "member_of", f"club{c}"))
            for j, b in enumerate(members):
                if a != b:
                    (valid if j == (i + 1) % 6 else train).append((a, "knows", b))
    for name, rows in (("train.txt", train), ("valid.txt", valid)):
        (folder / name).write_text("".join("\t".join(t) + "\n" for t in rows))
    return folder / "train.txt", folder / "valid.txt"


def test_each_setting_is_ranked_on_the_same_sample(tmp_path):
    train, valid = _files(tmp_path)
    settings = [("crossentropy", 0.02), ("bcewithlogits", 0.02)]
    result = compare_losses(train, valid, settings, model="distmult", epochs=3, sample=10, device="cpu")
    assert result["ranked"] == 10 and [(r["loss"], r["learning_rate"]) for r in result["runs"]] == settings
    for run in result["runs"]:
        assert len(run["losses"]) == 3 and 0 < run["metrics"]["mrr"] <= 1
    again = compare_losses(train, valid, settings[:1], model="distmult", epochs=3, sample=10, device="cpu")
    assert again["runs"][0]["metrics"]["mrr"] == pytest.approx(result["runs"][0]["metrics"]["mrr"])
    assert "crossentropy" in format_loss_comparison(result)


def test_default_settings_and_bad_setting(tmp_path):
    train, valid = _files(tmp_path)
    result = compare_losses(train, valid, model="distmult", epochs=1, sample=1000, device="cpu")
    assert result["ranked"] == 24  # the whole validation split: smaller than the sample
    assert [r["loss"] for r in result["runs"]] == ["crossentropy", "bcewithlogits"]
    assert parse_setting("crossentropy:0.003") == ("crossentropy", 0.003)
    with pytest.raises(KgbuildError, match="LOSS:LEARNING_RATE"):
        parse_setting("crossentropy")
    with pytest.raises(KgbuildError, match="unknown loss 'entropy'"):
        parse_setting("entropy:0.01")
    out = CliRunner().invoke(app, ["eval", "embed-loss", "--train", str(train), "--valid", str(valid),
                                   "--model", "distmult", "--epochs", "1", "--sample", "5", "--device", "cpu",
                                   "--setting", "crossentropy:0.01"])
    assert out.exit_code == 0, out.output
    assert "crossentropy" in out.output and "MRR" in out.output
