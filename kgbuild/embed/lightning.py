"""Training on more than one process (or GPU) through PyKEEN's PyTorch Lightning integration
(pykeen.contrib.lightning): the same model and loss as `train_embeddings`, data-parallel with
DDP. One process per GPU on a GPU machine; on the CPU it shows the same code path with gloo."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgbuild.embed.presets import TrainConfig, register_extensions
from kgbuild.errors import KgbuildError


@dataclass
class LightningResult:
    model: Any = field(repr=False)  # the trained pykeen Model (weights from rank 0)
    processes: int  # processes that trained (DDP world size)
    pids: list[int]  # their process ids, one per rank
    epochs: int
    seconds: float


try:
    import pytorch_lightning as pl
except ImportError:  # pragma: no cover - reported by train_lightning
    pl = None


if pl is not None:

    class _RankLog(pl.Callback):
        """Records which processes took part: one file per rank holding its process id."""

        def __init__(self, folder: str) -> None:
            self.folder = folder

        def on_train_start(self, trainer, pl_module) -> None:
            Path(self.folder, f"rank{trainer.global_rank}").write_text(str(os.getpid()))

        def teardown(self, trainer, pl_module, stage: str) -> None:
            # Lightning leaves the process group alive when a spawned rank returns; its gloo
            # threads were then torn down at interpreter exit and a rank now and then aborted
            # ("terminate called without an active exception"), failing the whole fit. Nothing
            # collective runs after this hook (rank 0 only saves its weights for the parent).
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()

    from pykeen.contrib.lightning import LCWALitModule

    class OneVsAllLitModule(LCWALitModule):
        """1-vs-all training on triples with N3 (the loss of lcwa.OneVsAllTrainingLoop) as a
        Lightning module: a batch is rows (head, relation, tail) of the training triples and their
        inverses, each scored against every entity with its own tail as the label."""

        def __init__(self, *, n3: float = 0.0, relation_prediction: float = 0.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.n3 = n3
            self.relation_prediction = relation_prediction

        def _step(self, batch, prefix: str):
            from kgbuild.embed.lcwa import one_vs_all_loss

            pairs = batch[:, :2]
            loss = one_vs_all_loss(self.model, self.loss, self.model.score_t(pairs, mode=self.mode), pairs, batch[:, 2],
                                   self.n3, self.label_smoothing, self.relation_prediction)
            self.log(f"{prefix}_loss", loss)
            return loss

        def _dataloader(self, triples_factory, shuffle: bool = False):
            import torch
            from pykeen.triples.instances import LCWAInstances

            from kgbuild.embed.lcwa import one_vs_all_triples

            triples = one_vs_all_triples(LCWAInstances.from_triples_factory(triples_factory))
            return torch.utils.data.DataLoader(dataset=torch.as_tensor(triples), batch_size=self.batch_size,
                                               shuffle=shuffle)


    class NBFNetLitModule(OneVsAllLitModule):
        """NBFNet's training (nbfnet.NBFNetObjective) as a Lightning module: a batch is training
        rows, as in 1-vs-all training; each process builds the objective on its own device."""

        def __init__(self, *, negatives: int = 32, adversarial_temperature: float = 0.5, remove_one_hop: bool = False,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.objective_kwargs = dict(negatives=negatives, adversarial_temperature=adversarial_temperature,
                                         remove_one_hop=remove_one_hop)
            self._objective = None

        def _step(self, batch, prefix: str):
            import torch
            from pykeen.triples.instances import LCWAInstances

            from kgbuild.embed.lcwa import one_vs_all_triples
            from kgbuild.embed.nbfnet import NBFNetObjective

            if self._objective is None or self._objective.known.device != batch.device:
                rows = torch.as_tensor(one_vs_all_triples(LCWAInstances.from_triples_factory(self.dataset.training)))
                self._objective = NBFNetObjective(self.model, rows, **self.objective_kwargs)
            loss = self._objective.loss(batch)
            self.log(f"{prefix}_loss", loss)
            return loss


def train_lightning(training, config: TrainConfig, validation=None, processes: int = 2,
                    accelerator: str = "cpu", epochs: int | None = None, seed: int = 0) -> LightningResult:
    """Train `config`'s model on the `training` TriplesFactory with `processes` DDP processes.

    Each process sees its share of every epoch's batches and gradients are averaged, so one epoch
    costs about 1/processes of the single-process time on as many devices."""
    if pl is None:
        raise KgbuildError("multi-process training needs pytorch-lightning", hint="pip install pytorch-lightning")
    from pykeen.contrib.lightning import LCWALitModule, SLCWALitModule
    from pykeen.datasets import EagerDataset

    from kgbuild.embed import scoring

    scoring.install()  # this process; ddp_spawn's processes score with PyKEEN's own (same scores)
    register_extensions()  # models are built here; ddp_spawn hands them to the processes built

    pl.seed_everything(seed, verbose=False)
    dataset = EagerDataset(training=training, testing=validation or training, validation=validation)
    module_kwargs: dict[str, Any] = dict(
        dataset=dataset,
        model=config.model,
        model_kwargs={"embedding_dim": config.embedding_dim, "loss": config.loss,
                      "loss_kwargs": config.loss_kwargs or None, "random_seed": seed, **config.model_kwargs},
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        optimizer=config.optimizer,
    )
    if config.training_loop == "nbfnet":
        module = NBFNetLitModule(negatives=config.negatives, adversarial_temperature=config.adversarial_temperature,
                                 remove_one_hop=config.remove_one_hop, **module_kwargs)
    elif config.training_loop == "1vsall":
        module = OneVsAllLitModule(n3=config.n3, relation_prediction=config.relation_prediction,
                                   label_smoothing=config.label_smoothing, **module_kwargs)
    elif config.training_loop == "slcwa":
        module = SLCWALitModule(negative_sampler="basic",
                                negative_sampler_kwargs={"num_negs_per_pos": config.negatives}, **module_kwargs)
    else:
        module = LCWALitModule(label_smoothing=config.label_smoothing, **module_kwargs)
    with tempfile.TemporaryDirectory(prefix="kgbuild-lightning-") as tmp:
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=processes,
            # spawn, not the default ddp: ddp re-runs the calling script, which a notebook or a
            # test runner cannot be.
            strategy="ddp_spawn" if processes > 1 else "auto",
            max_epochs=epochs or config.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            callbacks=[_RankLog(tmp)],
        )
        t0 = time.perf_counter()
        trainer.fit(module)
        seconds = time.perf_counter() - t0
        ranks = sorted(Path(tmp).glob("rank*"))
        pids = [int(p.read_text()) for p in ranks]
    module.model.eval()
    # With spawn the trainer's counters stay in the children; the weights come back to `module`.
    return LightningResult(model=module.model, processes=len(pids), pids=pids,
                           epochs=epochs or config.epochs, seconds=round(seconds, 2))
