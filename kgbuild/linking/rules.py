"""Rule-based backend of the `linking` stage: mentions that name the same thing, within and across
documents, become one entity.

Within a document, a short name joins the full name it abbreviates ("Curie" -> "Marie Curie",
"IBM" -> "International Business Machines") when exactly one candidate of the same type fits
(else the nearest preceding one). Across documents, entities with the same type and normalised
name are one entity; a one-word person name that is the surname or first name of exactly one
full name in the corpus joins it. Types must agree: "Paris" the city and "Paris" the person
stay apart. Pronouns and (when on) nominal mentions ("the company") join the entity they refer to
(kgbuild.linking.mentions); open relation phrases of the relations stage are merged and mapped
onto the schema (kgbuild.linking.relphrases). Every merge records why, for the run report and the
graph."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter, defaultdict
from typing import Any

from kgbuild.errors import ConfigError
from kgbuild.linking.mentions import (demonym_of, expand_nicknames, find_aliases, find_nominals, find_pronouns,
                                      resolve_nominal, resolve_pronoun)
from kgbuild.model import Document, Entity, Mention
from kgbuild.registry import register
from kgbuild.types import TYPES

_PUNCT = re.compile(r"[^\w\s&+-]")
_SPACE = re.compile(r"\s+")
_HONORIFICS = {"mr", "mrs", "ms", "dr", "prof", "sir", "lady", "lord", "st", "saint", "president", "king", "queen"}
_ORG_SUFFIXES = {"inc", "ltd", "llc", "corp", "corporation", "co", "company", "plc", "gmbh", "ag", "sa"}
_STOP = {"of", "the", "and", "for", "de", "la", "le", "du", "von", "van", "&"}


@functools.lru_cache(maxsize=1 << 17)  # names repeat across a corpus; a run calls this per mention
def normalise(name: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a name, used as the matching key."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("’", "'").replace("'s ", " ")
    text = _PUNCT.sub(" ", text)
    words = _SPACE.sub(" ", text).strip().split(" ")
    while words and words[0] in {"the", "a", "an"}:
        words = words[1:]
    while len(words) > 1 and words[0] in _HONORIFICS:
        words = words[1:]
    return " ".join(words)


def slug(name: str) -> str:
    return normalise(name).replace(" ", "-").replace("&", "and") or "unnamed"


def acronym(name: str) -> str:
    """Initials of the content words: "International Business Machines" -> "ibm"."""
    words = [w for w in normalise(name).split() if w not in _STOP and w not in _ORG_SUFFIXES]
    return "".join(w[0] for w in words) if len(words) >= 2 else ""


def _is_short_form(short: str, full: str, type_: str) -> bool:
    """Whether normalised `short` abbreviates normalised `full` of the same type."""
    if short == full or len(short) >= len(full):
        return False
    s_words, f_words = short.split(), full.split()
    if type_ == "PER":
        # surname, first name, or first + last of a longer name
        return (s_words == f_words[-len(s_words):] or s_words == f_words[: len(s_words)]
                or (len(s_words) == 2 and s_words[0] == f_words[0] and s_words[-1] == f_words[-1]))
    if type_ in ("ORG", "LOC", "MISC"):
        # "IBM", and "U.S." whose normal form is "u s"
        if (len(s_words) == 1 or all(len(w) == 1 for w in s_words)) and short.replace(" ", "") == acronym(full):
            return True
        core = [w for w in f_words if w not in _ORG_SUFFIXES]
        return s_words == core or (len(s_words) >= 2 and s_words == f_words[: len(s_words)])
    return False


@register("linking", "rules")
class RuleLinker:
    """Stateful over a run: call on each batch, then `finalize()` once for the entity table."""

    def __init__(self, cross_document: bool = True, merge_first_names: bool = False,
                 aliases: bool = True, demonyms: bool = False, pronouns: bool = True,
                 pronoun_window: int = 2, pronoun_strategy: str = "salient", nominals: bool = False,
                 nominal_window: int = 2, kb: str = "",
                 kb_threshold: float = 0.8, kb_fuzzy_cutoff: float = 85.0, kb_dense_k: int = 5,
                 kb_context_weight: float = 0.2, encoder: str = "auto", model: str = "auto",
                 device: str = "auto", fuzzy_merge: bool = True, merge_neighbours: int = 10,
                 merge_min_cosine: float = 0.6, merge_min_fuzzy: float = 92.0, merge_exact_below: int = 5000,
                 open_relations: str = "cluster", relation_map_threshold: float = 0.8,
                 relation_cluster_threshold: float = 0.8) -> None:
        self.cross_document = cross_document  # merge same-name entities across documents
        # a lone first name ("Marie") joins a full name: off by default, first names are shared widely
        self.merge_first_names = merge_first_names
        self.aliases = aliases  # "A (B)", "A, known as B", 'First "Nick" Last' make B an alias of A
        # "Canadian" joins "Canada" in the same document: off, it cost 0.4 B-cubed F1 on Re-DocRED
        self.demonyms = demonyms
        self.pronouns = pronouns  # he/she/it/they become mentions of a preceding name
        self.pronoun_window = pronoun_window  # sentences a pronoun may look back
        if pronoun_strategy not in ("subject", "nearest", "salient"):
            raise ConfigError(f"linking.pronoun_strategy must be subject, nearest or salient, got {pronoun_strategy!r}")
        self.pronoun_strategy = pronoun_strategy
        self.nominals = nominals  # "the company", "the physicist" become mentions of a preceding name
        self.nominal_window = nominal_window  # sentences a nominal mention may look back
        # a KB .jsonl to link entities to (owl:sameAs); "" = none
        self.kb_path = kb
        self.kb_options = {"threshold": kb_threshold, "fuzzy_cutoff": kb_fuzzy_cutoff, "dense_k": kb_dense_k,
                           "context_weight": kb_context_weight}
        self.encoder_kind, self.model, self.device = encoder, model, device
        # across documents, names that differ but embed close and spell alike merge (kgbuild.linking.crossdoc)
        self.fuzzy_merge = fuzzy_merge and cross_document
        self.merge_options = {"k": merge_neighbours, "min_cosine": merge_min_cosine, "min_fuzzy": merge_min_fuzzy,
                              "exact_below": merge_exact_below}
        if open_relations not in ("cluster", "map", "drop"):
            raise ConfigError(f"linking.open_relations must be cluster, map or drop, got {open_relations!r}")
        # what happens to open relation phrases (relations.open_relations): kgbuild.linking.relphrases
        self.relation_options = {"mode": open_relations, "map_threshold": relation_map_threshold,
                                 "cluster_threshold": relation_cluster_threshold}
        self._phrases = None
        self._encoder = None
        self._kb = None
        self._entities: dict[str, Entity] = {}
        self._context: dict[str, list[str]] = defaultdict(list)  # entity key -> a few sentences

    def info(self) -> dict[str, Any]:
        info = {"cross_document": self.cross_document, "aliases": self.aliases, "demonyms": self.demonyms,
                "pronouns": self.pronouns, "nominals": self.nominals}
        if self.kb_path:
            info["kb"] = {"path": str(self.kb_path), "entries": len(self.knowledge_base().entries)}
        return info

    def encoder(self):
        """The MiniLM sentence encoder (kgbuild.relations.encoder), loaded on first use:
        the full transformer on a GPU, its static distillation on a CPU."""
        if self._encoder is None:
            from kgbuild.device import resolve_device
            from kgbuild.relations.encoder import shared_encoder

            device = resolve_device(self.device)
            kind = self.encoder_kind if self.encoder_kind != "auto" else ("contextual" if device.type == "cuda" else "static")
            self._encoder = shared_encoder(kind, self.model, device, batch_size=256)
        return self._encoder

    def knowledge_base(self):
        if self._kb is None and self.kb_path:
            from kgbuild.linking.kb import KnowledgeBase, read_kb

            self._kb = KnowledgeBase(read_kb(self.kb_path), self.encoder(), **self.kb_options)
        return self._kb

    def __call__(self, docs: list[Document]) -> list[Document]:
        for doc in docs:
            self._link_document(doc)
            if any(r.relation.startswith("open:") for r in doc.relations):
                self.relation_phrases().rewrite(doc)
        return docs

    def relation_phrases(self):
        """The clustering of open relation phrases, built on first use."""
        if self._phrases is None:
            from kgbuild.linking.relphrases import RelationPhrases

            self._phrases = RelationPhrases(self.encoder().encode, **self.relation_options)
        return self._phrases

    def relation_labels(self) -> dict[str, list[str]]:
        """Labels of the relations open phrases went to: the phrases themselves, for the graph."""
        return self._phrases.labels() if self._phrases is not None else {}

    # -- within a document -------------------------------------------------------------
    def _link_document(self, doc: Document) -> None:
        nicknames = expand_nicknames(doc) if self.aliases else []
        alias_pairs = find_aliases(doc) if self.aliases else []
        for a in alias_pairs:  # the construction says they are one thing: the full name's type wins
            doc.mentions[a.alias].type = doc.mentions[a.full].type
        names = [m for m in doc.mentions if m.kind == "name"]
        # spaCy sometimes labels one string with two types in one text; the majority type wins
        votes: dict[str, Counter] = defaultdict(Counter)
        for m in names:
            votes[normalise(m.text)][m.type] += 1
        for m in names:
            key = normalise(m.text)
            if not key:
                continue
            top, count = votes[key].most_common(1)[0]
            if m.type != top and count > votes[key][m.type]:
                m.type = top

        clusters: dict[tuple[str, str], list[Mention]] = defaultdict(list)
        for m in names:
            key = normalise(m.text)
            if key:
                clusters[(m.type, key)].append(m)
        first_pos = {k: min(m.start for m in ms) for k, ms in clusters.items()}
        parent: dict[tuple[str, str], tuple[str, str]] = {}
        reasons: dict[tuple[str, str], str] = {}

        def key_of(m: Mention) -> tuple[str, str]:
            return (m.type, normalise(m.text))

        for a in alias_pairs:
            full, alias = key_of(doc.mentions[a.full]), key_of(doc.mentions[a.alias])
            if alias != full and alias not in parent and full in clusters and alias in clusters:
                parent[alias] = full
                reasons[alias] = f"alias: {a.why} in {doc.id}"
        for nick in nicknames:  # a later bare "Willi" is the full name it was quoted in
            for (type_, key) in clusters:
                if type_ == "PER" and key == normalise(nick):
                    full = next((k for k in clusters if k[0] == "PER" and k != (type_, key)
                                 and nick.casefold() in k[1].split()), None)
                    if full and (type_, key) not in parent:
                        parent[(type_, key)] = full
                        reasons[(type_, key)] = f"nickname {nick!r} of {clusters[full][0].text!r} in {doc.id}"
        for (type_, short), mentions in clusters.items():
            if (type_, short) in parent:
                continue
            if type_ == "PER" and len(short.split()) == 1 and not self.merge_first_names:
                fulls = [k for k in clusters if k[0] == type_ and k != (type_, short)
                         and k[1].split()[-1] == short]
            else:
                fulls = [k for k in clusters if k[0] == type_ and _is_short_form(short, k[1], type_)]
            if not fulls:
                continue
            # the most recent full name before the short one, else the first after it
            before = [k for k in fulls if first_pos[k] < first_pos[(type_, short)]]
            chosen = max(before, key=first_pos.get) if before else min(fulls, key=first_pos.get)
            parent[(type_, short)] = chosen
            kind = "acronym" if short.replace(" ", "") == acronym(chosen[1]) else "short name"
            reasons[(type_, short)] = f"{kind} {mentions[0].text!r} of {clusters[chosen][0].text!r} in {doc.id}"
        if self.demonyms:
            places = {k[1]: k for k in clusters if k[0] == "LOC"}
            for k, mentions in clusters.items():
                if k[0] != "MISC" or k in parent or mentions[0].label != "NORP":
                    continue
                hits = [places[p] for p in demonym_of(k[1]) if p in places]
                if len(hits) == 1:
                    parent[k] = hits[0]
                    reasons[k] = f"demonym {mentions[0].text!r} of {clusters[hits[0]][0].text!r} in {doc.id}"

        def root(k: tuple[str, str]) -> tuple[str, str]:
            seen = set()
            while k in parent and k not in seen:
                seen.add(k)
                k = parent[k]
            return k

        for k, mentions in clusters.items():
            r = root(k)
            canonical = self._canonical(clusters[r])
            entity = self._entity(r[0], canonical, doc.id)
            entity.labels.update(m.label for m in mentions)
            entity.n_mentions += len(mentions)
            for m in mentions:
                m.entity = entity.key
                if m.text != entity.name:
                    entity.aliases.add(m.text)
            if k in reasons:
                entity.why.append(reasons[k])
            context = self._context[entity.key]
            if len(context) < 3 and mentions[0].sentence < len(doc.sentences):
                context.append(doc.sentence_text(mentions[0].sentence))
        names = sorted((m for m in names if m.entity), key=lambda m: m.start)
        if self.pronouns:
            self._link_references(doc, find_pronouns(doc), names, "pronoun(s)", lambda p: resolve_pronoun(
                p, names, self.pronoun_window, self.pronoun_strategy))
        if self.nominals:
            self._link_references(doc, find_nominals(doc), names, "nominal mention(s)",
                                  lambda p: resolve_nominal(p, names, self.nominal_window))

    def _link_references(self, doc: Document, found: list[Mention], names: list[Mention], what: str,
                         resolve) -> None:
        """Append each pronoun or nominal mention that `resolve` finds an antecedent name for,
        linked to that name's entity. Appended, not inserted: relation mentions index
        Document.mentions."""
        resolved: dict[str, list[str]] = defaultdict(list)
        for p in found:
            antecedent = resolve(p)
            if antecedent is None:
                continue
            p.type, p.entity = antecedent.type, antecedent.entity
            doc.mentions.append(p)
            resolved[antecedent.entity].append(p.text)
        for key, texts in resolved.items():
            entity = self._entities[key]
            entity.n_mentions += len(texts)
            shown = ", ".join(repr(t) for t in dict.fromkeys(texts))
            entity.why.append(f"{len(texts)} {what} in {doc.id} refer to it ({shown})")

    @staticmethod
    def _canonical(mentions: list[Mention]) -> str:
        """Most frequent surface form of a cluster, longest first on ties."""
        counts = Counter(m.text for m in mentions)
        return max(counts, key=lambda t: (counts[t], len(t)))

    def _entity(self, type_: str, name: str, doc_id: str) -> Entity:
        base = f"{TYPES[type_]}/{slug(name)}"
        key = base if self.cross_document else f"{base}@{slug(doc_id)}"
        entity = self._entities.get(key)
        if entity is None:
            entity = self._entities[key] = Entity(key=key, name=name, type=type_)
        elif name != entity.name:
            entity.aliases.add(name)
        if doc_id not in entity.documents:
            if entity.documents:
                entity.why.append(f"same {TYPES[type_]} name {normalise(name)!r} in {doc_id}")
            entity.documents.add(doc_id)
        return entity

    # -- across documents ----------------------------------------------------------------
    def finalize(self) -> tuple[list[Entity], dict[str, str]]:
        """The entity table, and a remap {old key: new key} for entities merged across documents."""
        remap: dict[str, str] = {}
        if self.cross_document:
            by_word: dict[str, list[Entity]] = defaultdict(list)
            for e in self._entities.values():
                words = normalise(e.name).split()
                if e.type == "PER" and len(words) >= 2:
                    by_word[words[-1]].append(e)
            for e in list(self._entities.values()):
                words = normalise(e.name).split()
                if e.type != "PER" or len(words) != 1:
                    continue
                fulls = by_word.get(words[0], [])
                if len(fulls) == 1:
                    self._merge(e, fulls[0], f"surname {e.name!r} matches only {fulls[0].name!r} in the corpus",
                                remap)
        if self.fuzzy_merge:
            self._merge_similar(remap)
        if self.kb_path:
            self._link_kb(remap)
        for e in self._entities.values():
            e.aliases.discard(e.name)
        for old in remap:  # a -> b -> c becomes a -> c
            seen = {old}
            while remap[old] in remap and remap[old] not in seen:
                seen.add(remap[old])
                remap[old] = remap[remap[old]]
        return sorted(self._entities.values(), key=lambda e: e.key), remap

    def _merge(self, source: Entity, target: Entity, why: str, remap: dict[str, str]) -> None:
        """Fold `source` into `target` (chains in `remap` are resolved at the end of finalize)."""
        remap[source.key] = target.key
        target.aliases.add(source.name)
        target.aliases |= source.aliases
        target.labels |= source.labels
        target.n_mentions += source.n_mentions
        target.documents |= source.documents
        target.why.extend(source.why)
        target.why.append(why)
        target.same_as.extend(i for i in source.same_as if i not in target.same_as)
        self._context[target.key].extend(self._context.pop(source.key, [])[:3])
        del self._entities[source.key]

    def _merge_similar(self, remap: dict[str, str]) -> None:
        """Merge entities with similar names, candidate pairs found by ANN blocking."""
        from kgbuild.linking.crossdoc import candidate_pairs

        todo = [e for e in self._entities.values() if e.type in ("PER", "ORG", "LOC", "MISC")]
        if len(todo) < 2:
            return
        vectors = self.encoder().encode([e.name for e in todo])
        parent = list(range(len(todo)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        why: dict[int, list[str]] = defaultdict(list)
        for pair in candidate_pairs(todo, vectors, **self.merge_options):
            ra, rb = root(pair.a), root(pair.b)
            if ra != rb:
                # the entity with more mentions stays the canonical one
                keep, drop = (ra, rb) if todo[ra].n_mentions >= todo[rb].n_mentions else (rb, ra)
                parent[drop] = keep
                why[drop].append(pair.why)
        for i in range(len(todo)):
            r = root(i)
            if r != i:
                self._merge(todo[i], todo[r], "; ".join(why[i]) or f"similar to {todo[r].name!r}", remap)

    def _link_kb(self, remap: dict[str, str]) -> None:
        """owl:sameAs to the best KB entry of each named entity, or NIL; entities linked to the
        same entry become one."""
        kb = self.knowledge_base()
        todo = [e for e in self._entities.values() if e.type in ("PER", "ORG", "LOC", "MISC")]
        links = kb.link_many([([e.name, *sorted(e.aliases)], e.type, self._context.get(e.key, [])) for e in todo])
        by_iri: dict[str, Entity] = {}
        for e, link in zip(todo, links):
            if link.entry is None:
                e.why.append(f"KB: {link.why}")
                continue
            e.why.append(f"KB: {link.why}")
            if link.entry.id not in e.same_as:
                e.same_as.append(link.entry.id)
            first = by_iri.get(link.entry.id)
            if first is None:
                by_iri[link.entry.id] = e
            elif first.type == e.type:
                self._merge(e, first, f"{e.name!r} and {first.name!r} both link to {link.entry.id}", remap)
