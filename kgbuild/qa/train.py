"""Fitting a path scorer on question-answer pairs (`kgbuild train qa`).

A question's training label is the relation path from its topic whose stated answers best match
its gold answers (F0.5, which weighs precision above recall; the shorter path on a tie): nobody
has to annotate paths. Candidate scorers
(zero-shot, a softmax classifier and a small MLP on frozen MiniLM question embeddings) are
compared by hits@1 on a held-out share of the questions; the best is refitted on all of them."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from kgbuild.errors import KgbuildError
from kgbuild.qa.answer import QA_DIR, Answerer
from kgbuild.qa.index import GraphIndex, Path_
from kgbuild.qa.scorer import PathScorer, fit_classifier, question_text
from kgbuild.qa.topic import Topic

# Candidate scorers: name -> (classifier, question encoder).
CANDIDATES = {"zeroshot": ("zeroshot", "contextual"), "linear": ("linear", "contextual"),
              "mlp": ("mlp", "contextual"), "static-linear": ("linear", "static")}
DEV_FRACTION = 0.1
# How a path's stated answers are matched against a question's gold answers to label it: F-beta
# with beta 0.5. In an incomplete graph the right path misses some answers (low recall) but rarely
# states a wrong one, while a wrong path that reaches many entities ("films of the same year")
# catches gold answers by chance. With F1, half of MetaQA's KB gave 3-hop labels that taught the
# scorer such paths (its top path was the question's own for 58% of 3-hop test questions, 76% with
# F0.5); on a complete graph the right path matches exactly under either.
LABEL_BETA = 0.5


@dataclass
class QAExample:
    """One question with its gold answers (names)."""

    question: str
    answers: list[str]
    line: int = 0  # line in its file


@dataclass
class Prepared:
    """Questions made ready for training or evaluation: topic found, gold answers as ids, and
    the question encodings (per encoder kind, made when first asked for)."""

    examples: list[QAExample]
    topics: list[Topic]
    gold: list[set[int]]
    texts: list[str]  # what the encoder reads (the question without its topic's name)
    encoded: dict[str, np.ndarray] = field(default_factory=dict)

    def vectors(self, answerer: Answerer, kind: str) -> np.ndarray:
        if kind not in self.encoded:
            self.encoded[kind] = answerer.encoder_of(kind).encode(self.texts)
        return self.encoded[kind]


def read_questions(path: str | Path) -> list[QAExample]:
    """`question<TAB>answer1|answer2` lines (MetaQA's format; the topic may be in [brackets])."""
    p = Path(path)
    if not p.is_file():
        raise KgbuildError(f"question file {p} not found",
                           hint="pass a file of question<TAB>answer1|answer2 lines")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        question, _, answers = line.partition("\t")
        gold = [a.strip() for a in answers.split("|") if a.strip()]
        if question.strip() and gold:
            out.append(QAExample(question.strip(), gold, n))
    if not out:
        raise KgbuildError(f"no question in {p}", hint="each line: question<TAB>answer1|answer2")
    return out


def prepare(answerer: Answerer, examples: list[QAExample]) -> Prepared:
    """Find each question's topic and map its gold answer names to entity ids."""
    topics = [answerer.topic(ex.question) for ex in examples]
    texts = [question_text(ex.question, t.mention) for ex, t in zip(examples, topics)]
    exact = answerer.topics.exact
    gold = [{i for a in ex.answers for i in exact.get(a, [])} for ex in examples]
    return Prepared(examples, topics, gold, texts)


def best_paths(index: GraphIndex, topic: int, gold: set[int], max_hops: int, exact: bool = False) -> list[Path_]:
    """The paths from `topic` whose stated answers best match `gold` (F0.5, then the fewest hops):
    several when they tie (a film's director who also wrote it), none when no path reaches a
    gold answer."""
    if not gold:
        return []
    wanted = np.fromiter(gold, dtype=np.int64)
    best: list[Path_] = []
    best_key = None
    for path, ends in index.answer_sets(topic, max_hops, exact=exact).items():
        if not len(ends):
            continue
        hit = len(np.intersect1d(ends, wanted, assume_unique=True))
        if not hit:
            continue
        precision, recall = hit / len(ends), hit / len(wanted)
        b2 = LABEL_BETA**2
        key = (round(-(1 + b2) * precision * recall / (b2 * precision + recall), 9), len(path))
        if best_key is None or key < best_key:
            best, best_key = [path], key
        elif key == best_key:
            best.append(path)
    return best


def label_paths(index: GraphIndex, data: Prepared, hops: list[int], exact: bool) -> list[list[Path_]]:
    """The training paths of each question (empty: topic unknown or no path reaches an answer).
    `hops[i]` is the longest path looked at for question i."""
    return [[] if topic.entity is None else best_paths(index, topic.entity, gold, h, exact=exact)
            for topic, gold, h in zip(data.topics, data.gold, hops)]


def hits_at_1(answerer: Answerer, data: Prepared, rows: list[int] | None = None) -> float:
    """Share of questions (percent) whose best answer is a gold answer."""
    rows = list(range(len(data.examples))) if rows is None else rows
    if not rows:
        return 0.0
    vectors = data.vectors(answerer, answerer.scorer.encoder)
    hits = 0
    for i in rows:
        result = answerer.answer(data.examples[i].question, top=1, vector=vectors[i],
                                 topic=data.topics[i], run_queries=False)
        if result.answers and result.answers[0].label in data.examples[i].answers:
            hits += 1
    return 100.0 * hits / len(rows)


def fit_scorer(answerer: Answerer, data: Prepared, paths: list[list[Path_]], name: str, rows: list[int] | None = None,
               seed: int = 0) -> PathScorer:
    """Candidate scorer `name` (a key of CANDIDATES) fitted on the labelled `rows` of `data`.
    A question whose best paths tie spreads its target over them, so the classifier learns the
    path they share with other questions of their kind."""
    kind, encoder = CANDIDATES[name]
    model = answerer.scorer.model
    if kind == "zeroshot":
        return PathScorer(model=model)
    rows = [i for i in (range(len(paths)) if rows is None else rows) if paths[i]]
    if not rows:
        raise KgbuildError("no training question has a relation path from its topic to a gold answer",
                           hint="check that the questions' topics and answers are names in the graph")
    classes = sorted({p for i in rows for p in paths[i]})
    class_id = {p: c for c, p in enumerate(classes)}
    y = np.zeros((len(rows), len(classes)), dtype=np.float32)
    for r, i in enumerate(rows):
        for p in paths[i]:
            y[r, class_id[p]] = 1.0 / len(paths[i])
    weights = fit_classifier(data.vectors(answerer, encoder)[rows], y, len(classes), kind, seed=seed)
    index = answerer.index
    names = [[[index.hop_name(h).relation, index.hop_name(h).inverse] for h in p] for p in classes]
    return PathScorer(kind=kind, model=model, encoder=encoder, classes=names, weights=weights)


def train_scorer(answerer: Answerer, data: Prepared, paths: list[list[Path_]], seed: int = 0,
                 candidates: tuple[str, ...] = tuple(CANDIDATES), dev_fraction: float = DEV_FRACTION) -> PathScorer:
    """Choose among `candidates` by hits@1 on a held-out share of `data`, then refit the
    chosen one on all of it. The choice and the figures are in the scorer's `report`."""
    t0 = time.perf_counter()
    labelled = [i for i, p in enumerate(paths) if p]
    shuffled = labelled[:]
    random.Random(seed).shuffle(shuffled)
    n_dev = int(round(len(shuffled) * dev_fraction)) if len(shuffled) >= 10 else 0
    dev, fit_rows = sorted(shuffled[:n_dev]), sorted(shuffled[n_dev:])
    dev_hits: dict[str, float] = {}
    kept = answerer.scorer
    if dev:
        for name in candidates:
            answerer.scorer = fit_scorer(answerer, data, paths, name, fit_rows, seed)
            dev_hits[name] = round(hits_at_1(answerer, data, dev), 2)
        answerer.scorer = kept
        # on a tie: a trained scorer over zero-shot, the contextual encoder over the static one
        # (it reads word order; with a handful of dev questions a tie says little)
        choice = max(dev_hits, key=lambda k: (dev_hits[k], k != "zeroshot", not k.startswith("static")))
    else:
        choice = "linear"
    scorer = fit_scorer(answerer, data, paths, choice, None, seed)
    scorer.report = {
        "chosen": choice,
        "dev_hits@1": dev_hits,
        "questions": len(data.examples),
        "labelled": len(labelled),
        "dev_questions": len(dev),
        "path_classes": len(scorer.classes),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return scorer


def train_qa(kb: str | Path, questions: str | Path, out: str | Path | None = None, hops: int = 3,
             device: str = "cpu", seed: int = 0) -> tuple[PathScorer, Path]:
    """Fit a path scorer for the graph `kb` (an output folder, or a head<TAB>relation<TAB>tail
    file) on the question file `questions`, and save it in `out` (default: KB/qa for an output
    folder). `kgbuild ask OUT --scorer DIR` uses it; saved as OUT/qa, `kgbuild ask OUT` does."""
    from kgbuild.embed.graph import read_graph
    from kgbuild.qa.load import kb_graph, read_triples

    kb = Path(kb)
    if kb.is_dir():
        graph = read_graph(kb)
        target = Path(out) if out else kb / QA_DIR
    else:
        graph = kb_graph(read_triples(kb).triples)
        if out is None:
            raise KgbuildError("say where to save the scorer", hint="pass -o QA_DIR")
        target = Path(out)
    answerer = Answerer(graph, PathScorer(), device=device)
    data = prepare(answerer, read_questions(questions))
    paths = label_paths(answerer.index, data, [hops] * len(data.examples), exact=False)
    scorer = train_scorer(answerer, data, paths, seed=seed)
    scorer.save(target)
    return scorer, target
