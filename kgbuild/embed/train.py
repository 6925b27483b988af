"""The embedding stage: the graph's entity-to-entity facts -> a PyKEEN model trained with early
stopping on validation MRR, saved with its id maps under OUT/embeddings/."""

from __future__ import annotations

import gc
import json
import logging
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from kgbuild.embed import scoring
from kgbuild.embed.ensemble import EnsembleModel
from kgbuild.embed.graph import read_graph
from kgbuild.embed.presets import LARGE_GRAPH, TrainConfig, default_config, register_extensions, with_settings
from kgbuild.embed.rules import RULES_FILE, RULES_WEIGHT, RuleModel, RulesAndEmbeddings, choose_weight, learn_rules
from kgbuild.errors import GraphError, KgbuildError

EMBEDDINGS_DIR = "embeddings"
SUMMARY = "summary.json"
WEIGHTS = "model.pt"
MEMBER_WEIGHTS = "model-{}.pt"  # an ensemble's second and later models: model-1.pt, model-2.pt, ...
ENTITIES = "entities.tsv"
RELATIONS = "relations.tsv"
TRAINING = "training.tsv"
VALIDATION = "validation.tsv"
METRICS = ("mrr", "hits@1", "hits@3", "hits@10")
PATH_MODELS = ("NBFNet", "AStarNet")  # scored by message passing from the head (nbfnet.py, astarnet.py)
# Below this many facts a validation split would leave too little to train on; the model then
# trains for the full epochs and reports no validation figures.
MIN_TRIPLES_FOR_VALIDATION = 20
# Graphs with fewer training triples train on one CPU thread.
SMALL_GRAPH = 5000
# Most floats one evaluation batch may hold on the CPU (1 GiB): see evaluation_batch_size.
CPU_EVALUATION_FLOATS = 2**28
# A validation MRR counts as a gain for early stopping (patience, the saved best weights) when it
# beats the best so far by this share of it.
STOPPER_DELTA = 0.002
# With a checkpoint folder (fit's `checkpoint`), the training state is saved after the first epoch
# that ends this many minutes after the last save, and whenever training stops (time box, early
# stopping, the last epoch).
CHECKPOINT_MINUTES = 5


class EmbeddingError(KgbuildError):
    """The graph cannot be embedded, or saved embeddings cannot be read."""


@dataclass
class Curves:
    """How training went: what `kgbuild eval linkpred` plots."""

    losses: list[float] = field(default_factory=list)  # training loss per epoch
    validation_epochs: list[int] = field(default_factory=list)  # epochs at which validation ran
    validation_mrr: list[float] = field(default_factory=list)  # filtered MRR at those epochs
    validation_seconds: list[float] = field(default_factory=list)  # wall time from the start of training to each
    best_epoch: int | None = None  # epoch whose weights were kept
    stopped_early: bool = False  # validation MRR stopped improving before the last epoch


@dataclass
class MemberResult:
    """One model of an ensemble (`--members N`)."""

    seed: int  # its random seed
    epochs: int  # epochs run
    best_epoch: int | None  # epoch whose weights it kept
    metrics: dict[str, float]  # its own figures on the evaluated split (filtering the splits alone)
    seconds: float  # its training and evaluation time
    curves: Curves = field(default_factory=Curves)


@dataclass
class FitResult:
    model: Any  # the trained pykeen Model, best validation weights
    curves: Curves
    metrics: dict[str, float]  # filtered both-sides metrics on the evaluation triples
    seconds: float  # training and evaluation time


