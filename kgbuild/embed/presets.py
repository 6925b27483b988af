"""Training settings for each embedding model, chosen by measurement (README, "Link prediction")
and scaled by graph size, so that `kgbuild embed OUT` with no options trains a good model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kgbuild.errors import ConfigError


@dataclass
class TrainConfig:
    """Everything PyKEEN needs to train one model; saved with the model."""

    model: str  # PyKEEN model name, e.g. "RotatE"
    embedding_dim: int  # entity embedding size (complex models: complex numbers)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # other model arguments
    training_loop: str = "lcwa"  # "lcwa" (a query's tails against every entity), "1vsall" (each
    # triple's tail against every entity), "slcwa" (sampled negatives) or "nbfnet" (NBFNet's own)
    loss: str = "crossentropy"  # PyKEEN loss name
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    negatives: int = 0  # negatives per positive (sLCWA and NBFNet only)
    adversarial_temperature: float = 0.5  # NBFNet: negatives weighted by softmax(score / this); 0: equally
    remove_one_hop: bool = False  # NBFNet: leave every fact between a batch's heads and candidates out of
    # its graph (false: only the batch's own facts, both ways)
    inverse_triples: bool = True  # also train (t, r^-1, h): one model predicts heads and tails alike
    learning_rate: float = 0.001
    optimizer: str = "adam"  # PyKEEN / torch optimizer name: adam, adagrad, ...
    n3: float = 0.0  # weight of the N3 regulariser (1vsall only; Lacroix et al. 2018)
    relation_prediction: float = 0.0  # weight of predicting each triple's relation (1vsall only; Chen et al. 2021)
    batch_size: int = 256
    label_smoothing: float = 0.0  # LCWA only
    epochs: int = 500  # upper bound; early stopping on validation MRR usually ends sooner
    epoch_rows: int = 0  # training rows an epoch draws at random, none twice (1vsall and nbfnet loops);
    # 0: every row once. Shorter epochs on a large graph with a slow model bring validation, early
    # stopping, checkpoints and the time box's checks round more often.
    eval_every: int = 10  # epochs between validation evaluations
    patience: int = 5  # evaluations without improvement before stopping
    tf32: bool = True  # on a GPU, matrix products in TensorFloat-32 (faster); false: full float32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Refuse settings that the training loop would ignore."""
        if (self.n3 or self.relation_prediction) and self.training_loop != "1vsall":
            raise ConfigError(f"n3 and relation_prediction apply to 1-vs-all training, not {self.training_loop!r}",
                              hint="add --set training_loop=1vsall, or use --model complex-n3")
        if self.epoch_rows and self.training_loop not in ("1vsall", "nbfnet"):
            raise ConfigError(f"epoch_rows applies to 1-vs-all and NBFNet training, not {self.training_loop!r}",
                              hint="leave it out, or use --model complex-n3, nbfnet or astarnet")
        if self.epoch_rows < 0:
            raise ConfigError(f"epoch_rows {self.epoch_rows} is negative", hint="give a number of rows, or 0 for all")


# Per-model settings, for `--model M` on graphs of any size. LCWA with cross-entropy over all
# entities and inverse triples trains fastest to the best MRR for the bilinear models; RotatE
# (default on tiny graphs, where it was tuned on extracted facts) and TransE keep the
# self-adversarial sampled loss of their papers.
PRESETS: dict[str, TrainConfig] = {
    "complex": TrainConfig(model="ComplEx", embedding_dim=200, learning_rate=0.01, batch_size=256,
                           label_smoothing=0.1),
    "rotate": TrainConfig(model="RotatE", embedding_dim=200, learning_rate=0.005, batch_size=256,
                          label_smoothing=0.1),
    "tucker": TrainConfig(model="TuckER", embedding_dim=200, learning_rate=0.005, batch_size=128,
                          loss="bcewithlogits", label_smoothing=0.1,
                          model_kwargs={"relation_dim": 200, "dropout_0": 0.3, "dropout_1": 0.4, "dropout_2": 0.5}),
    "distmult": TrainConfig(model="DistMult", embedding_dim=200, learning_rate=0.01, batch_size=256,
                            label_smoothing=0.1),
    # Lacroix et al. (2018): ComplEx with reciprocal relations, 1-vs-all cross-entropy, N3 and
    # AdaGrad from a small start (rank 1000, N3 0.05, batch 1000: settings used with their code for FB15k-237).
    "complexn3": TrainConfig(model="ComplEx", embedding_dim=1000, training_loop="1vsall", optimizer="adagrad",
                             learning_rate=0.1, batch_size=1000, n3=0.05, epochs=100, eval_every=5, patience=4,
                             model_kwargs={"regularizer": None, "entity_initializer": "small_normal",
                                           "relation_initializer": "small_normal"}),
    # Zhu et al. (2021)'s NBFNet for FB15k-237 (kgbuild/embed/nbfnet.py): 6 layers of 32, 32
    # strict negatives, adversarial temperature 0.5, Adam 0.005, batch 64, 20 of their epochs
    # (each triple once, its head or its tail asked): 10 here, where an epoch asks both. Their
    # FB15k-237 model also leaves out every fact joining a batch's heads and candidates; on
    # smaller graphs that empties the batch's graph (Nations: 14 entities), so default_config
    # turns it on for large graphs with many relations only.
    "nbfnet": TrainConfig(model="NBFNet", embedding_dim=32, training_loop="nbfnet", loss="bcewithlogits",
                          negatives=32, learning_rate=0.005, batch_size=64, epochs=10, eval_every=1, patience=3,
                          model_kwargs={"num_layers": 6}),
    "transe": TrainConfig(model="TransE", embedding_dim=200, training_loop="slcwa", loss="nssa",
                          loss_kwargs={"margin": 6.0, "adversarial_temperature": 0.5}, negatives=64,
                          inverse_triples=False, learning_rate=0.005, batch_size=256),
}
# Zhu et al. (2023)'s A*Net for FB15k-237 (kgbuild/embed/astarnet.py): NBFNet's settings, each
# layer sending from the tenth of the entities with the highest priority, along as many facts as
# a tenth of the entities have on average.
PRESETS["astarnet"] = replace(PRESETS["nbfnet"], model="AStarNet",
                              model_kwargs={"num_layers": 6, "node_ratio": 0.1, "degree_ratio": 1.0})
