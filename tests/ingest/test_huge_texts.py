"""A text longer than ingest.max_document_chars becomes part documents, cut at paragraph breaks,
with nothing lost."""

from hypothesis import given, settings
from hypothesis import strategies as st

from kgbuild.config import IngestConfig
from kgbuild.ingest import count_documents, iter_corpus
from kgbuild.ingest.parts import cut_points, split_document
from kgbuild.model import Document

PARAGRAPHS = [f"Paragraph {i} tells of Ada Lovelace in London. It has two sentences." for i in range(12)]


def joined(parts, text):
    """The parts with the text between them put back."""
    out, at = [], 0
    for part in parts:
        start = part.meta["offset"]
        out.append(text[at:start] + part.text)
        at = start + len(part.text)
    return "".join(out) + text[at:]


def test_text_just_over_the_limit_is_cut_at_paragraph_breaks_losing_nothing():
    text = "\n\n".join(PARAGRAPHS)
    limit = len(text) - 10
    parts = list(split_document(Document("big.txt", text, "corpus/big.txt"), limit))
    assert [p.id for p in parts] == ["big.txt#part-1", "big.txt#part-2"]
    assert all(len(p.text) <= limit for p in parts)
    assert all(p.text.startswith("Paragraph") and p.text.endswith("sentences.") for p in parts)
    assert joined(parts, text) == text
    assert all(p.meta["part_of"] == "big.txt" and text[p.meta["offset"]:].startswith(p.text) for p in parts)


def test_parts_are_the_same_each_time_and_a_short_text_is_left_whole():
    text = "\n\n".join(PARAGRAPHS * 3)
    first = [(p.id, p.text) for p in split_document(Document("a.txt", text), 500)]
    assert first == [(p.id, p.text) for p in split_document(Document("a.txt", text), 500)]
    assert len(first) > 3
    short = Document("b.txt", "One paragraph.")
    assert list(split_document(short, 500)) == [short]
    assert list(split_document(Document("c.txt", text), 0))[0].text == text  # 0: never cut


def test_text_without_paragraphs_is_cut_after_sentences_then_at_spaces():
    sentences = " ".join(f"Sentence number {i} ends here." for i in range(40))
    spans = cut_points(sentences, 200)
    assert len(spans) > 1 and all(sentences[e - 1] == "." for _, e in spans)
    words = " ".join(["word"] * 100)
    spans = cut_points(words, 42)
    assert all(words[s:e].split() == ["word"] * 8 for s, e in spans[:-1])
    assert cut_points("x" * 25, 10) == [(0, 10), (10, 20), (20, 25)]  # one endless word: hard cuts


def test_corpus_walk_yields_parts_of_a_huge_file_and_counts_them(tmp_path):
    text = "\n\n".join(PARAGRAPHS)
    (tmp_path / "big.txt").write_text(text, encoding="utf-8")
    (tmp_path / "small.txt").write_text(PARAGRAPHS[0], encoding="utf-8")
    cfg = IngestConfig(max_document_chars=300)
    docs = list(iter_corpus(tmp_path, cfg))
    ids = [d.id for d in docs]
    assert ids[-1] == "small.txt" and ids[:-1] == [f"big.txt#part-{i}" for i in range(1, len(ids))]
    assert joined(docs[:-1], text) == text
    assert count_documents(tmp_path, cfg) == 4  # an estimate from the size: 3 parts + 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab .!\n\t\"", max_size=400), st.integers(1, 80))
def test_any_text_is_cut_into_parts_within_the_limit_with_only_whitespace_between(text, limit):
    spans = cut_points(text, limit)
    assert all(0 < end - start <= limit for start, end in spans)
    gaps = zip([0] + [end for _, end in spans], [start for start, _ in spans] + [len(text)])
    assert all(a <= b and not text[a:b].strip() for a, b in gaps)
