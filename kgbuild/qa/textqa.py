"""QA on a graph built from text (`kgbuild eval qa-text`): Re-DocRED dev documents go through
`kgbuild run`; questions are written from their gold relations with one template per Wikidata
property ("What country is X in?" for P17), and `kgbuild ask`'s zero-shot answering is scored
hits@1 against every name of the gold tail entity. This checks the whole path on an extracted
graph (extraction misses bound what any answerer can reach), not the answerer alone."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from kgbuild.linking.rules import normalise
from kgbuild.qa.answer import Answerer

# One question per property, for properties frequent in Re-DocRED dev.
TEMPLATES = {
    "P17": "What country is {} in?",
    "P131": "Where is {} located?",
    "P27": "What is the country of citizenship of {}?",
    "P19": "Where was {} born?",
    "P20": "Where did {} die?",
    "P569": "When was {} born?",
    "P570": "When did {} die?",
    "P571": "When was {} founded?",
    "P577": "When was {} published?",
    "P69": "Where was {} educated?",
    "P108": "Who was the employer of {}?",
    "P159": "Where is the headquarters of {}?",
    "P495": "What is the country of origin of {}?",
    "P50": "Who is the author of {}?",
    "P57": "Who directed {}?",
    "P175": "Who performed {}?",
    "P26": "Who is the spouse of {}?",
    "P36": "What is the capital of {}?",
    "P463": "What is {} a member of?",
    "P361": "What is {} part of?",
}


def questions_from_gold(raw_docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One question per (document, head entity, property) with a template: the head's first
    mention name asked about, every mention name of the tails as gold answers."""
    out = []
    for d, raw in enumerate(raw_docs):
        grouped: dict[tuple[int, str], set[int]] = {}
        for lab in raw["labels"]:
            if lab["r"] in TEMPLATES:
                grouped.setdefault((lab["h"], lab["r"]), set()).add(lab["t"])
        for (h, r), tails in sorted(grouped.items()):
            head = raw["vertexSet"][h][0]["name"]
            gold = sorted({m["name"] for t in tails for m in raw["vertexSet"][t]})
            out.append({"document": d, "property": r, "question": TEMPLATES[r].format(head), "head": head,
                        "answers": gold})
    return out


def evaluate_textqa(path: str | Path, limit: int = 20, offset: int = 0, config: Any = None,
                    out: str | Path | None = None) -> dict[str, Any]:
    """Build the graph of Re-DocRED documents [offset, offset + limit) with `kgbuild run` (into
    `out`, or a temporary folder) and score hits@1 on the questions written from their gold."""
    from kgbuild.eval.redocred import read_redocred, to_document
    from kgbuild.runner import run

    t0 = time.perf_counter()
    raw_docs = read_redocred(path, limit=limit, offset=offset)
    questions = questions_from_gold(raw_docs)
    with tempfile.TemporaryDirectory(prefix="kgbuild-textqa-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for i, raw in enumerate(raw_docs):
            (corpus / f"{offset + i:04d}.txt").write_text(to_document(raw, offset + i).text, encoding="utf-8")
        target = Path(out) if out else Path(tmp) / "out"
        run_result = run(corpus, target, config, quiet=True)
        build_seconds = time.perf_counter() - t0
        answerer = Answerer.open(target, embeddings=False)
        found = hits = 0
        per_property: dict[str, list[int]] = {}
        t1 = time.perf_counter()
        for q in questions:
            result = answerer.answer(q["question"], top=1)
            gold = {normalise(a) for a in q["answers"]}
            hit = bool(result.answers) and normalise(result.answers[0].label) in gold
            found += result.found
            hits += hit
            per_property.setdefault(q["property"], [0, 0])
            per_property[q["property"]][0] += 1
            per_property[q["property"]][1] += hit
        answer_seconds = time.perf_counter() - t1
        answerer.store = None
    n = len(questions)
    return {
        "documents": len(raw_docs), "offset": offset, "entities": run_result.entities, "facts": run_result.facts,
        "questions": n, "topic_found": found, "hits@1": round(100.0 * hits / n, 2) if n else 0.0,
        "per_property": {p: {"questions": a, "hits@1": round(100.0 * b / a, 2)} for p, (a, b) in sorted(per_property.items())},
        "build_seconds": round(build_seconds, 1), "ms_per_question": round(1000 * answer_seconds / max(n, 1), 1),
    }


def format_textqa(r: dict[str, Any]) -> str:
    lines = [f"Re-DocRED documents {r['offset']}-{r['offset'] + r['documents'] - 1}: {r['entities']} entities, "
             f"{r['facts']} facts (built in {r['build_seconds']} s)",
             f"{r['questions']} questions from gold relations; topic found for {r['topic_found']}; "
             f"hits@1 {r['hits@1']:.2f} ({r['ms_per_question']} ms per question)"]
    for p, v in r["per_property"].items():
        lines.append(f"  {p:<6}{v['questions']:>5} questions  hits@1 {v['hits@1']:6.2f}")
    return "\n".join(lines)
