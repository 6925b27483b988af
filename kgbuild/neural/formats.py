"""Readers of annotated training data: every format becomes a list of `Example`s (a text, its
words, typed entity spans as character offsets, relations between entities), which is what the
joint model trains and is evaluated on.

Formats (`--format`):
- `conll04`: SpERT JSON (a list of {tokens, entities: [{type, start, end}], relations: [{type, head, tail}]},
  token offsets, end exclusive)
- `conll2003`: CoNLL columns, the NER tag last, IOB2 (IOB1 is read too), blank line between sentences,
  `-DOCSTART-` lines skipped
- `casrel`: CasRel / PRGC JSON (WebNLG, NYT): {text, triple_list: [[subject, predicate, object], ...]} with
  surface strings; each string is looked up in the text, its entity type is unknown (`ENT`)
- `redocred`: Re-DocRED / DocRED JSON; one example per sentence, holding the mentions in it and the
  relations whose head and tail have a mention in that sentence (a sentence-level model sees no more)
- `jsonl`: a user's own annotations, one JSON object a line:
  {"text": "...", "entities": [{"start": 0, "end": 11, "type": "PER"}, ...],
   "relations": [{"head": 0, "tail": 1, "type": "works_for"}, ...]}
  with character offsets (end exclusive) and entity indexes; "relations" may be left out.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgbuild.errors import KgbuildError

FORMATS = ("conll04", "conll2003", "casrel", "redocred", "jsonl")
GENERIC_TYPE = "ENT"  # entity type of CasRel surface strings, which carry none

# Word boundaries for raw text: candidate entity spans start and end on these. Initialisms
# ("U.S.") stay one word, as in the tokenised benchmarks.
WORD_RE = re.compile(r"(?:[A-Za-z]\.){2,}|\w+(?:[-'’]\w+)*|[^\w\s]")


@dataclass
class Example:
    """One annotated text."""

    text: str
    words: list[tuple[int, int]]  # character span of each word; entity spans start and end on these
    entities: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, type), character offsets
    relations: list[tuple[int, int, str]] = field(default_factory=list)  # (head, tail, type), entity indexes
    source: str = ""  # "file:line" it was read from


def split_words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in WORD_RE.finditer(text)]


def _from_tokens(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Text of tokens joined by spaces, and each token's character span in it."""
    spans, pos = [], 0
    for tok in tokens:
        spans.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), spans


class FormatError(KgbuildError):
    """A record of a training or evaluation file is malformed."""


def _bad(path: Path, line: int, fieldname: str, what: str) -> FormatError:
    return FormatError(f"{path}:{line}: field {fieldname!r} {what}", hint="fix that record or pass the right --format")


_JSON_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|[{}\[\]\n]')


