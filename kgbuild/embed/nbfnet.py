"""NBFNet (Zhu et al. 2021, "Neural Bellman-Ford Networks"): link prediction by message passing
over the graph itself, as a PyKEEN model, so that training, early stopping, PyKEEN's rank-based
evaluation, `predict` and `ask` use it as they use an embedding model.

A query (head, relation) starts from the head alone: the head's vector is the query relation's
vector, every other entity's is zero (the boundary condition). Each of the layers passes messages
along every training fact, in both directions (an inverse relation per relation): the sender's
vector times the fact's relation vector (DistMult), gathered at the receiver by sum, mean, max,
min and standard deviation, each also scaled up and down by the receiver's log degree (PNA), and
mixed with the receiver's own vector by a linear layer, layer norm and ReLU; the boundary comes
in again at every layer as a message to each entity from itself. After the last layer every
entity's vector, next to the query's, goes through a two-layer MLP: its score as the tail. So an
entity is scored by the paths that join it to the head, not by a vector of its own: the model has
no per-entity parameters, only per-relation ones.

Training follows the paper's recipe: each training triple (and its inverse, as PyKEEN's 1-vs-all
rows hold them) against `negatives` tails drawn at random among those that do not complete the
query in training, binary cross-entropy, the negatives weighted by a softmax of their scores
(self-adversarial; `adversarial_temperature`), and every fact joining a batch's heads to its
candidate tails (either direction, any relation; `remove_one_hop`) or only the batch's own facts
(both directions) left out of that batch's graph, so that the model learns to find answers by
other paths than the fact it is asked about.

Published: FB15k-237 test MRR 0.415, WN18RR 0.551 (filtered, both sides), with 6 layers of 32,
Adam 0.005, 32 negatives, batch 64. The gathering materialises one message per fact, query and
dimension (FB15k-237: 558,771 facts and self-loops x 64 queries x 32 = 1.1 billion floats a
layer), so the layers are recomputed in the backward pass (`torch.utils.checkpoint`) instead of
being kept: memory of one layer, for a third more arithmetic."""

from __future__ import annotations

from typing import Any

import torch
from pykeen.models.base import Model
from torch import nn
from torch.utils.checkpoint import checkpoint

from kgbuild.device import keep_freed_cpu_memory
from kgbuild.embed.lcwa import OneVsAllTrainingLoop

# PNA's statistics and degree scalers (Corso et al. 2020), as NBFNet aggregates.
STATISTICS = 4  # mean, max, min, standard deviation
SCALERS = 3  # 1, log degree / its mean, the inverse of that
EPS = 1e-6
# Layers whose messages hold more floats than this (1 GiB) are recomputed in the backward pass
# rather than kept, unless the model says otherwise: FB15k-237 at batch 64 holds 1.1 billion.
CHECKPOINT_FLOATS = 2**28
# On the CPU, queries are scored (and trained, as PyKEEN sub-batches) in chunks whose messages hold
# at most this many floats (16 MB), and glibc keeps freed blocks of up to 32 MB for reuse
# (kgbuild.device.keep_freed_cpu_memory): larger tensors, or freed ones given back, come from fresh
# mmap()s whose pages fault in one by one, which took more time in the kernel than the arithmetic
# did. A step of batch 64 on UMLS: 3.5-3.7 s in one piece (4.2-4.5 s of CPU time in the kernel),
# 1.06 s in chunks of 16 (none); Nations: 0.28-0.30 s either way once freed blocks are kept.
CPU_CHUNK_FLOATS = 2**22


