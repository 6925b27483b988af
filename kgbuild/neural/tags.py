"""Entity tags from a spaCy pipeline as an input feature of the joint model (`--tag-features`).

The packaged encoders are uncased and small: what a word's capitalisation says is brought back by
the case vectors (joint.CASE_SHAPES), but not what a cased recogniser trained on OntoNotes knows
about names, dates, quantities and nationalities. With tag features each word gets the tag that
spaCy's recogniser gives it (outside, or the beginning or inside of one of its entity types), and
each subword's input embedding a learned vector for its word's tag, next to the shape vector and
zero at the start of training: the model learns how far to trust the tagger, type by type.

The tag is carried in the same per-subword id as the word shape (`shape + len(CASE_SHAPES) * tag`),
so windows, batches and device copies are unchanged."""

from __future__ import annotations

from typing import Any

# tag ids: 0 special and padding tokens, 1 outside every entity, then B- and I- of each label
OUTSIDE = 1


def tag_count(labels: list[str]) -> int:
    return 2 + 2 * len(labels)


class EntityTagger:
    """A spaCy pipeline's entity recogniser, giving each word of a text its tag id."""

    def __init__(self, model: str = "auto", labels: list[str] | None = None, batch_size: int = 64) -> None:
        from kgbuild.ner.spacy_ner import load_spacy, resolve_model_name

        self.model = resolve_model_name(model)
        nlp = load_spacy(self.model, exclude=())
        if "ner" not in nlp.pipe_names:
            from kgbuild.errors import ModelLoadError

            raise ModelLoadError(f"spaCy pipeline {self.model!r} has no entity recogniser",
                                 hint="name a pipeline with an ner component, e.g. en_core_web_sm")
        # the recogniser alone (it has its own token vectors in the English pipelines)
        self.nlp = load_spacy(self.model, exclude=tuple(p for p in nlp.pipe_names if p != "ner"))
        # the label list fixes the ids, so a saved model keeps the list it was trained with
        self.labels = list(labels) if labels is not None else sorted(self.nlp.get_pipe("ner").labels)
        self._ids = {label: 2 + 2 * k for k, label in enumerate(self.labels)}
        self.batch_size = batch_size

    @property
    def count(self) -> int:
        return tag_count(self.labels)

    def word_tags(self, texts: list[str], words: list[list[tuple[int, int]]]) -> list[list[int]]:
        """Each word's tag id: that of the spaCy token holding the word's first character, where a
        word that starts inside a token (after its first character) continues its entity (I-)."""
        import numpy as np

        out = []
        for doc, spans in zip(self.nlp.pipe(texts, batch_size=self.batch_size), words):
            if not len(doc):
                out.append([OUTSIDE] * len(spans))
                continue
            starts = np.fromiter((t.idx for t in doc), np.int64, len(doc))
            ids = np.fromiter((self._tag(t) for t in doc), np.int64, len(doc))
            word_start = np.fromiter((s for s, _ in spans), np.int64, len(spans))
            k = np.maximum(np.searchsorted(starts, word_start, side="right") - 1, 0)
            tags = ids[k]
            # B- ids are even and I- ids odd: a word that starts inside its token continues the entity
            tags = np.where((word_start > starts[k]) & (tags > OUTSIDE), tags | 1, tags)
            out.append(tags.tolist())
        return out

    def _tag(self, token: Any) -> int:
        begin = self._ids.get(token.ent_type_) if token.ent_iob_ in ("B", "I") else None
        return OUTSIDE if begin is None else begin + (token.ent_iob_ == "I")  # a label not trained with: outside

    def info(self) -> dict[str, Any]:
        return {"model": self.model, "labels": self.labels}
