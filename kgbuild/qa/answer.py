"""Answering a question from the graph: topic entity -> the relation paths that fit the question
-> the entities at their ends, each with the chain of facts that leads to it, the sentences those
facts were extracted from, and the SPARQL query that retrieves the stated part.

Where a hop of the best path has no fact in the graph, the missing entity is proposed, hop by
hop: by rules read off the graph (kgbuild/qa/rules.py: a film's writer often directed it, films
sharing a director share a language) and, where they propose nothing, by the link-prediction
embeddings (OUT/embeddings, `kgbuild embed`), EmbedKGQA-style. The answer is then marked
inferred, says which rule or the embeddings proposed it, and scores lower than a stated one on
the same path.

    from kgbuild.qa import Answerer
    qa = Answerer.open("out/sample")        # graph, scorer, embeddings and encoder, loaded once
    result = qa.answer("Where was Marie Curie born?")"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgbuild.embed.graph import GraphTriples
from kgbuild.qa.index import GraphIndex, Path_
from kgbuild.qa.scorer import PathScorer, QuestionEncoder, question_text
from kgbuild.qa.topic import Topic, TopicFinder

QA_DIR = "qa"  # OUT/qa: the trained path scorer `kgbuild train qa` saves for OUT
TOP_PATHS = 3  # paths followed per question
MIN_PATH_SHARE = 0.01  # a path scoring below this share of the best one is not followed
PREDICT_PER_NODE = 5  # entities the embeddings propose for a missing hop of one entity
PREDICT_NODES = 32  # entities per hop whose missing edges are proposed (the best-scored)
# How a missing hop is bridged. "auto": the graph's rules, then the embeddings (when trained) for
# entities no rule covers; measured on MetaQA with half of its KB (README, "Question answering").
COMPLETIONS = ("auto", "rules", "embeddings", "none")
# What a question's wh-phrase rules out as its answer, by kgbuild type (an untyped entity is never
# ruled out): "When was IBM founded?" is not answered by a place, nor by "American" (MISC: the
# recogniser types dates and numbers). "Who" rules out places: of the Re-DocRED dev answers to
# properties a "who" question asks (author, director, performer, spouse, employer, founder,
# participant, owner, ...), 70 of 1,823 are places, mostly countries taking part in a war.
_ASKS = [  # (wh-phrase, types it rules out, what it asks for)
    (re.compile(r"\b(when|what (year|date|day|month|century)|which (year|date|day|month|century))\b"),
     frozenset({"PER", "ORG", "LOC", "NUM", "MISC"}), "a date"),
    (re.compile(r"\bhow (many|much)\b"), frozenset({"PER", "ORG", "LOC", "TIME", "MISC"}), "a number"),
    (re.compile(r"\b(where|what (country|city|town|state|place|region)|which (country|city|town|state|place|region))\b"),
     frozenset({"PER", "TIME", "NUM"}), "a place"),
    (re.compile(r"\b(who|whom|whose)\b"), frozenset({"TIME", "NUM", "LOC"}), "a person or an organisation"),
]


@dataclass
class Source:
    """A sentence a fact was extracted from."""

    document: str  # the document's path in the corpus
    sentence: str
    confidence: float  # the extractor's confidence


@dataclass
class Step:
    """One fact of an answer's chain."""

    subject: str  # IRIs
    relation: str
    object: str
    subject_label: str
    relation_label: str
    object_label: str
    inferred: bool  # proposed by a rule or the embeddings, not in the graph
    score: float = 1.0  # 1 for a stated fact; the estimated probability of an inferred one
    inferred_by: str = ""  # for an inferred fact: the rule (with its measured precision) or "embeddings"
    sources: list[Source] = field(default_factory=list)  # evidence sentences (none for loaded KBs)


