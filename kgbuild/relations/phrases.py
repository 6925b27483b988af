"""Open relation phrases: the verbal phrase that links two mentions of one sentence in the
dependency parse ("X was born in Y" -> "was born in", "X is a native of Y" -> "is a native of"),
for entity pairs that no schema relation fits. The linking stage clusters synonymous phrases
and maps a cluster onto a schema relation when it is close enough (kgbuild.linking.relphrases)."""

from __future__ import annotations

from typing import Any

from kgbuild.model import Document, Mention

# the head must be the subject of the verb the path goes through
_SUBJECT = {"nsubj", "nsubjpass", "csubj"}
# the tail hangs off the verb as its object, predicate, agent or through prepositions
_OBJECT = {"dobj", "obj", "attr", "prep", "pobj", "agent", "dative", "oprd", "acomp", "pcomp", "xcomp", "npadvmod"}
MAX_WORDS = 6  # longer phrases are clauses, not relations


def _span(doc: Document, m: Mention) -> tuple[int, Any, Any] | None:
    for offset, sdoc in doc.parse or []:
        if offset <= m.start and m.end <= offset + len(sdoc.text):
            span = sdoc.char_span(m.start - offset, m.end - offset, alignment_mode="expand")
            return (offset, span.root, span) if span is not None and len(span) else None
    return None


def open_phrase(doc: Document, head: Mention, tail: Mention) -> str | None:
    """The words from the verb that the head is the subject of to the tail, in text order, when
    the tail depends on that verb through objects and prepositions only; else None."""
    a, b = _span(doc, head), _span(doc, tail)
    if a is None or b is None or a[0] != b[0] or head.sentence != tail.sentence:
        return None
    (_, ra, sa), (_, rb, sb) = a, b
    if ra.dep_ not in _SUBJECT:
        return None
    verb = ra.head
    if verb.pos_ not in ("VERB", "AUX") or verb.i >= sb.start:
        return None
    chain, t = [], rb
    while t.i != verb.i:
        if t.dep_ not in _OBJECT or t.head.i == t.i or len(chain) > 4:
            return None
        chain.append(t)
        t = t.head
    first = verb.i
    while first - 1 > sa.end - 1 and verb.doc[first - 1].head.i == verb.i and verb.doc[first - 1].dep_ in ("aux", "auxpass", "neg"):
        first -= 1
    tokens = [tok for tok in verb.doc[first : sb.start] if not tok.is_punct]
    while tokens and tokens[-1].pos_ == "DET":  # "won the Nobel Prize": the article is the tail's
        tokens.pop()
    if not tokens or len(tokens) > MAX_WORDS or any(t.pos_ in ("PROPN", "NUM") for t in tokens):
        return None  # a name or number inside: the phrase links through a third thing
    return " ".join(t.text for t in tokens)
