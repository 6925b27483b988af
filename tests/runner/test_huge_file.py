"""A file longer than ingest.max_document_chars runs as part documents: facts cite the right
sentences, and linking makes one entity of a name found in several parts."""

import kgbuild
from kgbuild.config import load_config
from kgbuild.runner import run


def test_run_over_a_split_file_gives_facts_with_their_evidence_sentences(tmp_path, sample_corpus):
    text = (sample_corpus / "science" / "marie_curie.txt").read_text(encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    big = text.rstrip() + "\n\n" + text
    (corpus / "big.txt").write_text(big, encoding="utf-8")
    config = load_config(overrides=[f"ingest.max_document_chars={len(text)}"])
    result = run(corpus, tmp_path / "out", config)
    assert result.documents == 2

    rows = kgbuild.query(tmp_path / "out", """
        PREFIX rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
        PREFIX prov: <http://www.w3.org/ns/prov#>
        PREFIX kg:   <http://kgbuild.org/kg/ontology/>
        SELECT ?document ?sentence ?start ?end WHERE {
          ?statement prov:wasDerivedFrom ?doc ; kg:sentence ?sentence ; kg:start ?start ; kg:end ?end .
          ?doc kg:path ?document . }""").rows
    parts = {"big.txt#part-1": 0, "big.txt#part-2": len(text.rstrip()) + 2}
    assert {r[0] for r in rows} == set(parts)
    for document, sentence, start, end in rows:
        offset = parts[document]
        assert big[offset + start : offset + end] == sentence

    curie = kgbuild.query(tmp_path / "out", """
        PREFIX kg: <http://kgbuild.org/kg/ontology/>
        SELECT ?doc WHERE { <http://kgbuild.org/kg/entity/person/marie-curie> kg:mentionedIn ?doc }""").rows
    assert len(curie) == 2
