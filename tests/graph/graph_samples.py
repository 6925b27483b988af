"""A hand-made graph for the graph-stage tests: four entities, three relations, one fact
extracted twice. No models."""

from __future__ import annotations

import re

import kgbuild.graph
from kgbuild.model import Entity, Fact

BASE = "http://kgbuild.org/kg/"
KG = BASE + "ontology/"
CURIE = BASE + "entity/person/marie-curie"
WARSAW = BASE + "entity/location/warsaw"
PIERRE = BASE + "entity/person/pierre-curie"
SORBONNE = BASE + "entity/organization/university-of-paris"
P19 = "http://www.wikidata.org/prop/direct/P19"
P26 = "http://www.wikidata.org/prop/direct/P26"
WORKED_AT = BASE + "relation/worked_at"

RELATION_LABELS = {"P19": "place of birth", "P26": "spouse", "worked_at": "worked at"}

BORN = "Marie Curie was born in Warsaw."
NEWS = "Curie, born in Warsaw in 1867, moved to Paris."


def readme_queries() -> tuple[str, str]:
    """The two SPARQL examples of kgbuild.graph's docstring, as users copy them."""
    what, where = re.findall(r"```sparql\n(.*?)```", kgbuild.graph.__doc__, re.S)
    return what, where


def make_entities() -> list[Entity]:
    return [
        Entity(
            key="person/marie-curie",
            name="Marie Curie",
            type="PER",
            labels={"PERSON"},
            aliases={"Maria Skłodowska", "Curie"},
            n_mentions=3,
            documents={"bio/curie.txt", "news.jsonl#2"},
            why=["'Curie' is the surname of 'Marie Curie'"],
        ),
        Entity(
            key="location/warsaw",
            name="Warsaw",
            type="LOC",
            labels={"GPE"},
            n_mentions=2,
            documents={"bio/curie.txt", "news.jsonl#2"},
        ),
        Entity(
            key="person/pierre-curie",
            name="Pierre Curie",
            type="PER",
            labels={"PERSON"},
            n_mentions=1,
            documents={"bio/curie.txt"},
        ),
        Entity(
            key="organization/university-of-paris",
            name="University of Paris",
            type="ORG",
            n_mentions=1,
            documents={"bio/curie.txt"},
        ),
    ]


def make_facts() -> list[Fact]:
    return [
        Fact("person/marie-curie", "P19", "location/warsaw", "bio/curie.txt", BORN, 0, 31, 0.91, "zeroshot"),
        Fact("person/marie-curie", "P19", "location/warsaw", "news.jsonl#2", NEWS, 12, 58, 0.75, "zeroshot"),
        Fact("person/marie-curie", "P26", "person/pierre-curie", "bio/curie.txt",
             "She married Pierre Curie in 1895.", 32, 65, 0.8, "zeroshot"),
        Fact("person/marie-curie", "worked_at", "organization/university-of-paris", "bio/curie.txt",
             "She taught at the University of Paris.", 66, 104, 0.6, "rules"),
    ]  # fmt: skip


