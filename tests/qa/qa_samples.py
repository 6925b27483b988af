"""A small KB of people, cities and employers for the QA tests, written as a triple file, and
questions about it. No models.

One true fact is left out on purpose: Zofia Nowak was born in Warsaw (everyone else at the
University of Warsaw was), so only the embeddings can answer where she was born."""

from __future__ import annotations

from pathlib import Path

CITIES = {"Warsaw": ("University of Warsaw", "Poland"), "Paris": ("Sorbonne", "France"),
          "London": ("University of London", "United Kingdom")}
PEOPLE = {"Marie Curie": "Warsaw", "Jan Kowalski": "Warsaw", "Anna Nowak": "Warsaw", "Zofia Nowak": "Warsaw",
          "Pierre Curie": "Paris", "Jean Dupont": "Paris", "Claire Martin": "Paris",
          "Alan Turing": "London", "John Smith": "London", "Mary Jones": "London"}
HELD_OUT = ("Zofia Nowak", "place_of_birth", "Warsaw")

QUESTIONS = [
    ("where was [Marie Curie] born", "Warsaw"),
    ("where was [Jean Dupont] born", "Paris"),
    ("where was [Mary Jones] born", "London"),
    ("where was [Jan Kowalski] born", "Warsaw"),
    ("which country was [Claire Martin] born in", "France"),
    ("which country was [John Smith] born in", "United Kingdom"),
    ("which country was [Anna Nowak] born in", "Poland"),
    ("who employed [Pierre Curie]", "Sorbonne"),
    ("who employed [Alan Turing]", "University of London"),
    ("who employed [Jan Kowalski]", "University of Warsaw"),
    ("who was [Marie Curie] married to", "Pierre Curie"),
    ("who was [Jean Dupont] married to", "Claire Martin"),
]


def kb_triples() -> list[tuple[str, str, str]]:
    triples = []
    for person, city in PEOPLE.items():
        if (person, "place_of_birth", city) != HELD_OUT:
            triples.append((person, "place_of_birth", city))
        triples.append((person, "employer", CITIES[city][0]))
    for city, (_, country) in CITIES.items():
        triples.append((city, "country", country))
    triples += [("Marie Curie", "spouse", "Pierre Curie"), ("Jean Dupont", "spouse", "Claire Martin")]
    return triples


def write_kb(path: Path, extra_lines: str = "") -> Path:
    path.write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in kb_triples()) + extra_lines, encoding="utf-8")
    return path


def write_questions(path: Path) -> Path:
    path.write_text("".join(f"{q}\t{a}\n" for q, a in QUESTIONS), encoding="utf-8")
    return path