def fit(training, validation, testing, config: TrainConfig, device: str = "auto", seed: int = 0,
        quiet: bool = True, filter_triples: list | None = None, max_minutes: float | None = None,
        progress: Callable[[str], None] | None = None, checkpoint: str | Path | None = None) -> FitResult:
    """Train `config` on the `training` TriplesFactory with PyKEEN's pipeline, stop early on
    validation MRR, keep the best weights and evaluate them on `testing` (filtered, both sides).

    `validation` may be None (tiny graphs): no early stopping and no metrics then. `max_minutes`
    ends training once that much time has passed (evaluation not counted): the epoch then in
    progress ends after its current batch (kgbuild's training loops; PyKEEN's own at the
    epoch's end).
    `progress` gets a line after each validation: epoch, MRR and the time since training began;
    and one when the time box cuts an epoch short. `checkpoint`: a folder for the training state (PyKEEN's training-loop checkpoints: weights,
    optimizer, epoch, random states, the early stopper's record), saved every CHECKPOINT_MINUTES
    and when training stops, with the best validation weights; a later call with the same folder,
    graph, settings and seed goes on from there (a time box then counts from the new start)."""
    import torch
    from pykeen.pipeline import pipeline

    from kgbuild.device import resolve_device
    from kgbuild.embed.lcwa import DeviceTargetLCWATrainingLoop, OneVsAllTrainingLoop, SLCWATrainingLoop
    from kgbuild.embed.nbfnet import NBFNetTrainingLoop

    config.check()
    torch_device = resolve_device(device)
    loops = {"lcwa": DeviceTargetLCWATrainingLoop, "1vsall": OneVsAllTrainingLoop,
             "nbfnet": NBFNetTrainingLoop, "slcwa": SLCWATrainingLoop}  # kgbuild's; others PyKEEN's
    loop_kwargs = {"1vsall": {"n3": config.n3, "relation_prediction": config.relation_prediction,
                              "epoch_rows": config.epoch_rows},
                   "nbfnet": {"negatives": config.negatives, "adversarial_temperature": config.adversarial_temperature,
                              "remove_one_hop": config.remove_one_hop, "epoch_rows": config.epoch_rows}}
    quiet_pykeen_logs()
    scoring.install()
    register_extensions()
    slcwa = config.training_loop == "slcwa"
    training_kwargs: dict[str, Any] = {"batch_size": config.batch_size}
    if max_minutes is not None:
        training_kwargs["callbacks"] = [_time_box(max_minutes * 60, progress)]
    eval_batch = evaluation_batch_size(training.num_entities, config.embedding_dim, torch_device, config.model,
                                       messages=2 * training.num_triples)
    if not slcwa and config.label_smoothing:
        training_kwargs["label_smoothing"] = config.label_smoothing
    with tempfile.TemporaryDirectory(prefix="kgbuild-embed-") as tmp:
        best_path = Path(tmp) / "best.pt"
        stopper_kwargs = None
        # A run no longer than one validation interval would only evaluate its last epoch, which
        # the final evaluation does anyway (a costly duplicate on large graphs).
        early_stopping = validation is not None and config.epochs > config.eval_every
        t0 = time.perf_counter()
        seen: list[float] = []  # seconds from t0 at each validation: "time to MRR x" on the curves
        seen_epochs: list[int] = []
        kept = None
        if checkpoint is not None:
            kept = Checkpoint(Path(checkpoint), training, validation, config, seed)
            best_path = kept.best
            training_kwargs.update(checkpoint_directory=str(kept.folder), checkpoint_name=kept.state.name,
                                   checkpoint_frequency=CHECKPOINT_MINUTES)
            elapsed, seen_epochs, seen[:] = kept.resume()
            t0 -= elapsed
            if kept.sub_batch is not None:  # PyKEEN does not look for it again on resuming (lcwa.SubBatchesOnResume)
                training_kwargs["sub_batch_size"], training_kwargs["slice_size"] = kept.sub_batch
            training_kwargs.setdefault("callbacks", []).append(kept.recorder(lambda: time.perf_counter() - t0,
                                                                             seen_epochs, seen))

        def validated(stopper: Any, mrr: float, epoch: int) -> None:
            seen.append(time.perf_counter() - t0)
            seen_epochs.append(epoch)
            if kept is not None:
                kept.record(seen_epochs, seen)
            if progress is not None:
                progress(f"epoch {epoch}: validation MRR {float(mrr):.4f} after {seen[-1]:.0f} s")

        if early_stopping:
            stopper_kwargs = dict(frequency=config.eval_every, patience=config.patience, metric="mrr",
                                  relative_delta=STOPPER_DELTA, best_model_path=best_path,
                                  clean_up_checkpoint=False, evaluation_batch_size=eval_batch,
                                  result_callbacks=[validated])
        # PyKEEN runs gc.collect() after every epoch; over the objects of torch and pykeen that
        # costs ~0.3 s, far more than an epoch of a small graph. Freezing what exists now
        # leaves only the training's own objects to collect.
        gc.freeze()
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        threads = torch.get_num_threads()
        if torch_device.type == "cpu" and training.num_triples < SMALL_GRAPH and (
                config.model not in PATH_MODELS or 2 * training.num_triples * config.batch_size * config.embedding_dim < 2**22):
            # Tiny tensors: a second thread only adds synchronisation (measured 3x slower on 2
            # busy cores). NBFNet's hold a message per fact and query, not tiny from a few
            # million floats (Nations: 6.5 million, 1.7x faster on two idle cores).
            torch.set_num_threads(1)
        # Dropout masks drawn by scoring.fast_dropout (the same distribution, another random
        # stream) only where they save time: large graphs' TuckER steps (1.14-1.29x). On smaller
        # graphs they save nothing, and torch's own masks keep the measured defaults' figures
        # (README, Nations, UMLS, Kinships: seed 0) to the digit.
        fast = scoring.fast_dropout_on()
        scoring.use_fast_dropout(fast and training.num_triples >= LARGE_GRAPH)
        tf32 = torch.backends.cuda.matmul.allow_tf32
        if torch_device.type == "cuda":
            # TensorFloat-32 products (unless the config says tf32=false): TuckER's core and the
            # scores against every entity run on the matrix units instead of full-precision
            # float32 arithmetic.
            torch.backends.cuda.matmul.allow_tf32 = config.tf32
        evaluator = remembering_evaluator()
        try:
            result = pipeline(
                training=training,
                validation=validation,
                testing=testing if testing is not None else validation if validation is not None else training,
                model=config.model,
                model_kwargs={"embedding_dim": config.embedding_dim, **config.model_kwargs},
                loss=config.loss,
                loss_kwargs=config.loss_kwargs or None,
                # 1-vs-all: the labels of each batch built on the device, not the host (lcwa.py)
                training_loop=loops.get(config.training_loop, config.training_loop),
                training_loop_kwargs=loop_kwargs.get(config.training_loop),
                negative_sampler="basic" if slcwa else None,
                negative_sampler_kwargs={"num_negs_per_pos": config.negatives} if slcwa else None,
                optimizer=config.optimizer,
                optimizer_kwargs={"lr": config.learning_rate},
                epochs=config.epochs,
                training_kwargs=training_kwargs,
                evaluation_kwargs={"batch_size": eval_batch},
                stopper="early" if early_stopping else None,
                stopper_kwargs=stopper_kwargs,
                # the stopper, the final evaluation and the best weights' share it: nothing is ranked twice
                evaluator=evaluator,
                device=torch_device,
                random_seed=seed,
                use_tqdm=not quiet,
            )
        finally:
            gc.unfreeze()
            scoring.use_fast_dropout(fast)
            torch.set_num_threads(threads)
            torch.backends.cuda.matmul.allow_tf32 = tf32
        model = result.model
        stopper = result.stopper
        curves = Curves(losses=[float(x) for x in result.losses])
        if early_stopping:
            results = list(getattr(stopper, "results", []))
            curves.validation_mrr = [float(x) for x in results]
            curves.validation_epochs = [config.eval_every * (i + 1) for i in range(len(results))]
            curves.validation_seconds = [round(x, 1) for x in seen[: len(results)]]
            curves.best_epoch = stopper.best_epoch or len(curves.losses)  # None: time box before any validation
            curves.stopped_early = bool(stopper.stopped)
        else:
            curves.best_epoch = len(curves.losses)
        reloaded = False
        last_mrr = float(result.metric_results.get_metric("mrr"))
        if (early_stopping and testing is None and curves.best_epoch != len(curves.losses)
                and last_mrr >= _validation_at(curves, curves.best_epoch)):
            # The pipeline's final evaluation ranked the validation split with the last weights,
            # and they rank at least as well as the stopper's best, the only other weights saved
            # (it saves only gains over its relative delta, 0.2%, so a last validation a little
            # higher was not saved as best; or the time box ended training between validations):
            # keep them.
            if not curves.validation_epochs or curves.validation_epochs[-1] != len(curves.losses):
                curves.validation_epochs.append(len(curves.losses))
                curves.validation_mrr.append(last_mrr)
                curves.validation_seconds.append(round(time.perf_counter() - t0, 1))
            curves.best_epoch = len(curves.losses)
        if best_path.is_file() and curves.best_epoch != len(curves.losses):
            # The pipeline evaluated the last weights; the best validation weights are the model.
            model.load_state_dict(torch.load(best_path, map_location=torch_device, weights_only=True))
            reloaded = True
        metrics: dict[str, float] = {}
        if validation is not None or testing is not None:
            if reloaded:
                target = testing if testing is not None else validation
                known = [training] + list(filter_triples or [])
                if validation is not None and target is not validation:
                    known.append(validation)
                metrics = rank_metrics(model, target, known, device=torch_device, batch_size=eval_batch,
                                       evaluator=evaluator)
            else:
                metrics = {name: float(result.metric_results.get_metric(name)) for name in METRICS}
        seconds = time.perf_counter() - t0
    model.eval()
    return FitResult(model=model, curves=curves, metrics=metrics, seconds=seconds)


