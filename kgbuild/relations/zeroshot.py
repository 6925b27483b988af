"""Default backend of the `relations` stage: candidate entity pairs of each document, scored
against the relation schema by a sentence encoder (all-MiniLM-L6-v2) with type constraints.

Scoring is split like a Hugging Face pipeline: `preprocess` (candidate pairs and their features,
kgbuild.relations.features), `forward` (encoder + head, kgbuild.relations.head) and
`postprocess` (threshold, one RelationMention per entity pair and relation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kgbuild.device import resolve_device
from kgbuild.errors import ConfigError
from kgbuild.model import Document, RelationMention
from kgbuild.registry import register
from kgbuild.relations.encoder import resolve_model_path, shared_encoder
from kgbuild.relations.features import DocPairs, doc_pairs, embed_blocks
from kgbuild.relations.head import (LinearHead, default_head_path, linear_scores, template_phrases,
                                    template_sims, zero_shot_scores)
from kgbuild.relations.schema import load_schema

ENCODERS = ("auto", "static", "contextual")


# Candidate pairs scored together at most (the document that passes it is kept in the batch):
# 64 Re-DocRED documents had 23,770 pairs in all, one 10,000-character text 24,502 alone. One
# 2 MB file in parts of 10,000 characters peaked at 4,262 MB in batches of 32 parts, 1,209 MB
# with this budget at 50,000.
MAX_BATCH_PAIRS = 25_000


@register("relations", "zeroshot")
class ZeroShotRelations:
    """Relation extraction by sentence-encoder similarity plus a small fitted head.

    threshold: keep a relation when its confidence is at least this (0.5 is the fitted operating point)
    device: auto, cpu or cuda; fp16 on cuda
    batch_size: documents scored together (their texts go to the encoder in one call)
    model: sentence-transformer folder or hub name; auto = packaged all-MiniLM-L6-v2
    encoder: static (distilled token vectors, fast on CPU), contextual (the transformer) or auto
             (contextual on a GPU when a head was fitted for it, else static)
    head: fitted head JSON; auto = the one shipped for the encoder (default model only); none = zero-shot
    schema: relation schema JSON; empty = the built-in DocRED schema
    max_sentence_distance: candidate pairs must have mentions at most this many sentences apart
    open_relations: a same-sentence pair that no schema relation fits keeps the verbal phrase
                    between its mentions as relation "open:<phrase>" (kgbuild.relations.phrases),
                    with confidence 1 - its best schema confidence; the linking stage merges them
    """

    def __init__(self, threshold: float = 0.5, device: str = "auto", batch_size: int = 64, model: str = "auto",
                 encoder: str = "auto", head: str = "auto", schema: str = "", max_sentence_distance: int = 1000,
                 open_relations: bool = False) -> None:
        if not 0.0 <= float(threshold) <= 1.0:
            raise ConfigError(f"relations.threshold must be between 0 and 1, got {threshold!r}")
        if encoder not in ENCODERS:
            raise ConfigError(f"unknown relations.encoder {encoder!r}", hint=f"use one of {', '.join(ENCODERS)}")
        self.threshold = float(threshold)
        self.batch_size = int(batch_size)
        self.max_sentence_distance = int(max_sentence_distance)
        self.open_relations = bool(open_relations)
        # recogniser labels read as spaCy's (the head was fitted on spaCy's); set by a backend
        # that runs this one on another model's mentions (kgbuild.relations.transformers_re)
        self.label_names: dict[str, str] = {}
        self.device = resolve_device(device)
        self.schema = load_schema(schema or None)
        self.model_path = resolve_model_path(model)
        default_model = model in ("auto", "", None)
        if encoder == "auto":
            gpu_head = default_head_path("contextual").is_file() or not default_model or head not in ("auto", "")
            encoder = "contextual" if self.device.type == "cuda" and gpu_head else "static"
        self.encoder_kind = encoder
        self.encoder = shared_encoder(encoder, model, self.device, batch_size=256)

        self.head: LinearHead | None = None
        self.head_path = "none"
        if head in ("auto", ""):
            path = default_head_path(encoder)
            if default_model and path.is_file():
                self.head, self.head_path = LinearHead.load(path), str(path)
        elif head != "none":
            self.head, self.head_path = LinearHead.load(head), head
            fitted_for = self.head.meta.get("encoder")
            if fitted_for and fitted_for != encoder:
                raise ConfigError(f"relation head {head} was fitted for the {fitted_for} encoder, not {encoder}",
                                  hint=f"set relations.encoder = \"{fitted_for}\" or refit with python -m kgbuild.relations.fit")

        ids = self.schema.ids
        self.templates = self.encoder.encode(template_phrases(self.schema))
        self._head_cols = np.array([ids.index(r) for r in self.head.relations if r in ids], dtype=np.int64) if self.head else None
        self._head_src = np.array([i for i, r in enumerate(self.head.relations) if r in ids], dtype=np.int64) if self.head else None
        self._allowed = self.schema.allowed_pairs()
        self._type_mask: dict[tuple[str, str], np.ndarray] = {
            pair: np.array([r.allows(*pair) for r in self.schema]) for pair in self._allowed}

    def info(self) -> dict[str, Any]:
        return {"model": self.model_path, "encoder": self.encoder_kind, "head": self.head_path,
                "schema": self.schema.path, "n_relations": len(self.schema), "device": str(self.device),
                "threshold": self.threshold}

    def labels(self) -> dict[str, str]:
        return self.schema.labels()

    @classmethod
    def labels_for(cls, schema: str = "", **_: Any) -> dict[str, str]:
        """The relation labels this config would give, without loading the encoder."""
        return load_schema(schema or None).labels()

    # -- preprocess / forward / postprocess ---------------------------------------------------
    def preprocess(self, doc: Document) -> DocPairs:
        return doc_pairs(doc, self._allowed, self.max_sentence_distance, self.label_names)

    def forward(self, batch: list[DocPairs]) -> np.ndarray:
        """Confidences [n_pairs over the batch, n_relations]; 0 where types forbid the relation."""
        n = sum(len(dp.pairs) for dp in batch)
        if n == 0:
            return np.zeros((0, len(self.schema)), dtype=np.float32)
        emb, index = embed_blocks(self.encoder, batch)
        dense = np.concatenate([dp.dense for dp in batch])
        sims = template_sims(emb, index, self.templates)
        logits = zero_shot_scores(sims, dense[:, 0])
        if self.head is not None:
            src, cols = self._head_src, self._head_cols  # head columns and their schema columns
            head_sims = np.zeros((2, n, len(self.head.relations)), dtype=np.float32)
            head_sims[:, :, src] = sims[:, :, cols]
            logits[:, cols] = linear_scores(self.head, dense, emb, index, head_sims)[:, src]
        probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        mask = np.stack([self._type_mask[(dp.entities[h].type, dp.entities[t].type)]
                         for dp in batch for h, t in dp.pairs])
        return (probs * mask).astype(np.float32)

    def postprocess(self, doc: Document, dp: DocPairs, probs: np.ndarray) -> None:
        ids = self.schema.ids
        rows, cols = np.nonzero(probs >= max(self.threshold, 1e-6))
        for p, r in zip(rows.tolist(), cols.tolist()):
            mh, mt, sentence = dp.evidence[p]
            doc.relations.append(RelationMention(head=mh, tail=mt, relation=ids[r], confidence=round(float(probs[p, r]), 4),
                                                 extractor=self.backend_name, sentence=sentence))
        if self.open_relations:
            from kgbuild.relations.phrases import open_phrase

            for p in np.nonzero(probs.max(axis=1, initial=0.0) < max(self.threshold, 1e-6))[0].tolist():
                mh, mt, sentence = dp.evidence[p]
                phrase = open_phrase(doc, doc.mentions[mh], doc.mentions[mt])
                if phrase:
                    doc.relations.append(RelationMention(head=mh, tail=mt, relation="open:" + phrase,
                                                         confidence=round(1.0 - float(probs[p].max(initial=0.0)), 4),
                                                         extractor=self.backend_name, sentence=sentence))

    def __call__(self, docs: list[Document]) -> list[Document]:
        # A batch ends at batch_size documents or MAX_BATCH_PAIRS candidate pairs: the pairs of a
        # document grow with the square of its entities, and a batch's features are held at once.
        chunk: list[tuple[Document, DocPairs]] = []
        n_pairs = 0
        for doc in docs:
            dp = self.preprocess(doc)
            chunk.append((doc, dp))
            n_pairs += len(dp.pairs)
            if len(chunk) >= self.batch_size or n_pairs >= MAX_BATCH_PAIRS:
                self._score(chunk)
                chunk, n_pairs = [], 0
        if chunk:
            self._score(chunk)
        return docs

    def _score(self, chunk: list[tuple[Document, DocPairs]]) -> None:
        probs = self.forward([dp for _, dp in chunk])
        start = 0
        for doc, dp in chunk:
            self.postprocess(doc, dp, probs[start : start + len(dp.pairs)])
            start += len(dp.pairs)
