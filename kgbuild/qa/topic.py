"""Which entity a question is about. A name in [brackets] (MetaQA marks its topics so) is looked
up directly; otherwise the longest run of the question's words that is an entity's name or
alias wins. Names match as the linking stage matches them (case, accents, punctuation and a
leading "the" ignored). No match is no topic: the closest names are offered instead of a guess."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kgbuild.linking.rules import normalise
from kgbuild.qa.index import GraphIndex

MAX_NAME_WORDS = 10
_BRACKET = re.compile(r"\[([^\]]+)\]")
_WORD = re.compile(r"[^\s?!.,;:\"]+")
_CAPITALISED = re.compile(r"(?:[A-Z0-9][\w'’.-]*)(?:\s+(?:of|the|de|von|van|and|[A-Z0-9][\w'’.-]*))*")
_QUESTION_WORDS = {"what", "who", "whom", "which", "where", "when", "why", "how", "is", "was", "are", "were",
                   "did", "does", "do", "the", "a", "an", "in", "of"}


def loose_key(name: str) -> str:
    """A name normalised, with no spaces around its punctuation: a tokenised text's "Shahid -
    Saless" and "Shahid-Saless" are one key ("Cast Away" and "Castaway" stay two)."""
    return re.sub(r"\s*([^\w\s])\s*", r"\1", normalise(name))


@dataclass
class Topic:
    """The topic entity of a question, or why there is none."""

    entity: int | None  # index id, None when not in the graph
    mention: str  # the words of the question that name it (or the best guess at them)
    closest: list[str] = field(default_factory=list)  # names closest to the mention when not found


class TopicFinder:
    """Entity names of one graph, normalised, for finding topics."""

    def __init__(self, index: GraphIndex) -> None:
        self.index = index
        self.exact: dict[str, list[int]] = {}
        self.normal: dict[str, list[int]] = {}
        self.loose: dict[str, list[int]] = {}
        for iri, names in index.graph.entity_names.items():
            i = index.entity_id.get(iri)
            if i is None:
                continue
            for name in names:
                self.exact.setdefault(name, []).append(i)
                self.normal.setdefault(normalise(name), []).append(i)
                if key := loose_key(name):
                    self.loose.setdefault(key, []).append(i)
        self.degree = index.has_hop.sum(1)
        self._names: list[str] | None = None

    def lookup(self, name: str) -> list[int]:
        """Entities called `name`: exact spelling first, else the normalised form, else that form
        with no spaces around punctuation ("Shahid-Saless" for a tokenised text's "Shahid - Saless")."""
        found = self.exact.get(name.strip()) or self.normal.get(normalise(name))
        if found:
            return found
        key = loose_key(name)
        return self.loose.get(key, []) if key else []

    def find(self, question: str) -> Topic:
        bracket = _BRACKET.search(question)
        if bracket:
            mention = bracket.group(1).strip()
            ids = self.lookup(mention)
            if ids:
                return Topic(self._best(ids), mention)
            return Topic(None, mention, self.closest(mention))
        words = _WORD.findall(question)
        for n in range(min(MAX_NAME_WORDS, len(words)), 0, -1):
            hits = []
            for start in range(len(words) - n + 1):
                span = " ".join(words[start : start + n])
                if n == 1 and span.lower() in _QUESTION_WORDS:
                    continue
                span = re.sub(r"['’]s$", "", span)
                ids = self.lookup(span)
                if ids:
                    hits.append((span, self._best(ids)))
            if hits:
                span, entity = max(hits, key=lambda h: self.degree[h[1]])
                return Topic(entity, span)
        mention = self._guess_mention(question)
        return Topic(None, mention, self.closest(mention))

    def closest(self, mention: str, n: int = 5) -> list[str]:
        from kgbuild.embed.predict import closest_names

        if self._names is None:
            self._names = sorted(self.exact)
        return closest_names(mention, self._names, n=n) if self._names else []

    def _best(self, ids: list[int]) -> int:
        # Two entities with one name: the one with more kinds of facts is the likelier topic.
        return max(ids, key=lambda i: (self.degree[i], -i))

    @staticmethod
    def _guess_mention(question: str) -> str:
        """The capitalised words of a question, past its first word (what a name looks like)."""
        body = question.strip()
        first = body.split(" ", 1)
        spans = _CAPITALISED.findall(first[1]) if len(first) > 1 else []
        spans = [s for s in spans if s.lower() not in _QUESTION_WORDS]
        if spans:
            return max(spans, key=len)
        words = [w for w in _WORD.findall(body) if w.lower() not in _QUESTION_WORDS]
        return " ".join(words)
