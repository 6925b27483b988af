"""1-vs-all (LCWA) training whose targets are built on the model's device.

PyKEEN's LCWA loop hands every training query (head, relation) its dense row of labels, one row per
query cut out of a SciPy sparse matrix on the host, stacked, and copied to the device: 128 x 40,559
floats a batch on WN18RR, about 11 ms of host work a batch on the 2-core CPU (kgbuild eval embed-speed). On a GPU, whose step is
3-4 ms, that host work bounds training (README, "FB15k-237 and WN18RR"). This loop keeps the sparse
matrix's row pointers and column indexes on the device instead, and its batches carry only the
query ids; the dense labels are scattered on the device. Batches, their order and the labels are
PyKEEN's own, so the training is the same.

`OneVsAllTrainingLoop` trains on single triples instead of queries (LibKGE's 1vsAll; Lacroix et al.
2018's ComplEx-N3): each training triple, and its inverse, is one row whose only label is its own
tail, scored against every entity with cross-entropy, plus the weighted N3 norm of the row's
head, relation and tail vectors (their moduli cubed, per row), which is what lets ComplEx reach
published-level MRR on FB15k-237 and WN18RR. With `relation_prediction`, each row also predicts its
own relation among all relations from its head and tail (Chen et al. 2021, "Relation Prediction
as an Auxiliary Training Objective"): cross-entropy over the relations, weighted."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from pykeen.training import LCWATrainingLoop
from pykeen.training import SLCWATrainingLoop as PyKEENSLCWATrainingLoop
from pykeen.triples.instances import LCWAInstances
from torch.utils.data import DataLoader, Dataset, RandomSampler


class _Queries(Dataset):
    """The unique training queries; an item is its row in the sparse label matrix."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, item: int) -> int:
        return item


class SubBatchesOnResume:
    """PyKEEN looks for the sub-batch size that fits in memory (`sub_batch_and_slice`, a probing
    run that resets the weights) only when training starts afresh; a run resumed from a checkpoint
    would read whole batches at once (A*Net on FB15k-237 on the CPU grew to 17 GB instead of 1.1).
    So the loop notes the sub-batch and slice sizes its epochs run with (`used_sub_batch`), the
    checkpoint keeps them, and a resumed run is given them (fit's `checkpoint`)."""

    used_sub_batch: tuple[int | None, int | None] | None = None

    def _train_epoch(self, *args: Any, **kwargs: Any) -> float:
        if not kwargs.get("only_size_probing"):
            self.used_sub_batch = (kwargs.get("sub_batch_size"), kwargs.get("slice_size"))
        return super()._train_epoch(*args, **kwargs)


class UntilDeadline:
    """An epoch's batches, ending after the batch in progress when time.monotonic() passes
    `deadline` (never before the first batch). Its len() is the number of batches the epoch
    ran, which PyKEEN divides the epoch's summed loss by."""

    def __init__(self, batches: Any, deadline: float) -> None:
        self.batches, self.deadline = batches, deadline
        self.taken = 0
        self.cut = False

    def __iter__(self):
        for batch in self.batches:
            if self.taken and time.monotonic() > self.deadline:
                self.cut = True
                break
            self.taken += 1
            yield batch

    def __len__(self) -> int:
        return self.taken if self.cut else len(self.batches)


class EpochDeadline:
    """A time box (train._time_box sets `deadline`, a time.monotonic() value) ends an epoch
    after the batch in progress when the deadline passes, rather than at the epoch's end: an
    epoch of a slow model on a large graph (A*Net on FB15k-237) may take hours. `last_cut` is
    (batches run, batches in the epoch) of the epoch cut short, else None."""

    deadline: float | None = None
    last_cut: tuple[int, int] | None = None

    def _train_epoch(self, *args: Any, **kwargs: Any) -> float:
        if self.deadline is None or kwargs.get("only_size_probing"):
            return super()._train_epoch(*args, **kwargs)
        batches = kwargs["batches"] = UntilDeadline(kwargs["batches"], self.deadline)  # PyKEEN names every argument
        loss = super()._train_epoch(*args, **kwargs)
        if batches.cut:
            self.last_cut = (batches.taken, len(batches.batches))
        return loss


class SLCWATrainingLoop(EpochDeadline, SubBatchesOnResume, PyKEENSLCWATrainingLoop):
    """PyKEEN's sLCWA training loop, noting the sub-batch size its epochs run with (SubBatchesOnResume)
    and cut by a time box (EpochDeadline)."""


