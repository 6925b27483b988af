"""Questions on a graph built from text: answers carry the sentences their facts came from."""

from __future__ import annotations

from kgbuild.embed.graph import read_graph
from kgbuild.qa import Answerer


def test_answers_on_a_text_built_graph_cite_their_evidence_sentences(sample_run):
    out = sample_run.out
    graph = read_graph(out)
    subject, relation, _ = graph.triples[0]
    question = f"What is the {graph.relation_labels[relation]} of {graph.label(subject)}?"
    result = Answerer.open(out, embeddings=False).answer(question)
    assert result.found and result.topic == subject
    stated = [step for a in result.answers if a.stated for step in a.chain]
    assert stated, result.message
    for step in stated:
        assert step.sources and all(src.sentence and src.document for src in step.sources)


def test_long_evidence_is_shown_as_the_sentences_that_name_both_ends():
    from kgbuild.qa.answer import QUOTE_CHARS, quote_evidence

    first = "Marie Curie was born in Warsaw, Poland, in 1867."
    middle = " ".join(["She moved to Paris in 1891 to study physics and mathematics."] * 6)
    last = "She died in 1934 in Passy, France."
    shown = quote_evidence(f"{first}\n\n{middle}\n{last}")
    assert shown == f"{first} … {last}"
    assert quote_evidence("Warsaw is in\nPoland.") == "Warsaw is in Poland."  # short: whole, on one line
    unbroken = "x" * (QUOTE_CHARS + 10)
    assert quote_evidence(unbroken) == unbroken  # nothing to cut at: whole
    titled = quote_evidence(f"Dr. J. Smith met her in the U.S. Army in 1900. {middle} {last}")
    assert titled == f"Dr. J. Smith met her in the U.S. Army in 1900. … {last}"
