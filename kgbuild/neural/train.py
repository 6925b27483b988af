"""Fine-tuning and evaluating the joint entity / relation model (kgbuild.neural.joint):
`kgbuild train ner|re` and `kgbuild eval ner|re|speed-neural` call these functions.

Training batches windows of similar length together (little padding), uses mixed precision on a
GPU (bf16 where the GPU has it, else fp16 with a gradient scaler), scores the dev set after every
epoch and keeps the best epoch by dev F1 (`select`: relations by default for `re`, entities for
`ner`, or the mean of both), stopping early when it has not improved for `patience` epochs."""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kgbuild.errors import KgbuildError
from kgbuild.neural.formats import Example, ranges_overlap, read_examples, relation_names
from kgbuild.neural.joint import (ADAPTERS, JointExtractor, Labels, Prediction, add_lora, base_model_path, build_network,
                                  candidate_spans, collector_paused, forget_pieces, input_tensors, is_model_dir,
                                  load_pretrained, lowercases, windows_of)

TASKS = ("ner", "re")
SELECTIONS = ("relations", "entities", "mean")  # dev F1 that picks the epoch kept (`train`)


def transferred_heads(net: Any, base_model: str) -> list[str]:
    """When `base_model` is a model folder written by `kgbuild train` (say, an entity recogniser
    trained on CoNLL-2003 before relations are trained on CoNLL04), copy into `net` those of its
    weights outside the encoder that do not depend on its labels: the case vectors and the span
    width vectors, where their shapes fit. The classifiers start afresh, since the label sets
    differ. Returns the names copied."""
    import torch

    if base_model in ("auto", "", None) or not is_model_dir(base_model):
        return []
    saved = torch.load(Path(base_model) / "heads.pt", map_location="cpu", weights_only=True)
    own = net.state_dict()
    names = [n for n in ("case.weight", "width.weight") if n in saved and n in own and saved[n].shape == own[n].shape]
    net.load_state_dict({n: saved[n] for n in names}, strict=False)
    return names


# -- scores ------------------------------------------------------------------------------------

def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": round(100 * p, 2), "recall": round(100 * r, 2),
            "f1": round(100 * (2 * p * r / (p + r) if p + r else 0.0), 2), "gold": n_gold, "predicted": n_pred}


def _micro_macro(gold: list[tuple], pred: list[tuple], kind_of) -> dict[str, Any]:
    g, p = Counter(gold), Counter(pred)
    tp = sum((g & p).values())
    kinds = sorted({kind_of(x) for x in gold} | {kind_of(x) for x in pred})
    per = {k: _prf(sum(v for x, v in (g & p).items() if kind_of(x) == k),
                   sum(v for x, v in p.items() if kind_of(x) == k),
                   sum(v for x, v in g.items() if kind_of(x) == k)) for k in kinds}
    macro = {m: round(sum(v[m] for v in per.values()) / len(per), 2) if per else 0.0 for m in ("precision", "recall", "f1")}
    return {"micro": _prf(tp, sum(p.values()), sum(g.values())), "macro": macro, "per_type": per}


def score(gold: list[Example], pred: list[Prediction]) -> dict[str, Any]:
    """Entity and strict relation P/R/F1: an entity counts when its span and type are right; a
    relation when both spans, both entity types and the relation type are right."""
    ge, pe, gr, pr = [], [], [], []
    for n, (ex, pd) in enumerate(zip(gold, pred)):
        ge += [(n, s, e, t) for s, e, t in ex.entities]
        pe += [(n, s, e, t) for s, e, t, _ in pd.entities]
        gr += [(n, *ex.entities[h], *ex.entities[t], r) for h, t, r in ex.relations]
        pr += [(n, *pd.entities[h][:3], *pd.entities[t][:3], r) for h, t, r, _ in pd.relations]
    return {"entities": _micro_macro(ge, pe, lambda x: x[3]), "relations": _micro_macro(gr, pr, lambda x: x[-1])}


# -- training ----------------------------------------------------------------------------------

