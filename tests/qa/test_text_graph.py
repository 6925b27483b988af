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
