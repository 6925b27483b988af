"""Open relation phrases across the corpus: synonymous phrases become one relation.

The relations stage keeps, for an entity pair that no schema relation fits, the verbal phrase
between them as the relation "open:<phrase>" (kgbuild.relations.phrases, when
`relations.open_relations` is on). Here each phrase is reduced to a key (lower case, auxiliaries,
articles and adverbs dropped: "was born in" and "born in" share one) and embedded with the
MiniLM encoder. A phrase maps onto the schema relation whose label or template phrase is
closest, when the cosine is at least `map_threshold` and the relation allows the two entity
types; otherwise it joins the open cluster whose first phrase is closest, at least
`cluster_threshold`, or starts a cluster of its own (one IRI, kg:relation/open/<phrase>). Every
phrase stays in the graph as a label of the relation it went to, so the merge can be read back."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from kgbuild.model import Document
from kgbuild.relations.schema import Schema, load_schema

OPEN = "open:"  # relation id prefix of an unmapped phrase, as the relations stage writes it
MODES = ("cluster", "map", "drop")
_FILLER = {"is", "was", "were", "are", "be", "been", "being", "am", "a", "an", "the", "also", "then", "later",
           "has", "have", "had", "not", "never", "first", "once", "still"}
_WORD = re.compile(r"[\w'-]+")


def phrase_key(phrase: str) -> str:
    """The phrase without case, auxiliaries, articles and a few adverbs: "was born in" -> "born in"."""
    words = _WORD.findall(phrase.lower())
    kept = [w for w in words if w not in _FILLER]
    return " ".join(kept or words)


class RelationPhrases:
    """Online clustering of open relation phrases; call `rewrite(doc)` on each document."""

    def __init__(self, encode: Any, mode: str = "cluster", map_threshold: float = 0.8,
                 cluster_threshold: float = 0.8, schema: Schema | None = None) -> None:
        self.encode = encode  # list[str] -> L2-normalised rows
        self.mode = mode
        self.map_threshold = map_threshold
        self.cluster_threshold = cluster_threshold
        self.schema = schema or load_schema(None)
        texts, owners = [], []
        for k, rel in enumerate(self.schema):
            forms = [rel.label, *(t.replace("{head}", "").replace("{tail}", "").strip(" .") for t in rel.templates)]
            for text in dict.fromkeys(phrase_key(f) for f in forms if f):
                texts.append(text)
                owners.append(k)
        self._schema_vectors = encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        self._schema_owner = np.asarray(owners, dtype=np.int64)
        # (key, head type, tail type) -> (relation id, cosine of a schema mapping or None)
        self._by_key: dict[tuple[str, str, str], tuple[str | None, float | None]] = {}
        self._leaders: list[str] = []  # open relation ids, one per cluster ...
        self._leader_vectors: list[np.ndarray] = []  # ... and the vector of its first phrase
        self.phrases: dict[str, Counter] = {}  # relation id -> surface phrases that went to it
        self.why: dict[str, list[str]] = {}  # relation id -> how its phrases got there

    def assign(self, phrase: str, head_type: str, tail_type: str) -> tuple[str | None, float | None]:
        """(relation id, None when dropped; the cosine of the schema mapping, None when not mapped)."""
        if self.mode == "drop":
            return None, None
        key = phrase_key(phrase)
        slot = (key, head_type, tail_type)
        if slot not in self._by_key:
            self._by_key[slot] = self._place(key, phrase, head_type, tail_type)
        rel, cosine = self._by_key[slot]
        if rel is not None:
            self.phrases.setdefault(rel, Counter())[phrase] += 1
        return rel, cosine

    def _place(self, key: str, phrase: str, head_type: str, tail_type: str) -> tuple[str | None, float | None]:
        vec = self.encode([key])[0]
        if len(self._schema_vectors):
            sims = self._schema_vectors @ vec
            allowed = np.array([self.schema.relations[k].allows(head_type, tail_type) for k in self._schema_owner])
            sims = np.where(allowed, sims, -1.0)
            best = int(np.argmax(sims))
            if sims[best] >= self.map_threshold:
                rel = self.schema.relations[int(self._schema_owner[best])]
                self.why.setdefault(rel.id, []).append(f"phrase {phrase!r} mapped to {rel.label!r} (cosine {sims[best]:.2f})")
                return rel.id, float(sims[best])
        if self.mode == "map":
            return None, None
        if self._leader_vectors:
            sims = np.stack(self._leader_vectors) @ vec
            best = int(np.argmax(sims))
            if sims[best] >= self.cluster_threshold:
                rel = self._leaders[best]
                self.why[rel].append(f"phrase {phrase!r} joined (cosine {sims[best]:.2f})")
                return rel, None
        rel = "open/" + re.sub(r"[^\w]+", "-", key).strip("-")
        if rel in self.why:  # same key, other entity types: the cluster exists already
            return rel, None
        self._leaders.append(rel)
        self._leader_vectors.append(vec)
        self.why[rel] = [f"open relation started by phrase {phrase!r}"]
        return rel, None

    def rewrite(self, doc: Document) -> None:
        """Point each open relation mention of `doc` at its relation; drop the unplaced ones."""
        kept = []
        for r in doc.relations:
            if r.relation.startswith(OPEN):
                rel, cosine = self.assign(r.relation[len(OPEN):], doc.mentions[r.head].type, doc.mentions[r.tail].type)
                if rel is None:
                    continue
                r.relation = rel
                if cosine is not None:  # mapped: as sure as the phrase is close to the relation's
                    r.confidence = round(cosine, 4)
            kept.append(r)
        doc.relations[:] = kept

    def labels(self) -> dict[str, list[str]]:
        """Relation id -> its labels: the schema label or the most frequent phrase first, then
        every other phrase that went to it."""
        out = {}
        for rel, counts in self.phrases.items():
            phrases = [p for p, _ in counts.most_common()]
            if rel.startswith("open/"):
                out[rel] = phrases
            else:
                out[rel] = [self.schema.get(rel).label, *phrases]
        return out
