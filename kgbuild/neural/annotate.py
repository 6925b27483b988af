"""Between Documents and the transformer models: which model a config names (a `kgbuild train`
folder, else a hub checkpoint), one loaded copy per process, and the bookkeeping that turns
predicted character spans into Mentions and RelationMentions of a document.

When `ner = "transformers"` and `relations = "transformers"` name the same joint model, the NER
stage predicts entities and relations in one pass and leaves the relations here for the
relations stage to take, so the model runs once per sentence."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from kgbuild.errors import ConfigError
from kgbuild.model import Document, Mention, RelationMention

# (model folder, document id, text hash) -> [(head mention, tail mention, relation, score, sentence)]
_PENDING: OrderedDict[tuple[str, str, int], list[tuple[int, int, str, float, int]]] = OrderedDict()
_PENDING_MAX = 100_000  # documents; a relations stage that never takes them must not grow memory


def require_model(stage: str, model: str) -> str:
    if not model:
        raise ConfigError(f"{stage}.model is empty",
                          hint="set it to a folder written by `kgbuild train` or to a hub model name")
    return str(model)


def joint_model(path: str, device: str, precision: str = "auto"):
    """The joint model in `path`, loaded once per process, device and precision (both stages share
    it) and again when the folder's files change (a model trained again into it)."""
    from pathlib import Path

    from kgbuild.cache import folder_digest

    return _load_joint(path, device, folder_digest(Path(path)), precision)


@lru_cache(maxsize=4)
def _load_joint(path: str, device: str, digest: str, precision: str):
    from kgbuild.neural.joint import JointExtractor

    return JointExtractor.load(path, device, precision)


def is_joint(model: str) -> bool:
    from kgbuild.neural.joint import is_model_dir

    return is_model_dir(model)


def stash_relations(model: str, doc: Document, relations: list[tuple[int, int, str, float, int]]) -> None:
    _PENDING[(model, doc.id, hash(doc.text))] = relations
    while len(_PENDING) > _PENDING_MAX:
        _PENDING.popitem(last=False)


def take_relations(model: str, doc: Document) -> list[tuple[int, int, str, float, int]] | None:
    return _PENDING.pop((model, doc.id, hash(doc.text)), None)


def sentence_of(doc: Document, start: int) -> int:
    starts = [s.start for s in doc.sentences]
    return max(bisect.bisect_right(starts, start) - 1, 0)


def sentence_texts(docs: list[Document]) -> tuple[list[str], list[tuple[int, int]]]:
    """Every sentence of the documents, and (document, sentence) of each."""
    texts, where = [], []
    for d, doc in enumerate(docs):
        for s in range(len(doc.sentences)):
            texts.append(doc.sentence_text(s))
            where.append((d, s))
    return texts, where


def mention_for(doc: Document, start: int, end: int, label: str, type_: str, score: float,
                sentence: int) -> int:
    """Index of the mention at [start, end): the one already there (same span, else the one
    overlapping it most), or a new one appended to the document."""
    best, best_overlap = -1, 0
    for i, m in enumerate(doc.mentions):
        if m.start == start and m.end == end:
            return i
        overlap = min(m.end, end) - max(m.start, start)
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    if best >= 0:
        return best
    doc.mentions.append(Mention(start=start, end=end, text=doc.text[start:end], type=type_, label=label,
                                sentence=sentence, score=round(float(score), 4)))
    return len(doc.mentions) - 1


def sort_mentions(doc: Document) -> list[int]:
    """Put mentions in text order (later stages expect it); returns old index -> new index and
    renumbers the document's relation mentions."""
    order = sorted(range(len(doc.mentions)), key=lambda i: (doc.mentions[i].start, doc.mentions[i].end))
    new = [0] * len(order)
    for n, old in enumerate(order):
        new[old] = n
    doc.mentions = [doc.mentions[i] for i in order]
    for r in doc.relations:
        r.head, r.tail = new[r.head], new[r.tail]
    return new


def add_relations(doc: Document, found: list[tuple[int, int, str, float, int]], extractor: str,
                  threshold: float) -> None:
    seen = {(r.head, r.tail, r.relation) for r in doc.relations}
    for h, t, rel, score, sentence in found:
        if h != t and score >= threshold and (h, t, rel) not in seen:
            seen.add((h, t, rel))
            doc.relations.append(RelationMention(head=h, tail=t, relation=rel, confidence=round(float(score), 4),
                                                 extractor=extractor, sentence=sentence))


def annotate_joint(model: Any, docs: list[Document], batch_size: int, relations: bool, threshold: float,
                   entity_threshold: float = 0.0) -> list[list[tuple[int, int, str, float, int]]]:
    """Run the joint model over every sentence of the documents; add its entities as mentions
    (reusing a mention already at that span) and return each document's relations over them."""
    from kgbuild.neural.joint import kgbuild_type

    texts, where = sentence_texts(docs)
    preds = model.predict(texts, batch_size=batch_size, threshold=threshold, relations=relations)
    found: list[list[tuple[int, int, str, float, int]]] = [[] for _ in docs]
    for (d, s), pred in zip(where, preds):
        doc = docs[d]
        offset = doc.sentences[s].start
        index = [mention_for(doc, offset + a, offset + b, label, kgbuild_type(label), score, s)
                 if score >= entity_threshold else -1 for a, b, label, score in pred.entities]
        found[d] += [(index[h], index[t], rel, score, s) for h, t, rel, score in pred.relations
                     if index[h] >= 0 and index[t] >= 0]
    for d, doc in enumerate(docs):
        new = sort_mentions(doc)
        found[d] = [(new[h], new[t], rel, score, s) for h, t, rel, score, s in found[d]]
    return found
