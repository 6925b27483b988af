"""Re-DocRED benchmark (Tan et al. 2022, a revision of DocRED's Wikipedia documents): runs the
ner -> relations -> linking stages on each document's text and scores entity mentions and
relation triples against the annotations, end to end (entities are not given).

Files: /work/shared/data/redocred/dev_revised.json (500 documents, 17,284 relation triples over
96 Wikidata properties) from github.com/tonytan48/Re-DocRED (MIT). Each document has `title`,
`sents` (tokenised sentences), `vertexSet` (entities, each a list of mentions with `name`,
`sent_id`, `pos`, `type`) and `labels` (`h`, `t` vertexSet indexes, `r` property id).

Scoring, micro-averaged over documents:
- mention recall: a gold mention is found when a predicted mention of the same document has the
  same normalised text (casefold, whitespace collapsed, punctuation stripped at the ends);
- relations: predictions are taken at entity level, one per (head entity, property, tail entity)
  of a document (entities from the linking stage, or the normalised mention text without it); a
  prediction is correct when some name of its head and of its tail is a mention name of a gold
  triple's head and tail entities and the property is the same; each gold triple is matched once;
- same-sentence share: the gold triples whose head and tail have a mention in one sentence (all a
  sentence-by-sentence extractor can see), and the recall on those alone."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from kgbuild.errors import CorpusError
from kgbuild.model import Document
from kgbuild.relations.features import normalise

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "shared" / "data" / "redocred" / "dev_revised.json"
TOP_RELATIONS = 15


def read_redocred(path: str | Path, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Raw Re-DocRED documents [offset : offset + limit] of a JSON file."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"Re-DocRED file {p} not found",
                          hint="get dev_revised.json from github.com/tonytan48/Re-DocRED (data/) into ../shared/data/redocred")
    data = json.loads(p.read_text(encoding="utf-8"))
    end = None if limit is None else offset + limit
    return data[offset:end]


def to_document(raw: dict[str, Any], index: int) -> Document:
    """The document's text: its tokens joined by single spaces, sentence after sentence."""
    text = " ".join(" ".join(s) for s in raw["sents"])
    return Document(id=f"redocred/{index}", text=text, source="redocred", meta={"title": raw["title"]})


def gold_of(raw: dict[str, Any]) -> tuple[list[set[str]], list[tuple[int, str, int]], Counter]:
    """(names of each gold entity, gold triples (h, r, t), Counter of gold mention names)."""
    entities = [{normalise(m["name"]) for m in ent} - {""} for ent in raw["vertexSet"]]
    triples = sorted({(lab["h"], lab["r"], lab["t"]) for lab in raw["labels"]})
    mentions = Counter(normalise(m["name"]) for ent in raw["vertexSet"] for m in ent)
    return entities, triples, mentions


def predicted_triples(doc: Document) -> dict[tuple[str, str, str], float]:
    """Entity-level predictions of a document: (head key, property, tail key) -> best confidence."""
    out: dict[tuple[str, str, str], float] = {}
    for rm in doc.relations:
        h, t = doc.mentions[rm.head], doc.mentions[rm.tail]
        key = (h.entity or normalise(h.text), rm.relation, t.entity or normalise(t.text))
        out[key] = max(out.get(key, 0.0), rm.confidence)
    return out


def entity_names(doc: Document) -> dict[str, set[str]]:
    """Entity key -> normalised names of its mentions in the document."""
    names: dict[str, set[str]] = defaultdict(set)
    for m in doc.mentions:
        n = normalise(m.text)
        names[m.entity or n].add(n)
    return names


def same_sentence(raw: dict[str, Any], triples: list[tuple[int, str, int]]) -> set[int]:
    """Indexes of the triples whose head and tail have a mention in one sentence."""
    sents = [{m["sent_id"] for m in ent} for ent in raw["vertexSet"]]
    return {g for g, (h, _, t) in enumerate(triples) if sents[h] & sents[t]}


def match_document(doc: Document, raw: dict[str, Any]) -> dict[str, Any]:
    """Counts for one document: mention recall, relation true positives per property, and how many
    gold triples lie within one sentence and how many of those were found."""
    gold_entities, gold_triples, gold_mentions = gold_of(raw)
    predicted_names = {normalise(m.text) for m in doc.mentions}
    found = sum(c for n, c in gold_mentions.items() if n in predicted_names)
    names = entity_names(doc)
    used: set[int] = set()
    tp, pred, gold = Counter(), Counter(), Counter(r for _, r, _ in gold_triples)
    # most confident first, so that a duplicate of a matched triple is the one left unmatched
    for (hk, r, tk), _conf in sorted(predicted_triples(doc).items(), key=lambda kv: -kv[1]):
        pred[r] += 1
        hn, tn = names.get(hk, {hk}), names.get(tk, {tk})
        for g, (gh, gr, gt) in enumerate(gold_triples):
            if g not in used and gr == r and gold_entities[gh] & hn and gold_entities[gt] & tn:
                used.add(g)
                tp[r] += 1
                break
    within = same_sentence(raw, gold_triples)
    return {"mentions_gold": sum(gold_mentions.values()), "mentions_found": found, "tp": tp, "pred": pred, "gold": gold,
            "same_sentence_gold": len(within), "same_sentence_tp": len(within & used)}