@dataclass
class TrainResult:
    """What `kgbuild train` did; dev_scores.json in MODEL_DIR holds the same."""

    model_dir: str  # the folder written
    task: str  # "ner" or "re"
    base_model: str  # encoder it started from
    device: str  # where it trained
    precision: str  # fp32, bf16 or fp16
    train_examples: int  # training texts
    dev_examples: int  # dev texts
    epochs: int  # epochs run
    best_epoch: int  # epoch whose weights were kept (1-based)
    seconds: float  # wall time of the training
    dev: dict[str, Any] = field(default_factory=dict)  # scores of the kept epoch on the dev set
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, dev entity F1, dev relation F1


def _range_text(records: slice | None) -> str | None:
    if records is None:
        return None
    return f"{'' if records.start is None else records.start}:{'' if records.stop is None else records.stop}"


def _word_index(words: list[tuple[int, int]]) -> tuple[dict[int, int], dict[int, int]]:
    return {s: i for i, (s, _) in enumerate(words)}, {e: i for i, (_, e) in enumerate(words)}


def training_windows(examples: list[Example], tokenizer: Any, labels: Labels, max_width: int,
                     max_length: int) -> list[dict[str, Any]]:
    """Encoder windows of the examples with their gold span and pair labels."""
    ent_ix = {t: i + 1 for i, t in enumerate(labels.entities)}
    rel_ix = {t: i + 1 for i, t in enumerate(labels.relations)}
    out = []
    for ex in examples:
        starts, ends = _word_index(ex.words)
        gold = {}  # entity index -> (first word, last word)
        for k, (s, e, _) in enumerate(ex.entities):
            if s in starts and e in ends:
                gold[k] = (starts[s], ends[e])
        rels = {(h, t): rel_ix[r] for h, t, r in ex.relations if r in rel_ix}
        for win in windows_of(0, ex.text, ex.words, tokenizer, max_length):
            pos = {w: i for i, w in enumerate(win.words)}
            spans = candidate_spans(win, max_width)
            row_of = {sp: r for r, sp in enumerate(spans)}
            span_labels = [0] * len(spans)
            inside = {}  # entity index -> row
            for k, (i, j) in gold.items():
                sp = (pos.get(i), pos.get(j))
                if sp in row_of:
                    span_labels[row_of[sp]] = ent_ix[ex.entities[k][2]]
                    inside[k] = row_of[sp]
            pairs = [(inside[h], inside[t], rels.get((h, t), 0)) for h in inside for t in inside if h != t] \
                if labels.relations else []
            out.append({"window": win, "spans": spans, "span_labels": span_labels, "pairs": pairs})
    return out


