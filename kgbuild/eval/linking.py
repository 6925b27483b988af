"""Linking benchmarks: within-document entity clustering on Re-DocRED, KB linking on WebNLG 3.0,
and the time and memory of cross-document linking at scale on FB15k-237 labels.

- `evaluate_coref`: Re-DocRED dev (/work/shared/data/redocred/dev_revised.json, 500 documents,
  13,189 gold mentions in 9,684 entities; `vertexSet` gives each entity's mentions, so the gold
  clusters). Runs ner -> linking on each document's text; a predicted mention is aligned to the
  gold mention whose character span it overlaps most (intersection over union >= 0.5, each gold
  mention used once). Mention recall = aligned gold mentions / gold mentions. B-cubed and MUC
  precision/recall/F1 are computed over the aligned mentions only (the mentions the pipeline
  found), gold clusters = vertexSet entities, predicted clusters = Mention.entity. Re-DocRED
  annotates no pronouns, so pronoun mentions never align and do not count here.
- `evaluate_kblink`: WebNLG 3.0 dev XML (/work/shared/data/webnlg/v3.0/dev, 1,667 entries,
  4,464 texts). The KB is every subject and object of every `mtriple` of train and dev (DBpedia
  resource names, underscores as spaces; quoted literals and numbers left out). For each text,
  the named mentions spaCy finds are linked against that KB; a mention counts when it is aligned
  to one of the entry's gold entities (same normalised string as one of the gold labels' names, or
  a substring either way), and it is correct when linked to that entity. Accuracy = correct /
  aligned mentions; NIL on an aligned mention is an error.
- `measure_scale`: link N entities made from FB15k-237 labels (each label, plus a perturbed
  copy for a share of them, so that there is something to merge) with the cross-document
  resolver; time and peak resident memory."""

from __future__ import annotations

import resource
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from kgbuild.eval.redocred import read_redocred, to_document
from kgbuild.model import Document

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


# -- clustering scores --------------------------------------------------------------------
def b_cubed(gold: list[Any], pred: list[Any]) -> tuple[float, float]:
    """(precision, recall) of B-cubed over items labelled with a gold and a predicted cluster."""
    if not gold:
        return 0.0, 0.0
    g_size, p_size, both = Counter(gold), Counter(pred), Counter(zip(gold, pred))
    p = sum(both[(g, q)] / p_size[q] for g, q in zip(gold, pred)) / len(gold)
    r = sum(both[(g, q)] / g_size[g] for g, q in zip(gold, pred)) / len(gold)
    return p, r