def _prf(tp: int, pred: int, gold: int) -> dict[str, float]:
    p = tp / pred if pred else 0.0
    r = tp / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(100 * p, 2), "recall": round(100 * r, 2), "f1": round(100 * f, 2),
            "tp": tp, "predicted": pred, "gold": gold}


def build_stages(config: Any, device: str | None = None):
    """A callable docs -> docs running ner, relations and linking as the config says."""
    try:
        from kgbuild.runner import Pipeline  # type: ignore[attr-defined]
    except ImportError:
        Pipeline = None
    if Pipeline is not None:
        pipeline = Pipeline(config, device=device)
        return pipeline.process, getattr(pipeline, "info", lambda: {})
    from kgbuild import registry

    dev = device or config.device
    stages = []
    for name in ("ner", "relations", "linking"):
        stage = getattr(config, name)
        try:
            stages.append(registry.build(name, stage.backend, stage.options, device=dev))
        except Exception:  # noqa: BLE001 - linking may not exist yet; NER and relations must
            if name == "linking":
                continue
            raise

    def process(docs: list[Document]) -> list[Document]:
        for stage in stages:
            docs = stage(docs)
        return docs

    def info() -> dict[str, Any]:
        return {type(s).__name__: s.info() for s in stages if hasattr(s, "info")}

    return process, info


def evaluate_redocred(path: str | Path, config: Any = None, limit: int | None = None, offset: int = 0,
                      device: str | None = None, batch_size: int | None = None, pipeline: Any = None) -> dict[str, Any]:
    """Run the pipeline on Re-DocRED documents [offset : offset + limit] and score it (see module docstring).

    `pipeline`: an already built kgbuild.runner.Pipeline to reuse (its models stay loaded)."""
    from kgbuild.config import Config

    config = config or getattr(pipeline, "config", None) or Config()
    raws = read_redocred(path, limit, offset)
    docs = [to_document(raw, offset + i) for i, raw in enumerate(raws)]
    if pipeline is not None:
        if hasattr(pipeline, "reset"):
            pipeline.reset()
        process, info = pipeline.process, getattr(pipeline, "info", lambda: {})
    else:
        process, info = build_stages(config, device)
    n_words = sum(d.n_words for d in docs)
    step = batch_size or config.batch_size
    start = time.perf_counter()
    for s in range(0, len(docs), step):
        process(docs[s : s + step])
    seconds = time.perf_counter() - start

    tp, pred, gold = Counter(), Counter(), Counter()
    m_gold = m_found = ss_gold = ss_tp = 0
    for doc, raw in zip(docs, raws):
        c = match_document(doc, raw)
        tp.update(c["tp"]); pred.update(c["pred"]); gold.update(c["gold"])
        m_gold += c["mentions_gold"]; m_found += c["mentions_found"]
        ss_gold += c["same_sentence_gold"]; ss_tp += c["same_sentence_tp"]
    n_gold = sum(gold.values())
    top = [r for r, _ in gold.most_common(TOP_RELATIONS)]
    return {
        "dataset": str(path),
        "offset": offset,
        "documents": len(docs),
        "words": n_words,
        "seconds": round(seconds, 2),
        "words_per_second": round(n_words / seconds, 1) if seconds else 0.0,
        "mention_recall": round(100 * m_found / m_gold, 2) if m_gold else 0.0,
        "relations": _prf(sum(tp.values()), sum(pred.values()), n_gold),
        "same_sentence": {"gold": ss_gold, "share": round(100 * ss_gold / n_gold, 2) if n_gold else 0.0,
                          "tp": ss_tp, "recall": round(100 * ss_tp / ss_gold, 2) if ss_gold else 0.0},
        "per_relation": {r: _prf(tp[r], pred[r], gold[r]) for r in top},
        "pipeline": info(),
    }


def format_report(result: dict[str, Any]) -> str:
    """A plain-text report of evaluate_redocred's result."""
    rel = result["relations"]
    lines = [
        f"Re-DocRED {result['dataset']}  documents {result['offset']}..{result['offset'] + result['documents'] - 1}"
        f"  ({result['documents']} docs, {result['words']} words)",
        f"speed          {result['words_per_second']:.0f} words/s  ({result['seconds']:.1f} s)",
        f"mention recall {result['mention_recall']:.2f}",
        f"relations      P {rel['precision']:.2f}  R {rel['recall']:.2f}  F1 {rel['f1']:.2f}"
        f"  (tp {rel['tp']}, predicted {rel['predicted']}, gold {rel['gold']})",
    ]
    if "same_sentence" in result:
        ss = result["same_sentence"]
        lines.append(f"same sentence  {ss['share']:.2f}% of gold ({ss['gold']}) have head and tail in one sentence;"
                     f" recall on those {ss['recall']:.2f} (tp {ss['tp']})")
    lines += [
        "",
        f"{'property':<10}{'P':>8}{'R':>8}{'F1':>8}{'pred':>7}{'gold':>7}",
    ]
    for r, s in result["per_relation"].items():
        lines.append(f"{r:<10}{s['precision']:>8.2f}{s['recall']:>8.2f}{s['f1']:>8.2f}{s['predicted']:>7}{s['gold']:>7}")
    return "\n".join(lines)
