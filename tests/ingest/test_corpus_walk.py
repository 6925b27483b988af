"""The corpus walk: stable ids, sorted order, symlinks, single files, errors on a bad CORPUS."""

import json
import os

import pytest

from kgbuild.config import IngestConfig
from kgbuild.errors import CorpusError
from kgbuild.ingest import check_corpus, count_documents, iter_corpus
from kgbuild.model import Document, Skipped


EXPECTED = ["a.txt", "news/b.md", "news/curie.txt", "z.jsonl#1", "z.jsonl#L2"]


def ids(root):
    return [i.id for i in iter_corpus(root, IngestConfig()) if isinstance(i, Document)]


def make_corpus(root):
    (root / "news").mkdir(parents=True)
    (root / "news" / "curie.txt").write_text("Marie Curie was born in Warsaw.")
    (root / "news" / "b.md").write_text("# Pierre")
    (root / "a.txt").write_text("Paris is in France.")
    (root / "z.jsonl").write_text('{"id": "1", "text": "One."}\n{"text": "Two."}\n')


def test_ids_are_relative_paths_and_stable(tmp_path):
    make_corpus(tmp_path / "corpus")
    assert ids(tmp_path / "corpus") == EXPECTED
    # the same documents elsewhere on disk get the same ids
    make_corpus(tmp_path / "copy" / "deeper")
    assert ids(str(tmp_path / "copy" / "deeper")) == EXPECTED


def test_single_file_corpus_uses_its_file_name(tmp_path):
    make_corpus(tmp_path)
    [doc] = list(iter_corpus(tmp_path / "news" / "curie.txt", IngestConfig()))
    assert (doc.id, doc.text) == ("curie.txt", "Marie Curie was born in Warsaw.")


def test_missing_corpus_gives_corpus_error(tmp_path):
    with pytest.raises(CorpusError) as info:
        check_corpus(tmp_path / "nope")
    assert str(info.value).startswith(f"corpus {tmp_path / 'nope'} does not exist")
    assert info.value.hint
    assert "\n" not in str(info.value)
    with pytest.raises(CorpusError):
        next(iter_corpus(tmp_path / "nope", IngestConfig()))


def test_corpus_that_is_not_a_file_or_folder_gives_corpus_error(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(CorpusError, match="neither a file nor a folder"):
        check_corpus(tmp_path / "pipe")


def test_check_corpus_returns_the_path(tmp_path):
    assert check_corpus(str(tmp_path)) == tmp_path


def test_symlink_loop_is_not_followed(tmp_path):
    make_corpus(tmp_path)
    (tmp_path / "news" / "loop").symlink_to(tmp_path, target_is_directory=True)
    items = list(iter_corpus(tmp_path, IngestConfig()))
    assert [i.id for i in items if isinstance(i, Document)] == EXPECTED
    [skip] = [i for i in items if isinstance(i, Skipped)]
    assert skip.path == str(tmp_path / "news" / "loop")
    assert skip.reason == "symlink to a folder already read (./), not read twice"


def test_symlinked_folder_outside_corpus_is_read(tmp_path):
    make_corpus(tmp_path / "corpus")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "more.txt").write_text("Radium.")
    (tmp_path / "corpus" / "linked").symlink_to(tmp_path / "extra", target_is_directory=True)
    assert "linked/more.txt" in ids(tmp_path / "corpus")


def test_real_folder_wins_over_a_link_to_it(tmp_path):
    make_corpus(tmp_path)
    (tmp_path / "alias").symlink_to(tmp_path / "news", target_is_directory=True)
    items = list(iter_corpus(tmp_path, IngestConfig()))
    assert "news/curie.txt" in [i.id for i in items if isinstance(i, Document)]
    [skip] = [i for i in items if isinstance(i, Skipped)]
    assert skip.reason == "symlink to a folder already read (news/), not read twice"


def test_count_documents_counts_files_and_jsonl_lines(tmp_path):
    make_corpus(tmp_path)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "more.jsonl").write_text("\n".join(json.dumps({"text": str(i)}) for i in range(5)))
    assert count_documents(tmp_path, IngestConfig()) == 3 + 2 + 5
    assert count_documents(tmp_path, IngestConfig()) == len(ids(tmp_path))
