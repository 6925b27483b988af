"""Link prediction with the saved embeddings: rank every entity as the missing head or tail of a
(head, relation, ?) or (?, relation, tail) query, named the way people name things, and
optionally record the top candidates in a named graph of their own."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from kgbuild.embed.graph import GraphTriples, read_graph
from kgbuild.embed.train import EmbeddingResult, load_embeddings
from kgbuild.errors import KgbuildError


class UnknownEntityError(KgbuildError):
    """A name or IRI that matches no entity of the graph (or none the model knows)."""


class UnknownRelationError(KgbuildError):
    """A relation label, id or IRI that matches no relation of the graph."""


@dataclass
class Candidate:
    """One ranked answer."""

    rank: int  # 1 = best
    iri: str  # entity IRI
    label: str  # its rdfs:label
    score: float  # model score (higher is more plausible; comparable within one query only)
    known: bool  # the triple is already a fact of the graph
    because: list[str] = field(default_factory=list)  # the best rules that propose it, with their confidence


@dataclass
class PredictionResult:
    """The ranked answers to one query."""

    head: str | None  # head entity IRI (None when heads are predicted)
    relation: str  # relation IRI
    tail: str | None  # tail entity IRI (None when tails are predicted)
    target: str  # "tail" or "head": which side was predicted
    relation_label: str  # the relation's rdfs:label
    query_label: str  # the given entity's rdfs:label
    candidates: list[Candidate] = field(default_factory=list)  # best first
    written: int = 0  # predictions added to the predicted graph (write=True)
    graph: str | None = None  # IRI of that named graph


def predicted_graph_iri(base: str) -> str:
    """The named graph that holds predictions, apart from every extracted fact."""
    return base + "graph/predicted"


def predict(out: str | Path, head: str | None = None, relation: str = "", tail: str | None = None,
            top: int = 10, write: bool = False, embeddings: EmbeddingResult | None = None,
            include_known: bool = True, graph: GraphTriples | None = None) -> PredictionResult:
    """Rank the tails of (head, relation, ?) or, given `tail` instead, the heads of
    (?, relation, tail).

    Entities are matched by IRI, rdfs:label or skos:altLabel (any case); relations by IRI,
    id ("P19") or label ("place of birth"). `write` adds the top candidates that are not yet
    facts to the named graph <base>graph/predicted as reified statements with their scores.
    `embeddings` and `graph` (read_graph of `out`): already loaded, as a server keeps them."""
    if (head is None) == (tail is None):
        raise KgbuildError("give exactly one of head and tail", hint="--head NAME predicts tails, --tail NAME predicts heads")
    if not relation:
        raise UnknownRelationError("no relation given", hint="pass --relation with a label, an id (P19) or an IRI")
    graph = graph or read_graph(out)
    emb = embeddings or load_embeddings(out)
    entity_to_id = emb.training.entity_to_id
    relation_to_id = emb.training.relation_to_id
    entity_iri = resolve_entity(head if head is not None else tail, graph, entity_to_id)
    relation_iri = resolve_relation(relation, graph, relation_to_id)
    target = "tail" if head is not None else "head"

    scores = _score_all(emb, entity_to_id[entity_iri], relation_to_id[relation_iri], target)
    known = {(h, t) for h, r, t in graph.triples if r == relation_iri}
    id_to_entity = {i: iri for iri, i in entity_to_id.items()}
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    candidates: list[Candidate] = []
    for i in order:
        iri = id_to_entity[i]
        if iri == entity_iri:
            continue  # a relation of an entity to itself is never extracted
        pair = (entity_iri, iri) if target == "tail" else (iri, entity_iri)
        is_known = pair in known
        if is_known and not include_known:
            continue
        candidates.append(Candidate(rank=len(candidates) + 1, iri=iri, label=graph.label(iri),
                                    score=float(scores[i]), known=is_known,
                                    because=_because(emb, graph, entity_to_id[entity_iri], relation_to_id[relation_iri],
                                                     i, target)))
        if len(candidates) >= top:
            break
    result = PredictionResult(
        head=entity_iri if target == "tail" else None,
        relation=relation_iri,
        tail=entity_iri if target == "head" else None,
        target=target,
        relation_label=graph.label(relation_iri),
        query_label=graph.label(entity_iri),
        candidates=candidates,
    )
    if write:
        result.written = write_predictions(out, graph.base, result, emb.config.model)
        result.graph = predicted_graph_iri(graph.base)
    return result


def _because(emb: EmbeddingResult, graph: GraphTriples, entity_id: int, relation_id: int, candidate: int,
             target: str, top: int = 2) -> list[str]:
    """The best rules that propose `candidate`, as "body => head (confidence)" in the graph's labels."""
    if emb.rules is None or not emb.rules_weight:
        return []
    relations = emb.rules.graph.R
    query = relation_id if target == "tail" else relation_id + relations
    id_to_entity = emb.training.entity_id_to_label
    id_to_relation = emb.training.relation_id_to_label
    return [firing.text(lambda r: graph.label(id_to_relation[r]), lambda e: graph.label(id_to_entity[e]), relations)
            + f" ({firing.confidence:.2f})" for firing in emb.rules.explain(entity_id, query, candidate, top)]


def _score_all(emb: EmbeddingResult, entity_id: int, relation_id: int, target: str) -> list[float]:
    import torch

    model = emb.scorer
    device = next(model.parameters()).device
    with torch.inference_mode():
        if target == "tail":
            batch = torch.tensor([[entity_id, relation_id]], dtype=torch.long, device=device)
            scores = model.predict_t(batch)
        else:
            batch = torch.tensor([[relation_id, entity_id]], dtype=torch.long, device=device)
            scores = model.predict_h(batch)
    return scores[0].float().cpu().tolist()