class DeviceTargetLCWATrainingLoop(EpochDeadline, SubBatchesOnResume, LCWATrainingLoop):
    """PyKEEN's LCWATrainingLoop with the dense labels of each batch built on the model's device.
    Falls back to PyKEEN's batches where a loss weighter needs per-query weights."""

    def _create_training_data_loader(self, triples_factory, sampler: str | None, **kwargs) -> DataLoader:
        if sampler or self.loss_weighter is not None:
            return super()._create_training_data_loader(triples_factory, sampler, **kwargs)
        pairs = self._load_label_matrix(triples_factory)

        def collate(rows: list[int]) -> dict[str, Any]:
            index = torch.as_tensor(rows, dtype=torch.long)
            return {"pairs": pairs[index], "rows": index}

        kwargs.pop("pin_memory", None)  # a few hundred ids a batch: nothing worth pinning
        return DataLoader(dataset=_Queries(len(pairs)), collate_fn=collate, **kwargs)

    def _load_label_matrix(self, triples_factory) -> torch.Tensor:
        """Put PyKEEN's sparse label matrix of the training queries on the model's device; returns
        the queries (head, relation), on the host."""
        instances = LCWAInstances.from_triples_factory(triples_factory, target=self.target)
        device = self.model.device
        matrix = instances.compressed
        self._indptr = torch.as_tensor(matrix.indptr, dtype=torch.long, device=device)
        self._indices = torch.as_tensor(matrix.indices, dtype=torch.long, device=device)
        self._values = torch.as_tensor(matrix.data, dtype=torch.float32, device=device)
        return torch.as_tensor(instances.pairs, dtype=torch.long)

    def targets(self, rows: torch.Tensor) -> torch.Tensor:
        """Dense labels (len(rows) x targets) of the given query rows, on the model's device: the
        rows of PyKEEN's sparse label matrix, scattered."""
        device = self._indptr.device
        rows = rows.to(device)
        start = self._indptr[rows]
        counts = self._indptr[rows + 1] - start
        which = torch.repeat_interleave(torch.arange(len(rows), device=device), counts)
        offsets = torch.arange(len(which), device=device) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        entries = start[which] + offsets
        labels = torch.zeros(len(rows), self.num_targets, device=device)
        labels.index_put_((which, self._indices[entries]), self._values[entries], accumulate=True)
        return labels

    def _forward_pass(self, batch: Any, start: int, stop: int, current_batch_size: int, label_smoothing: float,
                      slice_size: int | None, backward: bool = True) -> Any:
        """PyKEEN's forward and backward pass of a (sub-)batch, less its two waits on the device:
        PyKEEN checks the loss for NaN in a Python `if` before the backward pass, and reads it with
        `.item()` after it, so on a GPU the host stops twice a step until the device catches up,
        and launches nothing meanwhile. Here the loss stays on the device (detached) and is added
        up there; `_train_epoch` reads and checks the epoch's sum once."""
        loss = self._process_batch(batch=batch, start=start, stop=stop, label_smoothing=label_smoothing,
                                   slice_size=slice_size)
        if self.model.loss.reduction == "mean":  # PyKEEN's correction for sub-batches
            loss = loss * ((stop - start) / current_batch_size)
        if backward:
            loss.backward()
        self.model.post_forward_pass()
        return loss.detach()

    def _train_epoch(self, *args: Any, **kwargs: Any) -> float:
        """PyKEEN's epoch, its loss read from the device once, and checked for NaN or infinity there."""
        from pykeen.training.training_loop import NonFiniteLossError

        loss = float(super()._train_epoch(*args, **kwargs))
        if not math.isfinite(loss):
            raise NonFiniteLossError("Loss is non-finite.")
        return loss

    def _process_batch(self, batch: dict[str, Any], start: int, stop: int, label_smoothing: float = 0.0,
                       slice_size: int | None = None):
        if "rows" not in batch:
            return super()._process_batch(batch, start, stop, label_smoothing=label_smoothing, slice_size=slice_size)
        pairs = batch["pairs"][start:stop].to(self.model.device)
        labels = self.targets(batch["rows"][start:stop])
        predictions = self.score_method(pairs, slice_size=slice_size, mode=self.mode)
        return (self.loss.process_lcwa_scores(predictions=predictions, labels=labels, label_smoothing=label_smoothing,
                                              num_entities=self.num_targets)
                + self.model.collect_regularization_term())


