"""The memory benchmark runs each measured `kgbuild run` in a child process of its own."""

from kgbuild.eval.memory import format_memory, measure_memory, write_big_file


def test_big_file_is_the_asked_size_and_made_of_paragraphs(tmp_path):
    folder = write_big_file(["Marie Curie was born in Warsaw.", "Alan Turing worked at Bletchley Park."],
                            0.01, tmp_path / "big")
    text = (folder / "big.txt").read_text(encoding="utf-8")
    assert 10_000 <= len(text.encode()) < 10_100
    assert "Warsaw.\n\nAlan Turing" in text


def test_memory_benchmark_reports_the_peak_of_each_child_run(sample_corpus):
    result = measure_memory(sample_corpus, docs=[6], file_mb=[0.002])
    docs, big = result["runs"]
    assert (docs["documents"], big["documents"]) == (6, 1) and big["words"] > 250
    # a child that loaded spaCy and torch holds far more than 100 MB; this process's own peak is not counted
    assert all(200 < r["peak_mb"] < 8000 for r in result["runs"])
    assert result["ratio"] is None  # one corpus size: nothing to compare
    assert "6 documents" in format_memory(result)