DEFAULT_MODEL = "rotate"

# The default when no model is named, by graph size (training triples).
TINY_GRAPH = 1000  # below: PRESETS[DEFAULT_MODEL]
LARGE_GRAPH = 50_000  # from here: LARGE (FB15k-237, WN18RR); between: SMALL (Nations, UMLS, Kinships)
# Measured on the CPU (README, "Link-prediction benchmarks"): on Nations, UMLS and Kinships this
# beats PyKEEN's best published figures. Small entity and relation vectors (100, 32) generalise
# better than TuckER's published 200 on graphs of a few thousand facts, and train 4x faster.
SMALL = TrainConfig(model="TuckER", embedding_dim=100, learning_rate=0.003, batch_size=128,
                    loss="bcewithlogits", label_smoothing=0.1, epochs=400, eval_every=5, patience=8,
                    model_kwargs={"relation_dim": 32, "dropout_0": 0.3, "dropout_1": 0.4, "dropout_2": 0.5})
# TuckER's published FB15k-237 model (Balazevic et al. 2019: MRR 0.358; entities and relations
# 200, dropouts 0.3 / 0.4 / 0.5, batch 128) trained with cross-entropy over all entities (softmax,
# 1-vs-all as in LibKGE) and Adam 0.003 instead of the paper's BCE and 0.0005: measured on the
# CPU (README, "FB15k-237 and WN18RR"), two epochs reach validation MRR 0.212 against the BCE
# schedule's 0.014 (BCE at Adam 0.003: 0.030; cross-entropy at 0.001: 0.190). The default for large
# graphs until ComplEx-N3 beat it (below); `--model tucker-ce`.
TUCKER_CE = TrainConfig(model="TuckER", embedding_dim=200, learning_rate=0.003, batch_size=128,
                        loss="crossentropy", label_smoothing=0.1, epochs=500, eval_every=5, patience=6,
                        model_kwargs={"relation_dim": 200, "dropout_0": 0.3, "dropout_1": 0.4, "dropout_2": 0.5})
PRESETS["tuckerce"] = TUCKER_CE
# Large graphs on the CPU: ComplEx-N3 (the "complexn3" preset) at 200 complex dimensions, which
# two CPU cores trained at about 7.5 minutes an epoch on FB15k-237 and WN18RR alike before its
# scoring became a real matrix product (kgbuild/embed/scoring.py: a step 1.7x faster) (README,
# "FB15k-237 and WN18RR"): FB15k-237 validation MRR 0.292 after 15 minutes against TuckER's 0.275
# after 30; WN18RR 0.468 after 28 minutes against TuckER's 0.443 after 26 and 0.464 after 60.
LARGE = replace(PRESETS["complexn3"], embedding_dim=200)
# TuckER's published WN18RR model (MRR 0.470; relation vectors of 30, dropouts 0.2 / 0.2 / 0.3,
# Adam 0.01), also with cross-entropy: two epochs on the CPU reach validation MRR 0.353 (the
# paper's BCE: about 0.02 after five). The CPU default for large graphs with few relations until
# ComplEx-N3 beat it (above); `--model tucker-ce-few`.
FEW_RELATIONS = 50  # large graphs with fewer relations than this (WN18RR: 11) use LARGE_FEW_GPU on a GPU
LARGE_FEW = TrainConfig(model="TuckER", embedding_dim=200, learning_rate=0.01, batch_size=128,
                        loss="crossentropy", label_smoothing=0.1, epochs=500, eval_every=5, patience=6,
                        model_kwargs={"relation_dim": 30, "dropout_0": 0.2, "dropout_1": 0.2, "dropout_2": 0.3})
