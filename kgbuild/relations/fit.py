"""Fit the small linear head of the `zeroshot` relation backend on Re-DocRED documents.

    python -m kgbuild.relations.fit ../shared/data/redocred/dev_revised.json --limit 250 \
        --encoder static --out kgbuild/relations/head_static.json

Only documents [offset : offset + limit] are read (the shipped heads: the first 250 of
dev_revised.json; the last 250 stay held out for the benchmark). Steps: spaCy NER, candidate pairs
and features exactly as the backend computes them, labels by the benchmark's name matching, a
multi-label logistic head (one output per relation, masked by the schema's type constraints),
5-fold out-of-fold scores to choose a threshold per frequent relation, which is folded into the
bias so that confidence 0.5 is the operating point."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from kgbuild.relations.features import TEXT_BLOCKS
from kgbuild.relations.head import LinearHead, default_head_path, template_sims


def build_dataset(path: str, limit: int, offset: int, encoder: str, model: str = "auto", device: str = "cpu"):
    """Features, labels and type masks of every candidate pair of the documents."""
    from kgbuild.eval.redocred import gold_of, read_redocred, to_document
    from kgbuild.ner.spacy_ner import SpacyNER
    from kgbuild.relations.features import embed_blocks
    from kgbuild.relations.zeroshot import ZeroShotRelations

    raws = read_redocred(path, limit, offset)
    docs = [to_document(r, offset + i) for i, r in enumerate(raws)]
    SpacyNER()(docs)
    rel = ZeroShotRelations(device=device, model=model, encoder=encoder, head="none")
    ids = rel.schema.ids
    col = {r: i for i, r in enumerate(ids)}
    dense, embs, sims, labels, masks, doc_of, pair_of, gold_total = [], [], [], [], [], [], [], Counter()
    for s in range(0, len(docs), 32):
        batch = [rel.preprocess(d) for d in docs[s : s + 32]]
        emb, index = embed_blocks(rel.encoder, batch)
        embs.append(np.concatenate([emb[b][index[b]] for b in TEXT_BLOCKS], axis=1).astype(np.float16))
        sims.append(template_sims(emb, index, rel.templates).transpose(1, 0, 2))
        for k, dp in enumerate(batch):
            raw = raws[s + k]
            gold_entities, gold_triples, _ = gold_of(raw)
            gold_total.update(r for _, r, _ in gold_triples)
            by_pair: dict[tuple[int, int], set[str]] = {}
            for h, r, t in gold_triples:
                by_pair.setdefault((h, t), set()).add(r)
            match = [[g for g, names in enumerate(gold_entities) if names & e.norms] for e in dp.entities]
            for h, t in dp.pairs:
                y = np.zeros(len(ids), dtype=np.float32)
                for gh in match[h]:
                    for gt in match[t]:
                        for r in by_pair.get((gh, gt), ()):
                            if r in col:
                                y[col[r]] = 1
                labels.append(y)
                masks.append(rel._type_mask[(dp.entities[h].type, dp.entities[t].type)])
                doc_of.append(s + k)
                pair_of.append((h, t))
            dense.append(dp.dense)
    return {
        "ids": ids, "dense": np.concatenate(dense), "emb": np.concatenate(embs), "sims": np.concatenate(sims),
        "y": np.stack(labels), "mask": np.stack(masks).astype(np.float32), "doc": np.array(doc_of),
        "pair": np.array(pair_of, dtype=np.int64).reshape(-1, 2),
        "gold_total": gold_total, "dim": rel.encoder.dim, "encoder": rel.encoder_kind, "model": rel.model_path,
    }


def train(data: dict, rows: np.ndarray, epochs: int = 4, weight_decay: float = 1e-6, lr: float = 1e-2,
          seed: int = 0) -> dict[str, np.ndarray]:
    """Fit the logistic head on the pairs `rows` (minibatch Adam, binary cross-entropy per relation,
    counted only where the schema's types allow the relation).

    Returns numpy parameters: w [F, R], b [R], scale [2, R] (weights of the template similarities)."""
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(np.concatenate([data["dense"][rows], data["emb"][rows].astype(np.float32)], axis=1))
    s = torch.from_numpy(data["sims"][rows].astype(np.float32))
    y = torch.from_numpy(data["y"][rows])
    m = torch.from_numpy(data["mask"][rows])
    n_feat, n_rel = x.shape[1], y.shape[1]
    prior = (y.sum(0) + 0.1) / (m.sum(0) + 1.0)
    w = torch.zeros(n_feat, n_rel, requires_grad=True)
    b = torch.log(prior / (1 - prior)).requires_grad_(True)
    scale = torch.zeros(2, n_rel, requires_grad=True)
    opt = torch.optim.Adam([w, b, scale], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 512):
            idx = perm[i : i + 512]
            logits = x[idx] @ w + b + s[idx, 0] * scale[0] + s[idx, 1] * scale[1]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx], weight=m[idx], reduction="sum")
            loss = loss / len(idx) + weight_decay * (w * w).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {"w": w.detach().numpy(), "b": b.detach().numpy(), "scale": scale.detach().numpy()}


def predict(data: dict, rows: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Confidences [len(rows), R] of a trained head, 0 where types forbid the relation."""
    x = np.concatenate([data["dense"][rows], data["emb"][rows].astype(np.float32)], axis=1)
    s = data["sims"][rows]
    logits = x @ params["w"] + params["b"] + s[:, 0] * params["scale"][0] + s[:, 1] * params["scale"][1]
    return (1 / (1 + np.exp(-np.clip(logits, -30, 30)))) * data["mask"][rows]


def pair_f1(data: dict, probs: np.ndarray, thresholds: np.ndarray) -> tuple[float, float, float]:
    """Micro P/R/F1 at pair level against all gold triples of the documents (missed pairs count)."""
    pred = probs >= thresholds
    tp = float((pred * data["y"]).sum())
    n_pred = float(pred.sum())
    n_gold = float(sum(data["gold_total"].values()))
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def choose_thresholds(data: dict, probs: np.ndarray, min_positives: int = 15, rounds: int = 2) -> np.ndarray:
    """A global threshold maximising micro F1, then per-relation ones for frequent relations."""
    grid = np.round(np.arange(0.05, 0.96, 0.025), 3)
    best_t = max(grid, key=lambda t: pair_f1(data, probs, np.full(probs.shape[1], t))[2])
    th = np.full(probs.shape[1], best_t)
    y = data["y"]
    tp_r = lambda r, t: float(((probs[:, r] >= t) * y[:, r]).sum())
    for _ in range(rounds):
        pred = probs >= th
        tp_all, n_pred_all = float((pred * y).sum()), float(pred.sum())
        n_gold = float(sum(data["gold_total"].values()))
        for r in np.argsort(-y.sum(0)):
            if y[:, r].sum() < min_positives:
                continue
            base_tp, base_pred = tp_r(r, th[r]), float((probs[:, r] >= th[r]).sum())
            def f1_with(t):
                tp = tp_all - base_tp + tp_r(r, t)
                npred = n_pred_all - base_pred + float((probs[:, r] >= t).sum())
                return 2 * tp / (npred + n_gold) if npred + n_gold else 0.0
            t_new = max(grid, key=f1_with)
            tp_all += tp_r(r, t_new) - base_tp
            n_pred_all += float((probs[:, r] >= t_new).sum()) - base_pred
            th[r] = t_new
    return th


def fit(path: str, limit: int = 250, offset: int = 0, encoder: str = "static", out: str | None = None,
        folds: int = 5, epochs: int = 4, weight_decay: float = 1e-6, lr: float = 1e-2, model: str = "auto",
        data: dict | None = None, log=print) -> tuple[LinearHead, dict]:
    t0 = time.time()
    data = data or build_dataset(path, limit, offset, encoder, model)
    log(f"{len(data['y'])} candidate pairs, {int(data['y'].sum())} positive labels, "
        f"{sum(data['gold_total'].values())} gold triples ({time.time() - t0:.0f} s)")
    docs = np.unique(data["doc"])
    oof = np.zeros_like(data["y"])
    for k in range(folds):
        held = np.isin(data["doc"], docs[k::folds])
        params = train(data, np.nonzero(~held)[0], epochs=epochs, weight_decay=weight_decay, lr=lr, seed=k)
        oof[held] = predict(data, np.nonzero(held)[0], params)
    at_half = pair_f1(data, oof, np.full(oof.shape[1], 0.5))
    th = choose_thresholds(data, oof)
    cv = pair_f1(data, oof, th)
    log(f"out-of-fold pair-level P/R/F1 at 0.5: {at_half[0]:.3f}/{at_half[1]:.3f}/{at_half[2]:.3f}; "
        f"with chosen thresholds: {cv[0]:.3f}/{cv[1]:.3f}/{cv[2]:.3f}")
    params = train(data, np.arange(len(data["y"])), epochs=epochs, weight_decay=weight_decay, lr=lr, seed=99)
    w, b, scale = params["w"], params["b"], params["scale"]
    b = b - np.log(th / (1 - th))  # sigmoid(logit) >= th  <=>  sigmoid(logit - logit(th)) >= 0.5
    n_dense = data["dense"].shape[1]
    dim = data["dim"]
    blocks = {blk: w[n_dense + i * dim : n_dense + (i + 1) * dim] for i, blk in enumerate(TEXT_BLOCKS)}
    head = LinearHead(relations=list(data["ids"]), bias=b, dense=w[:n_dense], blocks=blocks, sim_scale=scale, meta={
        "encoder": data["encoder"], "model": Path(data["model"]).name if Path(data["model"]).exists() else data["model"],
        "fitted_on": f"{Path(path).name}[{offset}:{offset + limit}]", "pairs": int(len(data["y"])),
        "epochs": epochs, "weight_decay": weight_decay, "lr": lr, "cv_pair_f1": round(cv[2], 4),
        "thresholds": {r: float(t) for r, t in zip(data["ids"], th)},
    })
    if out:
        head.save(out)
        log(f"wrote {out} ({Path(out).stat().st_size / 1024:.0f} KiB)")
    return head, data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="Re-DocRED JSON, e.g. ../shared/data/redocred/dev_revised.json")
    ap.add_argument("--limit", type=int, default=250)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--encoder", choices=("static", "contextual"), default="static")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--weight-decay", type=float, default=1e-6)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--out", default=None, help="head JSON to write (default: the shipped one for the encoder)")
    args = ap.parse_args(argv)
    fit(args.data, args.limit, args.offset, args.encoder, args.out or str(default_head_path(args.encoder)),
        epochs=args.epochs, weight_decay=args.weight_decay, lr=args.lr, model=args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
