"""`kgbuild eval embed-speed`: the time of 1-N training steps and of filtered evaluation with
PyKEEN's own broadcasting scoring and with kgbuild's matrix-product scoring
(kgbuild/embed/scoring.py), in the same process, on the same model and batches, interleaved so
that machine noise falls on both alike. For TuckER the training step is also timed with kgbuild's
scoring but torch's own dropout, to show what drawing the dropout mask costs on the CPU, and the
1-vs-all labels of a training batch are built both ways (PyKEEN's host rows, kgbuild/embed/lcwa.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kgbuild.embed.linkpred import load_with_config
from kgbuild.embed.presets import register_extensions


def measure_embed_speed(dataset: str | None = None, train: str | Path | None = None, valid: str | Path | None = None,
                        model: str | None = None, batches: int = 5, eval_triples: int = 256,
                        repeats: int = 2, device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Seconds per LCWA training step (forward, loss, backward, Adam step; `config.batch_size`
    queries against every entity) and per evaluated triple (both sides, filtered, the first
    `eval_triples` validation triples), best of `repeats`, for both scorings; the scores of
    the two are compared on the evaluated queries."""
    import torch
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.losses import loss_resolver
    from pykeen.models import model_resolver

    from kgbuild.device import resolve_device
    from kgbuild.embed import scoring
    from kgbuild.embed.train import evaluation_batch_size, quiet_pykeen_logs

    quiet_pykeen_logs()
    torch_device = resolve_device(device)
    name, training, validation, _, config = load_with_config(dataset, train, valid, None, model)
    register_extensions()  # presets may name kgbuild's small_normal start
    torch.manual_seed(seed)
    loss = loss_resolver.make(config.loss, config.loss_kwargs or None)
    kgem = model_resolver.make(config.model, {"embedding_dim": config.embedding_dim, **config.model_kwargs},
                               triples_factory=training, loss=loss, random_seed=seed).to(torch_device)
    optimizer = torch.optim.Adam(kgem.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    hr = training.mapped_triples[:, :2].unique(dim=0)
    steps = [hr[torch.randint(len(hr), (config.batch_size,), generator=generator)].to(torch_device)
             for _ in range(batches)]
    target = validation.mapped_triples[:eval_triples]
    filters = [training.mapped_triples, validation.mapped_triples]
    kinds = ("pykeen", "kgbuild") + (("torch-dropout",) if config.model == "TuckER" else ())
    timings: dict[str, dict[str, list[float]]] = {k: {"train": [], "eval": []} for k in kinds}
    scores: dict[str, Any] = {}

    def sync() -> None:
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)  # kernels run asynchronously: time their end

    def train_steps() -> float:
        kgem.train()
        sync()
        t = time.perf_counter()
        for batch in steps:
            optimizer.zero_grad()
            s = kgem.score_t(batch)
            labels = torch.zeros_like(s)
            labels[:, 0] = 1.0  # any fixed targets: the cost is the same
            loss.process_lcwa_scores(s, labels).backward()
            optimizer.step()
        sync()
        return (time.perf_counter() - t) / len(steps)

    def evaluate(kind: str) -> float:
        kgem.eval()
        batch = evaluation_batch_size(training.num_entities, config.embedding_dim, torch_device,
                                      config.model if kind == "kgbuild" else None)
        t = time.perf_counter()
        RankBasedEvaluator().evaluate(kgem, target, additional_filter_triples=filters, batch_size=batch,
                                      device=torch_device, use_tqdm=False)
        seconds = (time.perf_counter() - t) / len(target)
        with torch.inference_mode():
            scores[kind] = kgem.score_t(target[:64, :2].to(torch_device)).cpu()
        return seconds

    def targets(cls) -> float:
        """Seconds per batch to draw a training batch and have its dense labels on the device."""
        loop = cls(model=kgem, triples_factory=training, optimizer=optimizer)
        loader = loop._create_training_data_loader(training, None, batch_size=config.batch_size, shuffle=True,
                                                   drop_last=False, pin_memory=torch_device.type == "cuda")
        batches_in = iter(loader)
        sync()
        t = time.perf_counter()
        for _ in range(batches):
            batch = next(batches_in)
            if "rows" in batch:
                loop.targets(batch["rows"])
            else:
                batch["target"].to(torch_device)
        sync()
        return (time.perf_counter() - t) / batches

    label_timings: dict[str, list[float]] = {"pykeen": [], "kgbuild": []}
    if config.training_loop == "lcwa":
        from pykeen.training import LCWATrainingLoop

        from kgbuild.embed.lcwa import DeviceTargetLCWATrainingLoop

        for _ in range(repeats):
            label_timings["pykeen"].append(targets(LCWATrainingLoop))
            label_timings["kgbuild"].append(targets(DeviceTargetLCWATrainingLoop))

    state = {k: v.clone() for k, v in kgem.state_dict().items()}
    try:
        for _ in range(repeats):
            for kind in kinds:
                (scoring.uninstall if kind == "pykeen" else scoring.install)()
                scoring.use_fast_dropout(kind != "torch-dropout")
                kgem.load_state_dict(state)  # all time the same weights
                timings[kind]["train"].append(train_steps())
                if kind == "torch-dropout":
                    continue  # evaluation has no dropout
                kgem.load_state_dict(state)
                timings[kind]["eval"].append(evaluate(kind))
    finally:
        scoring.install()
        scoring.use_fast_dropout(True)
    best = {k: {part: min(v) for part, v in parts.items() if v} for k, parts in timings.items()}
    difference = float((scores["pykeen"] - scores["kgbuild"]).abs().max())
    return {
        "dataset": name, "model": config.model, "embedding_dim": config.embedding_dim,
        "entities": training.num_entities, "batch_size": config.batch_size, "batches": batches,
        "eval_triples": len(target), "device": str(torch_device), "repeats": repeats,
        "pykeen_seconds_per_step": best["pykeen"]["train"], "kgbuild_seconds_per_step": best["kgbuild"]["train"],
        "pykeen_ms_per_eval_triple": 1000 * best["pykeen"]["eval"],
        "kgbuild_ms_per_eval_triple": 1000 * best["kgbuild"]["eval"],
        "training_speedup": best["pykeen"]["train"] / best["kgbuild"]["train"],
        "evaluation_speedup": best["pykeen"]["eval"] / best["kgbuild"]["eval"],
        "max_score_difference": difference,
        "torch_dropout_seconds_per_step": best["torch-dropout"]["train"] if "torch-dropout" in best else None,
        # 1-vs-all labels of a training batch, on the device: PyKEEN's host rows vs kgbuild's scatter
        "pykeen_ms_per_batch_labels": 1000 * min(label_timings["pykeen"]) if label_timings["pykeen"] else None,
        "kgbuild_ms_per_batch_labels": 1000 * min(label_timings["kgbuild"]) if label_timings["kgbuild"] else None,
    }