class OneVsAllTrainingLoop(DeviceTargetLCWATrainingLoop):
    """1-vs-all training on triples: a batch is B training triples (inverse ones included, as
    PyKEEN's LCWA instances hold them), each scored against every entity with its own tail as
    the one label; `n3` weights the N3 regulariser of the batch's head, relation and tail vectors
    (Lacroix et al. 2018: the sum of their moduli cubed over the batch size)."""

    def __init__(self, *, n3: float = 0.0, relation_prediction: float = 0.0, epoch_rows: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n3 = n3
        self.relation_prediction = relation_prediction
        self.epoch_rows = epoch_rows  # rows an epoch draws at random, none twice (0: all of them)

    def _create_training_data_loader(self, triples_factory, sampler: str | None, **kwargs) -> DataLoader:
        instances = LCWAInstances.from_triples_factory(triples_factory, target=self.target)
        self._triples = torch.as_tensor(one_vs_all_triples(instances), device=self.model.device)

        def collate(rows: list[int]) -> dict[str, Any]:
            return {"triples": torch.as_tensor(rows, dtype=torch.long)}

        kwargs.pop("pin_memory", None)
        queries = _Queries(len(self._triples))
        if 0 < self.epoch_rows < len(queries):
            # a fresh random draw each epoch, from torch's random state (so a checkpoint resumes it)
            kwargs.pop("shuffle", None)
            kwargs["sampler"] = RandomSampler(queries, num_samples=self.epoch_rows)
        return DataLoader(dataset=queries, collate_fn=collate, **kwargs)

    @staticmethod
    def _get_batch_size(batch: dict[str, Any]) -> int:
        return batch["triples"].shape[0]

    def _process_batch(self, batch: dict[str, Any], start: int, stop: int, label_smoothing: float = 0.0,
                       slice_size: int | None = None):
        rows = self._triples[batch["triples"][start:stop].to(self._triples.device)]
        predictions = self.score_method(rows[:, :2], slice_size=slice_size, mode=self.mode)
        return one_vs_all_loss(self.model, self.loss, predictions, rows[:, :2], rows[:, 2], self.n3, label_smoothing,
                               self.relation_prediction)


def one_vs_all_triples(instances: LCWAInstances) -> Any:
    """(head, relation, tail) rows, one per entry of PyKEEN's LCWA label matrix: the training
    triples and their inverses, in the ids the model scores."""
    import numpy as np

    matrix = instances.compressed
    rows = np.repeat(np.arange(len(instances.pairs)), np.diff(matrix.indptr))
    return np.column_stack([instances.pairs[rows], matrix.indices]).astype(np.int64)


def one_vs_all_loss(model: Any, loss: Any, predictions: torch.Tensor, pairs: torch.Tensor, tails: torch.Tensor,
                    n3: float, label_smoothing: float = 0.0, relation_prediction: float = 0.0) -> torch.Tensor:
    """The loss of a 1-vs-all batch of triples: `loss` (a PyKEEN loss) of the scores of each
    (head, relation) pair against every entity with its own tail as the one label, plus `n3` times
    the batch's N3, `relation_prediction` times the cross-entropy of each row's relation among all
    relations given its head and tail, and the model's own regularisation."""
    labels = torch.zeros_like(predictions)
    labels[torch.arange(len(tails), device=tails.device), tails] = 1.0
    value = loss.process_lcwa_scores(predictions=predictions, labels=labels, label_smoothing=label_smoothing,
                                     num_entities=predictions.shape[1])
    if n3:
        value = value + n3 * n3_norm(model, pairs[:, 0], pairs[:, 1], tails)
    if relation_prediction:
        relation_scores = score_relations(model, pairs[:, 0], tails)
        value = value + relation_prediction * torch.nn.functional.cross_entropy(relation_scores, pairs[:, 1])
    return value + model.collect_regularization_term()


def score_relations(model: Any, heads: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """Scores (batch x relations) of every relation between each head and tail. ComplEx and
    DistMult as one matrix product ((h * conj(t)) against every relation vector); other models
    through PyKEEN's `score_r`, whose three-way einsum builds a batch x relations x dimension
    tensor (FB15k-237: 1,000 x 474 x 200 complex numbers a batch) and was many times slower."""
    from pykeen.nn.modules import ComplExInteraction, DistMultInteraction

    interaction = getattr(model, "interaction", None)
    if not isinstance(interaction, (ComplExInteraction, DistMultInteraction)):
        return model.score_r(torch.stack([heads, tails], dim=1))
    entities = model.entity_representations[0]
    h, t = entities(indices=heads), entities(indices=tails)
    # DistMult's vectors are real: conj and real change nothing there
    return torch.real((h * t.conj()) @ model.relation_representations[0](indices=None).T)


def n3_norm(model: Any, heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """Lacroix et al. (2018)'s N3: the cubed moduli of the head, relation and tail vectors of a
    batch of triples (complex entries: their modulus), summed and divided by the batch size."""
    entities = model.entity_representations[0]
    factors = (entities(indices=heads), model.relation_representations[0](indices=relations), entities(indices=tails))
    return sum(f.abs().pow(3).sum() for f in factors) / len(heads)
