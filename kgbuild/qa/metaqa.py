"""The MetaQA benchmark (`kgbuild eval qa`): questions over the WikiMovies KB (134k triples,
43k entities, 9 relations), 1, 2 and 3 hops, topic entity in [brackets].

Only MetaQA's dev questions are at hand (../shared/data/metaqa), so each hop's dev file is
shuffled with a fixed seed and split: the first `train_fraction` trains the path scorer, the
rest is reported. `drop_kb` removes that share of the KB's triples at random (fixed seed)
before anything else, as EmbedKGQA's half-KB setting does; then rules read off what is left
(kgbuild/qa/rules.py) and/or embeddings trained on it bridge the missing hops (`completion`)."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kgbuild.errors import KgbuildError
from kgbuild.qa.answer import Answerer
from kgbuild.qa.load import kb_graph, read_triples
from kgbuild.qa.scorer import PathScorer, QuestionEncoder
from kgbuild.qa.train import QAExample, hits_at_1, label_paths, prepare, read_questions, train_scorer

DEV_FILE = "qa_dev.txt"
LATENCY_SAMPLE = 300  # questions per hop timed one by one, end to end
# Embeddings for the incomplete KB: DistMult scored against every entity (LCWA) with cross-entropy,
# as the large-graph presets of `kgbuild embed`; the matrix-product scoring (kgbuild/embed/scoring.py)
# makes an epoch of the half MetaQA KB (70k queries x 35k entities) about a minute on 2 CPU cores.
# A small validation share keeps the early-stopping evaluations cheap.
EMBED_CONFIG = dict(model="DistMult", embedding_dim=200, training_loop="lcwa", loss="crossentropy",
                    label_smoothing=0.1, inverse_triples=True, learning_rate=0.01, batch_size=256,
                    epochs=20, eval_every=5, patience=2)
EMBED_VALIDATION = 0.02


def question_files(questions: str | Path, hops: list[int]) -> dict[str, Path]:
    """{group name: file}: one file as given, or the MetaQA folder's N-hop/qa_dev.txt for each hop."""
    q = Path(questions)
    if q.is_file():
        return {q.stem: q}
    if q.is_dir():
        files = {f"{h}-hop": q / f"{h}-hop" / DEV_FILE for h in hops}
        missing = [str(f) for f in files.values() if not f.is_file()]
        if missing:
            raise KgbuildError(f"{', '.join(missing)} not found", hint="pass the MetaQA folder (N-hop/qa_dev.txt) or a question file")
        return files
    raise KgbuildError(f"{q} not found", hint="pass the MetaQA folder, e.g. ../shared/data/metaqa, or a question file")


def drop_triples(triples: list[tuple[str, str, str]], share: float, seed: int) -> list[tuple[str, str, str]]:
    """`triples` without a random `share` of them (fixed seed), in their order."""
    if share <= 0:
        return triples
    rng = random.Random(seed)
    drop = set(rng.sample(range(len(triples)), int(round(share * len(triples)))))
    return [t for i, t in enumerate(triples) if i not in drop]


def train_kb_embeddings(graph, seed: int, save: str | Path | None = None, epochs: int | None = None):
    """Embeddings of `graph` (a GraphTriples) with EMBED_CONFIG, loaded from `save` when it
    holds ones of the same triples, else trained (and saved there)."""
    import hashlib

    from kgbuild.embed.presets import TrainConfig
    from kgbuild.embed.train import EmbeddingResult, fit, split_triples
    from kgbuild.device import resolve_device

    config = TrainConfig(**EMBED_CONFIG)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    digest = hashlib.sha1("\n".join("\t".join(t) for t in graph.triples).encode()).hexdigest()[:16]
    stamp = Path(save) / "triples.sha1" if save is not None else None
    if stamp is not None and stamp.is_file() and stamp.read_text().strip() == digest:
        emb = EmbeddingResult.load(save)
        if emb.config == config and emb.seed == seed:
            return emb
    training, validation = split_triples(graph.triples, config, seed, validation_ratio=EMBED_VALIDATION)
    fitted = fit(training, validation, None, config, device="cpu", seed=seed, quiet=True)
    emb = EmbeddingResult(
        config=config, entities=training.num_entities, relations=training.num_relations,
        training_triples=training.num_triples,
        validation_triples=validation.num_triples if validation is not None else 0,
        epochs=len(fitted.curves.losses), best_epoch=fitted.curves.best_epoch, metrics=fitted.metrics,
        curves=fitted.curves, seconds=round(fitted.seconds, 2), device=str(resolve_device("cpu")), seed=seed,
        base=graph.base, model=fitted.model, training=training, validation=validation)
    if stamp is not None:
        emb.save(save)
        stamp.write_text(digest + "\n")
    return emb


