"""Random bytes and random Unicode never crash ingest or sentence splitting: every file either
becomes documents or is skipped with a reason."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgbuild.config import IngestConfig
from kgbuild.ingest import iter_corpus
from kgbuild.model import Document, Skipped

EXTENSIONS = [".txt", ".md", ".jsonl", ".csv", ".html", ".pdf"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=4096), ext=st.sampled_from(EXTENSIONS))
def test_random_bytes_are_read_or_skipped_with_a_reason(tmp_path_factory, data, ext):
    root = tmp_path_factory.mktemp("fuzz")
    (root / f"f{ext}").write_bytes(data)
    for item in iter_corpus(root, IngestConfig()):
        assert isinstance(item, (Document, Skipped))
        if isinstance(item, Skipped):
            assert item.reason.strip()
        else:
            assert item.text.strip()


@FUZZ
@given(text=st.text(max_size=2000), ext=st.sampled_from(EXTENSIONS[:5]))
def test_random_unicode_is_read_or_skipped_with_a_reason(tmp_path_factory, text, ext):
    root = tmp_path_factory.mktemp("fuzz")
    (root / f"f{ext}").write_text(text, encoding="utf-8", errors="surrogatepass")
    items = list(iter_corpus(root, IngestConfig()))
    assert all(isinstance(i, (Document, Skipped)) for i in items)


@pytest.fixture(scope="module")
def ner():
    from kgbuild.ner.spacy_ner import SpacyNER

    return SpacyNER()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=600))
def test_sentence_splitting_and_ner_survive_random_unicode(ner, text):
    doc = ner([Document("d", text)])[0]
    for s in doc.sentences:
        assert 0 <= s.start <= s.end <= len(text)
    for m in doc.mentions:
        assert doc.text[m.start:m.end] == m.text and 0 <= m.sentence < len(doc.sentences)
