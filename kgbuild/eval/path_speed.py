"""`kgbuild eval path-speed`: what a training query and a ranked query cost NBFNet and A*Net
(kgbuild/embed/nbfnet.py, astarnet.py) on one graph, in the same process, each model's runs taking
turns so that machine noise falls on both alike, and from those the time of an epoch and of ranking
the validation split both ways. The graphs where the two matter (FB15k-237: an epoch is hundreds of
hours on a 2-core CPU) are too large to train here for a figure; this prices them."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from kgbuild.embed.linkpred import config_for, load_with_config
from kgbuild.embed.presets import register_extensions

MODELS = ("nbfnet", "astarnet")


def measure_path_speed(dataset: str | None = None, train: str | Path | None = None, valid: str | Path | None = None,
                       models: tuple[str, ...] = MODELS, batches: int = 2, batch_size: int | None = None,
                       queries: int = 16, repeats: int = 2, device: str = "cpu", seed: int = 0,
                       settings: list[str] | None = None) -> dict[str, Any]:
    """Seconds per training query (NBFNet's objective: forward, loss, backward, Adam step, over
    `batches` batches of the preset's batch size or `batch_size`, in the training loop's
    sub-batches) and per ranked query (every entity scored as the tail of a validation (head,
    relation), the first `queries`), best of `repeats`, for each of `models` with its preset's
    settings for this graph and `settings` (KEY=VALUE) on top."""
    import torch
    from pykeen.models import model_resolver
    from pykeen.triples.instances import LCWAInstances

    from kgbuild.device import resolve_device
    from kgbuild.embed.lcwa import one_vs_all_triples
    from kgbuild.embed.nbfnet import NBFNetObjective
    from kgbuild.embed.train import quiet_pykeen_logs

    quiet_pykeen_logs()
    register_extensions()
    torch_device = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    # the graph, loaded once; each model gets its own preset for it below
    name, training, validation, _, _ = load_with_config(dataset, train, valid, None, models[0],
                                                        device=torch_device.type)
    rows = torch.as_tensor(one_vs_all_triples(LCWAInstances.from_triples_factory(training)), device=torch_device)
    ranked = validation.mapped_triples[:queries, :2].to(torch_device)
    runs: dict[str, dict[str, Any]] = {}
    for key in models:
        config = config_for(training, key, settings=settings, device=torch_device.type)
        if config.training_loop != "nbfnet":
            from kgbuild.errors import ConfigError

            raise ConfigError(f"{key!r} is not a path model", hint=f"name any of: {', '.join(MODELS)}")
        model = model_resolver.make(config.model, {"embedding_dim": config.embedding_dim, **config.model_kwargs},
                                    triples_factory=training, random_seed=seed).to(torch_device)
        objective = NBFNetObjective(model, rows, negatives=config.negatives,
                                    adversarial_temperature=config.adversarial_temperature,
                                    remove_one_hop=config.remove_one_hop)
        size = batch_size or config.batch_size
        steps = [rows[torch.randint(len(rows), (size,), generator=generator).to(torch_device)] for _ in range(batches)]
        runs[key] = {"model": model, "objective": objective, "steps": steps, "config": config, "train": [],
                     "rank": [], "optimizer": torch.optim.Adam(model.parameters(), lr=config.learning_rate)}

    def sync() -> None:
        if torch_device.type == "cuda":
            torch.cuda.synchronize(torch_device)  # kernels run asynchronously: time their end

    def train_steps(run: dict[str, Any]) -> float:
        model, objective, optimizer = run["model"].train(), run["objective"], run["optimizer"]
        chunk = model.queries_per_chunk() if torch_device.type == "cpu" else len(run["steps"][0])
        sync()
        t = time.perf_counter()
        for batch in run["steps"]:
            optimizer.zero_grad()
            for i in range(0, len(batch), chunk):  # as the training loop's sub-batches
                part = batch[i:i + chunk]
                (objective.loss(part) * len(part) / len(batch)).backward()
            optimizer.step()
        sync()
        return (time.perf_counter() - t) / sum(len(b) for b in run["steps"])

    def rank(run: dict[str, Any]) -> float:
        model = run["model"].eval()
        sync()
        t = time.perf_counter()
        with torch.inference_mode():
            model.score_t(ranked)
        sync()
        return (time.perf_counter() - t) / len(ranked)

    peaks: dict[str, float | None] = {}
    for _ in range(repeats):
        for key, run in runs.items():
            if torch_device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(torch_device)
            run["train"].append(train_steps(run))
            run["rank"].append(rank(run))
            if torch_device.type == "cuda":
                peaks[key] = torch.cuda.max_memory_allocated(torch_device) / 2**20
    valid_queries = 2 * validation.num_triples
    figures = {}
    for key, run in runs.items():
        model, config = run["model"], run["config"]
        train_s, rank_s = min(run["train"]), min(run["rank"])
        figures[key] = {
            "model": config.model, "model_kwargs": dict(config.model_kwargs), "embedding_dim": config.embedding_dim,
            "batch_size": len(run["steps"][0]), "remove_one_hop": config.remove_one_hop,
            "messages_per_query_layer": model.messages_per_query,
            "seconds_per_training_query": train_s, "seconds_per_ranked_query": rank_s,
            "epoch_hours": train_s * len(rows) / 3600, "valid_ranking_hours": rank_s * valid_queries / 3600,
            "peak_gpu_mb": peaks.get(key),
        }
    first, *others = models
    return {
        "dataset": name, "device": str(torch_device), "entities": training.num_entities,
        "training_rows": len(rows), "valid_queries": valid_queries, "batches": batches,
        "ranked_queries": len(ranked), "repeats": repeats, "models": figures,
        # the whole process's, both models together (the CPU's peak cannot be set back)
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "speedups": {key: {"training": figures[first]["seconds_per_training_query"]
                           / figures[key]["seconds_per_training_query"],
                           "ranking": figures[first]["seconds_per_ranked_query"]
                           / figures[key]["seconds_per_ranked_query"]} for key in others},
    }


def format_path_speed(result: dict[str, Any]) -> str:
    lines = [f"{result['dataset']}: {result['entities']:,} entities, {result['training_rows']:,} training rows "
             f"(both directions), {result['valid_queries']:,} validation queries; {result['device']}, "
             f"best of {result['repeats']}"]
    for key, f in result["models"].items():
        kwargs = ", ".join(f"{k} {v}" for k, v in f["model_kwargs"].items())
        memory = f", peak GPU memory {f['peak_gpu_mb']:,.0f} MB" if f["peak_gpu_mb"] is not None else ""
        lines.append(f"{key} ({kwargs}; dimension {f['embedding_dim']}, batch {f['batch_size']}, "
                     f"remove_one_hop {f['remove_one_hop']}): {f['messages_per_query_layer']:,} messages a query "
                     f"and layer")
        lines.append(f"  training {f['seconds_per_training_query']:.4f} s a query (an epoch: "
                     f"{_duration(f['epoch_hours'])}); ranking {f['seconds_per_ranked_query']:.4f} s a query "
                     f"(validation both ways: {_duration(f['valid_ranking_hours'])}){memory}")
    for key, s in result["speedups"].items():
        first = next(iter(result["models"]))
        lines.append(f"{key} against {first}: training {s['training']:.2f}x, ranking {s['ranking']:.2f}x as fast")
    lines.append(f"peak RSS of the process: {result['peak_rss_mb']:,.0f} MB")
    return "\n".join(lines)


def _duration(hours: float) -> str:
    return f"{hours:,.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"