PRESETS["tuckercefew"] = LARGE_FEW

# On a GPU, large graphs get ComplEx-N3 (Lacroix et al. 2018, the "complexn3" preset), which the
# GPU trains far past TuckER in the same time (README, "FB15k-237 and WN18RR": on one H100, FB15k-237
# validation MRR 0.323 in 10 minutes against TuckER's 0.290 in 15; WN18RR 0.492 in 2.6 minutes and
# 0.513 in 15), at 1,000 complex dimensions (five times the CPU's 200). Graphs with few relations
# (WN18RR) get 2,000 dimensions, batch 100 and N3 0.1 there.
LARGE_GPU = PRESETS["complexn3"]
LARGE_FEW_GPU = replace(PRESETS["complexn3"], embedding_dim=2000, n3=0.1, batch_size=100)


def small_normal_(tensor):
    """Normal initial weights of standard deviation 0.001 (Lacroix et al. 2018's start for N3 models)."""
    import torch

    return torch.nn.init.normal_(tensor, std=1e-3)


def register_extensions() -> None:
    """Make kgbuild's additions PyKEEN names (idempotent): the `small_normal` initializer (which
    model_kwargs name) and the NBFNet and A*Net models (which TrainConfig.model names)."""
    from pykeen.models import model_resolver
    from pykeen.nn.init import initializer_resolver

    if "smallnormal" not in initializer_resolver.options:
        initializer_resolver.register(small_normal_)
    if "nbfnet" not in model_resolver.options:
        from kgbuild.embed.nbfnet import NBFNet

        model_resolver.register(NBFNet)
    if "astarnet" not in model_resolver.options:
        from kgbuild.embed.astarnet import AStarNet

        model_resolver.register(AStarNet)


def default_config(model: str | None, n_triples: int, epochs: int | None = None,
                   n_relations: int | None = None, device: str = "cpu") -> TrainConfig:
    """The settings for `model` (any PyKEEN model name; None: the default) on a graph of
    `n_triples` training triples and `n_relations` relations (None: many), trained on `device`
    ("cpu" or "cuda": large graphs get a different default on a GPU)."""
    from pykeen.models import model_resolver

    key = (model or DEFAULT_MODEL).lower().replace("-", "").replace("_", "")
    if model is None and n_triples >= TINY_GRAPH:
        if n_triples < LARGE_GRAPH:
            config = SMALL
        else:
            few = n_relations is not None and n_relations < FEW_RELATIONS
            config = (LARGE_FEW_GPU if few else LARGE_GPU) if device == "cuda" else LARGE
    elif key in PRESETS:
        config = PRESETS[key]
        if config.training_loop == "nbfnet" and n_triples >= LARGE_GRAPH and (n_relations is None or n_relations >= FEW_RELATIONS):
            config = replace(config, remove_one_hop=True)
    else:
        try:
            cls = model_resolver.lookup(key)
        except (KeyError, ValueError):
            valid = ", ".join(sorted(model_resolver.options))
            raise ConfigError(f"unknown embedding model {model!r}", hint=f"use one of: {valid}") from None
        config = TrainConfig(model=cls.__name__, embedding_dim=200, learning_rate=0.005)
    # Small graphs: smaller batches so an epoch still makes several updates, and more epochs
    # since each is cheap; validation is checked more often so stopping reacts in time.
    if n_triples < 2000:
        config = replace(config, batch_size=min(config.batch_size, max(16, n_triples // 8)),
                         epochs=max(config.epochs, 300))
    if epochs is not None:
        config = replace(config, epochs=epochs, eval_every=min(config.eval_every, max(1, epochs // 5)))
    return config


def with_settings(config: TrainConfig, settings: list[str] | None) -> TrainConfig:
    """`config` with `KEY=VALUE` settings applied (`--set` on the command line): KEY a TrainConfig
    field or `model_kwargs.NAME` / `loss_kwargs.NAME`; VALUE read as JSON where it parses
    (numbers, true, null), else as text."""
    import json
    from dataclasses import fields

    names = {f.name for f in fields(TrainConfig)}
    for setting in settings or []:
        key, sep, text = setting.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"setting {setting!r} is not KEY=VALUE", hint="e.g. --set embedding_dim=500")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        field_name, _, sub = key.partition(".")
        if field_name not in names or (sub and field_name not in ("model_kwargs", "loss_kwargs")):
            raise ConfigError(f"unknown training setting {key!r}",
                              hint=f"use one of: {', '.join(sorted(names))}, model_kwargs.NAME, loss_kwargs.NAME")
        if sub:
            config = replace(config, **{field_name: {**getattr(config, field_name), sub: value}})
        else:
            config = replace(config, **{field_name: value})
    config.check()
    return config
