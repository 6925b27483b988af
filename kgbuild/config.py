"""Pipeline config: a pipelines/*.toml file plus CLI overrides, checked and turned into typed
dataclasses. The dataclass defaults are the defaults of pipelines/default.toml (a test keeps
the two equal), so `Config()` is the default pipeline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgbuild.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
ENGINES = ("local", "ray")


@dataclass
class IngestConfig:
    extensions: list[str] = field(default_factory=lambda: [".txt", ".md", ".jsonl", ".csv", ".html", ".htm", ".pdf"])
    # only files whose relative path matches one of these globs (empty: all)
    include: list[str] = field(default_factory=list)
    # files whose relative path matches one of these globs are left out
    exclude: list[str] = field(default_factory=list)
    # .jsonl / .csv records: the field that holds the text and the one that holds the id
    text_field: str = "text"
    id_field: str = "id"
    # files larger than this are skipped and reported (MB)
    max_file_mb: float = 50.0
    # a longer text is cut into part documents ID#part-N at paragraph breaks (characters; 0: never)
    max_document_chars: int = 10_000


@dataclass
class StageConfig:
    backend: str
    options: dict[str, Any] = field(default_factory=dict)


def _ner() -> StageConfig:
    return StageConfig("spacy", {"model": "auto", "batch_size": 64})


def _relations() -> StageConfig:
    return StageConfig("zeroshot", {"threshold": 0.5, "model": "auto", "encoder": "auto", "head": "auto",
                                    "schema": "", "batch_size": 64, "max_sentence_distance": 1000,
                                    "open_relations": False})


def _linking() -> StageConfig:
    return StageConfig("rules", {"cross_document": True, "merge_first_names": False, "aliases": True,
                                 "demonyms": False, "pronouns": True, "pronoun_window": 2,
                                 "pronoun_strategy": "salient", "nominals": False, "nominal_window": 2,
                                 "fuzzy_merge": True, "merge_neighbours": 10,
                                 "merge_min_cosine": 0.6, "merge_min_fuzzy": 92.0, "merge_exact_below": 5000,
                                 "open_relations": "cluster", "relation_map_threshold": 0.8,
                                 "relation_cluster_threshold": 0.8, "kb": "", "kb_threshold": 0.8,
                                 "kb_fuzzy_cutoff": 85.0, "kb_dense_k": 5, "kb_context_weight": 0.2,
                                 "encoder": "auto", "model": "auto"})


@dataclass
class Config:
    # IRIs of entities are <base_iri>entity/<type>/<name>
    base_iri: str = "http://kgbuild.org/kg/"
    # documents per batch between stages
    batch_size: int = 32
    # auto: CUDA when available, else CPU
    device: str = "auto"
    # where ner and relations run: local (this machine, --workers) or ray (a Ray Data actor pool)
    engine: str = "local"
    ingest: IngestConfig = field(default_factory=IngestConfig)
    ner: StageConfig = field(default_factory=_ner)
    relations: StageConfig = field(default_factory=_relations)
    linking: StageConfig = field(default_factory=_linking)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Stable hash of everything that affects the output."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_TOP_KEYS = {"base_iri", "batch_size", "device", "engine"}
_STAGES = ("ner", "relations", "linking")


def _stage(name: str, table: Any, default: StageConfig) -> StageConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table", hint=f'write it as [{name}] with backend = "..."')
    table = dict(table)
    backend = table.pop("backend", default.backend)
    if not isinstance(backend, str):
        raise ConfigError(f"{name}.backend must be a string, got {backend!r}")
    options = dict(default.options) if backend == default.backend else {}
    options.update(table)
    return StageConfig(backend, options)


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from a parsed TOML table, naming the key at fault on error."""
    cfg = Config()
    unknown = set(data) - _TOP_KEYS - set(_STAGES) - {"ingest"}
    if unknown:
        valid = ", ".join(sorted(_TOP_KEYS | set(_STAGES) | {"ingest"}))
        raise ConfigError(f"unknown config key {sorted(unknown)[0]!r}", hint=f"valid keys: {valid}")
    for key in _TOP_KEYS & set(data):
        expected = type(getattr(cfg, key))
        if not isinstance(data[key], expected):
            raise ConfigError(f"{key} must be {expected.__name__}, got {data[key]!r}")
        setattr(cfg, key, data[key])
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if cfg.engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {cfg.engine!r}")
    if cfg.batch_size < 1:
        raise ConfigError(f"batch_size must be 1 or more, got {cfg.batch_size}")
    if "ingest" in data:
        fields = {f.name for f in dataclasses.fields(IngestConfig)}
        bad = set(data["ingest"]) - fields
        if bad:
            raise ConfigError(f"unknown key ingest.{sorted(bad)[0]}", hint=f"valid: {', '.join(sorted(fields))}")
        cfg.ingest = IngestConfig(**{**dataclasses.asdict(cfg.ingest), **data["ingest"]})
    for name in _STAGES:
        if name in data:
            setattr(cfg, name, _stage(name, data[name], getattr(cfg, name)))
    return cfg


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values in TOML syntax; bare words are strings)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE", hint="e.g. --set relations.threshold=0.6")
        key, _, value = item.partition("=")
        *parents, leaf = key.strip().split(".")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"cannot set {key}: {part} is not a table")
        table[leaf] = _parse_value(value.strip())
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, **top: Any) -> Config:
    """Read a pipeline TOML (None: the built-in defaults), apply overrides and top-level keys."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found", hint="pass -p pipelines/default.toml or another file")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file {p} is not valid TOML: {err}", hint="fix the line it names") from None
    apply_overrides(data, overrides or [])
    data.update({k: v for k, v in top.items() if v is not None})
    return from_dict(data)