@dataclass
class Answer:
    """One ranked answer."""

    rank: int
    iri: str
    label: str
    score: float  # path fit x chain confidence, in (0, 1]
    stated: bool  # every fact of the chain is in the graph (False: some fact was inferred)
    path: list[str]  # the relation path, relation labels, "^" marking a hop against a fact's direction
    chain: list[Step]  # the facts from the topic to the answer
    sparql: str  # the query that retrieves this path's stated answers, with the chain


@dataclass
class AskResult:
    """The answers to one question."""

    question: str
    topic: str | None  # the topic entity's IRI; None: not in the graph
    topic_label: str  # its name (or the words taken for it)
    found: bool  # the topic is in the graph
    message: str  # one line for people: what was found, or why nothing was
    answers: list[Answer] = field(default_factory=list)  # best first
    closest: list[str] = field(default_factory=list)  # names closest to an unknown topic
    queries_run: list[str] = field(default_factory=list)  # the SPARQL queries executed (with a store)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Walk:
    """The entities a path reaches, with how: per hop, each reached entity's parent."""

    path: Path_
    nodes: np.ndarray  # entity ids at the end
    scores: np.ndarray  # chain confidence of each
    inferred: np.ndarray  # some hop of its chain was inferred
    levels: list[dict[int, tuple[int, bool, float, str]]]  # per hop: child -> (parent, inferred edge, edge score, how)