class NBFNet(Model):
    """Neural Bellman-Ford Network over the training triples of `triples_factory` (which must
    create inverse triples: a query for heads runs as one for tails of the inverse relation).

    `embedding_dim` is the width of every layer, `num_layers` their number; `checkpoint`
    recomputes each layer in the backward pass rather than keeping its messages: true, false, or
    None (the default) for where a layer's messages would pass CHECKPOINT_FLOATS."""

    def __init__(self, *, triples_factory, embedding_dim: int = 32, num_layers: int = 6,
                 checkpoint: bool | None = None, **kwargs: Any) -> None:
        super().__init__(triples_factory=triples_factory, **kwargs)
        if not self.use_inverse_triples:
            from kgbuild.errors import ConfigError

            raise ConfigError("NBFNet needs inverse triples", hint="leave inverse_triples at true for --model nbfnet")
        self.embedding_dim = embedding_dim
        self.checkpoint = checkpoint
        heads, relations, tails = triples_factory.mapped_triples.long().t()
        # Facts in both directions, in the relation ids PyKEEN's inverse triples use (2r, 2r + 1).
        self.register_buffer("sources", torch.cat([heads, tails]))
        self.register_buffer("targets", torch.cat([tails, heads]))
        self.register_buffer("edge_relations", torch.cat([2 * relations, 2 * relations + 1]))
        self.query = nn.Embedding(self.num_relations, embedding_dim)
        self.layers = nn.ModuleList(_Layer(self.num_relations, embedding_dim) for _ in range(num_layers))
        self.mlp = nn.Sequential(nn.Linear(2 * embedding_dim, 2 * embedding_dim), nn.ReLU(),
                                 nn.Linear(2 * embedding_dim, 1))
        self.reset_parameters_()

    @property
    def num_edges(self) -> int:
        return len(self.sources)

    def _reset_parameters_(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def _get_entity_len(self, *, mode=None) -> int:
        return self.num_entities

    def collect_regularization_term(self) -> torch.Tensor:
        return torch.zeros((), device=self.device)

    def propagate(self, heads: torch.Tensor, relations: torch.Tensor,
                  removed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every entity's vector for each query (head, relation): entities x queries x dimension,
        and the queries' relation vectors. `removed`: a mask of the facts to leave out."""
        if heads.device.type == "cpu":
            keep_freed_cpu_memory()
        sources, targets, edge_relations = self.sources, self.targets, self.edge_relations
        if removed is not None:
            keep = ~removed
            sources, targets, edge_relations = sources[keep], targets[keep], edge_relations[keep]
        query = self.query(relations)
        boundary = query.new_zeros(self.num_entities, len(heads), self.embedding_dim)
        boundary[heads, torch.arange(len(heads), device=heads.device)] = query
        degree, scales = self.degree_scalers(targets)
        recompute = (self.training and torch.is_grad_enabled()
                     and self._checkpointed(len(heads), len(targets) + self.num_entities))
        hidden = boundary
        for layer in self.layers:
            args = (hidden, boundary, sources, targets, edge_relations, degree, scales)
            if recompute:
                update = checkpoint(layer, *args, use_reentrant=False)
            else:
                update = layer(*args)
            hidden = update + hidden  # shortcut
        return hidden, query

    def degree_scalers(self, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each entity's degree in the graph of facts whose receivers are `targets`, counting the
        message each entity hears from itself (the boundary), and PNA's scalers of it (1, log
        degree over its mean, the inverse): entities, and entities x SCALERS."""
        degree = torch.bincount(targets, minlength=self.num_entities).float() + 1
        scale = degree.log()
        scale = scale / scale.mean().clamp(min=EPS)
        return degree, torch.stack([torch.ones_like(scale), scale, 1.0 / scale.clamp(min=1e-2)], dim=-1)

    def candidate_scores(self, heads: torch.Tensor, relations: torch.Tensor, candidates: torch.Tensor,
                         removed: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (queries x candidates) of the candidate tails of queries (head, relation), over
        the graph less the `removed` facts (a mask): what training asks."""
        hidden, query = self.propagate(heads, relations, removed=removed)
        return self.score_candidates(hidden, query, candidates)

    @property
    def messages_per_query(self) -> int:
        """Messages a layer passes for one query: one along every fact, each direction."""
        return self.num_edges

    def queries_per_chunk(self) -> int:
        """Queries scored (and trained) together on the CPU: see CPU_CHUNK_FLOATS."""
        return cpu_chunk(self.messages_per_query, self.num_entities, self.embedding_dim)

    def _checkpointed(self, queries: int, messages: int) -> bool:
        if self.checkpoint is None:
            return queries * messages * self.embedding_dim > CHECKPOINT_FLOATS
        return self.checkpoint

    def score_candidates(self, hidden: torch.Tensor, query: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores (queries x candidates) of the given tails (queries x candidates entity ids)."""
        picked = hidden[candidates, torch.arange(len(query), device=query.device).unsqueeze(1)]  # Q x C x D
        features = torch.cat([picked, query.unsqueeze(1).expand_as(picked)], dim=-1)
        return self.mlp(features).squeeze(-1)

    def score_t(self, hr_batch: torch.Tensor, *, slice_size: int | None = None, mode=None,
                tails: torch.Tensor | None = None) -> torch.Tensor:
        chunk = self.queries_per_chunk()
        if self.device.type == "cpu" and len(hr_batch) > chunk:
            return torch.cat([self.score_t(hr_batch[i:i + chunk], tails=tails if tails is None or tails.dim() == 1
                                           else tails[i:i + chunk]) for i in range(0, len(hr_batch), chunk)])
        scores = self.tail_scores(hr_batch[:, 0], hr_batch[:, 1])
        if tails is not None:
            scores = scores.gather(1, tails.expand(len(scores), -1) if tails.dim() == 1 else tails)
        return scores

    def tail_scores(self, heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """Every entity's score as the tail of each query (head, relation): queries x entities."""
        hidden, query = self.propagate(heads, relations)
        features = torch.cat([hidden, query.unsqueeze(0).expand_as(hidden)], dim=-1)
        return self.mlp(features).squeeze(-1).t()

    def score_h(self, rt_batch: torch.Tensor, *, slice_size: int | None = None, mode=None,
                heads: torch.Tensor | None = None) -> torch.Tensor:
        # (relation, tail) -> a tail query of the inverse relation from the tail
        inverse = torch.stack([rt_batch[:, 1], rt_batch[:, 0] ^ 1], dim=1)  # 2r <-> 2r + 1
        return self.score_t(inverse, tails=heads)

    def score_hrt(self, hrt_batch: torch.Tensor, *, mode=None) -> torch.Tensor:
        return self.score_t(hrt_batch[:, :2], tails=hrt_batch[:, 2:3])

    def score_r(self, ht_batch: torch.Tensor, *, slice_size: int | None = None, mode=None,
                relations: torch.Tensor | None = None) -> torch.Tensor:
        # one message passing per (head, relation) query: all relations at once would cost one per relation
        from kgbuild.embed.train import EmbeddingError

        raise EmbeddingError("NBFNet does not score relations", hint="predict heads or tails instead")


class _Layer(nn.Module):
    """One Bellman-Ford step: DistMult messages along every fact, PNA aggregation, linear update."""

    def __init__(self, num_relations: int, dim: int) -> None:
        super().__init__()
        self.relation = nn.Embedding(num_relations, dim)
        self.linear = nn.Linear((STATISTICS * SCALERS + 1) * dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, hidden: torch.Tensor, boundary: torch.Tensor, sources: torch.Tensor, targets: torch.Tensor,
                edge_relations: torch.Tensor, degree: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        n = hidden.shape[0]
        # index_select, not hidden[sources]: its backward is an index_add_, where indexing's
        # accumulating index_put_ is many times slower on the CPU
        sent = hidden.index_select(0, sources) * self.relation(edge_relations).unsqueeze(1)  # facts x Q x D
        update = self.aggregate(sent, targets, boundary, degree.view(n, 1, 1), scales.view(n, 1, 1, 1, SCALERS))
        return self.combine(hidden, update)

    def aggregate(self, sent: torch.Tensor, targets: torch.Tensor, boundary: torch.Tensor, count: torch.Tensor,
                  scales: torch.Tensor) -> torch.Tensor:
        """PNA of the messages `sent` to the rows of `boundary` that `targets` names, each row's
        boundary its own message; `count` (each row's degree) and `scales` (its degree scalers,
        last dimension SCALERS) broadcast over the statistics (rows x ... x D x 4)."""
        # each entity's own message, the boundary, starts every statistic: no copy of `sent` with it
        mean = boundary.index_add(0, targets, sent) / count
        square = (boundary * boundary).index_add(0, targets, sent * sent) / count
        largest = scatter_extreme(sent, targets, boundary, "amax")
        smallest = scatter_extreme(sent, targets, boundary, "amin")
        std = (square - mean * mean).clamp(min=EPS).sqrt()
        features = torch.stack([mean, largest, smallest, std], dim=-1)  # rows x ... x D x 4
        return (features.unsqueeze(-1) * scales).flatten(-3)  # rows x ... x 12D

    def combine(self, hidden: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.linear(torch.cat([hidden, update], dim=-1))))


def scatter_extreme(values: torch.Tensor, index: torch.Tensor, start: torch.Tensor, reduce: str) -> torch.Tensor:
    """For each row of `start`, the largest ("amax") or smallest ("amin") of it and the `values`
    rows that `index` sends to it."""
    return _ScatterExtreme.apply(values, index, start, reduce)


class _ScatterExtreme(torch.autograd.Function):
    """scatter_reduce's amax / amin with a backward pass of row gathers and one index_add_: torch's
    own backward gathers through an expanded index and took 80% of an NBFNet step on the CPU. The
    gradient is shared equally among tied extremes, as torch shares it."""

    @staticmethod
    def forward(ctx, values, index, start, reduce):
        out = start.clone()
        out.scatter_reduce_(0, index.view(-1, *[1] * (values.dim() - 1)).expand_as(values), values, reduce)
        ctx.save_for_backward(values, index, start, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        values, index, start, out = ctx.saved_tensors
        hit = (values == out.index_select(0, index)).to(grad.dtype)
        own = (start == out).to(grad.dtype)
        share = grad / own.index_add_(0, index, hit)  # each row's extreme is among its candidates: ties >= 1
        start_grad = share * (start == out) if ctx.needs_input_grad[2] else None
        return share.index_select(0, index) * hit, None, start_grad, None


class NBFNetObjective:
    """NBFNet's training loss (module docstring) for batches of training rows (head, relation,
    tail; inverse rows included) of `model`, whose training rows are all of `rows`: each row's tail
    against `negatives` random tails that do not complete its query in training, binary
    cross-entropy with self-adversarial weights on the negatives, and the batch's facts left out of
    its graph (`remove_one_hop`: every fact between its heads and candidates)."""

    def __init__(self, model: NBFNet, rows: torch.Tensor, negatives: int = 32, adversarial_temperature: float = 0.5,
                 remove_one_hop: bool = False) -> None:
        n, r = model.num_entities, model.num_relations
        self.model = model
        self.negatives = negatives
        self.adversarial_temperature = adversarial_temperature
        self.remove_one_hop = remove_one_hop
        rows = rows.to(model.device)
        self.known = torch.sort(triple_keys(rows[:, 0], rows[:, 1], rows[:, 2], r, n)).values
        self.edge_pairs = model.sources * n + model.targets
        self.edge_keys = triple_keys(model.sources, model.edge_relations, model.targets, r, n)

    def loss(self, rows: torch.Tensor) -> torch.Tensor:
        heads, relations, tails = rows.t()
        candidates = torch.cat([tails.unsqueeze(1), self.strict_negatives(heads, relations)], dim=1)  # B x (1 + K)
        scores = self.model.candidate_scores(heads, relations, candidates, removed=self.removed_facts(rows, candidates))
        return adversarial_bce(scores, self.adversarial_temperature)

    def removed_facts(self, rows: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """A mask of the model's facts (both directions) that the batch leaves out of its graph."""
        n, r = self.model.num_entities, self.model.num_relations
        heads, relations, tails = rows.t()
        if self.remove_one_hop:
            pair_heads = heads.unsqueeze(1).expand_as(candidates).reshape(-1)
            pair_tails = candidates.reshape(-1)
            return torch.isin(self.edge_pairs, torch.cat([pair_heads * n + pair_tails, pair_tails * n + pair_heads]))
        inverse = relations ^ 1  # 2r <-> 2r + 1
        own = torch.cat([triple_keys(heads, relations, tails, r, n), triple_keys(tails, inverse, heads, r, n)])
        return torch.isin(self.edge_keys, own)

    def strict_negatives(self, heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """`negatives` random tails for each query that are not its tails in training (drawn
        again where one is, up to 100 times: a query true of nearly every entity keeps some)."""
        n, r = self.model.num_entities, self.model.num_relations
        shape = (len(heads), self.negatives)
        drawn = torch.randint(n, shape, device=heads.device)
        for _ in range(100):
            keys = triple_keys(heads.unsqueeze(1), relations.unsqueeze(1), drawn, r, n)
            position = torch.searchsorted(self.known, keys).clamp(max=len(self.known) - 1)
            clash = self.known[position] == keys
            if not bool(clash.any()):
                break
            drawn = torch.where(clash, torch.randint(n, shape, device=heads.device), drawn)
        return drawn


class NBFNetTrainingLoop(OneVsAllTrainingLoop):
    """PyKEEN training with NBFNetObjective: a batch is training rows, as in 1-vs-all training."""

    def __init__(self, *, negatives: int = 32, adversarial_temperature: float = 0.5, remove_one_hop: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.objective_kwargs = dict(negatives=negatives, adversarial_temperature=adversarial_temperature,
                                     remove_one_hop=remove_one_hop)

    def _create_training_data_loader(self, triples_factory, sampler: str | None, **kwargs):
        loader = super()._create_training_data_loader(triples_factory, sampler, **kwargs)
        self.objective = NBFNetObjective(self.model, self._triples, **self.objective_kwargs)
        return loader

    def sub_batch_and_slice(self, *, batch_size: int, sampler, triples_factory) -> tuple[int, None]:
        """On the CPU, sub-batches of CPU_CHUNK_FLOATS (their gradients add up to the batch's),
        instead of PyKEEN's search for the largest sub-batch that fits in memory."""
        model = self.model
        if model.device.type == "cpu":
            return min(batch_size, model.queries_per_chunk()), None
        return super().sub_batch_and_slice(batch_size=batch_size, sampler=sampler, triples_factory=triples_factory)

    def _process_batch(self, batch: dict[str, Any], start: int, stop: int, label_smoothing: float = 0.0,
                       slice_size: int | None = None):
        return self.objective.loss(self._triples[batch["triples"][start:stop].to(self._triples.device)])


def cpu_chunk(messages: int, entities: int, dim: int) -> int:
    """Queries per chunk on the CPU (CPU_CHUNK_FLOATS) for layers that pass `messages` messages a
    query over a graph of `entities` entities."""
    return max(1, CPU_CHUNK_FLOATS // ((messages + entities) * dim))


def triple_keys(heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor, num_relations: int,
                num_entities: int) -> torch.Tensor:
    """One int64 per triple, ordered like (head, relation, tail)."""
    return (heads * num_relations + relations) * num_entities + tails


def adversarial_bce(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Binary cross-entropy of scores whose first column is the true tail and the rest negatives,
    the negatives weighted by a softmax of their scores over `temperature` (0: equal weights),
    each row's loss normalised by its weights (NBFNet's loss)."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    loss = nn.functional.binary_cross_entropy_with_logits(scores, labels, reduction="none")
    with torch.no_grad():
        weights = torch.ones_like(scores)
        negatives = scores.shape[1] - 1
        if temperature > 0:
            weights[:, 1:] = torch.softmax(scores[:, 1:] / temperature, dim=-1)
        else:
            weights[:, 1:] = 1.0 / negatives
    return ((loss * weights).sum(-1) / weights.sum(-1)).mean()