def _json_records(path: Path) -> list[tuple[int, Any]]:
    """(line number, record) of a JSON list file; the line is where the record's text starts."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(f"{path}:{err.lineno}: not valid JSON ({err.msg})", hint="pass the right --format") from None
    if not isinstance(data, list):
        raise FormatError(f"{path}:1: expected a JSON list of records", hint="pass the right --format")
    # Line of each top-level record: JSON lists of records put one record per line, or
    # spread them out; either way the i-th top-level "{" is the i-th record.
    starts, depth, line = [], 0, 1
    for m in _JSON_TOKEN.finditer(text):
        ch = m.group()
        if ch == "\n":
            line += 1
        elif ch in "{[":
            if depth == 1 and ch == "{":
                starts.append(line)
            depth += 1
        elif ch in "}]":
            depth -= 1
        else:
            line += ch.count("\n")  # a string (JSON strings hold no raw newline, but be safe)
    starts += [line] * (len(data) - len(starts))
    return list(zip(starts, data))


def _get(rec: Any, key: str, kind: type | tuple[type, ...], path: Path, line: int, prefix: str = "") -> Any:
    if not isinstance(rec, dict) or key not in rec:
        raise _bad(path, line, prefix + key, "is missing")
    value = rec[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _bad(path, line, prefix + key, f"must be {names}, got {value!r:.60}")
    return value


def _relations(rec: dict, n_entities: int, path: Path, line: int, head_key: str = "head",
               tail_key: str = "tail", type_key: str = "type") -> list[tuple[int, int, str]]:
    out = []
    for i, r in enumerate(_get(rec, "relations", list, path, line) if "relations" in rec else []):
        p = f"relations[{i}]."
        h, t = _get(r, head_key, int, path, line, p), _get(r, tail_key, int, path, line, p)
        for key, idx in ((head_key, h), (tail_key, t)):
            if not 0 <= idx < n_entities:
                raise _bad(path, line, p + key, f"is entity index {idx}, but the record has {n_entities} entities")
        out.append((h, t, str(_get(r, type_key, str, path, line, p))))
    return out


def read_conll04(path: Path, records: slice = slice(None)) -> list[Example]:
    out = []
    for line, rec in _json_records(path)[records]:
        tokens = _get(rec, "tokens", list, path, line)
        text, words = _from_tokens([str(t) for t in tokens])
        entities = []
        for i, e in enumerate(_get(rec, "entities", list, path, line)):
            p = f"entities[{i}]."
            s, t = _get(e, "start", int, path, line, p), _get(e, "end", int, path, line, p)
            if not 0 <= s < t <= len(words):
                raise _bad(path, line, p + "end", f"gives tokens {s}:{t} of a {len(words)}-token sentence")
            entities.append((words[s][0], words[t - 1][1], _get(e, "type", str, path, line, p)))
        out.append(Example(text, words, entities, _relations(rec, len(entities), path, line), f"{path}:{line}"))
    return out


def read_conll2003(path: Path, records: slice = slice(None)) -> list[Example]:
    out: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    first = 0

    def flush() -> None:
        if not tokens:
            return
        text, words = _from_tokens(tokens)
        entities, start, kind = [], None, None
        for i, tag in enumerate(tags + ["O"]):
            prefix, _, label = tag.partition("-")
            begins = prefix == "B" or (prefix == "I" and label != kind)  # IOB1: I- after O or another type
            if start is not None and (prefix == "O" or begins):
                entities.append((words[start][0], words[i - 1][1], kind))
                start, kind = None, None
            if begins:
                start, kind = i, label
        out.append(Example(text, words, entities, [], f"{path}:{first}"))
        tokens.clear()
        tags.clear()

    with path.open(encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            cols = raw.split()
            if not cols:
                flush()
                continue
            if cols[0] == "-DOCSTART-":
                flush()
                continue
            if len(cols) < 2:
                raise _bad(path, n, "tag", "is missing (expected: word ... tag)")
            tag = cols[-1]
            if tag != "O" and not re.fullmatch(r"[BI]-\S+", tag):
                raise _bad(path, n, "tag", f"is {tag!r}, not O, B-TYPE or I-TYPE")
            if not tokens:
                first = n
            tokens.append(cols[0])
            tags.append(tag)
    flush()
    return out[records]


def _find(text: str, needle: str, taken: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """Span of a surface string in the text: the same string gets the same span; whole words first."""
    if needle in taken:
        return taken[needle]
    m = re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", text)
    start = m.start() if m else text.find(needle)
    if start < 0:
        return None
    taken[needle] = (start, start + len(needle))
    return taken[needle]


def read_casrel(path: Path, records: slice = slice(None)) -> list[Example]:
    out = []
    for line, rec in _json_records(path)[records]:
        text = _get(rec, "text", str, path, line)
        triples = _get(rec, "triple_list", list, path, line)
        spans: dict[str, tuple[int, int]] = {}
        index: dict[tuple[int, int], int] = {}
        entities, relations = [], []
        for i, tr in enumerate(triples):
            if not (isinstance(tr, list) and len(tr) == 3 and all(isinstance(x, str) for x in tr)):
                raise _bad(path, line, f"triple_list[{i}]", "must be [subject, predicate, object] strings")
            ends = [_find(text, tr[0], spans), _find(text, tr[2], spans)]
            if None in ends:
                continue  # a string that is not in the text cannot be a span
            ids = []
            for span in ends:
                if span not in index:
                    index[span] = len(entities)
                    entities.append((*span, GENERIC_TYPE))
                ids.append(index[span])
            relations.append((ids[0], ids[1], tr[1]))
        out.append(Example(text, _words_covering(text, entities), entities, relations, f"{path}:{line}"))
    return out


def _words_covering(text: str, entities: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """Words of a raw text, cut further where an entity starts or ends inside a word."""
    cuts = sorted({p for s, e, _ in entities for p in (s, e)})
    words = []
    for s, e in split_words(text):
        inner = [c for c in cuts if s < c < e]
        for a, b in zip([s, *inner], [*inner, e]):
            if text[a:b].strip():
                words.append((a, b))
    return words


def read_redocred(path: Path, records: slice = slice(None)) -> list[Example]:
    out = []
    for line, doc in _json_records(path)[records]:
        sents = _get(doc, "sents", list, path, line)
        vertices = _get(doc, "vertexSet", list, path, line)
        by_sentence: dict[int, list[tuple[int, int, int, str]]] = {}  # sent -> (entity, start tok, end tok, type)
        for v, vertex in enumerate(vertices):
            for k, m in enumerate(vertex):
                p = f"vertexSet[{v}][{k}]."
                sid, pos = _get(m, "sent_id", int, path, line, p), _get(m, "pos", list, path, line, p)
                if not 0 <= sid < len(sents) or len(pos) != 2 or not 0 <= pos[0] < pos[1] <= len(sents[sid]):
                    raise _bad(path, line, p + "pos", f"{pos} is outside sentence {sid}")
                by_sentence.setdefault(sid, []).append((v, pos[0], pos[1], _get(m, "type", str, path, line, p)))
        labels = [(_get(r, "h", int, path, line, f"labels[{i}]."), _get(r, "t", int, path, line, f"labels[{i}]."),
                   _get(r, "r", str, path, line, f"labels[{i}].")) for i, r in enumerate(doc.get("labels", []))]
        for sid, tokens in enumerate(sents):
            text, words = _from_tokens([str(t) for t in tokens])
            mentions = sorted(by_sentence.get(sid, []), key=lambda m: (m[1], m[2]))
            entities = [(words[s][0], words[e - 1][1], kind) for _, s, e, kind in mentions]
            relations = [(i, j, r) for h, t, r in labels
                         for i, mh in enumerate(mentions) if mh[0] == h
                         for j, mt in enumerate(mentions) if mt[0] == t and i != j]
            out.append(Example(text, words, entities, relations, f"{path}:{line} sentence {sid}"))
    return out


def read_jsonl(path: Path, records: slice = slice(None)) -> list[Example]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as err:
                raise FormatError(f"{path}:{line}: not valid JSON ({err.msg})", hint="one JSON object a line") from None
            text = _get(rec, "text", str, path, line)
            entities = []
            for i, e in enumerate(_get(rec, "entities", list, path, line) if "entities" in rec else []):
                p = f"entities[{i}]."
                s, t = _get(e, "start", int, path, line, p), _get(e, "end", int, path, line, p)
                if not 0 <= s < t <= len(text):
                    raise _bad(path, line, p + "end", f"gives characters {s}:{t} of a {len(text)}-character text")
                entities.append((s, t, _get(e, "type", str, path, line, p)))
            relations = _relations(rec, len(entities), path, line)
            out.append(Example(text, _words_covering(text, entities), entities, relations, f"{path}:{line}"))
    return out[records]


READERS = {"conll04": read_conll04, "conll2003": read_conll2003, "casrel": read_casrel,
           "redocred": read_redocred, "jsonl": read_jsonl}


def guess_format(path: Path) -> str:
    """The format of a file, from its name and first characters."""
    if path.suffix == ".jsonl":
        return "jsonl"
    head = path.open(encoding="utf-8").read(4096).lstrip()
    if not head.startswith("["):
        return "conll2003"
    for key, fmt in (('"vertexSet"', "redocred"), ('"triple_list"', "casrel"), ('"tokens"', "conll04")):
        if key in head:
            return fmt
    raise FormatError(f"cannot tell the format of {path}", hint=f"pass --format, one of {', '.join(FORMATS)}")


def parse_records(text: str | None) -> slice | None:
    """A record range "A:B" (records A to B-1, counted from 0; either end may be left out) as a slice."""
    if text in (None, ""):
        return None
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    start, stop = (int(x) if x else None for x in m.groups()) if m else (None, None)
    if m is None or (start is not None and stop is not None and stop <= start):
        raise KgbuildError(f"record range {text!r} is not A:B with A < B",
                           hint="e.g. 0:200 for the first 200 records, 200: for the rest")
    return slice(start, stop)


def ranges_overlap(a: slice | None, b: slice | None) -> bool:
    """Whether two record ranges (None: the whole file) share a record."""
    a, b = a or slice(None), b or slice(None)
    lo = max(a.start or 0, b.start or 0)
    hi = min(a.stop if a.stop is not None else math.inf, b.stop if b.stop is not None else math.inf)
    return lo < hi


def read_examples(path: str | Path, fmt: str | None = None, records: slice | None = None) -> list[Example]:
    """Examples of an annotated file; `fmt` None or "auto" guesses it. `records` keeps a range of
    the file's records: JSON list items (a Re-DocRED document gives one example per sentence),
    JSONL lines, or CoNLL sentences."""
    path = Path(path)
    if not path.is_file():
        raise KgbuildError(f"data file {path} not found", hint="pass the path of a training or evaluation file")
    fmt = guess_format(path) if fmt in (None, "", "auto") else fmt
    if fmt not in READERS:
        raise KgbuildError(f"unknown data format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    return READERS[fmt](path, records or slice(None))


def relation_names(path: str | Path, fmt: str | None = None) -> dict[str, str]:
    """Readable names of the relation types, where the dataset ships them next to the data
    (CoNLL04's conll04_types.json, DocRED's rel_info.json)."""
    folder = Path(path).parent
    types = next(iter(sorted(folder.glob("*_types.json"))), None)
    if types is not None:
        data = json.loads(types.read_text(encoding="utf-8")).get("relations", {})
        return {k: v.get("verbose", k).lower() for k, v in data.items() if isinstance(v, dict)}
    info = folder / "rel_info.json"
    if info.is_file():
        return dict(json.loads(info.read_text(encoding="utf-8")))
    return {}
