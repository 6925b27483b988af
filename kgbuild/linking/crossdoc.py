"""Cross-document merging of entities whose names differ but mean the same thing ("Intl.
Business Machines" / "International Business Machines", "Tchaikovsky" / "Tschaikovsky").

Comparing every pair is quadratic; instead each entity's name is embedded (MiniLM, batched, on
the GPU when there is one) and a faiss index gives its `k` nearest neighbours of the same type
(blocking, about n log n). Only those candidate pairs are verified, by embedding cosine and a
rapidfuzz string score on the normalised names, and a pair passes when both clear their
thresholds, or when one name is the acronym of the other. Each merge keeps its reason."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from kgbuild.linking.kb import ann_index
from kgbuild.linking.rules import acronym, normalise
from kgbuild.model import Entity


@dataclass(slots=True)
class MergePair:
    a: int  # index into the entity list
    b: int
    why: str


def candidate_pairs(entities: list[Entity], vectors: np.ndarray, k: int = 10, min_cosine: float = 0.6,
                    min_fuzzy: float = 92.0, exact_below: int = 5000) -> list[MergePair]:
    """Verified same-type pairs among each entity's k nearest neighbours by name embedding."""
    from rapidfuzz import fuzz

    by_type: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entities):
        by_type[e.type].append(i)
    names = [normalise(e.name) for e in entities]
    initials = [acronym(e.name) for e in entities]
    out = []
    seen: set[tuple[int, int]] = set()
    for ids in by_type.values():
        if len(ids) < 2:
            continue
        block = np.ascontiguousarray(vectors[ids])
        _scores, nbrs = ann_index(block, exact_below=exact_below).search(block, min(k + 1, len(ids)))
        scores = _exact_cosines(block, nbrs)
        for row, (srow, nrow) in enumerate(zip(scores, nbrs)):
            i = ids[row]
            for cos, col in zip(srow, nrow):
                if col < 0 or col == row:
                    continue
                j = ids[col]
                if (min(i, j), max(i, j)) in seen:
                    continue
                seen.add((min(i, j), max(i, j)))
                a, b = names[i], names[j]
                if not a or not b or a == b:
                    continue
                if initials[i] == b.replace(" ", "") or initials[j] == a.replace(" ", ""):
                    out.append(MergePair(i, j, f"acronym: {entities[i].name!r} ~ {entities[j].name!r}"))
                    continue
                if cos < min_cosine:
                    continue
                score = fuzz.token_sort_ratio(a, b)
                if score >= min_fuzzy and _digits(a) == _digits(b):
                    out.append(MergePair(i, j, f"similar names {entities[i].name!r} ~ {entities[j].name!r} "
                                               f"(string {score:.0f}, embedding cosine {cos:.2f})"))
    return out


def _exact_cosines(vectors: np.ndarray, nbrs: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """The exact cosine of each row to each of its neighbours (the index for large sets quantises
    its scores), a chunk of rows at a time so the gathered neighbours stay small."""
    out = np.empty(nbrs.shape, dtype=np.float32)
    for s in range(0, len(nbrs), chunk):
        rows = nbrs[s : s + chunk]
        out[s : s + chunk] = np.einsum("nd,nkd->nk", vectors[s : s + chunk], vectors[np.maximum(rows, 0)])
    return out


def _digits(name: str) -> str:
    """"Apollo 8" and "Apollo 11" differ only in a number, and are different things."""
    return "".join(c for c in name if c.isdigit())