class Answerer:
    """A graph, a path scorer, an encoder and (optionally) embeddings and a store, loaded once."""

    def __init__(self, graph: GraphTriples, scorer: PathScorer | None = None, encoder: QuestionEncoder | None = None,
                 embeddings: Any = None, store: Any = None, max_hops: int = 3, device: str = "cpu",
                 completion: str = "auto") -> None:
        from kgbuild.errors import KgbuildError
        from kgbuild.qa.rules import RuleCompleter

        if completion not in COMPLETIONS:
            raise KgbuildError(f"unknown completion {completion!r}", hint=f"choose one of {', '.join(COMPLETIONS)}")
        self.completion = completion
        self.index = GraphIndex(graph)
        self.rules = RuleCompleter(self.index)
        self.topics = TopicFinder(self.index)
        self.scorer = scorer or PathScorer()
        self._encoders: dict[str, QuestionEncoder] = {encoder.kind: encoder} if encoder is not None else {}
        self.device = device
        self.store = store
        self.max_hops = max_hops
        self.embeddings = None
        if embeddings is not None:
            self.use_embeddings(embeddings)

    @classmethod
    def open(cls, out: str | Path, scorer: str | Path | None = None, device: str = "cpu",
             embeddings: bool = True, completion: str = "auto", store: Any = None) -> "Answerer":
        """The answerer of output folder `out`: its store (`store`, when already open), OUT/qa's
        trained scorer if there is one (else zero-shot, or the scorer folder given), OUT/embeddings
        if trained."""
        from kgbuild.embed.graph import read_graph
        from kgbuild.embed.train import embeddings_dir, load_embeddings
        from kgbuild.graph.store import open_store

        store = store if store is not None else open_store(out, read_only=True)
        scorer_dir = Path(scorer) if scorer else Path(out) / QA_DIR
        path_scorer = PathScorer.load(scorer_dir) if (scorer or scorer_dir.is_dir()) else PathScorer()
        emb = None
        if embeddings and (embeddings_dir(out) / "summary.json").is_file():
            emb = load_embeddings(out)
        return cls(read_graph(store, details=True), path_scorer, embeddings=emb, store=store, device=device,
                   completion=completion)

    @property
    def encoder(self) -> QuestionEncoder:
        """The encoder the current scorer reads questions with."""
        return self.encoder_of(self.scorer.encoder)

    def encoder_of(self, kind: str) -> QuestionEncoder:
        if kind not in self._encoders:
            self._encoders[kind] = QuestionEncoder(self.scorer.model, device=self.device, kind=kind)
        return self._encoders[kind]

    def use_embeddings(self, emb: Any) -> None:
        """Bridge missing hops with `emb` (an EmbeddingResult of this graph)."""
        entity_to_id = emb.training.entity_to_id
        self.embeddings = emb
        self._emb_id = np.array([entity_to_id.get(iri, -1) for iri in self.index.entities], dtype=np.int64)
        self._index_of_emb = np.full(max(entity_to_id.values()) + 1, -1, dtype=np.int64)
        known = self._emb_id >= 0
        self._index_of_emb[self._emb_id[known]] = np.flatnonzero(known)
        self._relation_emb = {iri: emb.training.relation_to_id.get(iri) for iri in self.index.relations}

    # -- answering ---------------------------------------------------------------------------
    def topic(self, question: str) -> Topic:
        return self.topics.find(question)

    def answer(self, question: str, top: int = 5, vector: np.ndarray | None = None,
               topic: Topic | None = None, run_queries: bool = True) -> AskResult:
        """The ranked answers to `question` (see the module docstring). `vector` (the question's
        encoding) and `topic` may be given when computed in bulk beforehand."""
        t0 = time.perf_counter()
        question = question.strip()
        topic = topic or self.topic(question)
        if topic.entity is None:
            near = f"; closest names: {', '.join(topic.closest)}" if topic.closest else ""
            return AskResult(question, None, topic.mention, False,
                             f"{topic.mention!r} is not in the graph{near}", closest=topic.closest,
                             seconds=time.perf_counter() - t0)
        index = self.index
        t = topic.entity
        if vector is None:
            vector = self.encoder.encode([question_text(question, topic.mention)])[0]
        ruled_out = ruled_out_types(question) if index.typed else frozenset()
        if self.scorer.trained:
            existing = []
        elif ruled_out:  # only the paths that reach some entity of a type the question allows
            existing = [path for path, ends in index.answer_sets(t, self.max_hops).items()
                        if not ruled_out.issuperset(index.types[ends].tolist())]
        else:
            existing = index.paths_from(t, self.max_hops)
        ranked = self.scorer.rank(vector, index, existing, None if self.scorer.trained else self.encoder_of("contextual"),
                                  top=TOP_PATHS)
        ranked = [(p, s) for p, s in ranked if ranked and s >= MIN_PATH_SHARE * ranked[0][1]]
        walks = [(path_score, self._walk(t, path)) for path, path_score in ranked]
        order = [o for o in combine_walks(walks, index.labels) if index.types[o[0]] not in ruled_out][:top]
        result = AskResult(question, index.entities[t], index.labels[t], True, "")
        for rank, (node, score, inferred, walk) in enumerate(order, 1):
            result.answers.append(Answer(
                rank=rank, iri=index.entities[node], label=index.labels[node], score=round(score, 6),
                stated=not inferred, path=[self._hop_text(h) for h in walk.path],
                chain=self._chain(walk, node), sparql=path_query(index, t, walk.path)))
        if self.store is not None and run_queries:
            self._run_queries(result)
        if not result.answers and ruled_out and not existing and not self.scorer.trained:
            result.message = (f"found {index.labels[t]!r}, but none of its facts leads to "
                              f"{asked_for(question)}, which the question asks for")
        elif not result.answers:
            result.message = f"found {index.labels[t]!r}, but no path from it fits the question"
        else:
            result.message = f"topic {index.labels[t]!r}; {len(result.answers)} answer(s)"
        result.seconds = time.perf_counter() - t0
        return result

    def _hop_text(self, hop: int) -> str:
        label = self.index.relation_label(hop)
        return f"^{label}" if hop % 2 else label

    def _walk(self, topic: int, path: Path_) -> _Walk:
        index = self.index
        nodes = np.array([topic], dtype=np.int64)  # sorted, distinct
        scores = np.ones(1)
        inferred = np.zeros(1, dtype=bool)
        levels = []
        for hop in path:
            # Every edge from the frontier: a child reached from several parents gets the
            # noisy-or of its chains' confidences (`_noisy_or`), so an inferred answer that
            # many chains support ranks above one that a single guess supports; its chain (the
            # evidence shown) is its best one, a wholly stated chain first.
            sub = index.adjacency[hop][nodes]
            counts = np.diff(sub.indptr)
            children = sub.indices.astype(np.int64)
            parents = np.repeat(nodes, counts)
            # a stated fact counts its extraction confidence (1 when asserted, as in a loaded KB)
            edge_scores = (index.confidence[hop][nodes].data if index.confidence is not None
                           else np.ones(len(children)))
            child_scores = np.repeat(scores, counts) * edge_scores
            chain_inferred = np.repeat(inferred, counts)
            edge_inferred = np.zeros(len(children), dtype=bool)
            how = [""] * len(children)
            # A node lacks this hop when it has no fact of it but the one back to the topic
            # ("other films by the writer of X" when X is the writer's only film left).
            back = np.bincount(np.repeat(np.arange(len(nodes)), counts)[children == topic], minlength=len(nodes))
            lacking = counts == back
            if ((self.completion == "none" or not lacking.any()) and not inferred.any() and (scores == 1).all()
                    and index.confidence is None):
                # all stated, nothing to infer: every child scores 1 (the common case, kept cheap)
                keep = _best_per_child(children, child_scores, chain_inferred)
                children, parents = children[keep], parents[keep]
                levels.append({c: (p, False, 1.0, "") for c, p in zip(children.tolist(), parents.tolist())})
                nodes = children[children != topic]
                scores, inferred = np.ones(len(nodes)), np.zeros(len(nodes), dtype=bool)
                if not len(nodes):
                    break
                continue
            if self.completion != "none" and lacking.any():
                pc, pp, prob, parent_scores, reasons = self._complete(nodes[lacking], scores[lacking], hop)
                children = np.concatenate([children, pc])
                child_scores = np.concatenate([child_scores, parent_scores * prob])
                parents = np.concatenate([parents, pp])
                chain_inferred = np.concatenate([chain_inferred, np.ones(len(pc), dtype=bool)])
                edge_inferred = np.concatenate([edge_inferred, np.ones(len(pc), dtype=bool)])
                edge_scores = np.concatenate([edge_scores, prob])
                how += reasons
            keep = _best_per_child(children, child_scores, chain_inferred)
            combined = _noisy_or(children, child_scores)
            levels.append({c: (p, e, s, h) for c, p, e, s, h in zip(
                children[keep].tolist(), parents[keep].tolist(), edge_inferred[keep].tolist(),
                edge_scores[keep].tolist(), [how[k] for k in keep.tolist()])})
            children, inferred = children[keep], chain_inferred[keep]
            away = children != topic  # a walk never passes through the topic again (see GraphIndex)
            nodes, scores, inferred = children[away], combined[away], inferred[away]
            if not len(nodes):
                break
        return _Walk(path, nodes, scores, inferred, levels)

    def _complete(self, nodes: np.ndarray, scores: np.ndarray, hop: int):
        """Proposals for the missing hop `hop` of `nodes` (the best-scored PREDICT_NODES):
        (children, parents, probability of each, parent score, what proposed each)."""
        order = np.argsort(-scores, kind="stable")[:PREDICT_NODES]
        nodes, scores = nodes[order], scores[order]
        parts = []
        if self.completion in ("auto", "rules"):
            parts.append(self.rules.propose(nodes, hop, top=PREDICT_PER_NODE, explain=True))
        if self.embeddings is not None and self.completion in ("auto", "embeddings"):
            todo = np.setdiff1d(nodes, parts[0][1]) if parts else nodes
            children, parents, probs = self._predict(todo, hop)
            parts.append((children, parents, probs, ["embeddings"] * len(children)))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0), np.zeros(0), []
        parent_score = dict(zip(nodes.tolist(), scores.tolist()))
        parents = np.concatenate([p[1] for p in parts])
        return (np.concatenate([p[0] for p in parts]), parents, np.concatenate([p[2] for p in parts]),
                np.array([parent_score[x] for x in parents.tolist()], dtype=float), [r for p in parts for r in p[3]])

    def _predict(self, nodes: np.ndarray, hop: int):
        """Embedding proposals for the hop `hop` of `nodes`: (children, parents, probability of
        each). Candidates are the entities that take this role in some fact (a film's director
        is someone who directed a film)."""
        import torch

        index = self.index
        empty = np.zeros(0, dtype=np.int64)
        rel = self._relation_emb.get(index.relations[hop // 2])
        emb_ids = self._emb_id[nodes] if len(nodes) else empty
        usable = emb_ids >= 0
        if rel is None or not usable.any():
            return empty, empty, np.zeros(0)
        nodes, emb_ids = nodes[usable], emb_ids[usable]
        candidates = self._candidates(hop)
        if not len(candidates[0]):
            return empty, empty, np.zeros(0)
        model = self.embeddings.model
        with torch.inference_mode():
            if hop % 2 == 0:
                batch = torch.as_tensor(np.stack([emb_ids, np.full(len(emb_ids), rel)], 1), dtype=torch.long)
                raw = model.predict_t(batch)
            else:
                batch = torch.as_tensor(np.stack([np.full(len(emb_ids), rel), emb_ids], 1), dtype=torch.long)
                raw = model.predict_h(batch)
            raw = raw[:, torch.as_tensor(candidates[1])].float()
            probs = torch.softmax(raw, dim=1)
            k = min(PREDICT_PER_NODE, probs.shape[1])
            top_p, top_i = probs.topk(k, dim=1)
        children = candidates[0][top_i.numpy()]
        parents = np.repeat(nodes, k)
        return children.reshape(-1), parents, top_p.numpy().reshape(-1).astype(float)

    def _candidates(self, hop: int) -> tuple[np.ndarray, np.ndarray]:
        """(index ids, embedding ids) of the entities at the far end of some `hop` fact."""
        cache = self.__dict__.setdefault("_candidate_cache", {})
        if hop not in cache:
            ids = np.flatnonzero(self.index.has_hop[:, hop ^ 1])
            emb = self._emb_id[ids]
            cache[hop] = (ids[emb >= 0], emb[emb >= 0])
        return cache[hop]

    def _chain(self, walk: _Walk, node: int) -> list[Step]:
        index = self.index
        steps = []
        child = node
        for depth in range(len(walk.levels) - 1, -1, -1):
            parent, inferred, score, how = walk.levels[depth][child]
            hop = walk.path[depth]
            s, r, o = index.triple(parent, hop, child)
            steps.append(Step(s, r, o, index.label_of(s), index.graph.label(r), index.label_of(o),
                              inferred=inferred, score=round(float(score), 6), inferred_by=how))
            child = parent
        return steps[::-1]

    def _run_queries(self, result: AskResult) -> None:
        """Run each answer path's query on the store (an answer is stated when the query returns
        it) and fetch the evidence sentences of every stated fact of the chains."""
        from kgbuild.graph.query import query

        seen: dict[str, set[str]] = {}
        for ans in result.answers:
            if ans.sparql not in seen:
                rows = query(self.store, ans.sparql).rows
                seen[ans.sparql] = {row[0] for row in rows}
                result.queries_run.append(ans.sparql)
            ans.stated = ans.iri in seen[ans.sparql]
        facts = {(st.subject, st.relation, st.object) for a in result.answers for st in a.chain if not st.inferred}
        if not facts:
            return
        sparql = provenance_query(sorted(facts))
        result.queries_run.append(sparql)
        sources: dict[tuple[str, str, str], list[Source]] = {}
        for s, p, o, doc, sentence, conf in query(self.store, sparql).rows:
            sources.setdefault((s, p, o), []).append(Source(doc, sentence, float(conf or 0.0)))
        for ans in result.answers:
            for st in ans.chain:
                st.sources = sources.get((st.subject, st.relation, st.object), [])


def ruled_out_types(question: str) -> frozenset[str]:
    """The kgbuild types that cannot answer `question`, from its first wh-phrase ("when", "how
    many", "where", "who" and the like: "Who was president when ..." asks for a who); none for
    any other question."""
    return _asked(question)[0]


def asked_for(question: str) -> str:
    """What `question`'s first wh-phrase asks for, in words ("a date"); "" for any other question."""
    return _asked(question)[1]


def _asked(question: str) -> tuple[frozenset[str], str]:
    text = question.lower()
    found = [(m.start(), types, wants) for pattern, types, wants in _ASKS if (m := pattern.search(text))]
    return min(found, key=lambda f: f[0])[1:] if found else (frozenset(), "")


def combine_walks(walks: list[tuple[float, _Walk]], labels: list[str]) -> list[tuple[int, float, bool, _Walk]]:
    """The answers of the walks of the paths followed, given as (P(path), walk), most likely
    path first: (node, score, inferred, the walk whose chain is shown), best first.

    An answer's score is its probability summed over the paths: sum of P(path) x its chain
    confidence on that path. Answers that the most likely path states come first: an inferred
    answer, or another reading's, whose chains add up to more must not outrank a fact the graph
    states for the question's best reading. The chain shown is an answer's best stated one if
    any path states it, else its best inferred one."""
    best: dict[int, tuple[float, bool, _Walk]] = {}
    total_of: dict[int, float] = {}
    stated_first: set[int] = set()  # stated on the most likely path
    for rank, (path_score, walk) in enumerate(walks):
        for node, score, inferred in zip(walk.nodes.tolist(), walk.scores.tolist(), walk.inferred.tolist()):
            total = path_score * score
            total_of[node] = total_of.get(node, 0.0) + total
            if rank == 0 and not inferred:
                stated_first.add(node)
            if node not in best or (not inferred, total) > (not best[node][1], best[node][0]):
                best[node] = (total, bool(inferred), walk)
    order = sorted(best, key=lambda n: (n not in stated_first, -total_of[n], best[n][1], labels[n]))
    return [(n, total_of[n], best[n][1], best[n][2]) for n in order]


def _best_per_child(children: np.ndarray, scores: np.ndarray, inferred: np.ndarray) -> np.ndarray:
    """Positions of the best occurrence of each distinct child, in child order: its best-scored
    wholly stated chain if it has one, else its best-scored inferred one."""
    order = np.lexsort((-scores, inferred, children))
    first = np.ones(len(order), dtype=bool)
    first[1:] = children[order][1:] != children[order][:-1]
    return order[first]


def _noisy_or(children: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per distinct child (in child order): 1 - the product of (1 - score) over its occurrences,
    the chance that at least one of its chains holds if they hold independently; exactly 1
    when one of them is certain (wholly asserted, as in a loaded knowledge base)."""
    _, inverse = np.unique(children, return_inverse=True)
    with np.errstate(divide="ignore"):
        logs = np.log1p(-np.minimum(scores, 1.0))
    return 1.0 - np.exp(np.bincount(inverse, weights=logs))


def _term(iri: str) -> str:
    """An IRI as a SPARQL term; pyoxigraph validates and escapes it, so no text reaches the
    query except IRIs that exist in the graph."""
    from pyoxigraph import NamedNode

    return str(NamedNode(iri))


def path_query(index: GraphIndex, topic: int, path: Path_) -> str:
    """SPARQL for the stated answers of `path` from `topic`, with the entities in between."""
    names = [f"?x{i}" for i in range(1, len(path))] + ["?answer"]
    previous = _term(index.entities[topic])
    lines = []
    for hop, var in zip(path, names):
        rel = _term(index.relations[hop // 2])
        lines.append(f"  {var} {rel} {previous} ." if hop % 2 else f"  {previous} {rel} {var} .")
        previous = var
    head = " ".join(["?answer", *names[:-1]])
    return (f"SELECT DISTINCT {head} WHERE {{\n" + "\n".join(lines)
            + f"\n  FILTER(?answer != {_term(index.entities[topic])})\n}}")


def provenance_query(facts: list[tuple[str, str, str]]) -> str:
    """SPARQL for the evidence sentences of `facts` (subject, relation, object IRIs)."""
    values = "\n".join(f"    ({_term(s)} {_term(p)} {_term(o)})" for s, p, o in facts)
    return ("SELECT ?s ?p ?o ?document ?sentence ?confidence WHERE {\n"
            f"  VALUES (?s ?p ?o) {{\n{values}\n  }}\n"
            "  ?st rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o ; kg:sentence ?sentence ;\n"
            "      prov:wasDerivedFrom ?doc .\n"
            "  OPTIONAL { ?st kg:confidence ?confidence }\n"
            "  OPTIONAL { ?doc kg:path ?document }\n"
            "}\nORDER BY ?s ?p ?o DESC(?confidence)")


def ask(out: str | Path, question: str, top: int = 5, scorer: str | Path | None = None,
        device: str = "cpu") -> AskResult:
    """Answer one question from the graph in `out` (see Answerer; for many questions, open one
    Answerer and call its answer())."""
    return Answerer.open(out, scorer=scorer, device=device).answer(question, top=top)


QUOTE_CHARS = 300  # evidence longer than this is shown as its first and last sentences


def quote_evidence(text: str) -> str:
    """Evidence for a terminal, on one line. A fact between mentions in different sentences cites
    every sentence from the first mention's to the last's (kgbuild.graph.store); past QUOTE_CHARS
    only those two are shown, joined by an ellipsis, since they are the ones naming the two ends
    (the whole span stays in the graph and in --json). A full stop after a short capitalised word
    or an initialism ("Dr.", "J.", "U.S.") is not taken for a sentence's end."""
    text = " ".join(text.split())
    if len(text) <= QUOTE_CHARS:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if not _abbreviation(text[:m.start() + 1])]
    if len(ends) < 2:
        return text
    return f"{text[:ends[0]].rstrip()} … {text[ends[-1]:]}"


_SENTENCE_END = re.compile(r"[.!?]\s+(?=[\"'(\[]?[A-Z0-9])")


def _abbreviation(before: str) -> bool:
    """Whether `before` (text up to a full stop) ends in a short capitalised word or an initialism."""
    word = before.rsplit(" ", 1)[-1][:-1]
    return "." in word or (len(word) <= 3 and word[:1].isupper())


def format_answers(result: AskResult, sparql: bool = True) -> str:
    """`result` for a terminal: each answer with its chain and sources, then the queries."""
    if not result.found:
        return f"not in the graph: {result.message}"
    lines = [f"topic: {result.topic_label} <{result.topic}>"]
    if not result.answers:
        lines.append(result.message)
    queries: dict[str, list[int]] = {}
    for a in result.answers:
        mark = "stated" if a.stated else "inferred"
        lines.append(f"{a.rank}. {a.label}  score {a.score:.3f}  ({mark})  path: {' / '.join(a.path)}")
        for st in a.chain:
            how = f"  [inferred, p={st.score:.2f}: {st.inferred_by}]" if st.inferred else ""
            lines.append(f"     {st.subject_label} --{st.relation_label}--> {st.object_label}{how}")
            for src in st.sources[:2]:
                lines.append(f"        \"{quote_evidence(src.sentence)}\" ({src.document})")
        queries.setdefault(a.sparql, []).append(a.rank)
    if sparql:
        for text, ranks in queries.items():
            lines.append(f"SPARQL for answers {', '.join(map(str, ranks))}:")
            lines.extend("  " + line for line in text.splitlines())
    return "\n".join(lines)
