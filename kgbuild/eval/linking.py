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

import re
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


# -- pronouns, by substitution ---------------------------------------------------------------------
_PRONOUN_OF = {"PER": ("he", "his"), "ORG": ("it", "its"), "LOC": ("it", "its")}


def substitute_pronouns(raw: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """A copy of a Re-DocRED document in which, for each PER, ORG or LOC entity, the first mention
    whose entity was named one or two sentences earlier is replaced by a pronoun ("he"/"his",
    "it"/"its"; the possessive before "'s", capitalised at a sentence start), and the
    (entity, mention) index of each replaced mention. Re-DocRED annotates no pronouns: this
    makes gold ones whose antecedent is known. An organisation or place is replaced only where
    "it" reads naturally: as the sentence's first word or a possessive ("in Paris" -> "in it" is
    not how texts refer to a place)."""
    import copy

    raw = copy.deepcopy(raw)
    chosen: list[tuple[int, int]] = []
    for e, ent in enumerate(raw["vertexSet"]):
        if ent[0].get("type") not in _PRONOUN_OF:
            continue
        order = sorted(range(len(ent)), key=lambda k: (ent[k]["sent_id"], ent[k]["pos"][0]))
        for a, b in zip(order, order[1:]):
            m, sent = ent[b], raw["sents"][ent[b]["sent_id"]]
            natural = (ent[0]["type"] == "PER" or m["pos"][0] == 0
                       or (m["pos"][1] < len(sent) and sent[m["pos"][1]] in ("'s", "’s")))
            if 1 <= m["sent_id"] - ent[a]["sent_id"] <= 2 and natural:
                chosen.append((e, b))
                break
    # drop a choice whose span overlaps another gold mention, then edit right to left per sentence
    spans = [(m["sent_id"], *m["pos"], e) for e, ent in enumerate(raw["vertexSet"]) for m in ent]
    keep = []
    for e, k in chosen:
        m = raw["vertexSet"][e][k]
        s, (a, b) = m["sent_id"], m["pos"]
        if not any(x == s and y < b and a < z and (f != e or (y, z) != (a, b)) for x, y, z, f in spans):
            keep.append((e, k))
    for e, k in sorted(keep, key=lambda ek: [-x for x in raw["vertexSet"][ek[0]][ek[1]]["pos"]]):
        m = raw["vertexSet"][e][k]
        sent = raw["sents"][m["sent_id"]]
        a, b = m["pos"]
        possessive = b < len(sent) and sent[b] in ("'s", "’s")
        word = _PRONOUN_OF[raw["vertexSet"][e][0]["type"]][possessive]
        word = word.capitalize() if a == 0 else word
        cut = b + possessive
        sent[a:cut] = [word]
        shift = 1 - (cut - a)
        for ent in raw["vertexSet"]:
            for other in ent:
                if other["sent_id"] == m["sent_id"] and other["pos"][0] >= cut:
                    other["pos"] = [other["pos"][0] + shift, other["pos"][1] + shift]
        m["pos"], m["name"] = [a, a + 1], word
    return raw, keep


def evaluate_pronouns(path: str | Path, config: Any = None, limit: int | None = None, offset: int = 0,
                      device: str | None = None, ner: Any = None) -> dict[str, Any]:
    """Pronoun resolution on Re-DocRED with pronouns substituted for names (substitute_pronouns):
    a substituted pronoun is resolved when the pipeline links it to an entity, and correct when
    that entity is the one the pipeline gave most of the gold entity's other found mentions."""
    from kgbuild.config import Config

    config = config or Config()
    raws, chosen, docs = [], [], []
    for i, original in enumerate(read_redocred(path, limit, offset)):
        raw, keep = substitute_pronouns(original)
        raws.append(raw)
        chosen.append(keep)
        docs.append(to_document(raw, offset + i))
    ner_stage = ner or _build(config, ("ner",), device)[0]
    (linker,) = _build(config, ("linking",), device)
    for s in range(0, len(docs), config.batch_size):
        linker(ner_stage(docs[s : s + config.batch_size]))
    _entities, remap = linker.finalize()
    counts: Counter = Counter()
    for doc, raw, keep in zip(docs, raws, chosen):
        gold = _spans(raw)
        index = {(e, k): g for g, (e, k) in enumerate((e, k) for e, ent in enumerate(raw["vertexSet"]) for k in range(len(ent)))}
        pronoun_at = {(m.start, m.end): m for m in doc.mentions if m.kind == "pronoun"}
        names = [(i, e) for i, e in align(doc, gold) if doc.mentions[i].kind == "name"]
        key = lambda m: remap.get(m.entity, m.entity)  # noqa: E731
        for e, k in keep:
            counts["substituted"] += 1
            s, t, _e = gold[index[(e, k)]]
            p = pronoun_at.get((s, t))
            if p is None or p.entity is None:
                continue
            counts["resolved"] += 1
            votes = Counter(key(doc.mentions[i]) for i, ge in names if ge == e)
            counts["correct"] += bool(votes) and key(p) == votes.most_common(1)[0][0]
    r = lambda a, b: round(100 * a / b, 2) if b else 0.0  # noqa: E731
    return {"dataset": str(path), "offset": offset, "documents": len(docs), "substituted": counts["substituted"],
            "resolved": counts["resolved"], "resolved_share": r(counts["resolved"], counts["substituted"]),
            "precision": r(counts["correct"], counts["resolved"]), "recall": r(counts["correct"], counts["substituted"])}


def format_pronouns(result: dict[str, Any]) -> str:
    return (f"Re-DocRED {result['dataset']} with pronouns for names ({result['documents']} documents): "
            f"{result['substituted']} pronouns substituted, {result['resolved']} resolved ({result['resolved_share']:.2f}%); "
            f"correct antecedent: precision {result['precision']:.2f}, recall {result['recall']:.2f}")


# -- open relation phrases ----------------------------------------------------------------------
def relation_phrases(path: str | Path, config: Any = None, limit: int | None = None, device: str | None = None,
                     ner: Any = None) -> list[tuple[str, str, str, str]]:
    """(phrase, gold relation, head type, tail type) for each Re-DocRED gold relation whose head
    and tail have found mentions in one sentence joined by a verbal phrase (open_phrase)."""
    from kgbuild.relations.phrases import open_phrase

    raws = read_redocred(path, limit)
    docs = [to_document(raw, i) for i, raw in enumerate(raws)]
    ner_stage = ner or _build(config, ("ner",), device)[0]
    out = []
    for s in range(0, len(docs), 32):
        for doc, raw in zip(ner_stage(docs[s : s + 32]), raws[s : s + 32]):
            found: dict[int, list[int]] = defaultdict(list)
            for i, e in align(doc, _spans(raw)):
                found[e].append(i)
            for label in raw["labels"]:
                for mh in found.get(label["h"], ()):
                    a = doc.mentions[mh]
                    phrase = next((p for mt in found.get(label["t"], ()) if doc.mentions[mt].sentence == a.sentence
                                   for p in [open_phrase(doc, a, doc.mentions[mt])] if p), None)
                    if phrase:
                        out.append((phrase, label["r"], a.type, doc.mentions[found[label["t"]][0]].type))
                        break
            doc.parse = None
    return out


def evaluate_relation_phrases(path: str | Path, config: Any = None, limit: int | None = None,
                              device: str | None = None, thresholds: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9)) -> dict[str, Any]:
    """How well open relation phrases map onto the schema and cluster, against Re-DocRED's gold
    relations (relation_phrases): per map threshold, the share of phrases mapped and the
    precision of the mapping; per cluster threshold (no mapping), pairwise precision and recall
    of the phrase clusters against the gold relations, and the number of clusters."""
    from kgbuild.linking.relphrases import RelationPhrases

    items = relation_phrases(path, config, limit, device)
    (linker,) = _build(config, ("linking",), device)
    encode = linker.encoder().encode
    mapping, clustering = [], []
    for t in thresholds:
        rp = RelationPhrases(encode, "map", map_threshold=t)
        got = [rp.assign(p, ht, tt)[0] for p, _r, ht, tt in items]
        mapped = [(g, r) for g, (_p, r, _h, _t) in zip(got, items) if g is not None]
        mapping.append({"threshold": t, "mapped": round(100 * len(mapped) / max(len(items), 1), 2),
                        "precision": round(100 * sum(g == r for g, r in mapped) / max(len(mapped), 1), 2)})
        rp = RelationPhrases(encode, "cluster", map_threshold=2.0, cluster_threshold=t)
        got = [rp.assign(p, ht, tt)[0] for p, _r, ht, tt in items]
        pairs = lambda c: sum(v * (v - 1) // 2 for v in c.values())  # noqa: E731
        both = pairs(Counter(zip(got, (r for _p, r, _h, _t in items))))
        pred, gold = pairs(Counter(got)), pairs(Counter(r for _p, r, _h, _t in items))
        clustering.append({"threshold": t, "clusters": len(set(got)), "precision": round(100 * both / max(pred, 1), 2),
                           "recall": round(100 * both / max(gold, 1), 2)})
    return {"dataset": str(path), "phrases": len(items), "distinct_phrases": len({p for p, *_ in items}),
            "gold_relations": len({r for _p, r, *_ in items}), "mapping": mapping, "clustering": clustering}


def format_relation_phrases(result: dict[str, Any]) -> str:
    lines = [f"Re-DocRED {result['dataset']}: {result['phrases']} gold relations with a verbal phrase "
             f"({result['distinct_phrases']} distinct phrases, {result['gold_relations']} relations)",
             "map onto the schema:  threshold  mapped %  precision"]
    lines += [f"                      {m['threshold']:.2f}       {m['mapped']:6.2f}    {m['precision']:6.2f}" for m in result["mapping"]]
    lines.append("cluster (no mapping): threshold  clusters  pairwise precision / recall")
    lines += [f"                      {c['threshold']:.2f}       {c['clusters']:6d}    {c['precision']:6.2f} / {c['recall']:.2f}"
              for c in result["clustering"]]
    return "\n".join(lines)


# -- KB linking on WebNLG ----------------------------------------------------------------------
_LITERAL = re.compile(r'^(?:["\d\-+.]|[\d.,\s]+$)')
DBPEDIA = "http://dbpedia.org/resource/"


def read_webnlg(folder: str | Path) -> list[dict[str, Any]]:
    """Entries of every WebNLG XML file under `folder`: {"id", "entities" (DBpedia names of the
    subjects and objects of its modified triples, literals left out), "subject" (the most frequent
    subject), "texts"}."""
    import xml.etree.ElementTree as ET

    root = Path(folder)
    files = sorted(root.rglob("*.xml"))
    if not files:
        from kgbuild.errors import CorpusError
        raise CorpusError(f"no WebNLG XML under {root}",
                          hint="get data/en/{train,dev} of github.com/WebNLG/challenge-2020 into ../shared/data/webnlg/v3.0")
    out = []
    for f in files:
        for entry in ET.parse(f).getroot().iter("entry"):
            ents: list[str] = []
            subjects: Counter = Counter()
            for t in entry.iter("mtriple"):
                parts = [p.strip() for p in (t.text or "").split("|")]
                if len(parts) != 3:
                    continue
                subjects[parts[0]] += 1
                for x in (parts[0], parts[2]):
                    if x and not _LITERAL.match(x) and x not in ents:
                        ents.append(x)
            texts = [lex.text.strip() for lex in entry.iter("lex") if lex.text and lex.text.strip()]
            out.append({"id": f"{f.parent.name}/{f.stem}/{entry.get('eid')}", "entities": ents,
                        "subject": subjects.most_common(1)[0][0] if subjects else "", "texts": texts})
    return out


def _label(name: str) -> str:
    return name.replace("_", " ").strip('"')


def _aligner():
    from rapidfuzz import fuzz

    from kgbuild.linking.kb import _QUALIFIER
    from kgbuild.linking.rules import normalise

    def align_name(text: str, gold: list[str], min_score: float = 80.0) -> str | None:
        """The gold entity a mention names: best string match among the entry's own entities."""
        n = normalise(text)
        best, best_score = None, min_score
        for g in gold:
            label = _label(g)
            score = max(fuzz.ratio(n, normalise(label)), fuzz.ratio(n, normalise(_QUALIFIER.sub("", label))))
            if score >= best_score:
                best, best_score = g, score
        return best

    return align_name


def evaluate_kblink(folder: str | Path, config: Any = None, split: str = "dev", limit: int | None = None,
                    holdout: float = 0.0, seed: int = 0, device: str | None = None, ner: Any = None) -> dict[str, Any]:
    """KB linking accuracy on WebNLG 3.0 (see module docstring). `holdout`: this share of the
    split's gold entities is left out of the KB, so that their mentions must come out NIL."""
    import json as _json
    import random
    import tempfile

    from kgbuild.config import Config

    config = config or Config()
    root = Path(folder)
    entries = read_webnlg(root / split)[:limit]
    kb_names: list[str] = []
    seen: set[str] = set()
    for sub in ("train", "dev"):
        if (root / sub).is_dir():
            for e in read_webnlg(root / sub):
                for name in e["entities"]:
                    if name not in seen:
                        seen.add(name)
                        kb_names.append(name)
    gold_names = sorted({n for e in entries for n in e["entities"]})
    held = set(random.Random(seed).sample(gold_names, int(holdout * len(gold_names)))) if holdout else set()
    with tempfile.TemporaryDirectory() as tmp:
        kb_file = Path(tmp) / "webnlg_kb.jsonl"
        with kb_file.open("w", encoding="utf-8") as fh:
            for name in kb_names:
                if name not in held:
                    fh.write(_json.dumps({"id": DBPEDIA + name, "label": _label(name)}) + "\n")
        options = {**config.linking.options, "kb": str(kb_file)}
        from kgbuild import registry

        linker = registry.build("linking", config.linking.backend, options, device=device or config.device)
        ner_stage = ner or _build(config, ("ner",), device)[0]
        docs, owners = [], []
        for e in entries:
            for k, text in enumerate(e["texts"]):
                docs.append(Document(id=f"webnlg/{e['id']}/{k}", text=text))
                owners.append(e)
        t0 = time.perf_counter()
        for s in range(0, len(docs), config.batch_size):
            linker(ner_stage(docs[s : s + config.batch_size]))
        entities, remap = linker.finalize()
        seconds = time.perf_counter() - t0
    by_key = {e.key: e for e in entities}
    align_name = _aligner()
    counts: Counter = Counter()
    errors: Counter = Counter()
    for doc, entry in zip(docs, owners):
        for m in doc.mentions:
            if m.type not in ("PER", "ORG", "LOC", "MISC") or not m.entity:
                continue
            entity = by_key.get(remap.get(m.entity, m.entity))
            if m.kind == "pronoun":
                target = align_name(entity.name, entry["entities"]) if entity else None
                counts["pronouns"] += 1
                counts["pronouns_subject"] += target == entry["subject"]
                continue
            counts["mentions"] += 1
            gold = align_name(m.text, entry["entities"])
            if gold is None:
                continue
            counts["aligned"] += 1
            predicted = entity.same_as[0] if entity and entity.same_as else None
            want = None if gold in held else DBPEDIA + gold
            ok = predicted == want
            counts["correct"] += ok
            counts["nil_gold"] += want is None
            counts["nil_correct"] += ok and want is None
            if not ok:
                errors[f"{m.text!r} -> {predicted.rsplit('/', 1)[-1] if predicted else 'NIL'} (gold {gold if want else 'NIL'})"] += 1
    r = lambda a, b: round(100 * a / b, 2) if b else 0.0  # noqa: E731
    in_kb = counts["aligned"] - counts["nil_gold"]
    return {
        "dataset": str(root / split), "entries": len(entries), "texts": len(docs), "kb_entries": len(kb_names) - len(held),
        "holdout": holdout, "mentions": counts["mentions"], "aligned_mentions": counts["aligned"],
        "accuracy": r(counts["correct"], counts["aligned"]),
        "accuracy_in_kb": r(counts["correct"] - counts["nil_correct"], in_kb),
        "accuracy_nil": r(counts["nil_correct"], counts["nil_gold"]),
        "pronouns": counts["pronouns"], "pronouns_to_subject": r(counts["pronouns_subject"], counts["pronouns"]),
        "seconds": round(seconds, 2),
        "top_errors": [f"{k} x{v}" for k, v in errors.most_common(12)],
    }


def format_kblink(result: dict[str, Any]) -> str:
    lines = [
        f"WebNLG {result['dataset']}: {result['entries']} entries, {result['texts']} texts, KB of {result['kb_entries']} entities"
        + (f" ({100 * result['holdout']:.0f}% of the gold entities held out: their mentions should be NIL)" if result["holdout"] else ""),
        f"mentions aligned to a gold entity  {result['aligned_mentions']} of {result['mentions']}",
        f"accuracy           {result['accuracy']:.2f}",
        f"  entity in the KB {result['accuracy_in_kb']:.2f}",
    ]
    if result["holdout"]:
        lines.append(f"  NIL              {result['accuracy_nil']:.2f}")
    lines += [f"pronouns resolved to the entry's main subject  {result['pronouns_to_subject']:.2f} of {result['pronouns']}",
              f"time               {result['seconds']:.1f} s (ner + linking)", "frequent errors:",
              *[f"  {e}" for e in result["top_errors"]]]
    return "\n".join(lines)


# -- scale ---------------------------------------------------------------------------------
def _perturb(name: str, rng) -> str:
    """A spelling variant of a name: a typo, a dropped middle word or swapped words."""
    words = name.split()
    roll = rng.random()
    if roll < 0.25 and len(words) >= 3:
        return " ".join(words[:1] + words[2:])
    if roll < 0.5 and len(words) == 2:
        return f"{words[1]} {words[0]}"
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long:
        return name + " " + name.split()[-1] if False else name + "s"
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    op = rng.random()
    w = w[:j] + w[j + 1 :] if op < 0.4 else (w[:j] + w[j] + w[j:] if op < 0.7 else w[:j] + w[j + 1] + w[j] + w[j + 2 :])
    words[i] = w
    return " ".join(words)


def scale_entities(path: str | Path, n: int, duplicate_share: float = 0.2, seed: int = 0) -> tuple[list[str], list[int]]:
    """`n` entity names from FB15k-237 labels and the true entity of each: (1 - duplicate_share)
    originals, the rest spelling variants of random originals. Beyond the 14,515 labels, an
    original is two labels' words combined ("Denton Obama"), to reach 100,000 distinct names."""
    import json as _json
    import random

    from kgbuild.linking.rules import normalise

    p = Path(path)
    if not p.is_file():
        from kgbuild.errors import CorpusError
        raise CorpusError(f"{p} not found", hint="get FB15k-237's entity2wikidata.json into ../shared/data/fb15k-237")
    labels = list(dict.fromkeys(r["label"] for r in _json.loads(p.read_text(encoding="utf-8")).values() if r.get("label")))
    rng = random.Random(seed)
    n_orig = n - int(duplicate_share * n)
    names, seen = [], set()
    i = 0
    while len(names) < n_orig:
        if i < len(labels):
            name = labels[i]
        else:
            a, b = rng.choice(labels), rng.choice(labels)
            name = f"{a.split()[0]} {b.split()[-1]}"
        i += 1
        if normalise(name) and normalise(name) not in seen:
            seen.add(normalise(name))
            names.append(name)
    truth = list(range(len(names)))
    while len(names) < n:
        k = rng.randrange(n_orig)
        variant = _perturb(names[k], rng)
        if normalise(variant) in seen:
            continue
        seen.add(normalise(variant))
        names.append(variant)
        truth.append(k)
    return names, truth


def measure_scale(path: str | Path, n: int, config: Any = None, device: str | None = None) -> dict[str, Any]:
    """Time and peak memory of linking `n` entities (one single-mention document each, one
    type, so one block: the hardest case) with the linking stage, and the quality of its
    cross-document merges: pairwise precision and recall against the known variants."""
    from kgbuild import registry
    from kgbuild.config import Config
    from kgbuild.model import Mention

    config = config or Config()
    names, truth = scale_entities(path, n)
    linker = registry.build("linking", config.linking.backend, config.linking.options, device=device or config.device)
    if hasattr(linker, "encoder"):
        linker.encoder()  # model loading is not linking
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, cpu0 = time.perf_counter(), time.process_time()
    docs = [Document(id=f"e{i}", text=name, mentions=[Mention(0, len(name), name, "MISC", "MISC", 0)])
            for i, name in enumerate(names)]
    linker(docs)
    entities, remap = linker.finalize()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pred = [remap.get(d.mentions[0].entity, d.mentions[0].entity) for d in docs]
    # pairs among the predicted clusters vs the true ones
    same_pred: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pred):
        same_pred[p].append(i)
    tp = fp = 0
    for members in same_pred.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                if truth[members[x]] == truth[members[y]]:
                    tp += 1
                else:
                    fp += 1
    gold_pairs = sum(c * (c - 1) // 2 for c in Counter(truth).values())
    return {
        "entities_in": n, "entities_out": len(entities), "seconds": round(seconds, 2),
        # CPU time of all threads: on a shared machine the wall time also counts other work
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(rss1 / 1024, 1), "rss_growth_mb": round((rss1 - rss0) / 1024, 1),
        "merge_precision": round(100 * tp / (tp + fp), 2) if tp + fp else 0.0,
        "merge_recall": round(100 * tp / gold_pairs, 2) if gold_pairs else 0.0,
        "true_pairs": gold_pairs,
    }


def format_scale(result: dict[str, Any]) -> str:
    return (f"{result['entities_in']:,} entities -> {result['entities_out']:,} after linking in {result['seconds']:.1f} s "
            f"({result['cpu_seconds']:.1f} s CPU); "
            f"peak RSS {result['peak_rss_mb']:.0f} MB (+{result['rss_growth_mb']:.0f} MB while linking); "
            f"merges: precision {result['merge_precision']:.2f}, recall {result['merge_recall']:.2f} "
            f"of {result['true_pairs']} true pairs")