def evaluate_metaqa(kb: str | Path, questions: str | Path, hops: list[int] | None = None,
                    train_fraction: float = 0.5, drop_kb: float = 0.0, seed: int = 0, limit: int | None = None,
                    device: str = "cpu", embeddings: str | Path | None = None, epochs: int | None = None,
                    latency_sample: int = LATENCY_SAMPLE, candidates: tuple[str, ...] | None = None,
                    completion: str = "rules") -> dict[str, Any]:
    """Hits@1 per question group (hop) on the questions not used for training, and latency.

    `limit` keeps the first N questions of each group after the seeded shuffle (both parts)."""
    t0 = time.perf_counter()
    hops = hops or [1, 2, 3]
    files = question_files(questions, hops)
    if not 0 < train_fraction < 1:
        raise KgbuildError(f"--train-fraction {train_fraction} is not between 0 and 1", hint="e.g. 0.5")
    data = read_triples(kb)
    kept = drop_triples(data.triples, drop_kb, seed)
    graph = kb_graph(kept)
    answerer = Answerer(graph, PathScorer(), encoder=QuestionEncoder(device=device), device=device,
                        completion=completion)
    load_seconds = time.perf_counter() - t0
    report: dict[str, Any] = {
        "kb": str(kb), "kb_triples": len(data.triples), "kb_triples_used": len(kept), "drop_kb": drop_kb,
        "seed": seed, "train_fraction": train_fraction, "limit": limit, "load_seconds": round(load_seconds, 1),
        "completion": completion,
    }
    if drop_kb > 0 and completion in ("auto", "embeddings"):
        t1 = time.perf_counter()
        emb = train_kb_embeddings(graph, seed, save=embeddings, epochs=epochs)
        answerer.use_embeddings(emb)
        report["embeddings"] = {"model": emb.config.model, "dim": emb.config.embedding_dim,
                                "epochs": emb.epochs, "validation": emb.metrics,
                                "seconds": round(time.perf_counter() - t1, 1)}

    groups: dict[str, tuple[list[QAExample], list[QAExample], int]] = {}
    for name, path in files.items():
        examples = read_questions(path)
        random.Random(seed).shuffle(examples)
        if limit:
            examples = examples[:limit]
        n_train = int(round(len(examples) * train_fraction))
        max_hops = int(name[0]) if name[:1].isdigit() and name.endswith("-hop") else 3
        groups[name] = (examples[:n_train], examples[n_train:], max_hops)

    t2 = time.perf_counter()
    train_examples = [ex for tr, _, _ in groups.values() for ex in tr]
    train_hops = [h for tr, _, h in groups.values() for _ in tr]
    train_data = prepare(answerer, train_examples)
    # A MetaQA file says how many hops its questions take: its paths are labelled with that many.
    exact = all(name.endswith("-hop") for name in groups)
    paths = label_paths(answerer.index, train_data, train_hops, exact=exact)
    scorer = train_scorer(answerer, train_data, paths, seed=seed, **({"candidates": tuple(candidates)} if candidates else {}))
    answerer.scorer = scorer
    report["scorer"] = dict(scorer.report, kind=scorer.kind, seconds=round(time.perf_counter() - t2, 1))

    results = {}
    for name, (_, test, _) in groups.items():
        test_data = prepare(answerer, test)
        hits = hits_at_1(answerer, test_data)
        not_found = sum(t.entity is None for t in test_data.topics)
        results[name] = {"train": len(groups[name][0]), "test": len(test), "hits@1": round(hits, 2),
                         "topic_not_in_graph": not_found, **latency(answerer, test, latency_sample)}
    report["groups"] = results
    if drop_kb > 0 and completion in ("auto", "rules"):
        report["rules"] = answerer.rules.report()
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def latency(answerer: Answerer, examples: list[QAExample], n: int) -> dict[str, float]:
    """Median and 95th-percentile milliseconds per question, one question at a time, end to end
    (topic, encoding, paths, answers), over the first `n` of `examples`."""
    times = []
    for ex in examples[:n]:
        t = time.perf_counter()
        answerer.answer(ex.question, top=5, run_queries=False)
        times.append(1000 * (time.perf_counter() - t))
    if not times:
        return {"latency_median_ms": 0.0, "latency_p95_ms": 0.0}
    return {"latency_median_ms": round(statistics.median(times), 2),
            "latency_p95_ms": round(float(np.percentile(times, 95)), 2)}


def format_metaqa(report: dict[str, Any]) -> str:
    lines = [f"KB {report['kb']}: {report['kb_triples_used']:,} of {report['kb_triples']:,} triples"
             + (f" (dropped {report['drop_kb']:.0%}, seed {report['seed']})" if report["drop_kb"] else "")]
    if "embeddings" in report:
        e = report["embeddings"]
        lines.append(f"embeddings: {e['model']} {e['dim']}-d, {e['epochs']} epochs, {e['seconds']} s, validation {e['validation']}")
    s = report["scorer"]
    lines.append(f"path scorer: {s['chosen']} ({s['path_classes']} path classes; dev hits@1 {s['dev_hits@1']}) in {s['seconds']} s")
    if "rules" in report:
        lines.append("rules (precision@1 of the proposed object, measured on the graph's own facts):")
        lines.extend(f"  {hop:<20}{r['precision@1']:>7.2f}  best: {r['best_rule']}" for hop, r in report["rules"].items())
    lines.append(f"{'questions':<12}{'train':>7}{'test':>7}{'hits@1':>9}{'no topic':>10}{'median ms':>11}{'p95 ms':>9}")
    for name, g in report["groups"].items():
        lines.append(f"{name:<12}{g['train']:>7}{g['test']:>7}{g['hits@1']:>9.2f}{g['topic_not_in_graph']:>10}"
                     f"{g['latency_median_ms']:>11.1f}{g['latency_p95_ms']:>9.1f}")
    lines.append(f"total {report['seconds']} s")
    return "\n".join(lines)

