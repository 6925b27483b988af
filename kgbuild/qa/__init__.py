"""The question-answering stage: natural-language questions answered from the graph, with the
chain of facts behind each answer, its evidence sentences, the SPARQL query for its stated part,
and answers bridged by the link-prediction embeddings where a fact is missing.

    from kgbuild.qa import ask, load_triples
    load_triples("kb.tsv", "out/kb")                       # a KB file -> an output folder
    result = ask("out/kb", "who directed [Blade Runner]")  # AskResult, answers best first

`train_qa` fits a path scorer on question-answer pairs (saved in OUT/qa); `evaluate_metaqa` is
the MetaQA benchmark."""

from kgbuild.qa.answer import Answer, Answerer, AskResult, Source, Step, ask, path_query
from kgbuild.qa.load import LoadResult, load_triples, read_triples

__all__ = ["Answer", "Answerer", "AskResult", "LoadResult", "Source", "Step", "ask", "load_triples",
           "path_query", "read_triples"]
