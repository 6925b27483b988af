import tomllib
from pathlib import Path

import pytest

from kgbuild.config import Config, from_dict, load_config
from kgbuild.errors import ConfigError, UnknownBackendError
from kgbuild.registry import build

ROOT = Path(__file__).resolve().parents[2]


def test_default_toml_equals_builtin_defaults():
    data = tomllib.loads((ROOT / "pipelines/default.toml").read_text())
    assert from_dict(data).to_dict() == Config().to_dict()


def test_every_key_in_default_toml_is_commented():
    lines = (ROOT / "pipelines/default.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"key without comment: {line}"


def test_overrides_parse_toml_values():
    cfg = load_config(overrides=["relations.threshold=0.75", "batch_size=8", "ner.model=my_model"])
    assert cfg.relations.options["threshold"] == 0.75
    assert cfg.batch_size == 8
    assert cfg.ner.options["model"] == "my_model"


def test_unknown_backend_lists_valid_names():
    cfg = load_config(overrides=["ner.backend=nosuch"])
    with pytest.raises(UnknownBackendError, match="valid ner backends: .*spacy"):
        build("ner", cfg.ner.backend, cfg.ner.options)


def test_unknown_option_is_config_error_naming_the_options():
    with pytest.raises(ConfigError, match="has no option 'colour'.*batch_size"):
        build("ner", "spacy", {"colour": "red"})


def test_a_stage_device_is_a_config_error_not_silently_replaced():
    cfg = load_config(overrides=["relations.device=cuda"])
    with pytest.raises(ConfigError, match=r"\[relations\] sets 'device'.*top-level device"):
        build("relations", cfg.relations.backend, cfg.relations.options, device="cpu")


def test_malformed_toml_is_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("batch_size = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_unknown_top_level_key_is_config_error():
    with pytest.raises(ConfigError, match="unknown config key 'bach_size'"):
        from_dict({"bach_size": 3})


def test_bad_device_is_config_error():
    with pytest.raises(ConfigError, match="device must be one of"):
        from_dict({"device": "tpu"})
