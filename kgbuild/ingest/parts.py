"""Huge texts become part documents: a text longer than `ingest.max_document_chars` is cut into
parts at paragraph (else sentence, else whitespace) boundaries, so that no later stage ever holds
more than one part. The relations stage pairs every entity of a document with every other, so one
100 MB document would need memory that grows with the square of its length; linking merges
entities across parts as it does across documents.

A part's id is the text's id plus "#part-N" (N from 1), and its meta says where it came from:
`part_of` (the whole text's id), `part` (N) and `offset` (where the part starts in the whole
text), so an evidence offset in a part maps back to the file. The whitespace at each cut is the
only text a part leaves out."""

from __future__ import annotations

import re
from collections.abc import Iterator

from kgbuild.model import Document

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
# the whitespace after a sentence-final mark (and any closing quote or bracket)
_SENTENCE = re.compile(r"(?<=[.!?])[\"'”’)\]]*(\s+)")
_SPACE = re.compile(r"\s+")
# how far past a window's end a gap that starts inside it is looked for
_LOOKAHEAD = 64


def _last_gap(pattern: re.Pattern[str], text: str, start: int, stop: int, group: int = 0) -> tuple[int, int] | None:
    """(start, end) of the last gap `pattern` finds after `start` that begins by `stop` (it may
    run on past `stop`: the gap is left out of both parts)."""
    last = None
    for m in pattern.finditer(text, start, stop + _LOOKAHEAD):
        if m.start(group) > stop:
            break
        if m.start(group) > start:
            last = m.span(group)
    return last


def cut_points(text: str, limit: int) -> list[tuple[int, int]]:
    """(start, end) of each part of `text`, none longer than `limit` characters.

    A cut goes at the last paragraph break of the window if one lies in its second half, else
    at the last sentence end there, else at any paragraph break, sentence end or whitespace,
    else (one word longer than the limit) right at the limit."""
    spans: list[tuple[int, int]] = []
    start, n = 0, len(text)
    while n - start > limit:
        stop = start + limit
        gap = None
        for half in (True, False):
            lo = start + limit // 2 if half else start
            for pattern, group in ((_PARAGRAPH, 0), (_SENTENCE, 1)):
                found = _last_gap(pattern, text, lo, stop, group)
                if found is not None and found[0] > start:
                    gap = found
                    break
            if gap is not None:
                break
        if gap is None:
            gap = _last_gap(_SPACE, text, start, stop) or (stop, stop)
        spans.append((start, gap[0]))
        start = gap[1]
    if start < n:
        spans.append((start, n))
    return spans


def split_document(doc: Document, limit: int) -> Iterator[Document]:
    """`doc` itself when its text fits in `limit` characters (0: no limit), else its parts."""
    if limit <= 0 or len(doc.text) <= limit:
        yield doc
        return
    n = 0
    for start, end in cut_points(doc.text, limit):
        piece = doc.text[start:end]
        if not piece.strip():
            continue
        n += 1
        meta = {**doc.meta, "part_of": doc.id, "part": n, "offset": start}
        yield Document(f"{doc.id}#part-{n}", piece, doc.source, meta)