def resolve_entity(name: str, graph: GraphTriples, entity_to_id: dict[str, int]) -> str:
    """The IRI of the entity called `name` (an IRI, a label or an alias, any case) that the
    model knows; a clear error with the closest names otherwise."""
    name = name.strip()
    if name in entity_to_id:
        return name
    wanted = name.casefold()
    matches = sorted({iri for iri, names in graph.entity_names.items()
                      if any(n.casefold() == wanted for n in names)})
    in_model = [iri for iri in matches if iri in entity_to_id]
    if len(in_model) == 1:
        return in_model[0]
    if len(in_model) > 1:
        raise UnknownEntityError(
            f"{name!r} names {len(in_model)} entities: {', '.join(in_model)}",
            hint="pass the IRI of the one you mean")
    if matches:
        raise UnknownEntityError(
            f"{name!r} ({matches[0]}) has no facts linking it to other entities, so the model cannot place it",
            hint="predict for an entity that takes part in at least one fact")
    if name.startswith(("http://", "https://")):
        raise UnknownEntityError(f"no entity {name} in the graph", hint=_closest_hint(name, list(entity_to_id)))
    names = sorted({n for iri, ns in graph.entity_names.items() if iri in entity_to_id for n in ns})
    raise UnknownEntityError(f"no entity named {name!r} in the graph", hint=_closest_hint(name, names))


def resolve_relation(name: str, graph: GraphTriples, relation_to_id: dict[str, int]) -> str:
    """The IRI of the relation given as an IRI, an id ("P19") or a label ("place of birth")."""
    name = name.strip()
    wanted = name.casefold()
    for iri in graph.relation_ids:
        if name == iri or wanted == graph.relation_ids[iri].casefold() or wanted == graph.relation_labels[iri].casefold():
            if iri not in relation_to_id:
                raise UnknownRelationError(
                    f"relation {name!r} has no facts in the embeddings",
                    hint="re-run `kgbuild embed OUT` after the graph changed")
            return iri
    choices = sorted({graph.relation_labels[i] for i in relation_to_id if i in graph.relation_labels}
                     | {graph.relation_ids[i] for i in relation_to_id if i in graph.relation_ids})
    raise UnknownRelationError(f"no relation {name!r} in the graph", hint=_closest_hint(name, choices))


def closest_names(name: str, choices: list[str], n: int = 5) -> list[str]:
    """The `n` choices closest to `name` (rapidfuzz when installed, else difflib)."""
    try:
        from rapidfuzz import fuzz, process, utils
    except ImportError:
        lowered = {c.casefold(): c for c in choices}
        return [lowered[c] for c in difflib.get_close_matches(name.casefold(), list(lowered), n=n, cutoff=0.0)]
    hits = process.extract(name, choices, scorer=fuzz.WRatio, processor=utils.default_process, limit=n)
    # Keep the good matches; when none is good, the three best still show what names look like.
    good = [choice for choice, score, _index in hits if score >= 70]
    return good or [choice for choice, _score, _index in hits[:3]]


def _closest_hint(name: str, choices: list[str]) -> str:
    close = closest_names(name, choices)
    if not close:
        return "the graph has no entities with facts yet"
    return "closest: " + ", ".join(repr(c) for c in close)


def write_predictions(out: str | Path, base: str, result: PredictionResult, model_name: str) -> int:
    """Add the candidates of `result` that are not yet facts to the predicted graph, one reified
    statement each (kg:Prediction with rdf:subject / rdf:predicate / rdf:object, kg:score,
    kg:rank, kg:model, kg:predictedAt). The triple itself is never asserted, so queries, views
    and embeddings of extracted facts do not see it. Writing the same prediction again replaces it."""
    from pyoxigraph import Literal, NamedNode, Quad

    from kgbuild.graph.rdf import RDF_OBJECT, RDF_PREDICATE, RDF_SUBJECT, RDF_TYPE, XSD, kg
    from kgbuild.graph.store import open_store

    graph = NamedNode(predicted_graph_iri(base))
    when = Literal(datetime.now(timezone.utc).isoformat(timespec="seconds"), datatype=NamedNode(XSD + "dateTime"))
    store = open_store(out)
    written = 0
    quads = []
    for cand in result.candidates:
        if cand.known:
            continue
        s = result.head if result.target == "tail" else cand.iri
        o = cand.iri if result.target == "tail" else result.tail
        key = "\x1f".join([s, result.relation, o, model_name])
        node = NamedNode(base + "prediction/" + hashlib.sha1(key.encode()).hexdigest()[:16])
        for old in list(store.quads_for_pattern(node, None, None, graph)):
            store.remove(old)
        quads += [
            Quad(node, RDF_TYPE, kg(base, "Prediction"), graph),
            Quad(node, RDF_SUBJECT, NamedNode(s), graph),
            Quad(node, RDF_PREDICATE, NamedNode(result.relation), graph),
            Quad(node, RDF_OBJECT, NamedNode(o), graph),
            Quad(node, kg(base, "score"), Literal(float(cand.score)), graph),
            Quad(node, kg(base, "rank"), Literal(int(cand.rank)), graph),
            Quad(node, kg(base, "model"), Literal(model_name), graph),
            Quad(node, kg(base, "predictedAt"), when, graph),
        ]
        written += 1
    store.extend(quads)
    store.flush()
    return written