def format_embed_speed(r: dict[str, Any]) -> str:
    return "\n".join([
        f"{r['dataset']}: {r['model']} (dim {r['embedding_dim']}), {r['entities']:,} entities, {r['device']}, "
        f"best of {r['repeats']}",
        f"training step ({r['batch_size']} queries x every entity, {r['batches']} steps): "
        f"PyKEEN {r['pykeen_seconds_per_step']:.3f} s, kgbuild {r['kgbuild_seconds_per_step']:.3f} s "
        f"-> {r['training_speedup']:.1f}x",
        f"evaluation ({r['eval_triples']} triples, both sides, filtered): PyKEEN {r['pykeen_ms_per_eval_triple']:.2f} ms "
        f"per triple, kgbuild {r['kgbuild_ms_per_eval_triple']:.2f} ms -> {r['evaluation_speedup']:.1f}x",
        f"largest score difference between the two: {r['max_score_difference']:.2e}",
    ] + ([f"kgbuild's training step with torch's own dropout instead of fast_dropout: "
          f"{r['torch_dropout_seconds_per_step']:.3f} s -> fast_dropout {r['torch_dropout_seconds_per_step'] / r['kgbuild_seconds_per_step']:.2f}x"]
         if r.get("torch_dropout_seconds_per_step") else [])
        + ([f"labels of a training batch on the device: PyKEEN {r['pykeen_ms_per_batch_labels']:.2f} ms, "
            f"kgbuild {r['kgbuild_ms_per_batch_labels']:.2f} ms -> "
            f"{r['pykeen_ms_per_batch_labels'] / r['kgbuild_ms_per_batch_labels']:.1f}x"]
           if r.get("kgbuild_ms_per_batch_labels") else []))
