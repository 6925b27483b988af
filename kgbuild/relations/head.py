"""Scoring of candidate pairs: a linear head fitted on encoder features (kgbuild.relations.fit),
or, without one, zero-shot similarity between the words linking a pair and each relation's
verbalisation. Both work from the same DocPairs / embed_blocks features."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgbuild.errors import ConfigError
from kgbuild.relations.features import DENSE_NAMES, TEXT_BLOCKS
from kgbuild.relations.schema import Schema

HEAD_DIR = Path(__file__).parent


def default_head_path(encoder: str) -> Path:
    return HEAD_DIR / f"head_{encoder}.json"


def template_phrases(schema: Schema) -> list[str]:
    """The words of each relation's templates without the slots: what links head and tail."""
    out = []
    for r in schema:
        words = [" ".join(t.replace("{head}", " ").replace("{tail}", " ").split()) for t in r.templates]
        out.append(" ; ".join(w for w in words if w) or r.label)
    return out


def _pack(a: np.ndarray) -> dict:
    a16 = np.ascontiguousarray(a, dtype=np.float16)
    return {"shape": list(a16.shape), "float16_base64": base64.b64encode(a16.tobytes()).decode()}


def _unpack(d: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(d["float16_base64"]), dtype=np.float16)
    return raw.reshape(d["shape"]).astype(np.float32)


@dataclass
class LinearHead:
    """score[pair, r] = bias[r] + dense @ W_dense + sum over blocks of emb_block @ W_block
    + sim_scale[r] * cos(between or path words, template r). Logits are shifted at fit time so that
    sigmoid(score) >= 0.5 is the operating point chosen on the fit documents."""

    relations: list[str]  # relation ids, the columns
    bias: np.ndarray  # [R]
    dense: np.ndarray  # [len(DENSE_NAMES), R]
    blocks: dict[str, np.ndarray]  # block name -> [dim, R]
    sim_scale: np.ndarray  # [2, R]: weight of the between / path similarity to the relation's template
    meta: dict  # how and on what it was fitted

    def save(self, path: str | Path) -> None:
        data = {"format": "kgbuild-relation-head/1", "meta": self.meta, "relations": self.relations,
                "dense_names": DENSE_NAMES, "bias": _pack(self.bias), "dense": _pack(self.dense),
                "sim_scale": _pack(self.sim_scale), "blocks": {b: _pack(w) for b, w in self.blocks.items()}}
        Path(path).write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "LinearHead":
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read relation head {p}: {err}", hint="set relations.head to a file written by kgbuild.relations.fit, or to none") from None
        if data.get("dense_names") != DENSE_NAMES:
            raise ConfigError(f"relation head {p} was fitted on other features", hint="refit it with python -m kgbuild.relations.fit")
        return cls(relations=data["relations"], bias=_unpack(data["bias"]), dense=_unpack(data["dense"]),
                   blocks={b: _unpack(w) for b, w in data["blocks"].items()}, sim_scale=_unpack(data["sim_scale"]),
                   meta=data.get("meta", {}))


def template_sims(emb: dict[str, np.ndarray], index: dict[str, np.ndarray], templates: np.ndarray) -> np.ndarray:
    """[2, n_pairs, R]: cosine of the between words and of the path words with each template."""
    out = []
    for b in ("between", "path"):
        sims = emb[b] @ templates.T  # per unique text
        out.append(sims[index[b]])
    return np.stack(out)


def linear_scores(head: LinearHead, dense: np.ndarray, emb: dict[str, np.ndarray], index: dict[str, np.ndarray],
                  sims: np.ndarray) -> np.ndarray:
    """Logits [n_pairs, R] of the head; each block is projected once per unique text."""
    logits = dense @ head.dense + head.bias
    for b in TEXT_BLOCKS:
        logits += (emb[b] @ head.blocks[b])[index[b]]
    logits += sims[0] * head.sim_scale[0] + sims[1] * head.sim_scale[1]
    return logits


def zero_shot_scores(sims: np.ndarray, same_sentence: np.ndarray, scale: float = 10.0, centre: float = 0.6) -> np.ndarray:
    """Logits from template similarity alone: only pairs in one sentence have linking words."""
    best = np.maximum(sims[0], sims[1])
    logits = scale * (best - centre)
    logits[~same_sentence.astype(bool)] = -20.0
    return logits
