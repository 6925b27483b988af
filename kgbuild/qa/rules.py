"""Proposing a missing fact from the facts around it, for a hop of a question's path that the graph
lacks (a film whose director was never extracted). Rules in the manner of AnyBURL, read off the
graph itself, so nothing has to be trained:

- prior: the objects the relation takes most often (most films are in English);
- parallel, via another hop s: r(x, y) <= s(x, y) (a film's writer often directed it);
- sibling, via another hop s: r(x, y) <= s(x, z), s(x', z), r(x', y) (films sharing a director
  share a language), each sibling weighted by 1 / the number of siblings through z, so that a hub
  (a genre of 5,000 films) says little.

Each rule's precision is measured on the graph: for a sample of entities that have the hop, the
rule's best guess (made without those entities' own facts of that hop) is checked against them.
A proposal's score mixes the distributions of the rules that fire, weighted by their precision,
and is scaled by the best of those precisions, so it reads as a probability. Built lazily per hop,
so opening a graph costs nothing until an answer needs a missing hop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kgbuild.qa.index import GraphIndex

SAMPLE = 400  # entities per hop on which each rule's precision is measured
MIN_FIRED = 5  # a rule that fired on fewer sample entities than this is not used
SEED = 0


@dataclass
class HopRules:
    """The rules for one hop with their measured precision (share of right first guesses when the
    rule proposes anything)."""

    hop: int
    prior: np.ndarray  # P(object) over all entities, from how often each is this hop's object
    prior_precision: float
    parallel: dict[int, float]  # hop s -> precision of r(x, y) <= s(x, y)
    sibling: dict[int, float]  # hop s -> precision of r(x, y) <= s(x, z), s(x', z), r(x', y)
    precision_at_1: float  # of the mixed proposal, on the same sample
    sample: int  # entities measured on


class RuleCompleter:
    """Proposes objects for a hop of entities that lack it (see the module docstring)."""

    def __init__(self, index: GraphIndex, sample: int = SAMPLE, seed: int = SEED) -> None:
        self.index = index
        self.sample = sample
        self.seed = seed
        self._rules: dict[int, HopRules] = {}
        self._spread: dict[int, object] = {}
        self._float: dict[int, object] = {}

    def _adjacency(self, hop: int):
        """The hop's adjacency as float32, converted once (it is multiplied on every proposal)."""
        if hop not in self._float:
            self._float[hop] = self.index.adjacency[hop].astype(np.float32)
        return self._float[hop]

    # -- rule statistics ---------------------------------------------------------------------
    def _spread_of(self, s: int):
        """z -> x' by hop s^1, each row scaled by 1 / its length (a sibling's weight)."""
        if s not in self._spread:
            import scipy.sparse as sp

            back = self._adjacency(s ^ 1)
            deg = np.asarray(back.sum(axis=1)).ravel()
            inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
            self._spread[s] = sp.diags(inv) @ back
        return self._spread[s]

    def _distributions(self, nodes: np.ndarray, hop: int, rules: list[tuple[str, int]]):
        """Per rule: a (len(nodes) x entities) sparse matrix of normalised votes (rows summing to
        1 where the rule fires, empty elsewhere)."""
        import scipy.sparse as sp

        target = self._adjacency(hop)
        out = {}
        rows = np.arange(len(nodes))
        nodes = np.asarray(nodes, dtype=np.int64)
        for kind, s in rules:
            first = self._adjacency(s)[nodes]
            if kind == "parallel":
                # Any entity s reaches, not only those that already take part in a fact of this
                # hop: the films a writer directed are proposed as those they wrote even when
                # none of them has a writer left in the graph.
                votes = first  # a row selection: a matrix of its own
            else:
                siblings = sp.csr_matrix(first @ self._spread_of(s))
                own = np.asarray(siblings[rows, nodes]).ravel()  # an entity is not its own sibling
                siblings = siblings - sp.csr_matrix((own, (rows, nodes)), shape=siblings.shape)
                votes = siblings @ target
            votes = sp.csr_matrix(votes)
            votes.eliminate_zeros()
            total = np.asarray(votes.sum(axis=1)).ravel()
            scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
            out[(kind, s)] = sp.diags(scale) @ votes
        return out

    def rules(self, hop: int) -> HopRules:
        """The rules of `hop`, measured on first use."""
        if hop in self._rules:
            return self._rules[hop]
        index = self.index
        counts = np.asarray(index.adjacency[hop].sum(axis=0), dtype=np.float64).ravel()
        prior = counts / max(counts.sum(), 1.0)
        having = np.flatnonzero(index.has_hop[:, hop])
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(having, size=min(self.sample, len(having)), replace=False)) if len(having) else having
        truth = index.adjacency[hop][sample] if len(sample) else None
        candidates = [("parallel", s) for s in range(index.n_hops) if s != hop]
        candidates += [("sibling", s) for s in range(index.n_hops) if s != hop]
        precision: dict[tuple[str, int], float] = {}
        best_prior = int(np.argmax(prior)) if counts.sum() else -1
        prior_precision = float(np.mean([best_prior in _row(truth, i) for i in range(len(sample))])) if len(sample) else 0.0
        if len(sample):
            dists = self._distributions(sample, hop, candidates)
            for key, dist in dists.items():
                fired = np.flatnonzero(np.diff(dist.indptr))
                if len(fired) < MIN_FIRED:
                    continue
                right = sum(_argmax_row(dist, i) in _row(truth, i) for i in fired)
                precision[key] = right / len(fired)
        rules = HopRules(
            hop=hop, prior=prior, prior_precision=prior_precision,
            parallel={s: p for (k, s), p in precision.items() if k == "parallel" and p > 0},
            sibling={s: p for (k, s), p in precision.items() if k == "sibling" and p > 0},
            precision_at_1=0.0, sample=len(sample))
        self._rules[hop] = rules
        if len(sample):
            children, parents, _, _ = self.propose(sample, hop, top=1, exclude_known=False)
            guess = dict(zip(parents.tolist(), children.tolist()))
            rules.precision_at_1 = float(np.mean([guess.get(int(x), -1) in _row(truth, i) for i, x in enumerate(sample)]))
        return rules

    # -- proposing ---------------------------------------------------------------------------
    def propose(self, nodes: np.ndarray, hop: int, top: int = 5, exclude_known: bool = True,
                explain: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """For each of `nodes`, its `top` likeliest objects of `hop`: (children, parents,
        probability of each, and with `explain` the rule behind each), leaving out what the
        entity already has by that hop unless `exclude_known` is False (measuring the rules on
        known facts)."""
        rules = self.rules(hop)
        nodes = np.asarray(nodes, dtype=np.int64)
        weighted = [(("parallel", s), p) for s, p in rules.parallel.items()]
        weighted += [(("sibling", s), p) for s, p in rules.sibling.items()]
        dists = self._distributions(nodes, hop, [key for key, _ in weighted]) if weighted else {}
        n = len(self.index.entities)
        children, parents, probs, reasons = [], [], [], []
        for i, x in enumerate(nodes.tolist()):
            mix = np.zeros(n)
            fired = []  # ((kind, hop s), precision, entity ids, votes)
            for (kind, s), p in weighted:
                dist = dists[(kind, s)]
                a, b = dist.indptr[i], dist.indptr[i + 1]
                if a < b:
                    fired.append(((kind, s), p, dist.indices[a:b], dist.data[a:b]))
                    mix[dist.indices[a:b]] += p * dist.data[a:b]
            if rules.prior_precision > 0:
                mix += rules.prior_precision * rules.prior
            weight = sum(p for _, p, _, _ in fired) + rules.prior_precision
            if weight == 0:
                continue
            best = max([p for _, p, _, _ in fired] + [rules.prior_precision])
            if exclude_known:
                mix[_row(self.index.adjacency[hop], x, as_array=True)] = 0
            mix[x] = 0
            k = min(top, int(np.count_nonzero(mix)))
            if not k:
                continue
            pick = np.argpartition(-mix, k - 1)[:k]
            pick = pick[np.argsort(-mix[pick], kind="stable")]
            children.append(pick)
            parents.append(np.full(k, x, dtype=np.int64))
            probs.append(mix[pick] / weight * best)
            if explain:
                reasons += [self._reason(int(y), hop, rules, fired) for y in pick]
        if not children:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0), []
        return np.concatenate(children), np.concatenate(parents), np.concatenate(probs), reasons

    def _reason(self, y: int, hop: int, rules: HopRules, fired: list) -> str:
        """The rule that gave entity `y` the largest share of its score."""
        best, best_share = ("prior", -1, rules.prior_precision), rules.prior_precision * rules.prior[y]
        for (kind, s), p, ids, votes in fired:
            at = np.flatnonzero(ids == y)
            if len(at) and p * votes[at[0]] > best_share:
                best, best_share = (kind, s, p), p * votes[at[0]]
        return self.rule_text(hop, *best)

    def rule_text(self, hop: int, kind: str, s: int, precision: float) -> str:
        """A rule in Datalog-like notation, with its measured precision."""
        r = self.index.hop_name(hop).text()
        if kind == "prior":
            return f"rule {r}(x, y) for the most frequent y (precision {precision:.2f})"
        via = self.index.hop_name(s).text()
        if kind == "parallel":
            return f"rule {r}(x, y) <= {via}(x, y) (precision {precision:.2f})"
        return f"rule {r}(x, y) <= {via}(x, z), {via}(x', z), {r}(x', y) (precision {precision:.2f})"

    def report(self, hops: list[int] | None = None) -> dict[str, dict]:
        """Measured figures of the rules of `hops` (default: those built so far), by hop name."""
        out = {}
        for hop in sorted(self._rules if hops is None else hops):
            r = self.rules(hop)
            out[self.index.hop_name(hop).text()] = {
                "precision@1": round(100 * r.precision_at_1, 2), "prior": round(100 * r.prior_precision, 2),
                "best_rule": max([(p, f"parallel {self.index.hop_name(s).text()}") for s, p in r.parallel.items()]
                                 + [(p, f"sibling {self.index.hop_name(s).text()}") for s, p in r.sibling.items()]
                                 + [(r.prior_precision, "prior")])[1],
                "sample": r.sample}
        return out


def _row(matrix, i: int, as_array: bool = False):
    """The column ids of row `i` of a CSR matrix (a set, or an array with `as_array`)."""
    cols = matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]]
    return cols if as_array else set(cols.tolist())


def _argmax_row(matrix, i: int) -> int:
    a, b = matrix.indptr[i], matrix.indptr[i + 1]
    return int(matrix.indices[a + int(np.argmax(matrix.data[a:b]))])
