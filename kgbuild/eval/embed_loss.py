"""`kgbuild eval embed-loss`: the default model of a graph trained for a few epochs with each of
several (loss, Adam learning rate) settings, every run from the same seed, each ranked on the same
seeded sample of validation triples: how fast each setting learns, in minutes rather than the
hours a full schedule takes on large graphs. The figures behind the loss of the large-graph
presets (kgbuild/embed/presets.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from kgbuild.embed.linkpred import load_with_config
from kgbuild.errors import KgbuildError


def parse_setting(text: str) -> tuple[str, float]:
    """"crossentropy:0.003" -> ("crossentropy", 0.003)."""
    from pykeen.losses import loss_resolver

    loss, _, lr = text.partition(":")
    try:
        rate = float(lr)
    except ValueError:
        raise KgbuildError(f"bad setting {text!r}", hint="write LOSS:LEARNING_RATE, e.g. crossentropy:0.003") from None
    try:
        loss_resolver.lookup(loss.strip())
    except (KeyError, ValueError):
        raise KgbuildError(f"unknown loss {loss.strip()!r} in {text!r}",
                           hint="use one of: " + ", ".join(sorted(o for o in loss_resolver.options if " " not in o))) from None
    return loss.strip(), rate


def compare_losses(train: str | Path, valid: str | Path, settings: list[tuple[str, float]] | None = None,
                   model: str | None = None, epochs: int = 2, sample: int = 2000, device: str = "auto",
                   seed: int = 0) -> dict[str, Any]:
    """Train `model` (None: the graph's default) for `epochs` with each (PyKEEN loss, learning
    rate) of `settings` (None: the default's own loss and binary cross-entropy, both at the
    default's rate) and rank `sample` validation triples drawn with `seed` (filtered by every
    training and validation triple, both sides)."""
    import torch

    from kgbuild.embed.train import fit

    name, training, validation, _, base = load_with_config(None, train, valid, None, model)
    if settings is None:
        settings = [(base.loss, base.learning_rate)]
        if base.loss != "bcewithlogits":
            settings.append(("bcewithlogits", base.learning_rate))
    generator = torch.Generator().manual_seed(seed)
    picked = torch.randperm(validation.num_triples, generator=generator)[:sample]
    ranked = validation.clone_and_exchange_triples(validation.mapped_triples[picked])
    runs = []
    for loss, lr in settings:
        # eval_every above the epochs: no validation during training, the sample is ranked once.
        config = replace(base, loss=loss, learning_rate=lr, epochs=epochs, eval_every=epochs + 1)
        t0 = time.perf_counter()
        fitted = fit(training, validation, ranked, config, device=device, seed=seed)
        runs.append({"loss": loss, "learning_rate": lr, "metrics": fitted.metrics,
                     "losses": fitted.curves.losses, "seconds": round(time.perf_counter() - t0, 1)})
    return {"dataset": name, "model": base.model, "epochs": epochs, "ranked": ranked.num_triples,
            "default": {"loss": base.loss, "learning_rate": base.learning_rate}, "runs": runs}


def format_loss_comparison(r: dict[str, Any]) -> str:
    lines = [f"{r['dataset']}: {r['model']}, {r['epochs']} epoch(s) per setting, {r['ranked']:,} sampled validation "
             f"triples ranked (filtered, both sides); default {r['default']['loss']} at {r['default']['learning_rate']}",
             f"{'loss':<16}{'lr':>9}{'MRR':>8}{'H@1':>8}{'H@10':>8}{'s':>8}"]
    for run in r["runs"]:
        m = run["metrics"]
        lines.append(f"{run['loss']:<16}{run['learning_rate']:>9g}{m['mrr']:>8.3f}{m['hits@1']:>8.3f}"
                     f"{m['hits@10']:>8.3f}{run['seconds']:>8.0f}")
    return "\n".join(lines)