def _validation_at(curves: "Curves", epoch: int | None) -> float:
    """The validation MRR of `epoch` on the curves (0 when it was not validated)."""
    if epoch in curves.validation_epochs:
        return curves.validation_mrr[curves.validation_epochs.index(epoch)]
    return 0.0


def evaluation_batch_size(num_entities: int, embedding_dim: int, device, model: str | None = None,
                          messages: int = 0) -> int | None:
    """How many triples one evaluation step scores against every entity.

    On a GPU, None: PyKEEN starts with all evaluation triples and halves the batch on each
    out-of-memory error. On the CPU an out-of-memory is fatal, so the batch is bounded instead:
    PyKEEN's own scoring builds a batch x entities x width tensor, which must stay under
    CPU_EVALUATION_FLOATS (14,541 entities, dim 200: 46 triples; Nations: the cap, 1024). Models
    scored by a matrix product or a cdist once kgbuild's scoring is installed
    (scoring.MATMUL_MODELS, scoring.CDIST_MODELS) hold only the batch x entities scores. NBFNet
    and A*Net (PATH_MODELS) hold about four copies of a layer's messages a query: `messages` (NBFNet:
    one per training fact in each direction) and one per entity, `embedding_dim` wide."""
    if device.type == "cuda":
        return None
    if model in PATH_MODELS:
        return max(1, min(1024, CPU_EVALUATION_FLOATS // (4 * (messages + num_entities) * embedding_dim)))
    width = 2 * embedding_dim  # complex models store two reals per dimension
    if model in scoring.MATMUL_MODELS | scoring.CDIST_MODELS and scoring.installed():
        width = 8  # the scores, the filter mask and the ranking's temporaries
    return max(1, min(1024, CPU_EVALUATION_FLOATS // (num_entities * width)))


def remembering_evaluator(size: int = 64):
    """PyKEEN's rank-based evaluator, answering a repeated evaluation from memory: the same
    weights (a digest of every parameter), the same triples ranked and the same known triples
    filtered (as a set, with the ranked ones) give the same result again (the last `size` are
    kept). Without a test split, the pipeline's final evaluation ranks the validation split with
    the last weights, which the early stopper has just ranked whenever training stopped after a
    validation epoch; and fit then ranks it with the best weights, which the stopper ranked when
    they were the latest. With NBFNet or A*Net on FB15k-237 one such ranking is most of an hour
    on the CPU."""
    import hashlib

    import torch
    from pykeen.evaluation import RankBasedEvaluator

    def triples_digest(ranked, known) -> str:
        rows = torch.cat([ranked, *[k for k in known if k is not None]]).to("cpu", torch.long)
        keys = torch.unique((rows[:, 0] * (int(rows[:, 1].max()) + 1) + rows[:, 1]) * (int(rows.max()) + 1) + rows[:, 2])
        return hashlib.blake2b(keys.numpy().tobytes(), digest_size=16).hexdigest() + hashlib.blake2b(
            ranked.to("cpu", torch.long).numpy().tobytes(), digest_size=16).hexdigest()

    def weights_digest(model) -> tuple:
        parts = []
        with torch.no_grad():
            for name, p in sorted(model.named_parameters(), key=lambda item: item[0]):
                x = (torch.view_as_real(p) if p.is_complex() else p).double()
                parts.append((name, tuple(p.shape), float(x.sum()), float(x.square().sum()),
                              float(x.abs().max()) if x.numel() else 0.0))
        return tuple(parts)

    class Remembering(RankBasedEvaluator):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.memory: dict[tuple, Any] = {}

        def evaluate(self, model, mapped_triples, *args, **kwargs):
            if args:  # settings given by position: not worth telling apart
                return super().evaluate(model, mapped_triples, *args, **kwargs)
            known = kwargs.get("additional_filter_triples")
            known = [known] if torch.is_tensor(known) else list(known or [])
            settings = {k: repr(v) for k, v in kwargs.items()
                        if k not in ("additional_filter_triples", "batch_size", "slice_size", "use_tqdm", "tqdm_kwargs",
                                     "device", "do_time_consuming_checks")}  # none of these changes a rank
            key = (weights_digest(model), triples_digest(mapped_triples, known), tuple(sorted(settings.items())))
            if key in self.memory:
                return self.memory[key]
            result = super().evaluate(model, mapped_triples, **kwargs)
            self.memory[key] = result
            while len(self.memory) > size:
                self.memory.pop(next(iter(self.memory)))
            return result

    return Remembering()


def rank_metrics(model, target, known, device=None, batch_size: int | None = None,
                 evaluator: Any = None) -> dict[str, float]:
    """Filtered both-sides MRR and Hits@1/3/10 of `model` on the `target` TriplesFactory, every
    triple of the `known` factories (and of target) filtered out of the candidates, scored
    `batch_size` triples at a time (see evaluation_batch_size), by `evaluator` (default: a new
    PyKEEN RankBasedEvaluator; fit gives its remembering_evaluator)."""
    import torch
    from pykeen.evaluation import RankBasedEvaluator

    device = device or model.device
    ranked = target.mapped_triples
    if getattr(model, "groups_by_relation", False):
        # rules are applied relation by relation: batches of one relation each are far fewer steps
        ranked = ranked[torch.argsort(ranked[:, 1], stable=True)]
    if batch_size is None:
        sizes = [_evaluation_batch_of(part, torch.device(device))
                 for part in getattr(model, "members", [model])]  # an ensemble: its members' least
        batch_size = None if None in sizes else min(sizes)
    evaluated = (evaluator or RankBasedEvaluator()).evaluate(
        model, ranked, additional_filter_triples=[k.mapped_triples for k in known],
        batch_size=batch_size, device=device, use_tqdm=False)
    return {name: float(evaluated.get_metric(name)) for name in METRICS}


def _evaluation_batch_of(model, device) -> int | None:
    """evaluation_batch_size for a trained model."""
    if hasattr(model, "evaluation_batch_size"):
        return model.evaluation_batch_size
    if hasattr(model, "entity_representations"):
        width = max(int(r.shape[-1]) for r in model.entity_representations)
        return evaluation_batch_size(model.num_entities, width, device, type(model).__name__)
    return evaluation_batch_size(model.num_entities, model.embedding_dim, device, type(model).__name__,
                                 messages=model.messages_per_query)


class Checkpoint:
    """A folder that keeps training runs resumable (fit's `checkpoint`): per seed, PyKEEN's
    training-loop checkpoint (`state`), the best validation weights (`best`) and the times of the
    epochs and validations so far (`progress`); and `run.json`, what the runs train on, so that a
    folder of another graph or other settings is refused rather than loaded. The number of epochs
    may change: a finished run resumed with more epochs trains on."""

    def __init__(self, folder: Path, training: Any, validation: Any, config: TrainConfig, seed: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.state = folder / f"training-seed{seed}.pt"
        self.best = folder / f"best-seed{seed}.pt"
        self.progress = folder / f"progress-seed{seed}.json"
        self.epoch_seconds: list[float] = []  # seconds since training began at the end of each epoch
        self.sub_batch: list | None = None  # the sub-batch and slice sizes the epochs ran with
        settings = {k: v for k, v in asdict(config).items() if k != "epochs"}  # more epochs may follow
        run = json.loads(json.dumps({
            "config": settings, "entities": training.num_entities, "relations": training.num_relations,
            "training_triples": training.num_triples,
            "validation_triples": validation.num_triples if validation is not None else 0}, default=str))
        path = folder / "run.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            differ = sorted(k for k in run if saved.get(k) != run[k])
            if differ:
                raise KgbuildError(f"{folder} holds the checkpoints of another run (its {', '.join(differ)} differ)",
                                   hint="name an empty folder for this run, or delete that one to start again")
        else:
            path.write_text(json.dumps(run, indent=2))

    def resume(self) -> tuple[float, list[int], list[float]]:
        """Where the saved state left off: seconds of training up to its epoch, and the epochs and
        times of its validations; nothing when there is no saved state."""
        if not self.state.is_file():
            return 0.0, [], []
        import torch

        try:
            # memory-mapped: only the epoch is read here, PyKEEN loads the tensors when it resumes
            epoch = int(torch.load(self.state, map_location="cpu", weights_only=False, mmap=True)["epoch"])
        except Exception as err:  # a file cut short by a killed process, or not a checkpoint
            raise KgbuildError(f"cannot read the checkpoint {self.state}: {str(err).splitlines()[0]}",
                               hint="delete it to start this run again") from None
        saved = json.loads(self.progress.read_text()) if self.progress.is_file() else {}
        self.epoch_seconds = saved.get("epoch_seconds", [])[:epoch]
        self.sub_batch = saved.get("sub_batch")
        validations = [(e, t) for e, t in saved.get("validations", []) if e <= epoch]
        return (self.epoch_seconds[-1] if self.epoch_seconds else 0.0,
                [e for e, _ in validations], [t for _, t in validations])

    def record(self, epochs: list[int], seconds: list[float]) -> None:
        self.progress.write_text(json.dumps({"epoch_seconds": self.epoch_seconds, "sub_batch": self.sub_batch,
                                             "validations": [[e, round(t, 3)] for e, t in zip(epochs, seconds)]}))

    def recorder(self, elapsed: Callable[[], float], epochs: list[int], seconds: list[float]):
        """A PyKEEN training callback that records each epoch's end (before the state is saved)."""
        from pykeen.training.callbacks import TrainingCallback

        kept = self

        class Recorder(TrainingCallback):
            def post_epoch(self, epoch: int, epoch_loss: float, **kwargs: Any) -> None:
                kept.epoch_seconds[epoch - 1:] = [round(elapsed(), 3)]
                used = getattr(self.training_loop, "used_sub_batch", None)
                kept.sub_batch = list(used) if used is not None else kept.sub_batch
                kept.record(epochs, seconds)

        return Recorder()


def _time_box(seconds: float, progress: Callable[[str], None] | None = None):
    """A PyKEEN training callback that ends training once `seconds` have run out: kgbuild's
    training loops (lcwa.EpochDeadline) end the epoch then in progress after its current batch,
    other loops at the epoch's end (the same flag PyKEEN's early stopper sets). `progress` is
    told of an epoch cut short."""
    from pykeen.training.callbacks import TrainingCallback

    class TimeBox(TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.deadline = time.monotonic() + seconds

        def register_training_loop(self, training_loop: Any) -> None:
            super().register_training_loop(training_loop)
            training_loop.deadline = self.deadline

        def post_epoch(self, epoch: int, epoch_loss: float, **kwargs: Any) -> None:
            if time.monotonic() > self.deadline:
                self.training_loop._should_stop = True
                cut = getattr(self.training_loop, "last_cut", None)
                if cut is not None and progress is not None:
                    progress(f"epoch {epoch}: time box reached after {cut[0]:,} of its {cut[1]:,} batches")

    return TimeBox()


@dataclass
class EmbeddingResult:
    """A trained embedding model of one graph, as saved under OUT/embeddings/."""

    config: TrainConfig  # the settings it was trained with
    entities: int  # entities with at least one fact (the model's entity ids)
    relations: int  # relations used by those facts
    training_triples: int  # facts trained on
    validation_triples: int  # facts held out for early stopping (0: graph too small)
    epochs: int  # epochs run
    best_epoch: int | None  # epoch whose weights were kept
    metrics: dict[str, float]  # filtered MRR and Hits@k on the validation facts (empty: no validation)
    curves: Curves  # training loss and validation MRR per evaluation
    seconds: float  # training time
    device: str  # where it trained
    seed: int  # random seed of the split and the training
    base: str  # base IRI of the graph it was trained on
    members: list[MemberResult] = field(default_factory=list)  # an ensemble's models (empty: one model)
    rules_weight: float = 0.0  # weight of the rules' scores added to the model's in predictions (0: model alone)
    rule_counts: dict[str, int] = field(default_factory=dict)  # rules learned from the training facts, by shape
    weight_mrr: dict[str, float] = field(default_factory=dict)  # validation MRR of each rules weight tried
    metrics_without_rules: dict[str, float] = field(default_factory=dict)  # `metrics` of the model alone
    model: Any = field(default=None, repr=False, compare=False)  # the pykeen Model, or an EnsembleModel of them
    rules: Any = field(default=None, repr=False, compare=False)  # kgbuild.embed.rules.RuleModel, or None
    training: Any = field(default=None, repr=False, compare=False)  # pykeen TriplesFactory: id maps
    validation: Any = field(default=None, repr=False, compare=False)  # pykeen TriplesFactory or None

    def summary(self) -> dict[str, Any]:
        # field by field: asdict() of the whole would deep-copy the model and the triples first
        data = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("model", "rules", "training", "validation")}
        data.update(config=asdict(self.config), curves=asdict(self.curves), members=[asdict(m) for m in self.members])
        return data

    @property
    def scorer(self) -> Any:
        """What predictions rank by: the model, with the rules' scores added when they were kept."""
        if self.rules is None or not self.rules_weight:
            return self.model
        return RulesAndEmbeddings(self.model, self.rules, self.rules_weight)

    def save(self, directory: str | Path) -> Path:
        """Write the model weights, the id maps, the split and the summary into `directory`."""
        import torch

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob(MEMBER_WEIGHTS.format("*")):
            stale.unlink()
        for i, part in enumerate(getattr(self.model, "members", [self.model])):
            torch.save({k: v.detach().cpu() for k, v in part.state_dict().items()}, directory / _weights_name(i))
        _write_map(directory / ENTITIES, self.training.entity_to_id)
        _write_map(directory / RELATIONS, self.training.relation_to_id)
        _write_triples(directory / TRAINING, self.training)
        if self.rules is not None:
            self.rules.save(directory / RULES_FILE)
        elif (directory / RULES_FILE).exists():
            (directory / RULES_FILE).unlink()
        if self.validation is not None:
            _write_triples(directory / VALIDATION, self.validation)
        elif (directory / VALIDATION).exists():
            (directory / VALIDATION).unlink()
        (directory / SUMMARY).write_text(json.dumps(self.summary(), indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> "EmbeddingResult":
        """The embeddings saved in `directory` (OUT/embeddings), model rebuilt and ready to score."""
        import torch
        from pykeen.models import model_resolver

        from kgbuild.device import resolve_device

        directory = Path(directory)
        if not (directory / SUMMARY).is_file() or not (directory / WEIGHTS).is_file():
            raise EmbeddingError(f"no embeddings in {directory}", hint="run `kgbuild embed OUT` first")
        data = json.loads((directory / SUMMARY).read_text(encoding="utf-8"))
        config = TrainConfig(**data.pop("config"))
        curves = Curves(**data.pop("curves"))
        members = [MemberResult(**{**m, "curves": Curves(**m["curves"])}) for m in data.pop("members", [])]
        entity_to_id = _read_map(directory / ENTITIES)
        relation_to_id = _read_map(directory / RELATIONS)
        training = _factory(_read_triples(directory / TRAINING), entity_to_id, relation_to_id, config)
        validation = None
        if (directory / VALIDATION).is_file():
            validation = _factory(_read_triples(directory / VALIDATION), entity_to_id, relation_to_id, config)
        torch_device = resolve_device(device)
        scoring.install()
        register_extensions()
        parts = []
        for i in range(max(1, len(members))):
            if not (directory / _weights_name(i)).is_file():
                raise EmbeddingError(f"{directory / _weights_name(i)} is missing: the ensemble has {len(members)} models",
                                     hint="run `kgbuild embed OUT` again")
            # The seed only silences PyKEEN's warning: the saved weights replace the initial ones.
            part = model_resolver.make(config.model, {"embedding_dim": config.embedding_dim, **config.model_kwargs},
                                       triples_factory=training, random_seed=0)
            part.load_state_dict(torch.load(directory / _weights_name(i), map_location="cpu", weights_only=True))
            parts.append(part.to(torch_device).eval())
        model = parts[0] if len(parts) == 1 else EnsembleModel(parts)
        rules = None
        if (directory / RULES_FILE).is_file():
            rules = RuleModel.load(directory / RULES_FILE, training.mapped_triples.numpy())
        return cls(config=config, curves=curves, members=members, model=model, rules=rules, training=training,
                   validation=validation, **data)


def _weights_name(member: int) -> str:
    """The weights file of an ensemble's `member` (0: the first, or the only model)."""
    return WEIGHTS if member == 0 else MEMBER_WEIGHTS.format(member)


def embeddings_dir(out: str | Path) -> Path:
    return Path(out) / EMBEDDINGS_DIR


def split_triples(triples: list[tuple[str, str, str]], config: TrainConfig, seed: int,
                  validation_ratio: float = 0.1):
    """A seeded train / validation split of the labelled triples in which every entity and
    relation of validation also occurs in training (PyKEEN's "cleanup" split moves any triple
    that would strand one back into training)."""
    import numpy as np
    from pykeen.triples import TriplesFactory

    array = np.asarray(triples, dtype=str).reshape(-1, 3)
    factory = TriplesFactory.from_labeled_triples(array, create_inverse_triples=config.inverse_triples)
    if len(triples) < MIN_TRIPLES_FOR_VALIDATION:
        return factory, None
    training, validation = factory.split([1.0 - validation_ratio, validation_ratio], random_state=seed,
                                         method="cleanup")
    if validation.num_triples == 0:
        return factory, None
    return training, validation


def train_embeddings(out: str | Path, model: str | None = None, epochs: int | None = None,
                     device: str = "auto", seed: int = 0, quiet: bool = True,
                     config: TrainConfig | None = None, settings: list[str] | None = None,
                     members: int = 1, checkpoint: str | Path | None = None,
                     max_minutes: float | None = None, rules: bool = True) -> EmbeddingResult:
    """Train embeddings of the graph in `out` and save them under OUT/embeddings/.

    `model` is a preset (rotate, complex, complex-n3, nbfnet, astarnet, transe, tucker, tucker-ce, distmult) or any
    PyKEEN model name; None: the default for the graph's size and the device. Its settings come
    from kgbuild.embed.presets, scaled to the graph's size, unless `config` gives them all;
    `settings` (KEY=VALUE, see presets.with_settings) change any of them. `members` > 1 trains
    that many models (seeds `seed`, `seed` + 1, ...) on the same split and saves their ensemble
    (kgbuild.embed.ensemble), which `predict` and `ask` then score with. `checkpoint`: a folder that
    keeps the training resumable (fit): the same call with it goes on where it stopped.
    `max_minutes` time-boxes training (fit), shared evenly among the members.

    `rules`: also learn rules from the training facts (kgbuild.embed.rules) and add their scores
    to the model's in predictions, weighted by the weight that ranks the validation facts best
    (kgbuild.embed.rules.WEIGHTS; 0 leaves them out), or RULES_WEIGHT without validation facts.
    They are saved next to the weights and explain the candidates of `kgbuild predict`."""
    if members < 1:
        raise KgbuildError(f"--members {members}: an ensemble needs at least one model", hint="use --members 1 or more")
    graph = read_graph(out)
    if len(graph.triples) < 2:
        raise GraphError(
            f"the graph in {out} has {len(graph.triples)} fact(s) between entities; embeddings need more",
            hint="build it from a larger corpus, or lower relations.threshold",
        )
    quiet_pykeen_logs()
    from kgbuild.device import resolve_device

    config = config or default_config(model, len(graph.triples), epochs, len({r for _, r, _ in graph.triples}),
                                      resolve_device(device).type)
    config = with_settings(config, settings)
    training, validation = split_triples(graph.triples, config, seed)

    box = None if max_minutes is None else max_minutes / members
    fits = [fit(training, validation, None, config, device=device, seed=seed + i, quiet=quiet, checkpoint=checkpoint,
                max_minutes=box) for i in range(members)]
    fitted = fits[0]
    model, metrics = fitted.model, fitted.metrics if validation is not None else {}
    member_results = []
    if members > 1:
        model = EnsembleModel([f.model for f in fits])
        if validation is not None:
            metrics = rank_metrics(model, validation, [training])
        member_results = [MemberResult(seed=seed + i, epochs=len(f.curves.losses), best_epoch=f.curves.best_epoch,
                                       metrics=f.metrics, seconds=round(f.seconds, 2), curves=f.curves)
                          for i, f in enumerate(fits)]
    rule_model, weight, weight_mrr, without_rules = None, 0.0, {}, {}
    if rules:
        rule_model = learn_rules(training.mapped_triples.numpy(), training.num_entities,
                                 int(getattr(training, "real_num_relations", training.num_relations)), seed=seed)
        weight = RULES_WEIGHT
        if validation is not None:
            weight, tried = choose_weight(model, rule_model, validation, [training], alone=metrics)
            weight_mrr = {f"{w:g}": round(m["mrr"], 4) for w, m in tried.items()}
            without_rules, metrics = metrics, tried[weight]
    result = EmbeddingResult(
        config=config,
        entities=training.num_entities,
        relations=training.num_relations,
        training_triples=training.num_triples,
        validation_triples=validation.num_triples if validation is not None else 0,
        epochs=len(fitted.curves.losses),
        best_epoch=fitted.curves.best_epoch,
        metrics=metrics,
        curves=fitted.curves,
        seconds=round(sum(f.seconds for f in fits), 2),
        device=str(resolve_device(device)),
        seed=seed,
        base=graph.base,
        members=member_results,
        rules_weight=weight,
        rule_counts=dict(rule_model.stats.rules) if rule_model is not None else {},
        weight_mrr=weight_mrr,
        metrics_without_rules=without_rules,
        model=model,
        rules=rule_model,
        training=training,
        validation=validation,
    )
    result.save(embeddings_dir(out))
    return result


def quiet_pykeen_logs() -> None:
    """PyKEEN's log lines (checkpoints saved, split ratios adjusted, CPU batch-size advice) are not
    for kgbuild's users: its progress bars stay unless `quiet`, and kgbuild prints the outcome."""
    import pykeen  # noqa: F401  (importing it sets its logger to INFO: set ours after)

    logging.getLogger("pykeen").setLevel(logging.ERROR)
    logging.getLogger("torch_max_mem").setLevel(logging.ERROR)


def load_embeddings(out: str | Path, device: str = "cpu") -> EmbeddingResult:
    """The embeddings that `train_embeddings` saved for the graph in `out`."""
    return EmbeddingResult.load(embeddings_dir(out), device=device)


def _factory(triples, entity_to_id, relation_to_id, config: TrainConfig):
    import numpy as np
    from pykeen.triples import TriplesFactory

    return TriplesFactory.from_labeled_triples(
        np.asarray(triples, dtype=str).reshape(-1, 3), entity_to_id=entity_to_id,
        relation_to_id=relation_to_id, create_inverse_triples=config.inverse_triples)


def _write_map(path: Path, mapping: dict[str, int]) -> None:
    lines = [f"{i}\t{label}" for label, i in sorted(mapping.items(), key=lambda kv: kv[1])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _read_map(path: Path) -> dict[str, int]:
    mapping = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line:
            i, label = line.split("\t", 1)
            mapping[label] = int(i)
    return mapping


def _write_triples(path: Path, factory) -> None:
    labeled = factory.label_triples(factory.mapped_triples)  # factory.triples warns that it is slow
    path.write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in labeled), encoding="utf-8")


def _read_triples(path: Path) -> list[tuple[str, str, str]]:
    return [tuple(line.split("\t")) for line in path.read_text(encoding="utf-8").splitlines() if line]
