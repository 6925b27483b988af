"""The data that flows through the pipeline: documents carry their sentences, mentions and
relation mentions from stage to stage; linking turns mentions into entities; the graph stage
turns entities and relation mentions into triples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Sentence:
    """A sentence, as character offsets into its document's text."""

    start: int  # offset of the first character in Document.text
    end: int  # offset one past the last character


@dataclass(slots=True)
class Mention:
    """A span of text that names (or refers to) something."""

    start: int  # character offset in Document.text
    end: int  # character offset one past the end
    text: str  # the surface string, Document.text[start:end]
    type: str  # kgbuild type: PER, ORG, LOC, TIME, NUM or MISC (see kgbuild.types)
    label: str  # the recogniser's own label, e.g. spaCy's GPE
    sentence: int  # index into Document.sentences
    kind: str = "name"  # "name", "pronoun" or "nominal"
    score: float = 1.0  # recogniser confidence where it has one
    entity: str | None = None  # entity key, set by the linking stage


@dataclass(slots=True)
class RelationMention:
    """A relation stated between two mentions of one document."""

    head: int  # index into Document.mentions
    tail: int  # index into Document.mentions
    relation: str  # schema id, e.g. Wikidata property "P19"
    confidence: float  # extractor score in [0, 1]
    extractor: str  # backend name that produced it
    sentence: int  # sentence the evidence comes from (the head's sentence for cross-sentence pairs)


@dataclass(slots=True)
class Document:
    """One input document and everything the stages found in it."""

    id: str  # stable id: path relative to the corpus root, plus "#line" for .jsonl records
    text: str  # the visible text
    source: str = ""  # path of the file it came from
    meta: dict[str, Any] = field(default_factory=dict)  # reader metadata (encoding, title, ...)
    sentences: list[Sentence] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    relations: list[RelationMention] = field(default_factory=list)
    # the recogniser's parse, [(char offset, spaCy Doc), ...], for later stages; never saved
    parse: Any = field(default=None, repr=False, compare=False)

    @property
    def n_words(self) -> int:
        return len(self.text.split())

    def sentence_text(self, index: int) -> str:
        s = self.sentences[index]
        return self.text[s.start : s.end]


@dataclass(slots=True)
class Entity:
    """A thing in the world, merged from one or more mentions."""

    key: str  # stable key, also the last part of the entity's IRI, e.g. "person/marie-curie"
    name: str  # canonical name (rdfs:label)
    type: str  # kgbuild type
    labels: set[str] = field(default_factory=set)  # spaCy labels seen (GPE, LOC, ...)
    aliases: set[str] = field(default_factory=set)  # every other name seen (skos:altLabel)
    n_mentions: int = 0  # mentions linked to it, over the corpus
    documents: set[str] = field(default_factory=set)  # ids of the documents that mention it
    why: list[str] = field(default_factory=list)  # human-readable reasons for each merge
    same_as: list[str] = field(default_factory=list)  # IRIs of the same thing in a knowledge base (owl:sameAs)


@dataclass(slots=True)
class Skipped:
    """A file or record the run could not read, with the reason."""

    path: str
    reason: str


@dataclass(slots=True)
class Fact:
    """One extracted triple between two entities, with where it came from."""

    subject: str  # Entity.key of the head
    relation: str  # schema id, e.g. "P19"
    object: str  # Entity.key of the tail
    document: str  # Document.id
    sentence: str  # text of the evidence sentence
    start: int  # character offset of the evidence sentence in the document
    end: int  # offset one past its end
    confidence: float  # extractor score in [0, 1]
    extractor: str  # backend name
