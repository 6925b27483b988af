"""A small hand-made graph with regular structure for the embedding tests: people born in three
cities, each city's people working for that city's university, some married. No models.

One true fact is left out on purpose: Zofia Nowak was born in Warsaw (her colleagues at the
University of Warsaw all were)."""

from __future__ import annotations

from pathlib import Path

from kgbuild.model import Entity, Fact

BASE = "http://kgbuild.org/kg/"
RELATION_LABELS = {"P19": "place of birth", "P108": "employer", "P26": "spouse", "P17": "country"}

CITIES = {  # city -> (university, country)
    "Warsaw": ("University of Warsaw", "Poland"),
    "Paris": ("University of Paris", "France"),
    "London": ("University of London", "United Kingdom"),
}
PEOPLE = {  # person -> city of birth and work
    "Marie Curie": "Warsaw", "Jan Kowalski": "Warsaw", "Anna Nowak": "Warsaw", "Piotr Zielinski": "Warsaw",
    "Zofia Nowak": "Warsaw",
    "Pierre Curie": "Paris", "Jean Dupont": "Paris", "Claire Martin": "Paris", "Louis Bernard": "Paris",
    "Alan Turing": "London", "John Smith": "London", "Mary Jones": "London", "Ada Lovelace": "London",
}
SPOUSES = [("Marie Curie", "Pierre Curie"), ("Jan Kowalski", "Anna Nowak"), ("John Smith", "Mary Jones")]
HELD_OUT = ("Zofia Nowak", "P19", "Warsaw")


def key(name: str) -> str:
    kind = "person" if name in PEOPLE else "location" if name in CITIES or name in {c for _, c in CITIES.values()} else "organization"
    return f"{kind}/" + name.lower().replace(" ", "-")


def iri(name: str) -> str:
    return BASE + "entity/" + key(name)


def make_entities() -> list[Entity]:
    names = list(PEOPLE) + list(CITIES) + [u for u, _ in CITIES.values()] + [c for _, c in CITIES.values()]
    entities = []
    for name in names:
        type_ = "PER" if name in PEOPLE else "ORG" if name.startswith("University") else "LOC"
        aliases = {"Maria Skłodowska"} if name == "Marie Curie" else set()
        entities.append(Entity(key=key(name), name=name, type=type_, aliases=aliases, n_mentions=1,
                               documents={"doc.txt"}))
    return entities


def _fact(s: str, r: str, o: str) -> Fact:
    return Fact(key(s), r, key(o), "doc.txt", f"{s} {r} {o}.", 0, 10, 0.9, "hand")


def make_facts() -> list[Fact]:
    facts = []
    for person, city in PEOPLE.items():
        if (person, "P19", city) != HELD_OUT:
            facts.append(_fact(person, "P19", city))
        facts.append(_fact(person, "P108", CITIES[city][0]))
    for a, b in SPOUSES:
        facts += [_fact(a, "P26", b), _fact(b, "P26", a)]
    for city, (university, country) in CITIES.items():
        facts += [_fact(city, "P17", country), _fact(university, "P17", country)]
    return facts


def write_triples(path: Path, triples, newline: str = "\n") -> Path:
    """A tab-separated triple file, as link-prediction benchmarks ship them (`newline`: LF or CRLF)."""
    path.write_bytes("".join(f"{h}\t{r}\t{t}{newline}" for h, r, t in triples).encode())
    return path


def write_sample_graph(folder: Path) -> Path:
    """The sample graph written as a run's output folder (`folder`, returned)."""
    from kgbuild.graph import write_graph_data

    write_graph_data(folder, make_entities(), make_facts(), BASE, RELATION_LABELS)
    return folder
