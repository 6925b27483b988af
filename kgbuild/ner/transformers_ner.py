"""Transformer backend of the `ner` stage: `ner = "transformers"` with `model` set to a folder
written by `kgbuild train` (the joint entity / relation model, kgbuild.neural.joint) or to a
Hugging Face token-classification checkpoint by name or path (kgbuild.neural.hub).

The models read sentences, so documents are first cut into sentences by spaCy's rule-based
sentencizer, within paragraphs. With a joint model the relations it finds in the same pass wait
for a `relations = "transformers"` stage naming the same model."""

from __future__ import annotations

from typing import Any

from kgbuild.device import resolve_device
from kgbuild.model import Document, Mention, Sentence
from kgbuild.neural.annotate import (annotate_joint, is_joint, joint_model, require_model, sentence_texts,
                                     sort_mentions, stash_relations)
from kgbuild.ner.spacy_ner import _chunks
from kgbuild.registry import register


def split_sentences(docs: list[Document]) -> None:
    """Give documents without sentences their sentences (rule-based, punctuation and paragraphs)."""
    import spacy

    nlp = _sentencizer()
    for doc in docs:
        if doc.sentences:
            continue
        for offset, piece in _chunks(doc.text):
            for sent in nlp(piece).sents:
                text = sent.text
                start = offset + sent.start_char + len(text) - len(text.lstrip())
                end = offset + sent.start_char + len(text.rstrip())
                if end > start:
                    doc.sentences.append(Sentence(start, end))
    del spacy


_NLP: list[Any] = []


def _sentencizer():
    if not _NLP:
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        _NLP.append(nlp)
    return _NLP[0]


@register("ner", "transformers")
class TransformersNER:
    """Entity recognition by a fine-tuned transformer.

    model: folder written by `kgbuild train ner|re`, or a token-classification model's hub name or path
    device: auto, cpu or cuda (bf16 / fp16 on cuda)
    precision: of a kgbuild model folder: auto (bf16 / fp16 on cuda, fp32 on the CPU), fp32, bf16
               (also on a CPU with bf16 dot products) or fp16 (cuda); hub models keep their own
    batch_size: sentences per forward pass
    threshold: least score of an entity (0: every entity the model predicts)
    """

    def __init__(self, model: str = "", device: str = "auto", batch_size: int = 32, threshold: float = 0.0,
                 precision: str = "auto") -> None:
        self.model = require_model("ner", model)
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.threshold = float(threshold)
        self.joint = joint_model(self.model, str(self.device), precision) if is_joint(self.model) else None
        if self.joint is None:
            from kgbuild.neural.hub import load_token_classifier

            self.hub = load_token_classifier(self.model, str(self.device), batch_size=self.batch_size)

    def info(self) -> dict[str, Any]:
        kind = "kgbuild joint model" if self.joint is not None else "hub token classifier"
        return {"model": self.model, "kind": kind, "device": str(self.device),
                **({"precision": self.joint.precision} if self.joint is not None else {})}

    def __call__(self, docs: list[Document]) -> list[Document]:
        split_sentences(docs)
        if self.joint is not None:
            found = annotate_joint(self.joint, docs, self.batch_size, relations=bool(self.joint.labels.relations),
                                   threshold=0.0, entity_threshold=self.threshold)
            for doc, rels in zip(docs, found):
                stash_relations(self.model, doc, rels)
            return docs
        texts, where = sentence_texts(docs)
        for (d, s), spans in zip(where, self.hub.predict(texts)):
            doc, offset = docs[d], docs[d].sentences[s].start
            for a, b, type_, score in spans:
                if score >= self.threshold:
                    doc.mentions.append(Mention(start=offset + a, end=offset + b, text=doc.text[offset + a: offset + b],
                                                type=type_, label=type_, sentence=s, score=round(float(score), 4)))
        for doc in docs:
            sort_mentions(doc)
        return docs
