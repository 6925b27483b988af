"""Transformer backend of the `relations` stage: `relations = "transformers"` with `model` set to a
folder written by `kgbuild train re` (the joint model, kgbuild.neural.joint) or to a REBEL-style
sequence-to-sequence extractor by hub name or path (kgbuild.neural.hub).

Whatever NER stage ran before, relations come from the joint model's own entities: each entity
it predicts takes the document's mention at that span (or the mention overlapping it most), and
becomes a new mention where the NER stage found none. Behind `ner = "transformers"` with the
same model, the relations that model found in the NER pass are used as they are.

A seq2seq model gives (head, relation, tail) strings per sentence; each string becomes the
sentence's mention with that text (case-insensitive), else a new MISC mention where it occurs in
the sentence; triples whose strings are not in the sentence are dropped."""

from __future__ import annotations

import re
from typing import Any

from kgbuild.device import resolve_device
from kgbuild.errors import ConfigError
from kgbuild.model import Document
from kgbuild.neural.annotate import (add_relations, annotate_joint, is_joint, joint_model, mention_for,
                                     require_model, sentence_texts, sort_mentions, take_relations)
from kgbuild.registry import register

CROSS_SENTENCE = ("none", "zeroshot")
# The zeroshot head was fitted on spaCy's labels; a trained model's labels go to it as their
# commonest spaCy namesake (Re-DocRED's LOC is mostly countries and cities: spaCy's GPE).
_SPACY_LABEL = {"PER": "PERSON", "PEOP": "PERSON", "LOC": "GPE", "TIME": "DATE", "NUM": "CARDINAL"}


def relation_id(name: str) -> str:
    """Id of a relation the model names in words ("place of birth" -> "place_of_birth")."""
    return re.sub(r"\s+", "_", name.strip())


@register("relations", "transformers")
class TransformersRelations:
    """Relation extraction by a fine-tuned transformer.

    model: folder written by `kgbuild train re`, or a REBEL-style seq2seq model's hub name or path
    device: auto, cpu or cuda (bf16 / fp16 on cuda)
    precision: of a kgbuild model folder: auto (bf16 / fp16 on cuda, fp32 on the CPU), fp32, bf16
               (also on a CPU with bf16 dot products) or fp16 (cuda); hub models keep their own
    batch_size: sentences per forward pass
    threshold: least confidence of a relation (joint model; a seq2seq model gives no score)
    cross_sentence: "zeroshot" adds the default backend's relations between entities that never
                    share a sentence (a sentence-level model cannot see them); "none" keeps the
                    model's relations only
    cross_sentence_threshold: least confidence of those added relations
    """

    def __init__(self, model: str = "", device: str = "auto", batch_size: int = 32, threshold: float = 0.5,
                 cross_sentence: str = "none", cross_sentence_threshold: float = 0.6, precision: str = "auto") -> None:
        if not 0.0 <= float(threshold) <= 1.0:
            raise ConfigError(f"relations.threshold must be between 0 and 1, got {threshold!r}")
        if cross_sentence not in CROSS_SENTENCE:
            raise ConfigError(f"unknown relations.cross_sentence {cross_sentence!r}",
                              hint=f"use one of {', '.join(CROSS_SENTENCE)}")
        self.model = require_model("relations", model)
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.threshold = float(threshold)
        self.joint = joint_model(self.model, str(self.device), precision) if is_joint(self.model) else None
        self._names: dict[str, str] = {}
        self.cross_sentence = None
        if cross_sentence == "zeroshot":
            from kgbuild.relations.zeroshot import ZeroShotRelations

            self.cross_sentence = ZeroShotRelations(threshold=cross_sentence_threshold, device=device)
            if self.joint is not None:  # the model's own labels, read as their spaCy namesakes
                self.cross_sentence.label_names = {label: _SPACY_LABEL[label.upper()] for label in self.joint.labels.entities
                                                   if label.upper() in _SPACY_LABEL}
        if self.joint is None:
            from kgbuild.neural.hub import load_seq2seq_extractor

            self.hub = load_seq2seq_extractor(self.model, str(self.device), batch_size=min(self.batch_size, 8))
        elif not self.joint.labels.relations:
            raise ConfigError(f"{self.model} was trained for entities only (kgbuild train ner)",
                              hint="train it with `kgbuild train re` to extract relations")

    def info(self) -> dict[str, Any]:
        kind = "kgbuild joint model" if self.joint is not None else "hub seq2seq extractor"
        out = {"model": self.model, "kind": kind, "device": str(self.device), "threshold": self.threshold}
        if self.joint is not None:
            out["precision"] = self.joint.precision
        if self.cross_sentence is not None:
            out["cross_sentence"] = {"backend": "zeroshot", **self.cross_sentence.info()}
        return out

    def labels(self) -> dict[str, str]:
        """Readable name of each relation id, for rdfs:label in the graph."""
        names = self.cross_sentence.labels() if self.cross_sentence is not None else {}
        names.update(self.joint.labels.relation_names if self.joint is not None else self._names)
        return names

    def __call__(self, docs: list[Document]) -> list[Document]:
        self._sentence_level(docs)
        if self.cross_sentence is not None:
            self._add_cross_sentence(docs)
        return docs

    def _add_cross_sentence(self, docs: list[Document]) -> None:
        """The zeroshot backend's relations whose closest pair of mentions is in two sentences."""
        own = [doc.relations for doc in docs]
        for doc in docs:
            doc.relations = []
        self.cross_sentence(docs)
        for doc, kept in zip(docs, own):
            found = [r for r in doc.relations if doc.mentions[r.head].sentence != doc.mentions[r.tail].sentence]
            doc.relations = kept + found

    def _sentence_level(self, docs: list[Document]) -> None:
        if self.joint is None:
            self._seq2seq(docs)
            return
        todo = []
        for doc in docs:
            found = take_relations(self.model, doc)
            if found is None:
                todo.append(doc)
            else:
                add_relations(doc, found, self.backend_name, self.threshold)
        if todo:
            for doc, found in zip(todo, annotate_joint(self.joint, todo, self.batch_size, True, self.threshold)):
                add_relations(doc, found, self.backend_name, self.threshold)

    def _seq2seq(self, docs: list[Document]) -> None:
        texts, where = sentence_texts(docs)
        found: list[list] = [[] for _ in docs]
        for (d, s), triples in zip(where, self.hub.predict(texts)):
            doc = docs[d]
            for head, name, tail in triples:
                ends = [self._mention(doc, s, text) for text in (head, tail)]
                if None not in ends:
                    rel = relation_id(name)
                    self._names.setdefault(rel, name.strip())
                    found[d].append((ends[0], ends[1], rel, 1.0, s))
        for doc, rels in zip(docs, found):
            new = sort_mentions(doc)
            add_relations(doc, [(new[h], new[t], r, sc, s) for h, t, r, sc, s in rels], self.backend_name, 0.0)

    @staticmethod
    def _mention(doc: Document, sentence: int, text: str) -> int | None:
        text = text.strip()
        if not text:
            return None
        for i, m in enumerate(doc.mentions):
            if m.sentence == sentence and m.text.lower() == text.lower():
                return i
        sent = doc.sentences[sentence]
        at = doc.text.lower().find(text.lower(), sent.start, sent.end)
        if at < 0:
            return None
        return mention_for(doc, at, at + len(text), "ENT", "MISC", 1.0, sentence)
