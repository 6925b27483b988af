"""Candidate entity pairs of a document and their features, shared by the relation backend and
the script that fits its head (kgbuild.relations.fit), so both see exactly the same numbers.

A document's mentions are first grouped into entities (same normalised name; a one-word person
name joins the longer person name it ends or starts). Every ordered pair of entities whose types
some relation of the schema allows is a candidate; its evidence is the closest pair of their
mentions. Features are a few dozen position / type indicators ("dense") plus texts to embed: the
words between the two mentions, the words on the dependency path between them, and both names."""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgbuild.model import Document
from kgbuild.types import TYPES

TYPE_LIST = list(TYPES)
LABEL_LIST = ["PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
              "LANGUAGE", "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"]
# the embedded texts of a pair, in this order: words between the evidence mentions, words on the
# dependency path between them, both names, and the words around each evidence mention
TEXT_BLOCKS = ("between", "path", "head", "tail", "head_window", "tail_window")
WINDOW_WORDS = 5
_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
_WS = re.compile(r"\s+")
MAX_BETWEEN_WORDS = 40  # longer gaps are cut to their first and last words


def normalise(text: str) -> str:
    """Casefold, collapse whitespace, strip punctuation at the ends (the benchmark's name match)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCT.sub("", _WS.sub(" ", text).strip())


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    for i, edge in enumerate(edges):
        if value <= edge:
            return i
    return len(edges)


def _dense_names() -> list[str]:
    names = ["same_sentence"]
    names += [f"sent_dist_{b}" for b in ("0", "1", "2", "3-4", "5+")]
    names += ["log_shared_sentences"]
    names += [f"word_dist_{b}" for b in ("<=1", "2-3", "4-6", "7-10", "11-20", "21+")]
    names += ["head_first", "between_comma", "between_paren", "between_and"]
    names += [f"mentions_between_{b}" for b in ("0", "1", "2", "3+")]
    names += ["head_is_title", "tail_is_title", "log_head_mentions", "log_tail_mentions",
              "head_in_first_sentence", "tail_in_first_sentence"]
    names += ["head_most_mentioned_of_type", "tail_most_mentioned_of_type", "log_entities_of_tail_type",
              "log_entities_of_head_type"]
    names += ["has_path"] + [f"path_len_{b}" for b in ("1", "2", "3", "4-5", "6+")]
    names += [f"head_type_{t}" for t in TYPE_LIST] + [f"tail_type_{t}" for t in TYPE_LIST]
    names += [f"head_label_{t}" for t in LABEL_LIST] + [f"tail_label_{t}" for t in LABEL_LIST]
    names += [f"types_{a}_{b}" for a in TYPE_LIST for b in TYPE_LIST]
    return names


DENSE_NAMES = _dense_names()
_DENSE_INDEX = {n: i for i, n in enumerate(DENSE_NAMES)}


@dataclass
class EntityGroup:
    """Mentions of one document that name the same thing."""

    mentions: list[int]  # indexes into Document.mentions, in text order
    name: str  # the longest mention text
    type: str  # kgbuild type of the longest mention
    label: str  # recogniser label of the longest mention
    norms: set[str] = field(default_factory=set)  # normalised texts of its mentions


@dataclass
class DocPairs:
    """Candidates of one document: entity pairs, their evidence mentions, features and texts."""

    entities: list[EntityGroup]
    pairs: list[tuple[int, int]]  # (head entity, tail entity) indexes into entities
    evidence: list[tuple[int, int, int]]  # (head mention, tail mention, sentence) of the closest pair
    dense: np.ndarray  # float32 [n_pairs, len(DENSE_NAMES)]
    texts: dict[str, list[str]]  # block name -> one text per pair ("" when there is none)


def group_mentions(doc: Document, label_names: dict[str, str] | None = None) -> list[EntityGroup]:
    """Entities of one document from its mentions, by normalised name and person-name parts.
    `label_names` renames recogniser labels (another model's onto spaCy's, which the features know)."""
    groups: list[EntityGroup] = []
    by_norm: dict[str, int] = {}
    order = sorted(range(len(doc.mentions)), key=lambda i: -len(doc.mentions[i].text))
    for i in order:  # longest first, so that "Schneider" can join "Willi Schneider"
        m = doc.mentions[i]
        norm = normalise(m.text)
        if not norm:
            continue
        g = by_norm.get(norm)
        if g is None and m.type == "PER" and " " not in norm:
            hits = {by_norm[n] for n in by_norm
                    if groups[by_norm[n]].type == "PER" and (n.endswith(" " + norm) or n.startswith(norm + " "))}
            if len(hits) == 1:
                g = hits.pop()
        if g is None:
            g = len(groups)
            groups.append(EntityGroup([], m.text, m.type, label_names.get(m.label, m.label) if label_names else m.label))
        by_norm.setdefault(norm, g)
        groups[g].mentions.append(i)
        groups[g].norms.add(norm)
    for g in groups:
        g.mentions.sort(key=lambda i: doc.mentions[i].start)
    groups.sort(key=lambda g: doc.mentions[g.mentions[0]].start)
    return groups


class _ParseIndex:
    """Token arrays of a document's parse chunks, for cheap span roots and dependency paths
    (spaCy Token objects are created on every access; integer arrays are not)."""

    def __init__(self, doc: Document) -> None:
        from spacy.attrs import HEAD, IDX, IS_PUNCT, LENGTH

        self.text = doc.text
        self.chunks = []  # (start, end, token starts, token ends, absolute heads, is_punct)
        for offset, sdoc in doc.parse or []:
            arr = sdoc.to_array([IDX, LENGTH, HEAD, IS_PUNCT]).astype(np.int64)
            starts = arr[:, 0] + offset
            heads = np.arange(len(arr)) + arr[:, 2]
            # python lists: scalar access in the loops below is several times faster than numpy's
            self.chunks.append((offset, offset + len(sdoc.text), starts.tolist(), (starts + arr[:, 1]).tolist(),
                                heads.tolist(), arr[:, 3].tolist()))

    def span(self, start: int, end: int) -> tuple[int, int, int, int] | None:
        """(chunk, root token, first token, end token) of the tokens overlapping [start, end)."""
        for c, (lo_c, hi_c, starts, ends, heads, _) in enumerate(self.chunks):
            if not (lo_c <= start and end <= hi_c):
                continue
            lo = bisect.bisect_right(ends, start)
            hi = bisect.bisect_left(starts, end)
            if hi <= lo:
                return None
            # spaCy's Span.root: the token closest to the sentence root, the first one on ties
            best, best_depth = lo, 1 << 30
            for i in range(lo, hi):
                depth, j = 0, i
                while heads[j] != j and depth < 200:
                    j = heads[j]
                    depth += 1
                if depth < best_depth:
                    best, best_depth = i, depth
            return c, best, lo, hi
        return None

    def path(self, c: int, a: int, b: int, skip: tuple[range, range]) -> tuple[int, str] | None:
        """Length and words of the dependency path between tokens a and b of chunk c."""
        _, _, starts, ends, heads, punct = self.chunks[c]
        up_a = [a]
        while heads[up_a[-1]] != up_a[-1] and len(up_a) < 200:
            up_a.append(heads[up_a[-1]])
        index_a = {t: k for k, t in enumerate(up_a)}
        up_b = [b]
        while up_b[-1] not in index_a and heads[up_b[-1]] != up_b[-1] and len(up_b) < 200:
            up_b.append(heads[up_b[-1]])
        if up_b[-1] not in index_a:
            return None  # different sentences
        k = index_a[up_b[-1]]
        tokens = up_a[: k + 1] + up_b[:-1][::-1]
        words = [self.text[starts[t] : ends[t]] for t in tokens
                 if t not in skip[0] and t not in skip[1] and not punct[t]]
        return len(tokens) - 1, " ".join(words)


def doc_pairs(doc: Document, allowed: set[tuple[str, str]], max_sentence_distance: int = 1_000_000,
              label_names: dict[str, str] | None = None) -> DocPairs:
    """Candidate pairs and their features for one document (see module docstring)."""
    entities = group_mentions(doc, label_names)
    mentions = doc.mentions
    first_entity = 0 if entities else -1
    sents_of = [{mentions[i].sentence for i in g.mentions} for g in entities]
    parse = _ParseIndex(doc)
    roots: dict[int, Any] = {}
    starts_sorted = sorted(m.start for m in mentions)

    n_of_type: dict[str, int] = {}
    top_of_type: dict[str, int] = {}
    for g in entities:
        n_of_type[g.type] = n_of_type.get(g.type, 0) + 1
        top_of_type[g.type] = max(top_of_type.get(g.type, 0), len(g.mentions))
    windows: dict[int, str] = {}

    def window(mi: int) -> str:
        if mi not in windows:
            m = mentions[mi]
            sent = doc.sentences[m.sentence] if m.sentence < len(doc.sentences) else None
            lo, hi = (sent.start, sent.end) if sent else (0, len(doc.text))
            left = doc.text[lo : m.start].split()[-WINDOW_WORDS:]
            right = doc.text[m.end : hi].split()[:WINDOW_WORDS]
            windows[mi] = " ".join(left + right)
        return windows[mi]

    pairs, evidence, rows = [], [], []
    texts: dict[str, list[str]] = {b: [] for b in TEXT_BLOCKS}
    for h, gh in enumerate(entities):
        for t, gt in enumerate(entities):
            if h == t or (gh.type, gt.type) not in allowed:
                continue
            best = None
            for mh in gh.mentions:
                a = mentions[mh]
                for mt in gt.mentions:
                    b = mentions[mt]
                    sd = abs(a.sentence - b.sentence)
                    if sd > max_sentence_distance:
                        continue
                    gap = b.start - a.end if a.start <= b.start else a.start - b.end
                    key = (sd, gap)
                    if best is None or key < best[0]:
                        best = (key, mh, mt)
            if best is None:
                continue
            (sd, _), mh, mt = best
            a, b = mentions[mh], mentions[mt]
            row = np.zeros(len(DENSE_NAMES), dtype=np.float32)
            shared = len(sents_of[h] & sents_of[t])
            between = path_text = ""
            if sd == 0:
                row[_DENSE_INDEX["same_sentence"]] = 1
                lo, hi = (a, b) if a.start <= b.start else (b, a)
                between = doc.text[lo.end : hi.start]
                words = between.split()
                row[_DENSE_INDEX["word_dist_" + ("<=1", "2-3", "4-6", "7-10", "11-20", "21+")[_bucket(len(words), (1, 3, 6, 10, 20))]]] = 1
                stripped = between.strip()
                row[_DENSE_INDEX["between_comma"]] = stripped == ","
                row[_DENSE_INDEX["between_paren"]] = "(" in between
                row[_DENSE_INDEX["between_and"]] = stripped in ("and", ", and", "&")
                if len(words) > MAX_BETWEEN_WORDS:
                    words = words[: MAX_BETWEEN_WORDS // 2] + words[-MAX_BETWEEN_WORDS // 2 :]
                between = " ".join(words)
                n_between = bisect.bisect_left(starts_sorted, hi.start) - bisect.bisect_right(starts_sorted, lo.start)
                row[_DENSE_INDEX["mentions_between_" + ("0", "1", "2", "3+")[min(n_between, 3)]]] = 1
                for mi in (mh, mt):
                    if mi not in roots:
                        roots[mi] = parse.span(mentions[mi].start, mentions[mi].end)
                ra, rb = roots[mh], roots[mt]
                if ra is not None and rb is not None and ra[0] == rb[0]:
                    p = parse.path(ra[0], ra[1], rb[1], (range(ra[2], ra[3]), range(rb[2], rb[3])))
                    if p is not None:
                        row[_DENSE_INDEX["has_path"]] = 1
                        row[_DENSE_INDEX["path_len_" + ("1", "2", "3", "4-5", "6+")[_bucket(p[0], (1, 2, 3, 5))]]] = 1
                        path_text = p[1]
            row[_DENSE_INDEX["sent_dist_" + ("0", "1", "2", "3-4", "5+")[_bucket(sd, (0, 1, 2, 4))]]] = 1
            row[_DENSE_INDEX["log_shared_sentences"]] = math.log1p(shared)
            row[_DENSE_INDEX["head_first"]] = a.start <= b.start
            row[_DENSE_INDEX["head_is_title"]] = h == first_entity
            row[_DENSE_INDEX["tail_is_title"]] = t == first_entity
            row[_DENSE_INDEX["log_head_mentions"]] = math.log1p(len(gh.mentions))
            row[_DENSE_INDEX["log_tail_mentions"]] = math.log1p(len(gt.mentions))
            row[_DENSE_INDEX["head_in_first_sentence"]] = 0 in sents_of[h]
            row[_DENSE_INDEX["tail_in_first_sentence"]] = 0 in sents_of[t]
            row[_DENSE_INDEX["head_most_mentioned_of_type"]] = len(gh.mentions) == top_of_type[gh.type]
            row[_DENSE_INDEX["tail_most_mentioned_of_type"]] = len(gt.mentions) == top_of_type[gt.type]
            row[_DENSE_INDEX["log_entities_of_head_type"]] = math.log1p(n_of_type[gh.type])
            row[_DENSE_INDEX["log_entities_of_tail_type"]] = math.log1p(n_of_type[gt.type])
            row[_DENSE_INDEX["head_type_" + gh.type]] = 1
            row[_DENSE_INDEX["tail_type_" + gt.type]] = 1
            if gh.label in LABEL_LIST:
                row[_DENSE_INDEX["head_label_" + gh.label]] = 1
            if gt.label in LABEL_LIST:
                row[_DENSE_INDEX["tail_label_" + gt.label]] = 1
            row[_DENSE_INDEX[f"types_{gh.type}_{gt.type}"]] = 1
            pairs.append((h, t))
            evidence.append((mh, mt, a.sentence))
            rows.append(row)
            texts["between"].append(between)
            texts["path"].append(path_text)
            texts["head"].append(gh.name)
            texts["tail"].append(gt.name)
            texts["head_window"].append(window(mh))
            texts["tail_window"].append(window(mt))
    dense = np.stack(rows) if rows else np.zeros((0, len(DENSE_NAMES)), dtype=np.float32)
    return DocPairs(entities, pairs, evidence, dense, texts)


def embed_blocks(encoder: Any, batch: list[DocPairs]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Unique texts of each block over a batch of documents, embedded once.

    Returns (block -> embeddings of the unique texts [n_unique, dim]; block -> per-pair row index
    into them, concatenated over the batch). The empty text embeds as zeros."""
    uniques: dict[str, dict[str, int]] = {b: {} for b in TEXT_BLOCKS}
    index: dict[str, list[int]] = {b: [] for b in TEXT_BLOCKS}
    for dp in batch:
        for b in TEXT_BLOCKS:
            u = uniques[b]
            idx = index[b]
            for text in dp.texts[b]:
                k = u.get(text)
                if k is None:
                    k = u[text] = len(u)
                idx.append(k)
    # one encoder call for all blocks: names repeat across blocks and documents
    all_texts: dict[str, int] = {}
    for b in TEXT_BLOCKS:
        for text in uniques[b]:
            all_texts.setdefault(text, len(all_texts))
    vectors = encoder.encode(list(all_texts)) if all_texts else np.zeros((0, encoder.dim), np.float32)
    emb = {}
    for b in TEXT_BLOCKS:
        rows = [all_texts[t] for t in uniques[b]]
        emb[b] = vectors[rows] if rows else np.zeros((0, encoder.dim), np.float32)
        if "" in uniques[b]:
            emb[b][uniques[b][""]] = 0
    return emb, {b: np.asarray(index[b], dtype=np.int64) for b in TEXT_BLOCKS}
