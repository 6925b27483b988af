"""The graph as QA walks it: entities and relations as integer ids, one compressed adjacency
per (relation, direction) "hop", so that enumerating the relation paths around an entity and
following one costs array operations, not SPARQL round trips (MetaQA's 134k triples answer in
milliseconds).

A hop is `2 * relation + direction`: direction 0 follows a fact head -> tail, 1 tail -> head."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from kgbuild.embed.graph import GraphTriples

Path_ = tuple[int, ...]  # a relation path: hop ids from the topic outwards


@dataclass(frozen=True)
class HopName:
    """A hop as it travels between graphs: relation id ("P19", "directed_by") and direction."""

    relation: str
    inverse: bool

    def text(self) -> str:
        return f"^{self.relation}" if self.inverse else self.relation


class GraphIndex:
    """Integer-id adjacency of a graph's entity-to-entity facts, with its names."""

    def __init__(self, graph: GraphTriples) -> None:
        import scipy.sparse as sp

        self.graph = graph
        self.base = graph.base
        entities = sorted({x for h, _, t in graph.triples for x in (h, t)} | set(graph.entity_names))
        self.entities: list[str] = entities
        self.entity_id = {iri: i for i, iri in enumerate(entities)}
        self.relations: list[str] = sorted(graph.relation_ids)
        self.relation_index = {iri: i for i, iri in enumerate(self.relations)}
        self.labels = [graph.label(iri) for iri in entities]
        n, n_hops = len(entities), 2 * len(self.relations)
        self.n_hops = n_hops
        heads: dict[int, list[int]] = defaultdict(list)
        tails: dict[int, list[int]] = defaultdict(list)
        confidence: dict[int, list[float]] = defaultdict(list)
        for h, r, t in graph.triples:
            k = self.relation_index[r]
            heads[k].append(self.entity_id[h])
            tails[k].append(self.entity_id[t])
            confidence[k].append(graph.confidence.get((h, r, t), 1.0))
        self.adjacency: list = []
        # each fact's extraction confidence, as `adjacency` but float (None when every fact is
        # asserted, as in a loaded knowledge base: then every stated fact counts 1)
        self.confidence: list | None = [] if graph.confidence else None
        self.has_hop = np.zeros((n, max(n_hops, 1)), dtype=bool)
        for k in range(len(self.relations)):
            h = np.asarray(heads[k], dtype=np.int64)
            t = np.asarray(tails[k], dtype=np.int64)
            ones = np.ones(len(h), dtype=np.int8)
            forward = sp.csr_matrix((ones, (h, t)), shape=(n, n))
            backward = sp.csr_matrix((ones, (t, h)), shape=(n, n))
            forward.sort_indices()
            backward.sort_indices()
            self.adjacency += [forward, backward]
            if self.confidence is not None:
                c = np.asarray(confidence[k], dtype=np.float64)
                weighted = [sp.csr_matrix((c, (h, t)), shape=(n, n)), sp.csr_matrix((c, (t, h)), shape=(n, n))]
                for w in weighted:
                    w.sort_indices()
                self.confidence += weighted
            self.has_hop[h, 2 * k] = True
            self.has_hop[t, 2 * k + 1] = True
        self.n_triples = len(graph.triples)
        # each entity's kgbuild type ("PER", "LOC", ...; "" where the graph does not type it)
        self.types = np.array([graph.entity_types.get(iri, "") for iri in entities], dtype=object)
        # whether a recogniser typed the entities: a loaded knowledge base types all of them MISC
        self.typed = bool(set(graph.entity_types.values()) - {"MISC"})

    # -- names ------------------------------------------------------------------------------
    def hop_name(self, hop: int) -> HopName:
        iri = self.relations[hop // 2]
        return HopName(self.graph.relation_ids.get(iri, iri), bool(hop % 2))

    def hop_of(self, name: HopName) -> int | None:
        for iri, rel_id in self.graph.relation_ids.items():
            if rel_id == name.relation:
                return 2 * self.relation_index[iri] + int(name.inverse)
        return None

    def label_of(self, iri: str) -> str:
        i = self.entity_id.get(iri)
        return self.labels[i] if i is not None else self.graph.label(iri)

    def relation_label(self, hop: int) -> str:
        return self.graph.relation_labels.get(self.relations[hop // 2], self.relations[hop // 2])

    # -- walking ----------------------------------------------------------------------------
    def neighbours(self, nodes: np.ndarray, hop: int) -> np.ndarray:
        """Distinct entities one `hop` away from any of `nodes`."""
        if len(nodes) == 1:
            a = self.adjacency[hop]
            i = int(nodes[0])
            return a.indices[a.indptr[i] : a.indptr[i + 1]].astype(np.int64)
        return np.unique(self.adjacency[hop][nodes].indices).astype(np.int64)

    def expand(self, nodes: np.ndarray, scores: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One hop from weighted nodes: (children, their best parent's score, that parent)."""
        sub = self.adjacency[hop][nodes]
        counts = np.diff(sub.indptr)
        children = sub.indices.astype(np.int64)
        parent_pos = np.repeat(np.arange(len(nodes)), counts)
        child_scores = scores[parent_pos]
        if not len(children):
            return children, child_scores, children
        order = np.lexsort((-child_scores, children))
        children, child_scores, parent_pos = children[order], child_scores[order], parent_pos[order]
        first = np.ones(len(children), dtype=bool)
        first[1:] = children[1:] != children[:-1]
        return children[first], child_scores[first], nodes[parent_pos[first]]

    def paths_from(self, topic: int, max_hops: int = 3, exact: bool = False) -> list[Path_]:
        """Every relation path of 1..`max_hops` hops that exists from `topic` (only those of
        exactly `max_hops` hops with `exact`)."""
        return [path for path, _ in self._walk(topic, max_hops, exact, ends=False)]

    def answer_sets(self, topic: int, max_hops: int, exact: bool = False) -> dict[Path_, np.ndarray]:
        """Every path from `topic` (as paths_from) with the entities it ends on, the topic left out."""
        return dict(self._walk(topic, max_hops, exact, ends=True))

    def _walk(self, topic: int, max_hops: int, exact: bool, ends: bool):
        # Breadth-first over path prefixes, so paths share their prefixes' frontiers; the last
        # hop's frontier is only computed when `ends` asks for it. A walk never passes through
        # the topic again: "films that share a director with X" are the other films.
        prefixes: list[tuple[Path_, np.ndarray]] = [((), np.array([topic], dtype=np.int64))]
        for depth in range(1, max_hops + 1):
            grown: list[tuple[Path_, np.ndarray]] = []
            for path, frontier in prefixes:
                for hop in np.flatnonzero(self.has_hop[frontier].any(0)):
                    new = path + (int(hop),)
                    nxt = self.neighbours(frontier, int(hop)) if (ends or depth < max_hops) else None
                    if nxt is not None:
                        nxt = nxt[nxt != topic]
                    if depth == max_hops or not exact:
                        yield new, nxt
                    if depth < max_hops:
                        grown.append((new, nxt))
            prefixes = grown

    def follow(self, topic: int, path: Path_) -> np.ndarray:
        """The entities at the end of `path` from `topic` (the topic itself left out)."""
        frontier = np.array([topic], dtype=np.int64)
        for hop in path:
            frontier = self.neighbours(frontier, hop)
            frontier = frontier[frontier != topic]
            if not len(frontier):
                break
        return frontier

    def edge_parent(self, child: int, hop: int, candidates: np.ndarray) -> int | None:
        """One of `candidates` that reaches `child` by `hop` (for rebuilding a chain)."""
        back = self.adjacency[hop ^ 1]
        parents = back.indices[back.indptr[child] : back.indptr[child + 1]]
        both = np.intersect1d(parents, candidates, assume_unique=False)
        return int(both[0]) if len(both) else None

    def triple(self, parent: int, hop: int, child: int) -> tuple[str, str, str]:
        """The (subject, relation, object) IRIs of the fact behind one step of a walk."""
        rel = self.relations[hop // 2]
        if hop % 2:
            return self.entities[child], rel, self.entities[parent]
        return self.entities[parent], rel, self.entities[child]