def _batches(items: list[dict], batch_size: int, rng: random.Random) -> list[list[dict]]:
    """Length-bucketed batches in random order: windows of similar length share a batch."""
    order = sorted(range(len(items)), key=lambda k: (len(items[k]["window"].input_ids), rng.random()))
    batches = [[items[k] for k in order[s : s + batch_size]] for s in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _loss(net: Any, batch: list[dict], pad_id: int, max_width: int, device: Any, rng: random.Random,
          neg_spans: int):
    import torch
    import torch.nn.functional as F

    ids, mask, case = input_tensors([it["window"] for it in batch], pad_id)
    rows, span_labels, pairs = [], [], []
    for b, it in enumerate(batch):
        win = it["window"]
        # every gold span and a sample of the others (SpERT's negative sampling): with all of
        # them, "none" outnumbers the entities a hundred to one and recall suffers
        labels = it["span_labels"]
        negatives = [r for r, lab in enumerate(labels) if lab == 0]
        keep = sorted([r for r, lab in enumerate(labels) if lab] + rng.sample(negatives, min(len(negatives), neg_spans)))
        new_row = {r: len(rows) + k for k, r in enumerate(keep)}
        rows += [(b, win.first[i], win.last[j], j - i + 1) for i, j in (it["spans"][r] for r in keep)]
        span_labels += [labels[r] for r in keep]
        pairs += [(b, new_row[h], new_row[t], lab) for h, t, lab in it["pairs"]]
    sp = torch.tensor(rows, dtype=torch.long, device=device)
    y = torch.tensor(span_labels, dtype=torch.long, device=device)
    hidden, sums = net.encode(ids.to(device), mask.to(device), case.to(device))
    reps, logits = net.spans(hidden, sums, sp[:, 0], sp[:, 1], sp[:, 2], sp[:, 3].clamp(max=max_width))
    loss = F.cross_entropy(logits.float(), y)
    if pairs:
        p = torch.tensor(pairs, dtype=torch.long, device=device)
        h, t = p[:, 1], p[:, 2]
        rel = net.pairs(hidden, sums, reps, p[:, 0], h, t, sp[h, 1], sp[h, 2], sp[t, 1], sp[t, 2], y[h], y[t])
        loss = loss + F.cross_entropy(rel.float(), p[:, 3])
    return loss


class WeightAverage:
    """An exponential moving average of a network's trainable weights, updated after each step
    with decay min(`decay`, (1 + steps) / (10 + steps)) so that the first steps do not weigh the
    random start; `swap` exchanges the averaged and the current weights (twice: back again)."""

    def __init__(self, net: Any, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise KgbuildError(f"--ema {decay}: the decay must lie between 0 and 1", hint="e.g. --ema 0.998")
        self.decay, self.steps = decay, 0
        self.shadow = {n: p.detach().clone() for n, p in net.named_parameters() if p.requires_grad}

    def update(self, net: Any) -> None:
        import torch

        self.steps += 1
        keep = min(self.decay, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            for n, p in net.named_parameters():
                if n in self.shadow:
                    self.shadow[n].lerp_(p.detach(), 1.0 - keep)

    def swap(self, net: Any) -> None:
        import torch

        with torch.no_grad():
            for n, p in net.named_parameters():
                if n in self.shadow:
                    current = p.detach().clone()
                    p.copy_(self.shadow[n])
                    self.shadow[n].copy_(current)


def train(train_path: str | Path, dev_path: str | Path, out: str | Path, task: str = "re", fmt: str | None = None,
          base_model: str = "auto", device: str = "auto", epochs: int = 20, seed: int = 0, batch_size: int = 16,
          lr: float | None = None, head_lr: float | None = None, max_width: int = 10, max_length: int = 256, patience: int = 5,
          neg_spans: int = 100, max_minutes: float | None = None, limit: int | None = None,
          threads: int | None = None, quiet: bool = False, train_records: slice | None = None,
          dev_records: slice | None = None, case_features: bool | None = None,
          select: str | None = None, ema: float = 0.0, adapter: str = "none", lora_rank: int = 32) -> TrainResult:
    """Fine-tune the joint model on TRAIN, keep the best epoch on DEV, write it to OUT.

    `case_features` adds word-shape vectors to the encoder's inputs (joint.CASE_SHAPES); None
    turns them on when the tokenizer lowercases, as the packaged all-MiniLM-L6-v2 does.

    `train_records` / `dev_records` keep a range of each file's records (formats.read_examples),
    so that one file can give both: they must not overlap when both name the same file.

    `select` is the dev F1 that picks the epoch kept: "relations" (the default of `re`),
    "entities" (the only choice of `ner`) or "mean" (of the two, for `re`).

    `ema` > 0 scores and keeps an exponential moving average of the weights (WeightAverage, that
    decay per step) instead of the weights of the epoch's last step.

    `lr` is the encoder's learning rate (default 1e-4) or its adapter's (default 1e-3); `head_lr`
    defaults to 10x `lr` when the whole encoder trains and to `lr` with an adapter.

    `adapter` "lora" freezes the encoder and trains a LoRA adapter of rank `lora_rank` on it
    (joint.add_lora) with the heads: the folder then stores the adapter, not the encoder, and
    loads it onto the base encoder, named portably (`base_model_name`: "auto" or a hub name)."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm
    from kgbuild.device import resolve_device

    if task not in TASKS:
        raise KgbuildError(f"unknown task {task!r}", hint="use ner or re")
    if adapter not in ADAPTERS:
        raise KgbuildError(f"unknown adapter {adapter!r}", hint=f"use one of {', '.join(ADAPTERS)}")
    lr = lr if lr is not None else (1e-3 if adapter == "lora" else 1e-4)
    head_lr = head_lr if head_lr is not None else (lr if adapter == "lora" else 10 * lr)
    select = select or ("relations" if task == "re" else "entities")
    if select not in (SELECTIONS if task == "re" else ("entities",)):
        raise KgbuildError(f"--select {select} does not fit `train {task}`",
                           hint="use relations, entities or mean for re; entities for ner")
    if (train_records or dev_records) and Path(train_path).resolve() == Path(dev_path).resolve() \
            and ranges_overlap(train_records, dev_records):
        raise KgbuildError(f"the training and dev records of {train_path} overlap",
                           hint="give --train-records and --dev-records that share no record, e.g. 0:200 and 200:250")
    train_ex = read_examples(train_path, fmt, train_records)[:limit]
    dev_ex = read_examples(dev_path, fmt, dev_records)
    if not train_ex or not dev_ex:
        raise KgbuildError("the training or dev file holds no example", hint="check --train, --dev and --format")
    labels = Labels.from_examples(train_ex, relation_names(train_path), relations=task == "re")
    if task == "re" and not labels.relations:
        raise KgbuildError(f"{train_path} has no relations to learn", hint="use `kgbuild train ner` for entities only")

    if threads:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    dev = resolve_device(device)
    base = base_model_path(base_model)
    tokenizer, encoder = load_pretrained(base, "pass --base-model a hub name or a folder with a transformer")
    max_length = min(max_length, getattr(encoder.config, "max_position_embeddings", max_length))
    if case_features is None:
        case_features = lowercases(tokenizer)
    if adapter == "lora":
        encoder = add_lora(encoder, lora_rank)
    net = build_network(encoder, len(labels.entities), len(labels.relations), max_width,
                        case_features=case_features)
    transferred = transferred_heads(net, base_model)
    net = net.to(dev)
    # the base as a name that holds on another machine: "auto" (the packaged encoder), a hub name, an absolute path
    portable = "auto" if base_model in ("auto", "", None) else (
        str(Path(base_model).resolve()) if Path(base_model).exists() else str(base_model))
    config = {"task": task, "base_model": base, "base_model_name": portable, "adapter": adapter,
              "lora_rank": lora_rank if adapter == "lora" else None,
              "max_width": max_width, "max_length": max_length,
              "case_features": bool(case_features), "select": select, "transferred": transferred,
              "batch_size": batch_size, "lr": lr, "head_lr": head_lr, "epochs": epochs, "seed": seed,
              "patience": patience, "neg_spans": neg_spans, "ema": ema, "train": str(train_path), "dev": str(dev_path), "format": fmt or "auto",
              "limit": limit, "train_records": _range_text(train_records), "dev_records": _range_text(dev_records)}
    model = JointExtractor(net, tokenizer, labels, config, dev)
    items = training_windows(train_ex, tokenizer, labels, max_width, max_length)

    steps = epochs * math.ceil(len(items) / batch_size)
    warmup = max(1, steps // 10)
    # with an adapter only its weights are trainable in the encoder
    enc_params = [p for n, p in net.named_parameters() if n.startswith("encoder.") and p.requires_grad]
    head_params = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": lr}, {"params": head_params, "lr": head_lr}], weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    scaler = torch.amp.GradScaler("cuda") if model.precision == "fp16" else None

    average = WeightAverage(net, ema) if ema else None
    history: list[dict[str, float]] = []
    best_f1, best_epoch, best_state, best_scores = (-1.0, -1.0), 0, None, {}
    t0 = time.perf_counter()
    deadline = t0 + max_minutes * 60 if max_minutes else None
    for epoch in range(1, epochs + 1):
        net.train()
        losses = []
        bar = tqdm(_batches(items, batch_size, rng), desc=f"epoch {epoch}/{epochs}", disable=quiet, leave=False)
        for batch in bar:
            with model.autocast():
                loss = _loss(net, batch, tokenizer.pad_token_id or 0, max_width, dev, rng, neg_spans)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
            sched.step()
            if average is not None:
                average.update(net)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
            if deadline and time.perf_counter() > deadline:
                break
        if average is not None:
            average.swap(net)  # the averaged weights are the ones scored and kept
        scores = score(dev_ex, model.predict([e.text for e in dev_ex], [e.words for e in dev_ex],
                                             relations=task == "re"))
        row = {"epoch": epoch, "loss": round(sum(losses) / max(1, len(losses)), 5),
               "entity_f1": scores["entities"]["micro"]["f1"], "relation_f1": scores["relations"]["micro"]["f1"],
               "seconds": round(time.perf_counter() - t0, 1)}
        history.append(row)
        f1 = (selected_f1(scores, select), scores["entities"]["micro"]["f1"])  # entities break ties (early epochs)
        if f1 > best_f1:
            best_f1, best_epoch, best_scores = f1, epoch, scores
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        if average is not None:
            average.swap(net)  # training goes on from its own weights
        if not quiet:
            tqdm.write(f"epoch {epoch}: loss {row['loss']:.4f}  dev entity F1 {row['entity_f1']:.2f}  "
                       f"relation F1 {row['relation_f1']:.2f}  ({row['seconds']:.0f}s)")
        perfect = best_f1[0] >= 100.0  # nothing left to gain on this dev set
        if perfect or epoch - best_epoch >= patience or (deadline and time.perf_counter() > deadline):
            break
    net.load_state_dict(best_state)
    out = Path(out)
    model.save(out)
    result = TrainResult(str(out), task, base, str(dev), model.precision, len(train_ex), len(dev_ex), len(history),
                         best_epoch, round(time.perf_counter() - t0, 1), best_scores, history)
    (out / "dev_scores.json").write_text(json.dumps(asdict(result), indent=2))
    plot_curves(history, out / "learning_curve.png", task)
    return result


def plot_curves(history: list[dict[str, float]], path: Path, task: str) -> None:
    """Training loss and dev F1 per epoch, side by side (relations too for `re`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [h["loss"] for h in history], marker="o")
    a.set(xlabel="epoch", ylabel="training loss", title="loss")
    b.plot(epochs, [h["entity_f1"] for h in history], marker="o", label="entities")
    if task == "re":
        b.plot(epochs, [h["relation_f1"] for h in history], marker="o", label="relations (strict)")
    b.set(xlabel="epoch", ylabel="dev micro F1", title="dev F1")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def selected_f1(scores: dict[str, Any], select: str) -> float:
    """The dev F1 that `select` names (see `train`) of one epoch's scores."""
    if select == "mean":
        return (scores["entities"]["micro"]["f1"] + scores["relations"]["micro"]["f1"]) / 2
    return scores[select]["micro"]["f1"]


# -- evaluation --------------------------------------------------------------------------------

def evaluate(model_dir: str | Path, data: str | Path, fmt: str | None = None, device: str = "auto",
             batch_size: int = 32, task: str = "re", records: slice | None = None,
             precision: str = "auto") -> dict[str, Any]:
    """Entity and strict relation scores of a trained model on an annotated file (or on a range
    of its records), predicted in `precision` (joint.PRECISIONS)."""
    model = JointExtractor.load(model_dir, device, precision)
    examples = read_examples(data, fmt, records)
    t0 = time.perf_counter()
    pred = model.predict([e.text for e in examples], [e.words for e in examples], batch_size=batch_size,
                         relations=task == "re")
    seconds = time.perf_counter() - t0
    out = {"model": str(model_dir), "data": str(data), "records": _range_text(records), "task": task,
           "examples": len(examples),
           "device": str(model.device), "precision": model.precision, "seconds": round(seconds, 2),
           **score(examples, pred)}
    if task == "ner":
        del out["relations"]
    return out


def format_scores(result: dict[str, Any]) -> str:
    records = f" records {result['records']}" if result.get("records") else ""
    lines = [f"{result['model']} on {result['data']}{records}: {result['examples']} texts, {result['seconds']}s "
             f"on {result['device']} ({result.get('precision', 'fp32')})"]
    for part in ("entities", "relations"):
        if part not in result:
            continue
        mi, ma = result[part]["micro"], result[part]["macro"]
        name = "relations (strict)" if part == "relations" else "entities"
        lines.append(f"{name}: micro P {mi['precision']:.2f} R {mi['recall']:.2f} F1 {mi['f1']:.2f}  |  "
                     f"macro P {ma['precision']:.2f} R {ma['recall']:.2f} F1 {ma['f1']:.2f}  "
                     f"({mi['gold']} gold, {mi['predicted']} predicted)")
        for kind, s in result[part]["per_type"].items():
            lines.append(f"  {kind:<14} P {s['precision']:6.2f} R {s['recall']:6.2f} F1 {s['f1']:6.2f}  ({s['gold']} gold)")
    return "\n".join(lines)


STAGES = ("tokenisation", "batch building", "transfer", "model", "rest")


class ForwardReplay:
    """The outputs of a model's forward passes in one predict, recorded in order and then handed back
    in the same order instead of running the encoder and heads: a later predict over the same texts
    and batch size is then the host side of predict alone (tokenisation, batch building, copies to
    and from the device, decoding, assembling), with the model's real outputs, so its speed is the
    most that the host lets through however fast the device."""

    def __init__(self, model: JointExtractor) -> None:
        self.model = model
        self.spans: list[Any] = []  # span type probabilities of each batch, as forward_spans gave them
        self.pairs: list[Any] = []  # relation probabilities of each batch that had pairs

    @contextmanager
    def recording(self):
        real_spans, real_pairs = self.model.forward_spans, self.model.forward_pairs

        def spans(*inputs: Any) -> tuple[Any, Any]:
            states, probs = real_spans(*inputs)
            self.spans.append(probs)
            return states, probs

        def pairs(*inputs: Any) -> Any:
            probs = real_pairs(*inputs)
            self.pairs.append(probs)
            return probs

        with self._swapped(spans, pairs):
            yield self

    @contextmanager
    def replaying(self):
        spans, pairs = iter(self.spans), iter(self.pairs)
        with self._swapped(lambda *inputs: (None, next(spans)), lambda *inputs: next(pairs)):
            yield self

    @contextmanager
    def _swapped(self, spans: Any, pairs: Any):
        self.model.forward_spans, self.model.forward_pairs = spans, pairs  # instance attributes shadow the methods
        try:
            yield
        finally:
            del self.model.forward_spans, self.model.forward_pairs


def measure_speed(model_dir: str | Path, data: str | Path, fmt: str | None = None, device: str = "auto",
                  batch_size: int = 64, limit: int | None = None, repeat: int = 1,
                  profile: str | Path | None = None, processes: int | list[int] = 1,
                  threads: int | None = None, precision: str = "auto") -> dict[str, Any]:
    """Sentences per second of the joint model (entities and relations) over an annotated file's
    texts, after an untimed pass over the same texts, and where that time goes, stage by stage,
    each timed on its own: tokenisation (the windows), building the batches' tensors on the host, copying them to the device,
    the model alone (encoder, span and pair heads over batches already on the device), and the rest
    of predict (decoding spans and pairs, turning them into each text's Prediction, waiting on the
    device); `bound` names the costliest stage. predict builds the next batch's tensors in a
    background thread while the current batch runs, so batch building hides behind the model where
    the device is slower than the host, and the rest is what is left after taking all of it off.
    Then the host side alone: predict again with the forward passes' outputs replayed from the
    untimed pass (ForwardReplay), with Python's cyclic collector paused as predict runs and, to show
    what that gains, left running.
    On CUDA also the peak GPU memory. `profile`: a file for a cProfile of the timed predict (read it
    with `python -m pstats FILE`), to see which Python functions the rest is made of.

    `processes` > 1 (or a list of counts): instead, one process and then that many, each with its
    own copy of the model on the device, share out the texts (kgbuild.neural.processes). `threads`:
    torch's CPU threads (per process with `processes`)."""
    import torch

    examples = read_examples(data, fmt)[:limit]
    texts = [e.text for e in examples] * repeat
    words = [e.words for e in examples] * repeat
    counts = [processes] if isinstance(processes, int) else list(processes)
    if any(n > 1 for n in counts):
        from kgbuild.device import resolve_device
        from kgbuild.neural.processes import measure_speed_processes

        if profile is not None:
            raise KgbuildError("--profile times one process", hint="leave out --processes or --profile")
        return {"model": str(model_dir), "sentences": len(texts), "batch_size": batch_size,
                "device": str(resolve_device(device)),
                **measure_speed_processes(model_dir, texts, words, device, batch_size, counts, threads, precision)}
    if threads:
        torch.set_num_threads(threads)
    model = JointExtractor.load(model_dir, device, precision)
    # an untimed pass over the same texts first: the timed one then meets no batch shape for the
    # first time, so one-time costs (CUDA kernels loaded on first use, the caching allocator growing
    # to the largest batch, per-shape kernel choices) stay out of the timing, as in a long run. It
    # also records the model's outputs for the host-alone run; they stay on the device and so count
    # in the peak memory (20 bytes a candidate span with CoNLL04's 4 types: 48 MB for its dev x40)
    replay = ForwardReplay(model)
    with replay.recording():
        model.predict(texts, words, batch_size=batch_size)
    cuda = model.device.type == "cuda"

    def clock() -> float:
        if cuda:  # the device runs behind the host: a stage ends when its kernels and copies do
            torch.cuda.synchronize()
        return time.perf_counter()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    forget_pieces(model.tokenizer)  # each timed pass starts with no tokenised pre-token kept
    t0 = clock()
    found = model.predict(texts, words, batch_size=batch_size)
    seconds = clock() - t0
    if profiler is not None:
        profiler.disable()
        Path(profile).parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(profile))
    gpu_memory = torch.cuda.max_memory_allocated(model.device) / 2**20 if cuda else None

    forget_pieces(model.tokenizer)
    with collector_paused():  # as in predict, run by run (JointExtractor.chunks)
        t0 = clock()
        batches = [b for start, end in model.chunks(len(texts))
                   for b in model.prepare(texts, words, start, end, batch_size)[1]]
        tokenise = clock() - t0
        t0 = clock()
        host = [model.tensors(b) for b in batches]
        batch_seconds = clock() - t0
    t0 = clock()
    for tensors in host:
        model.to_device(*tensors)
    transfer = clock() - t0
    # the model's inputs, pair rows included, as predict builds them; then the forward passes alone
    with torch.inference_mode(), model.autocast():
        inputs = [model._predict_batch(b)[1] for b in batches]
        inputs = [x for x in inputs if x is not None]
        t0 = clock()
        for ids, mask, case, spans, pairs in inputs:
            states, _ = model.forward_spans(ids, mask, case, spans)
            if pairs is not None:
                model.forward_pairs(states, *pairs)
        model_seconds = clock() - t0
    del inputs
    # the host alone, as predict runs (the cyclic collector paused) and with the collector running,
    # in turns, the best of three each
    host_seconds = {True: math.inf, False: math.inf}
    for _ in range(3):
        for pause in (True, False):
            model.pause_collector = pause
            forget_pieces(model.tokenizer)
            t0 = clock()
            with replay.replaying():
                replayed = model.predict(texts, words, batch_size=batch_size)
            host_seconds[pause] = min(host_seconds[pause], clock() - t0)
            if replayed != found:  # the model's outputs came back to the wrong batches
                raise KgbuildError("the replayed forward passes did not give predict's own predictions",
                                   hint="report this with the model folder and data file")
    model.pause_collector = True
    rest = max(0.0, seconds - tokenise - batch_seconds - transfer - model_seconds)
    stages = dict(zip(STAGES, (tokenise, batch_seconds, transfer, model_seconds, rest)))
    out = {"model": str(model_dir), "sentences": len(texts), "windows": sum(map(len, batches)),
           "subword_tokens": sum(len(b.ids) for b in batches), "batch_size": batch_size,
           "device": str(model.device), "precision": model.precision, "threads": torch.get_num_threads(),
           "seconds": round(seconds, 3), "tokenise_seconds": round(tokenise, 6),
           "sentences_per_second": round(len(texts) / seconds, 1),
           "batch_seconds": round(batch_seconds, 6),  # span rows and padded inputs on the host
           "transfer_seconds": round(transfer, 6),  # host to device copies (nothing to copy on the CPU)
           "model_seconds": round(model_seconds, 6),  # encoder, span and pair heads alone
           "rest_seconds": round(rest, 6),  # what predict spends besides the stages above
           "model_sentences_per_second": round(len(texts) / max(model_seconds, 1e-9), 1),
           # the most that tokenisation and batch building let through, however fast the device
           "host_sentences_per_second": round(len(texts) / max(tokenise + batch_seconds, 1e-9), 1),
           # the whole of predict with the model's outputs replayed (ForwardReplay): all but the forward passes
           "host_alone_seconds": round(host_seconds[True], 6),
           "host_alone_sentences_per_second": round(len(texts) / max(host_seconds[True], 1e-9), 1),
           # the same with Python's cyclic collector left running (predict pauses it)
           "host_alone_collector_running_seconds": round(host_seconds[False], 6),
           "host_alone_collector_running_sentences_per_second": round(len(texts) / max(host_seconds[False], 1e-9), 1),
           "bound": max(stages, key=stages.get)}
    if cuda:
        out["gpu"] = torch.cuda.get_device_name(model.device)
        out["gpu_memory_mb"] = round(gpu_memory, 1)
    if profile is not None:
        out["profile"] = str(profile)
    return out


def format_speed(result: dict[str, Any]) -> str:
    if "speedup" in result:
        return _format_speed_processes(result)
    mem = f", peak GPU memory {result['gpu_memory_mb']} MB on {result['gpu']}" if "gpu_memory_mb" in result else ""
    return (f"{result['sentences_per_second']:,.1f} sentences/s ({result['sentences']} sentences, "
            f"{result['subword_tokens']:,} subword tokens, batch {result['batch_size']}, {result['precision']}, "
            f"{result['device']}, {result['threads']} threads, {result['seconds']}s){mem}\n"
            f"stages: tokenisation {result['tokenise_seconds']:.3f}s, batch building {result['batch_seconds']:.3f}s, "
            f"transfer {result['transfer_seconds']:.3f}s, model {result['model_seconds']:.3f}s, "
            f"rest {result['rest_seconds']:.3f}s; model alone {result['model_sentences_per_second']:,.1f} sentences/s, "
            f"inputs alone {result['host_sentences_per_second']:,.1f} sentences/s, host alone (the model's "
            f"outputs replayed) {result['host_alone_sentences_per_second']:,.1f} sentences/s "
            f"({result['host_alone_collector_running_sentences_per_second']:,.1f} with Python's cyclic collector running); "
            f"bound by {result['bound']}"
            + (f"\nprofile of predict: {result['profile']} (python -m pstats)" if result.get("profile") else ""))


def _format_speed_processes(result: dict[str, Any]) -> str:
    def line(run: dict[str, Any]) -> str:
        mem = f", peak GPU memory {run['gpu_memory_mb']:,.0f} MB in all" if "gpu_memory_mb" in run else ""
        return (f"{run['processes']} process{'es' if run['processes'] > 1 else ''} x {run['threads']} threads: "
                f"{run['sentences_per_second']:,.1f} sentences/s ({run['seconds']}s; {run['entities']} entities, "
                f"{run['relations']} relations){mem}")

    runs = result.get("sweep", [result["n_processes"]])
    many = "\n".join(line(run) + (f"; speed-up {run['speedup']}x" if len(runs) > 1 else "") for run in runs)
    return (f"{result['sentences']} sentences, batch {result['batch_size']}, {result['device']}\n"
            f"{line(result['one_process'])}\n{many}\nspeed-up {result['speedup']}x")
