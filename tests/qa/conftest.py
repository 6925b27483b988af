"""Fixtures of the QA tests: a small KB of people, cities and employers written as a triple
file, loaded with `kgbuild load`, and a path scorer trained on a few questions about it.

One true fact is left out on purpose: Zofia Nowak was born in Warsaw (everyone else at the
University of Warsaw was), so only the embeddings can answer where she was born."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def people_kb(tmp_path_factory) -> Path:
    """OUT of the people KB: loaded, with a trained scorer in OUT/qa and small embeddings. Only read it."""
    from kgbuild.embed import train_embeddings
    from kgbuild.qa.load import load_triples
    from kgbuild.qa.train import train_qa

    root = tmp_path_factory.mktemp("qa")
    out = root / "out"
    load_triples(write_kb(root / "kb.tsv"), out)
    train_qa(out, write_questions(root / "questions.tsv"), hops=2, seed=0)
    train_embeddings(out, model="distmult", epochs=150, device="cpu", seed=0)
    return out

