"""Link-prediction benchmarks: train a model exactly as `kgbuild embed` does on a published split
(Nations, UMLS, Kinships ship inside pykeen; any train / valid / test TSV files), and report
filtered both-sides MRR and Hits@1/3/10 from PyKEEN's RankBasedEvaluator, with a PNG of the
loss and validation curves."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from kgbuild.embed.ensemble import EnsembleModel
from kgbuild.embed.presets import TrainConfig, default_config, with_settings
from kgbuild.embed.rules import RULES_MODES, RulesAndEmbeddings, choose_weight, learn_rules
from kgbuild.embed.train import Curves, FitResult, MemberResult, fit, quiet_pykeen_logs, rank_metrics
from kgbuild.errors import KgbuildError

# The datasets that ship inside pykeen (files under pykeen/datasets/<name>/; Nations, UMLS and
# Kinships from Kok & Domingos 2007, as split by the ConvE repository of Dettmers et al. 2018).
DATASETS = ("nations", "umls", "kinships")


@dataclass
class LinkPredResult:
    """One benchmark run."""

    dataset: str  # dataset name, or "train.txt" for TSV files
    split: str  # "test", or "valid" when no test file was given
    config: TrainConfig  # the model and settings trained
    entities: int
    relations: int
    training_triples: int
    evaluation_triples: int  # triples ranked (both sides each)
    unranked: int  # evaluation triples left out: an entity or relation never seen in training
    metrics: dict[str, float]  # filtered both-sides mrr, hits@1, hits@3, hits@10 on `split`
    validation_metrics: dict[str, float]  # the same on the validation split (the early-stopping split)
    validation_without_test: dict[str, float]  # validation metrics without the test split filtered (empty: no test split)
    epochs: int  # epochs run
    best_epoch: int | None  # epoch whose weights were evaluated
    seconds: float  # training + evaluation wall time
    device: str
    seed: int
    curves: Curves = field(default_factory=Curves)
    plot: str | None = None  # path of the PNG
    known_triples: int = 0  # triples of the --known files also filtered (those whose entities and relation were trained)
    metrics_without_known: dict[str, float] = field(default_factory=dict)  # `metrics` filtering the splits alone
    # an ensemble's models (empty: one model); epochs, best_epoch and curves are then the first member's
    members: list[MemberResult] = field(default_factory=list)
    rules: str = "off"  # "off", "add" (rules added to the embeddings' scores) or "only" (rules alone, nothing trained)
    rules_weight: float = 0.0  # the rules' weight against the embeddings' log-probabilities ("add")
    weight_mrr: dict[float, float] = field(default_factory=dict)  # validation MRR of each weight tried (chosen, not given)
    rule_counts: dict[str, int] = field(default_factory=dict)  # rules learned, by shape
    rule_seconds: float = 0.0  # time to learn them
    metrics_without_rules: dict[str, float] = field(default_factory=dict)  # "add": `metrics` of the embeddings alone

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_dataset(dataset: str | None = None, train: str | Path | None = None, valid: str | Path | None = None,
                 test: str | Path | None = None, inverse_triples: bool = True):
    """(name, training, validation, testing) TriplesFactories; testing is None when only train
    and valid files are given (the FB15k-237 and WN18RR copies here have no test file).

    Files are read with PyKEEN's TSV reader (pandas: LF and CRLF line ends alike). Validation and
    test triples whose head, relation or tail never occurs in training cannot be ranked: PyKEEN
    leaves them out (WN18RR valid: 210 of 3,034), and `unranked` counts them."""
    from pykeen.datasets import Kinships, Nations, UMLS
    from pykeen.triples import TriplesFactory

    if dataset is not None:
        classes = {"nations": Nations, "umls": UMLS, "kinships": Kinships}
        key = dataset.lower()
        if key not in classes:
            raise KgbuildError(f"unknown dataset {dataset!r}", hint=f"use one of: {', '.join(DATASETS)}, or --train/--valid/--test")
        ds = classes[key](create_inverse_triples=inverse_triples)
        return key, ds.training, ds.validation, ds.testing
    if train is None or valid is None:
        raise KgbuildError("give --dataset, or --train and --valid (and --test) files",
                           hint="files hold one tab-separated head, relation, tail per line")
    for path in (train, valid, test):
        if path is not None and not Path(path).is_file():
            raise KgbuildError(f"{path} not found", hint="pass tab-separated triple files")
    training = TriplesFactory.from_path(train, create_inverse_triples=inverse_triples)
    validation, testing = (
        None if path is None else TriplesFactory.from_path(
            path, entity_to_id=training.entity_to_id, relation_to_id=training.relation_to_id,
            create_inverse_triples=inverse_triples)
        for path in (valid, test))
    return Path(train).name, training, validation, testing


def load_with_config(dataset: str | None = None, train: str | Path | None = None, valid: str | Path | None = None,
                     test: str | Path | None = None, model: str | None = None, epochs: int | None = None,
                     config: TrainConfig | None = None, settings: list[str] | None = None,
                     device: str = "cpu"):
    """(name, training, validation, testing, config): load_dataset, with `config` or else the
    default settings of `model` for the loaded graph's size and relation count on `device` (a
    resolved "cpu" or "cuda"), and `settings` (KEY=VALUE, see presets.with_settings) applied."""
    probe = with_settings(config or default_config(model, 10**9, epochs), settings)
    name, training, validation, testing = load_dataset(dataset, train, valid, test, probe.inverse_triples)
    return name, training, validation, testing, config_for(training, model, epochs, config, settings, device)


def config_for(training, model: str | None = None, epochs: int | None = None, config: TrainConfig | None = None,
               settings: list[str] | None = None, device: str = "cpu") -> TrainConfig:
    """`config`, or else the default settings of `model` for the `training` TriplesFactory's size
    and relation count on `device`, with `settings` (KEY=VALUE) applied."""
    config = config or default_config(model, training.num_triples, epochs, relation_count(training), device)
    return with_settings(config, settings)


def relation_count(factory) -> int:
    """Relations of a TriplesFactory, not counting the inverses PyKEEN adds."""
    return int(getattr(factory, "real_num_relations", factory.num_relations))


def unranked(path: str | Path, factory) -> int:
    """Triples of the file at `path` that `factory` left out (an entity or relation unseen in training)."""
    with open(path, "rb") as f:
        lines = sum(1 for line in f if line.strip())
    return lines - factory.num_triples


def evaluate_linkpred(dataset: str | None = None, train: str | Path | None = None, valid: str | Path | None = None,
                      test: str | Path | None = None, model: str | None = None, epochs: int | None = None,
                      device: str = "auto", seed: int = 0, plot: str | Path | None = None,
                      config: TrainConfig | None = None, quiet: bool = True,
                      max_minutes: float | None = None,
                      progress: Callable[[str], None] | None = None,
                      settings: list[str] | None = None, known: list[str | Path] | None = None,
                      members: int = 1, checkpoint: str | Path | None = None, rules: str = "off",
                      rules_weight: float | None = None) -> LinkPredResult:
    """Train on the training split, stop early on validation MRR, and rank the test triples
    (the validation triples when there is no test file) against every entity, both sides,
    filtering all known true triples. Writes the curves to `plot` (a .png path) when given.
    `max_minutes` time-boxes training (a smoke run of a large graph on the CPU); `progress`
    (a callable taking one line) hears of each validation; `settings` (KEY=VALUE) change the
    model's training settings. `known`: files of further true triples (a withheld test split,
    facts checked by hand), never trained on, also filtered out of the final rankings; the
    figures filtering the splits alone are kept in `metrics_without_known`.

    `members` > 1 trains that many models with seeds `seed`, `seed` + 1, ... (`max_minutes` is
    then the whole run's box, shared evenly), and every figure is the ensemble's
    (kgbuild.embed.ensemble); each member's own figures are in `members`. `checkpoint`: a folder
    that keeps the training resumable (fit): the same command with it goes on where it stopped.

    `rules`: "add" also learns rules from the training triples (kgbuild.embed.rules) and ranks
    with the embeddings' log-probabilities plus `rules_weight` times the rules' scores (None:
    the weight of kgbuild.embed.rules.WEIGHTS that ranks the validation split best; the
    embeddings alone are kept in `metrics_without_rules`); "only" ranks with the rules alone and
    trains nothing."""
    from kgbuild.device import resolve_device

    if members < 1:
        raise KgbuildError(f"--members {members}: an ensemble needs at least one model", hint="use --members 1 or more")
    if rules not in RULES_MODES:
        raise KgbuildError(f"unknown --rules {rules!r}", hint=f"use one of: {', '.join(RULES_MODES)}")
    if rules == "only" and members > 1:
        raise KgbuildError("--rules only trains no model, so there are no --members to train",
                           hint="drop --members, or use --rules add to rank with an ensemble and rules")
    quiet_pykeen_logs()
    name, training, validation, testing, config = load_with_config(dataset, train, valid, test, model, epochs, config,
                                                                     settings, resolve_device(device).type)
    extra = [_known_factory(path, training) for path in known or []]
    t0 = time.perf_counter()
    fits, member_results = [], []
    for i in range(0 if rules == "only" else members):
        started = time.perf_counter()
        fitted = fit(training, validation, testing, config, device=device, seed=seed + i, quiet=quiet,
                     max_minutes=None if max_minutes is None else max_minutes / members,
                     progress=_member_progress(progress, i, members, seed + i), checkpoint=checkpoint)
        fits.append(fitted)
        if members > 1:
            member_results.append(MemberResult(
                seed=seed + i, epochs=len(fitted.curves.losses), best_epoch=fitted.curves.best_epoch,
                metrics={k: round(v, 4) for k, v in fitted.metrics.items()},
                seconds=round(time.perf_counter() - started, 1), curves=fitted.curves))
    evaluated = testing if testing is not None else validation
    earlier = [training, *([validation] if testing is not None else [])]
    rule_model, without_rules = None, {}
    if rules != "off":
        rule_model = learn_rules(training.mapped_triples.numpy(), training.num_entities, relation_count(training),
                                 seed=seed, progress=progress)
    if rules == "only":
        fitted = FitResult(model=rule_model, curves=Curves(), metrics={}, seconds=0.0)
        scored = rule_model
    else:
        fitted = fits[0]
        scored = fitted.model if members == 1 else EnsembleModel([f.model for f in fits])
    metrics, without_known = fitted.metrics, {}
    if members > 1 and rules != "only":
        metrics = rank_metrics(scored, evaluated, earlier, device=scored.device)
    weight_mrr: dict[float, float] = {}
    if rules == "add":
        without_rules = {k: round(v, 4) for k, v in metrics.items()}
        # without a test split or --known files, the weights' validation rankings are the report's
        reported_is_validation = testing is None and not extra
        if rules_weight is None:
            valid_known = [training, *([testing] if testing is not None else []), *extra]
            rules_weight, tried = choose_weight(scored, rule_model, validation, valid_known,
                                                alone=metrics if reported_is_validation else None)
            weight_mrr = {w: round(m["mrr"], 4) for w, m in tried.items()}
            if reported_is_validation:
                metrics = tried[rules_weight]
        if rules_weight:
            scored = RulesAndEmbeddings(scored, rule_model, rules_weight)
            if not (weight_mrr and reported_is_validation):
                metrics = rank_metrics(scored, evaluated, earlier, device=scored.device)
    elif rules == "only":
        metrics = rank_metrics(scored, evaluated, earlier, device=scored.device)
    if extra:
        without_known = {k: round(v, 4) for k, v in metrics.items()}
        metrics = rank_metrics(scored, evaluated, [*earlier, *extra], device=scored.device)
    valid_without_test: dict[str, float] = {}
    if testing is not None:
        valid_metrics = rank_metrics(scored, validation, [training, testing, *extra], device=scored.device)
        # as the validation figures of a graph whose test split is withheld (FB15k-237 here) are
        valid_without_test = rank_metrics(scored, validation, [training, *extra], device=scored.device)
    else:
        valid_metrics = metrics
    result = LinkPredResult(
        dataset=name,
        split="test" if testing is not None else "valid",
        config=config,
        entities=training.num_entities,
        relations=relation_count(training),
        training_triples=training.num_triples,
        evaluation_triples=evaluated.num_triples,
        unranked=unranked(test if testing is not None else valid, evaluated) if dataset is None else 0,
        metrics={k: round(v, 4) for k, v in metrics.items()},
        validation_metrics={k: round(v, 4) for k, v in valid_metrics.items()},
        validation_without_test={k: round(v, 4) for k, v in valid_without_test.items()},
        epochs=len(fitted.curves.losses),
        best_epoch=fitted.curves.best_epoch,
        seconds=round(time.perf_counter() - t0, 1),
        device=str(resolve_device(device)),
        seed=seed,
        curves=fitted.curves,
        known_triples=sum(k.num_triples for k in extra),
        metrics_without_known=without_known,
        members=member_results,
        rules=rules,
        rules_weight=rules_weight if rules == "add" else 0.0,
        weight_mrr=weight_mrr,
        rule_counts=dict(rule_model.stats.rules) if rule_model is not None else {},
        rule_seconds=rule_model.stats.seconds if rule_model is not None else 0.0,
        metrics_without_rules=without_rules,
    )
    if plot is not None and rules != "only":
        result.plot = str(plot_curves(result, plot))
    return result


def _member_progress(progress: Callable[[str], None] | None, i: int, members: int,
                     seed: int) -> Callable[[str], None] | None:
    """`progress`, its lines prefixed with the ensemble member they come from."""
    if progress is None or members == 1:
        return progress
    return lambda line: progress(f"member {i + 1} of {members} (seed {seed}): {line}")


def _known_factory(path: str | Path, training):
    """The triples of a --known file in the training split's ids (those with an entity or relation
    never trained on cannot be candidates, and are dropped)."""
    from pykeen.triples import TriplesFactory

    if not Path(path).is_file():
        raise KgbuildError(f"{path} not found", hint="--known takes a file of tab-separated true triples")
    return TriplesFactory.from_path(path, entity_to_id=training.entity_to_id, relation_to_id=training.relation_to_id,
                                    create_inverse_triples=training.create_inverse_triples)


def plot_curves(result: LinkPredResult, path: str | Path) -> Path:
    """A PNG with the training loss per epoch (left axis) and validation MRR (right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    right = None
    for i, curves in enumerate([m.curves for m in result.members] or [result.curves]):
        ax.plot(range(1, len(curves.losses) + 1), curves.losses, color="tab:blue", alpha=1.0 / (1 + i))
        if curves.validation_mrr:
            right = right or ax.twinx()
            right.plot(curves.validation_epochs, curves.validation_mrr, "o-", color="tab:orange", alpha=1.0 / (1 + i))
            if curves.best_epoch:
                ax.axvline(curves.best_epoch, color="gray", linestyle="--", linewidth=1)
    if right is not None:
        right.set_ylabel("validation MRR (filtered)", color="tab:orange")
        right.set_ylim(0, 1)
    m = result.metrics
    what = f"ensemble of {len(result.members)} x {result.config.model}" if result.members else result.config.model
    ax.set_title(f"{what} on {result.dataset}: {result.split} MRR {m.get('mrr', float('nan')):.3f}, "
                 f"Hits@10 {m.get('hits@10', float('nan')):.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def format_linkpred(result: LinkPredResult) -> str:
    m = result.metrics
    lines = [
        f"{result.config.model} on {result.dataset} ({result.entities} entities, {result.relations} relations, "
        f"{result.training_triples} training triples)",
        f"{result.split}: {result.evaluation_triples} triples, filtered both-sides ranking"
        + (f" ({result.unranked} left out: entity or relation not in training)" if result.unranked else ""),
        _metrics_line(m),
    ]
    if result.known_triples:
        lines[1] += f", {result.known_triples} --known triples also filtered"
        lines += ["  without filtering the --known triples:", _metrics_line(result.metrics_without_known)]
    elif result.split == "valid":
        # published filtered figures also filter a test split; without it these read lower (README)
        lines.append("  (no test split filtered: published figures filter theirs; give it as --known if you have it)")
    if result.split == "test":
        lines += ["valid:", _metrics_line(result.validation_metrics),
                  "  without filtering the test split (as when it is withheld):",
                  _metrics_line(result.validation_without_test)]
    if result.rules == "only":
        lines[0] = lines[0].replace(result.config.model, "rules", 1)
    elif result.rules == "add":
        lines[0] = lines[0].replace(result.config.model, f"{result.config.model} + rules (weight {result.rules_weight:g})", 1)
        lines += ["  the embeddings alone:", _metrics_line(result.metrics_without_rules)]
        if result.weight_mrr:
            tried = ", ".join(f"{w:g}: {m:.4f}" for w, m in result.weight_mrr.items())
            lines.append(f"  weight chosen by validation MRR ({tried})")
    if result.rule_counts:
        counts = ", ".join(f"{n} {kind}" for kind, n in result.rule_counts.items())
        lines.append(f"rules: {counts}, learned in {result.rule_seconds:.1f}s")
    if result.rules == "only":
        lines.append(f"in {result.seconds:.1f}s on the CPU")
    elif result.members:
        lines[0] = f"ensemble of {len(result.members)} x " + lines[0]
        lines.append(f"{len(result.members)} models in {result.seconds:.1f}s on {result.device}, each alone:")
        for member in result.members:
            lines.append(_metrics_line(member.metrics) + f"   seed {member.seed}, {member.epochs} epochs "
                         f"(best {member.best_epoch}) in {member.seconds:.1f}s")
    else:
        lines.append(f"{result.epochs} epochs (best {result.best_epoch}) in {result.seconds:.1f}s on {result.device}, "
                     f"seed {result.seed}")
        curves = result.curves
        if curves.validation_seconds and result.best_epoch in curves.validation_epochs:
            kept = curves.validation_epochs.index(result.best_epoch)  # the weights evaluated above
            lines.append(f"best validation MRR {curves.validation_mrr[kept]:.4f} at epoch {result.best_epoch}, "
                         f"{curves.validation_seconds[kept]:.0f} s after training began")
    if result.plot:
        lines.append(f"curves: {result.plot}")
    return "\n".join(lines) + "\n"


def _metrics_line(m: dict[str, float]) -> str:
    return f"  MRR {m['mrr']:.4f}   Hits@1 {m['hits@1']:.4f}   Hits@3 {m['hits@3']:.4f}   Hits@10 {m['hits@10']:.4f}"


def result_json(result: LinkPredResult) -> str:
    return json.dumps(result.to_dict(), indent=2)