def muc(gold: list[Any], pred: list[Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """MUC link counts ((recall numerator, denominator), (precision numerator, denominator))."""

    def side(key: list[Any], response: list[Any]) -> tuple[int, int]:
        num = den = 0
        clusters: dict[Any, list[int]] = defaultdict(list)
        for i, k in enumerate(key):
            clusters[k].append(i)
        for members in clusters.values():
            parts = {response[i] for i in members}
            num += len(members) - len(parts)
            den += len(members) - 1
        return num, den

    return side(gold, pred), side(pred, gold)


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _spans(raw: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(start, end, gold entity) character spans of the gold mentions in to_document's text."""
    starts, pos = [], 0
    for sent in raw["sents"]:
        row = []
        for tok in sent:
            row.append(pos)
            pos += len(tok) + 1
        starts.append(row)
    out = []
    for e, ent in enumerate(raw["vertexSet"]):
        for m in ent:
            s, t = m["pos"]
            row, sent = starts[m["sent_id"]], raw["sents"][m["sent_id"]]
            out.append((row[s], row[t - 1] + len(sent[t - 1]), e))
    return out


def align(doc: Document, gold: list[tuple[int, int, int]], min_iou: float = 0.5) -> list[tuple[int, int]]:
    """(mention index, gold entity) for the mentions aligned to a gold mention, one to one."""
    pairs = []
    for i, m in enumerate(doc.mentions):
        for g, (s, t, _e) in enumerate(gold):
            inter = min(m.end, t) - max(m.start, s)
            if inter > 0:
                iou = inter / (max(m.end, t) - min(m.start, s))
                if iou >= min_iou:
                    pairs.append((iou, i, g))
    used_m, used_g, out = set(), set(), []
    for _iou, i, g in sorted(pairs, reverse=True):
        if i not in used_m and g not in used_g:
            used_m.add(i)
            used_g.add(g)
            out.append((i, gold[g][2]))
    return sorted(out)


def _build(config: Any, stages: tuple[str, ...], device: str | None = None):
    from kgbuild import registry
    from kgbuild.config import Config

    config = config or Config()
    dev = device or config.device
    return [registry.build(n, getattr(config, n).backend, getattr(config, n).options, device=dev) for n in stages]


def evaluate_coref(path: str | Path, config: Any = None, limit: int | None = None, offset: int = 0,
                   device: str | None = None, ner: Any = None) -> dict[str, Any]:
    """Within-document clustering scores of the ner -> linking stages on Re-DocRED (see module doc).

    `ner`: an already built NER stage to reuse."""
    from kgbuild.config import Config

    config = config or Config()
    raws = read_redocred(path, limit, offset)
    docs = [to_document(raw, offset + i) for i, raw in enumerate(raws)]
    ner_stage = ner or _build(config, ("ner",), device)[0]
    (linker,) = _build(config, ("linking",), device)
    t0 = time.perf_counter()
    step = config.batch_size
    for s in range(0, len(docs), step):
        linker(ner_stage(docs[s : s + step]))
    t_link = time.perf_counter() - t0
    _entities, remap = linker.finalize()

    n_gold = n_found = 0
    bp = br = 0.0
    muc_r = [0, 0]
    muc_p = [0, 0]
    n_items = 0
    errors: Counter = Counter()
    for doc, raw in zip(docs, raws):
        gold = _spans(raw)
        n_gold += len(gold)
        pairs = align(doc, gold)
        n_found += len(pairs)
        if not pairs:
            continue
        g = [e for _i, e in pairs]
        p = [remap.get(doc.mentions[i].entity, doc.mentions[i].entity) or f"#{i}" for i, _e in pairs]
        dp, dr = b_cubed(g, p)
        bp += dp * len(g)
        br += dr * len(g)
        n_items += len(g)
        (rn, rd), (pn, pd) = muc(g, p)
        muc_r[0] += rn; muc_r[1] += rd; muc_p[0] += pn; muc_p[1] += pd
        errors.update(_errors(doc, pairs, p))
    bp, br = (bp / n_items, br / n_items) if n_items else (0.0, 0.0)
    mp = muc_p[0] / muc_p[1] if muc_p[1] else 0.0
    mr = muc_r[0] / muc_r[1] if muc_r[1] else 0.0
    r = lambda x: round(100 * x, 2)  # noqa: E731
    return {
        "dataset": str(path), "offset": offset, "documents": len(docs),
        "gold_mentions": n_gold, "aligned_mentions": n_found, "mention_recall": r(n_found / n_gold if n_gold else 0),
        "b_cubed": {"precision": r(bp), "recall": r(br), "f1": r(_f(bp, br))},
        "muc": {"precision": r(mp), "recall": r(mr), "f1": r(_f(mp, mr))},
        "seconds": round(t_link, 2),
        "top_errors": [f"{k} ({v})" for k, v in errors.most_common(10)],
    }


def _errors(doc: Document, pairs: list[tuple[int, int]], pred: list[str]) -> Counter:
    """The most frequent split ('a' | 'b': one gold entity, two predicted) and merge errors."""
    out: Counter = Counter()
    by_gold: dict[int, set[str]] = defaultdict(set)
    by_pred: dict[str, set[int]] = defaultdict(set)
    text_of: dict[str, str] = {}
    for (i, e), p in zip(pairs, pred):
        by_gold[e].add(p)
        by_pred[p].add(e)
        text_of.setdefault(p, doc.mentions[i].text)
    for e, ps in by_gold.items():
        if len(ps) > 1:
            out["split: " + " | ".join(sorted(text_of[p] for p in ps))[:80]] += 1
    for p, es in by_pred.items():
        if len(es) > 1:
            out[f"merge: {text_of[p]}"] += 1
    return out


def format_coref(result: dict[str, Any]) -> str:
    b, m = result["b_cubed"], result["muc"]
    lines = [
        f"Re-DocRED {result['dataset']}  documents {result['offset']}..{result['offset'] + result['documents'] - 1}",
        f"mention recall {result['mention_recall']:.2f}  ({result['aligned_mentions']} of {result['gold_mentions']} gold mentions found)",
        f"B-cubed        P {b['precision']:.2f}  R {b['recall']:.2f}  F1 {b['f1']:.2f}",
        f"MUC            P {m['precision']:.2f}  R {m['recall']:.2f}  F1 {m['f1']:.2f}",
        f"time           {result['seconds']:.1f} s (ner + linking)",
        "frequent errors:",
        *[f"  {e}" for e in result["top_errors"]],
    ]
    return "\n".join(lines)
