"""Link prediction by rules read off the training graph, AnyBURL-style (Meilicke et al. 2019), and
the same rules combined with an embedding model.

A rule predicts the object of a query `q(X, ?)`, where q is a relation or an inverse one (head
queries `(?, r, t)` are `r^-1(t, ?)`). Four shapes are learned, each with a confidence measured on
the training facts (support / (body groundings + 5), AnyBURL's correction for rules seen rarely):

* `q(X, c) <- p(X, d)`: a constant answer given a constant fact ("citizen of France <- born in Paris");
* `q(X, c) <- p(X, _)`: a constant answer given any fact of a relation;
* `q(X, Y) <- p(X, Y)`: a parallel relation (inverse ones included);
* `q(X, Y) <- p1(X, Z), p2(Z, Y)`: a path of two facts, sampled from the training facts' own paths.

A candidate scores the best confidence among the rules that propose it (AnyBURL's max
aggregation), plus a small noisy-or of all of them to break ties, plus a tiny term for how often
it answers q at all. Everything is sparse matrix work with numpy and scipy, on the CPU: FB15k-237's
rules are learned in about two minutes, WN18RR's in seconds (README, "Rules").

`RuleModel` scores like a PyKEEN model (`predict`, `predict_h`, `predict_t`), so PyKEEN's
rank-based evaluator ranks it, and `RulesAndEmbeddings` adds its scores to an embedding model's
log-probabilities."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kgbuild.errors import KgbuildError

RULES_FILE = "rules.npz"
# AnyBURL's constant for unseen negatives: a rule true 2 of 2 times has confidence 2/7, not 1.
UNSEEN = 5.0
# Ties among candidates with the same best rule are broken by the noisy-or of all their rules at
# this weight, then by how often each candidate answers the relation (FB15k-237 valid, README).
NOISY_OR_WEIGHT = 0.1
PRIOR_WEIGHT = 1e-4
# Learning the constant rules pairs each entity's facts with its facts of q: an entity whose two
# counts multiply past this (a country with thousands of citizens) is left out of their support.
MAX_PAIRS_PER_ENTITY = 20_000
KINDS = ("constant", "constant-any", "parallel", "path")
RULES_MODES = ("off", "add", "only")
# The rules' weight against an embedding model's log-probabilities (the rules' scores are 0-1):
# chosen among these by validation MRR. On the validation splits 30 did best for Nations and
# UMLS, 3 for Kinships, whose relations rules capture less well (README, "Rules"); 0 leaves the
# rules out where they do not help.
WEIGHTS = (0.0, 1.0, 3.0, 10.0, 30.0)
RULES_WEIGHT = 10.0  # when there is no validation split to choose by


@dataclass
class RuleStats:
    """What was learned."""

    rules: dict[str, int]  # rules kept, by shape
    seconds: float  # learning time


@dataclass
class Firing:
    """One rule that proposes a candidate. Relations are directed ids: r < R as stated, r + R its
    inverse; entities are ids, -1 where the shape has none."""

    confidence: float  # the rule's confidence on the training facts
    shape: str  # one of KINDS
    relation: int  # the rule's head relation: q in q(X, c) or q(X, Y)
    p1: int  # the (first) body relation
    p2: int = -1  # path: the second body relation
    d: int = -1  # constant: the body's constant
    c: int = -1  # constant, constant-any: the answer constant

    def text(self, relation_label: Callable[[int], str], entity_label: Callable[[int], str], num_relations: int) -> str:
        """The rule as people write it, e.g. "born in(X, Paris) => citizen of(X, France)"."""
        def atom(relation: int, a: str, b: str) -> str:
            if relation >= num_relations:  # an inverse: its own relation with the arguments swapped
                relation, a, b = relation - num_relations, b, a
            return f"{relation_label(relation)}({a}, {b})"

        if self.shape == "constant":
            body, head = atom(self.p1, "X", entity_label(self.d)), atom(self.relation, "X", entity_label(self.c))
        elif self.shape == "constant-any":
            body, head = atom(self.p1, "X", "_"), atom(self.relation, "X", entity_label(self.c))
        else:  # the head reads q(X, Y) as stated, also when the rule was learned for q's inverse
            x, y = ("Y", "X") if self.relation >= num_relations else ("X", "Y")
            head = atom(self.relation, x, y)
            body = (atom(self.p1, x, y) if self.shape == "parallel"
                    else f"{atom(self.p1, x, 'Z')}, {atom(self.p2, 'Z', y)}")
        return f"{body} => {head}"


class Graph:
    """The training facts as sparse matrices over directed relations (q < R: as stated; q >= R: inverse)."""

    def __init__(self, triples: np.ndarray, num_entities: int, num_relations: int):
        import scipy.sparse as sp

        triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
        self.E, self.R = int(num_entities), int(num_relations)
        self.Q = 2 * self.R
        h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
        self.heads = np.concatenate([h, t])
        self.rels = np.concatenate([r, r + self.R])
        self.tails = np.concatenate([t, h])
        ones = np.ones(len(self.heads), np.float32)
        # facts as features of their subject: one column per (relation, object) pair that occurs,
        # keyed relation * E + object (columns, not every possible pair: memory stays in
        # proportion to the facts)
        self.feature_keys, column = np.unique(self.rels * self.E + self.tails, return_inverse=True)
        self.F = _binary(sp.csr_matrix((ones, (self.heads, column.ravel())), shape=(self.E, len(self.feature_keys))))
        self.D = _binary(sp.csr_matrix((ones, (self.heads, self.rels)), shape=(self.E, self.Q)))
        self.FT, self.DT = self.F.T.tocsr(), self.D.T.tocsr()  # who has a fact (p, d); who has facts of p
        order = np.argsort(self.rels, kind="stable")
        bounds = np.searchsorted(self.rels[order], np.arange(self.Q + 1))
        self.A = []
        for q in range(self.Q):
            part = order[bounds[q]:bounds[q + 1]]
            self.A.append(_binary(sp.csr_matrix((ones[part], (self.heads[part], self.tails[part])), shape=(self.E, self.E))))
        self.keys = self.heads * self.E + self.tails
        self.sizes = np.array([a.nnz for a in self.A], dtype=np.float64)
        self.feature_body = np.asarray(self.F.sum(axis=0)).ravel()
        self.relation_body = np.asarray(self.D.sum(axis=0)).ravel()
        self.degree = np.diff(self.F.indptr)

    def facts_of(self, entity: int) -> np.ndarray:
        """Keys (relation * E + object) of the facts of `entity`."""
        return self.feature_keys[self.F.indices[self.F.indptr[entity]:self.F.indptr[entity + 1]]]


def _binary(m):
    m.sum_duplicates()
    m.data[:] = 1
    return m


class RuleModel:
    """Rules of one graph, and the graph they apply to. Quacks like the parts of a PyKEEN Model
    that ranking and `kgbuild predict` use."""

    groups_by_relation = True  # rank_metrics orders the ranked triples by relation for it

    def __init__(self, graph: Graph, table: dict[str, np.ndarray], stats: RuleStats | None = None):
        self.graph = graph
        self.table = table  # kind, q, p1, p2, d, c (int32; -1 unused), confidence (float32)
        self.stats = stats
        self._compiled: dict[int, Any] = {}

    @property
    def evaluation_batch_size(self) -> int:
        """Queries scored at once: each holds three float32 rows of every entity."""
        return max(16, min(512, 2**25 // max(self.graph.E, 1)))

    # --- the parts of a PyKEEN model that ranking uses
    @property
    def num_entities(self) -> int:
        return self.graph.E

    @property
    def num_relations(self) -> int:
        return self.graph.Q

    @property
    def device(self):
        import torch

        return torch.device("cpu")

    def eval(self) -> "RuleModel":
        return self

    def to(self, device) -> "RuleModel":
        return self

    def parameters(self):
        return iter(())

    def predict(self, hrt_batch, target, **_: Any):
        import torch

        batch = hrt_batch.detach().cpu().numpy()
        if target == "tail":
            entities, queries = batch[:, 0], batch[:, 1]
        elif target == "head":
            entities, queries = batch[:, 2], batch[:, 1] + self.graph.R
        else:
            raise KgbuildError(f"rules predict heads and tails, not {target!r}s", hint="rank heads or tails")
        return torch.from_numpy(self.scores(entities, queries))

    def predict_t(self, hr_batch, **kwargs: Any):
        import torch

        return self.predict(torch.cat([hr_batch, hr_batch[:, :1]], dim=1), "tail")

    def predict_h(self, rt_batch, **kwargs: Any):
        import torch

        return self.predict(torch.stack([rt_batch[:, 1], rt_batch[:, 0], rt_batch[:, 1]], dim=1), "head")

    # --- scoring
    def scores(self, entities: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(len(entities), E) scores of every candidate object of `queries[i](entities[i], ?)`,
        queries being directed relation ids (inverse ones from R)."""
        entities = np.asarray(entities, dtype=np.int64)
        queries = np.asarray(queries, dtype=np.int64)
        out = np.zeros((len(entities), self.graph.E), np.float32)
        for q in np.unique(queries):
            rows = np.flatnonzero(queries == q)
            best, log_miss = self._apply(int(q), entities[rows])
            out[rows] = best + NOISY_OR_WEIGHT * (1.0 - np.exp(log_miss)) + PRIOR_WEIGHT * self._compile(int(q))["prior"]
        return out

    def _apply(self, q: int, heads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self.graph
        c = self._compile(q)
        n = len(heads)
        best = np.zeros((n, g.E), np.float32)
        log_miss = np.zeros((n, g.E), np.float32)

        def add(rows, cols, conf):
            if len(rows):
                np.maximum.at(best, (rows, cols), conf)
                np.add.at(log_miss, (rows, cols), np.log1p(-conf))

        facts = g.F[heads].tocoo()
        keys = g.feature_keys[facts.col]
        # parallel: each fact (p, y) of the head proposes y with p's confidence for q
        p, y = keys // g.E, keys % g.E
        conf = c["parallel"][p]
        keep = conf > 0
        add(facts.row[keep], y[keep], conf[keep])
        # constant: each fact (p, d) of the head that is a rule body proposes the rule's answers
        local = np.searchsorted(c["features"], keys)
        found = local < len(c["features"])
        found[found] &= c["features"][local[found]] == keys[found]
        rows, cols, conf = _expand(facts.row[found], local[found], c["indptr"], c["answers"], c["conf"])
        add(rows, cols, conf)
        # constant-any: each relation the head has facts of
        rel = g.D[heads].tocoo()
        rows, cols, conf = _expand(rel.row, rel.col, c["any_indptr"], c["any_answers"], c["any_conf"])
        add(rows, cols, conf)
        # constant rules read backwards: q^-1(X, c) <- p(X, d) proposes, for the query q(c, ?), every
        # X with the fact (p, d) (AnyBURL applies a rule to both of its head's sides)
        query, rule = _expand_index(np.arange(n), heads, c["back_indptr"])
        hit, at = _expand_index(query, c["back_features"][rule], g.FT.indptr)
        add(query[hit], g.FT.indices[at], c["back_conf"][rule][hit])
        query, rule = _expand_index(np.arange(n), heads, c["back_any_indptr"])
        hit, at = _expand_index(query, c["back_any_relations"][rule], g.DT.indptr)
        add(query[hit], g.DT.indices[at], c["back_any_conf"][rule][hit])
        # paths: two-step products, grouped by their first relation
        for p1, steps in c["paths"].items():
            first = g.A[p1][heads]
            if first.nnz == 0:
                continue
            for p2, conf in steps:
                reached = (first @ g.A[p2]).tocoo()
                keep = reached.col != heads[reached.row]
                add(reached.row[keep], reached.col[keep], np.full(int(keep.sum()), conf, np.float32))
        return best, log_miss

    def _compile(self, q: int) -> dict[str, Any]:
        if q in self._compiled:
            return self._compiled[q]
        g, t = self.graph, self.table
        mine = t["q"] == q
        kind = t["kind"][mine]
        conf = t["confidence"][mine]
        p1, p2, d, c = t["p1"][mine], t["p2"][mine], t["d"][mine], t["c"][mine]
        compiled: dict[str, Any] = {}
        parallel = np.zeros(g.Q, np.float32)
        sel = kind == KINDS.index("parallel")
        parallel[p1[sel]] = conf[sel]
        compiled["parallel"] = parallel
        sel = np.flatnonzero(kind == KINDS.index("constant"))
        feature = p1[sel].astype(np.int64) * g.E + d[sel]
        order = np.lexsort((c[sel], feature))
        feature, answers, confs = feature[order], c[sel][order], conf[sel][order]
        compiled["features"], starts = np.unique(feature, return_index=True)
        compiled["indptr"] = np.append(starts, len(feature))
        compiled["answers"], compiled["conf"] = answers, confs
        order, compiled["any_indptr"] = _grouped(kind == KINDS.index("constant-any"), p1, g.Q)
        compiled["any_answers"], compiled["any_conf"] = c[order], conf[order]
        # the constant rules of the inverse relation, grouped by their answer
        back = (q + g.R) % g.Q
        mine = t["q"] == back
        kind, conf = t["kind"][mine], t["confidence"][mine]
        bp, bd, bc = t["p1"][mine].astype(np.int64), t["d"][mine].astype(np.int64), t["c"][mine]
        order, compiled["back_indptr"] = _grouped(kind == KINDS.index("constant"), bc, g.E)
        # as columns of the graph's features: every rule's body occurs in the graph it was learned on
        compiled["back_features"] = np.searchsorted(g.feature_keys, bp[order] * g.E + bd[order])
        compiled["back_conf"] = conf[order]
        order, compiled["back_any_indptr"] = _grouped(kind == KINDS.index("constant-any"), bc, g.E)
        compiled["back_any_relations"], compiled["back_any_conf"] = bp[order], conf[order]
        mine = t["q"] == q
        kind = t["kind"][mine]
        conf = t["confidence"][mine]
        p1, p2 = t["p1"][mine], t["p2"][mine]
        paths: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for i in np.flatnonzero(kind == KINDS.index("path")):
            paths[int(p1[i])].append((int(p2[i]), float(conf[i])))
        compiled["paths"] = dict(paths)
        answered = np.bincount(g.A[q].indices, minlength=g.E).astype(np.float32)
        compiled["prior"] = answered / max(float(answered.max(initial=0.0)), 1.0)
        self._compiled[q] = compiled
        return compiled

    # --- explanations
    def explain(self, head: int, query: int, answer: int, top: int = 3) -> list["Firing"]:
        """The rules that propose `answer` for `query(head, ?)` (query a directed relation id),
        best first."""
        g, c = self.graph, self._compile(query)
        found: list[Firing] = []
        for feature in g.facts_of(head):
            p, y = int(feature // g.E), int(feature % g.E)
            if y == answer and c["parallel"][p] > 0:
                found.append(Firing(float(c["parallel"][p]), "parallel", query, p))
            i = np.searchsorted(c["features"], feature)
            if i < len(c["features"]) and c["features"][i] == feature:
                lo, hi = c["indptr"][i], c["indptr"][i + 1]
                found.extend(Firing(float(c["conf"][lo + j]), "constant", query, p, d=y, c=answer)
                             for j in np.flatnonzero(c["answers"][lo:hi] == answer))
        for p in g.D.indices[g.D.indptr[head]:g.D.indptr[head + 1]]:
            lo, hi = c["any_indptr"][p], c["any_indptr"][p + 1]
            found.extend(Firing(float(c["any_conf"][lo + j]), "constant-any", query, int(p), c=answer)
                         for j in np.flatnonzero(c["any_answers"][lo:hi] == answer))
        # the inverse relation's constant rules, whose answer is `head` and whose body `answer` has
        back = (query + g.R) % g.Q
        facts = set(g.F.indices[g.F.indptr[answer]:g.F.indptr[answer + 1]].tolist())  # columns, as back_features
        relations = set(g.D.indices[g.D.indptr[answer]:g.D.indptr[answer + 1]].tolist())
        for j in range(c["back_indptr"][head], c["back_indptr"][head + 1]):
            if int(c["back_features"][j]) in facts:
                feature = int(g.feature_keys[c["back_features"][j]])
                found.append(Firing(float(c["back_conf"][j]), "constant", back, feature // g.E, d=feature % g.E, c=head))
        for j in range(c["back_any_indptr"][head], c["back_any_indptr"][head + 1]):
            if int(c["back_any_relations"][j]) in relations:
                found.append(Firing(float(c["back_any_conf"][j]), "constant-any", back, int(c["back_any_relations"][j]), c=head))
        for p1, steps in c["paths"].items():
            middle = g.A[p1][head]
            if middle.nnz == 0 or answer == head:
                continue
            for p2, conf in steps:
                if (middle @ g.A[p2][:, answer]).nnz:
                    found.append(Firing(conf, "path", query, p1, p2))
        found.sort(key=lambda firing: -firing.confidence)
        return found[:top]

    # --- saving
    def save(self, path: str | Path) -> Path:
        """Write the rule table (the graph is saved with the embeddings)."""
        path = Path(path)
        np.savez_compressed(path, **self.table, meta=np.array(json.dumps({
            "entities": self.graph.E, "relations": self.graph.R,
            "stats": None if self.stats is None else self.stats.__dict__})))
        return path

    @classmethod
    def load(cls, path: str | Path, triples: np.ndarray) -> "RuleModel":
        """Rules saved by `save`, applied to `triples` (the id-mapped training facts)."""
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            table = {k: data[k] for k in data.files if k != "meta"}
        stats = None if meta["stats"] is None else RuleStats(**meta["stats"])
        return cls(Graph(triples, meta["entities"], meta["relations"]), table, stats)


def _grouped(selected: np.ndarray, group: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, indptr): the `selected` rows ordered by `group`, and where each group value of
    0..groups-1 starts and ends in that order (CSR-style)."""
    rows = np.flatnonzero(selected)
    order = rows[np.argsort(group[rows], kind="stable")]
    return order, np.searchsorted(group[order], np.arange(groups + 1))


def _expand(rows: np.ndarray, groups: np.ndarray, indptr: np.ndarray, answers: np.ndarray,
            conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each (row, group): every (answer, confidence) of that group, as flat arrays."""
    member, offsets = _expand_index(rows, groups, indptr)
    return rows[member], answers[offsets], conf[offsets]


def _expand_index(rows: np.ndarray, groups: np.ndarray, indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(i, offset) for every offset of group groups[i] in a CSR-style `indptr`, as flat arrays."""
    groups = np.asarray(groups, dtype=np.int64)
    starts, ends = indptr[groups], indptr[groups + 1]
    lengths = (ends - starts).astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(total)
    return np.repeat(np.arange(len(groups)), lengths), offsets


def learn_rules(triples: np.ndarray, num_entities: int, num_relations: int, *, paths: int = 300,
                path_rules: int = 60, min_support: int = 2, min_confidence: float = 0.01, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> RuleModel:
    """Rules of the id-mapped training `triples` ((n, 3): head, relation, tail).

    paths: training facts per relation whose two-step paths are collected as path rule candidates
    path_rules: the most frequent candidates per relation whose confidence is then measured
    min_support / min_confidence: a rule is kept when it holds for at least this many facts and
    this share of its body's groundings"""
    import time

    started = time.perf_counter()
    g = Graph(triples, num_entities, num_relations)
    rng = np.random.default_rng(seed)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("kind", "q", "p1", "p2", "d", "c", "confidence")}

    def keep(kind: str, q: int, p1, p2, d, c, conf) -> None:
        n = len(conf)
        if n == 0:
            return
        columns["kind"].append(np.full(n, KINDS.index(kind), np.int8))
        columns["q"].append(np.full(n, q, np.int32))
        for name, values in (("p1", p1), ("p2", p2), ("d", d), ("c", c)):
            columns[name].append(np.broadcast_to(np.asarray(values, np.int32), (n,)).copy())
        columns["confidence"].append(np.asarray(conf, np.float32))

    for q in range(g.Q):
        Aq = g.A[q]
        if Aq.nnz == 0:
            continue
        per_entity = np.diff(Aq.indptr)
        # constant answers given a constant fact: supports of every (p, d) -> c at once
        rows = np.flatnonzero((per_entity > 0) & (g.degree * per_entity <= MAX_PAIRS_PER_ENTITY))
        support = (g.F[rows].T.tocsr() @ Aq[rows]).tocoo()
        ok = support.data >= min_support
        column, c, sup = support.row[ok], support.col[ok], support.data[ok]
        feature = g.feature_keys[column]
        ok = ~((feature // g.E == q) & (feature % g.E == c))  # q(X, c) <- q(X, c) says nothing
        column, feature, c, sup = column[ok], feature[ok], c[ok], sup[ok]
        conf = sup / (g.feature_body[column] + UNSEEN)
        ok = conf >= min_confidence
        keep("constant", q, feature[ok] // g.E, -1, feature[ok] % g.E, c[ok], conf[ok])
        # constant answers given any fact of a relation
        support = (g.DT @ Aq).tocoo()
        ok = support.data >= min_support
        p, c, sup = support.row[ok], support.col[ok], support.data[ok]
        conf = sup / (g.relation_body[p] + UNSEEN)
        ok = conf >= min_confidence
        keep("constant-any", q, p[ok], -1, -1, c[ok], conf[ok])
        # parallel relations
        heads = np.repeat(np.arange(g.E), per_entity)
        hit = np.isin(g.keys, heads * g.E + Aq.indices)
        sup = np.bincount(g.rels[hit], minlength=g.Q).astype(np.float64)
        sup[q] = 0
        conf = sup / (g.sizes + UNSEEN)
        ok = np.flatnonzero((sup >= min_support) & (conf >= min_confidence))
        keep("parallel", q, ok, -1, -1, -1, conf[ok])
        # two-step paths: candidates from sampled facts' paths, confidence from sampled bodies
        sample = rng.choice(len(heads), size=min(len(heads), paths), replace=False)
        counts: Counter = Counter()
        for i in sample:
            counts.update(_paths_between(g, int(heads[i]), int(Aq.indices[i])))
        found = []
        for (p1, p2), n in counts.most_common(path_rules):
            if n < min_support:
                break
            conf = _path_confidence(g, Aq, p1, p2, rng)
            if conf >= min_confidence:
                found.append((p1, p2, conf))
        if found:
            p1s, p2s, confs = zip(*found)
            keep("path", q, p1s, p2s, -1, -1, confs)
        if progress is not None and (q + 1) % 50 == 0:
            progress(f"rules: {q + 1} of {g.Q} relations and inverses, {time.perf_counter() - started:.0f}s")
    table = {k: (np.concatenate(v) if v else np.zeros(0, np.float32 if k == "confidence" else np.int32))
             for k, v in columns.items()}
    stats = RuleStats(rules={k: int((table["kind"] == i).sum()) for i, k in enumerate(KINDS)},
                      seconds=round(time.perf_counter() - started, 1))
    return RuleModel(g, table, stats)


def _paths_between(g: Graph, x: int, y: int) -> set[tuple[int, int]]:
    """(p1, p2) of every path x -p1-> z -p2-> y with z neither x nor y."""
    out, into = g.facts_of(x), g.facts_of(y)  # y -p-> z is z -p^-1-> y
    first: dict[int, list[int]] = defaultdict(list)
    for feature in out:
        z = int(feature % g.E)
        if z != x and z != y:
            first[z].append(int(feature // g.E))
    found = set()
    for feature in into:
        z = int(feature % g.E)
        if z in first:
            p2 = (int(feature // g.E) + g.R) % g.Q
            found.update((p1, p2) for p1 in first[z])
    return found


def _path_confidence(g: Graph, Aq, p1: int, p2: int, rng, sample: int = 1000) -> float:
    """Share of the pairs (X, Y) joined by p1 then p2 (X != Y) that q joins, from at most `sample`
    starting entities X (the whole body of a hub relation would not fit in memory)."""
    starts = np.flatnonzero(np.diff(g.A[p1].indptr))
    if len(starts) > sample:
        starts = rng.choice(starts, size=sample, replace=False)
    reached = _binary((g.A[p1][starts] @ g.A[p2]).tocsr())
    body = reached.tocoo()
    body_count = int((starts[body.row] != body.col).sum())
    true = reached.multiply(Aq[starts]).tocoo()
    support = int((starts[true.row] != true.col).sum())
    if support == 0:
        return 0.0
    scale = len(np.flatnonzero(np.diff(g.A[p1].indptr))) / len(starts)
    return support * scale / (body_count * scale + UNSEEN)


class RulesAndEmbeddings:
    """An embedding model (or ensemble) and rules of the same graph, scored together: the
    embedding's log-softmax over the candidates plus `weight` times the rules' score (0-1). A
    candidate a confident rule proposes climbs above those the embedding alone prefers; among
    candidates no rule proposes, the embedding decides."""

    groups_by_relation = True

    def __init__(self, embeddings: Any, rules: RuleModel, weight: float):
        if embeddings.num_entities != rules.num_entities:
            raise KgbuildError(f"rules of {rules.num_entities} entities against embeddings of {embeddings.num_entities}",
                               hint="learn the rules from the embeddings' own training triples")
        self.embeddings, self.rules, self.weight = embeddings, rules, float(weight)
        # rank_metrics sizes its batches by the least of its parts'
        self.members = [*getattr(embeddings, "members", [embeddings]), rules]

    @property
    def num_entities(self) -> int:
        return self.embeddings.num_entities

    @property
    def num_relations(self) -> int:
        return self.embeddings.num_relations

    @property
    def device(self):
        return self.embeddings.device

    def eval(self) -> "RulesAndEmbeddings":
        self.embeddings.eval()
        return self

    def to(self, device) -> "RulesAndEmbeddings":
        self.embeddings.to(device)
        return self

    def parameters(self):
        return self.embeddings.parameters()

    def predict(self, hrt_batch, target, **kwargs: Any):
        import torch

        logp = torch.log_softmax(self.embeddings.predict(hrt_batch=hrt_batch, target=target, **kwargs).float(), dim=-1)
        return logp.add_(self.rules.predict(hrt_batch, target).to(logp.device), alpha=self.weight)

    def predict_t(self, hr_batch, **kwargs: Any):
        import torch

        logp = torch.log_softmax(self.embeddings.predict_t(hr_batch, **kwargs).float(), dim=-1)
        return logp.add_(self.rules.predict_t(hr_batch).to(logp.device), alpha=self.weight)

    def predict_h(self, rt_batch, **kwargs: Any):
        import torch

        logp = torch.log_softmax(self.embeddings.predict_h(rt_batch, **kwargs).float(), dim=-1)
        return logp.add_(self.rules.predict_h(rt_batch).to(logp.device), alpha=self.weight)


def choose_weight(embeddings: Any, rules: RuleModel, validation, known: list,
                  weights: tuple[float, ...] = WEIGHTS,
                  alone: dict[str, float] | None = None) -> tuple[float, dict[float, dict[str, float]]]:
    """The weight of `weights` whose combination ranks the `validation` TriplesFactory best
    (filtered MRR to four places, `known` factories filtered too; the smaller weight on a tie),
    and every weight's metrics. `alone`: the embeddings' own metrics on that ranking, when already
    known (weight 0 is then not ranked again)."""
    from kgbuild.embed.train import rank_metrics

    tried: dict[float, dict[str, float]] = {}
    for weight in weights:
        if weight == 0 and alone:
            tried[weight] = alone
            continue
        scored = embeddings if weight == 0 else RulesAndEmbeddings(embeddings, rules, weight)
        tried[weight] = rank_metrics(scored, validation, known, device=embeddings.device)
    best = max(weights, key=lambda w: (round(tried[w]["mrr"], 4), -w))
    return best, tried
