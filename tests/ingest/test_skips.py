"""A file that cannot be read is reported with a reason, and the run goes on."""

import builtins
import os

import pytest

from kgbuild.config import IngestConfig
from kgbuild.ingest import iter_corpus
from kgbuild.model import Document, Skipped


def read(root, cfg=None):
    items = list(iter_corpus(root, cfg or IngestConfig()))
    return [i for i in items if isinstance(i, Document)], [i for i in items if isinstance(i, Skipped)]


def good(tmp_path):
    (tmp_path / "good.txt").write_text("Marie Curie was born in Warsaw.")


def test_binary_file_is_skipped_with_reason(tmp_path):
    good(tmp_path)
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 20)
    docs, [skip] = read(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert skip == Skipped(str(tmp_path / "image.txt"), "binary file (contains NUL bytes)")


def test_empty_file_is_skipped(tmp_path):
    good(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("  \n\t\n")
    docs, skipped = read(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert [(os.path.basename(s.path), s.reason) for s in skipped] == [
        ("blank.md", "empty file (whitespace only)"),
        ("empty.txt", "empty file"),
    ]


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    good(tmp_path)
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if os.fspath(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    docs, [skip] = read(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert skip == Skipped(str(locked), "cannot read: Permission denied")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_chmod_000_file_is_skipped(tmp_path):
    good(tmp_path)
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    try:
        docs, [skip] = read(tmp_path)
    finally:
        locked.chmod(0o644)
    assert [d.id for d in docs] == ["good.txt"]
    assert skip == Skipped(str(locked), "cannot read: Permission denied")


def test_file_larger_than_limit_is_skipped(tmp_path):
    good(tmp_path)
    (tmp_path / "big.txt").write_text("word " * 300_000)  # 1.5 MB
    docs, [skip] = read(tmp_path, IngestConfig(max_file_mb=1))
    assert [d.id for d in docs] == ["good.txt"]
    assert skip.reason == "too large: 1.4 MB (limit ingest.max_file_mb = 1)"


def test_unsupported_extension_is_reported(tmp_path):
    good(tmp_path)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "README").write_text("no extension")
    docs, skipped = read(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    readable = "(readable: .txt, .md, .jsonl, .csv, .html, .htm, .pdf)"
    assert [s.reason for s in skipped] == [
        f"unsupported file type (no extension) {readable}",
        f"unsupported file type .png {readable}",
    ]


def test_only_configured_extensions_are_read(tmp_path):
    good(tmp_path)
    (tmp_path / "page.html").write_text("<p>Paris</p>")
    docs, [skip] = read(tmp_path, IngestConfig(extensions=["txt"]))
    assert [d.id for d in docs] == ["good.txt"]
    assert skip.reason == "unsupported file type .html (readable: .txt)"


def test_extension_match_ignores_case(tmp_path):
    (tmp_path / "LOUD.TXT").write_text("Curie")
    docs, skipped = read(tmp_path)
    assert ([d.id for d in docs], skipped) == (["LOUD.TXT"], [])


def test_hidden_files_and_folders_are_ignored_silently(tmp_path):
    good(tmp_path)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("not a document")
    docs, skipped = read(tmp_path)
    assert ([d.id for d in docs], skipped) == (["good.txt"], [])


def test_broken_symlink_is_skipped(tmp_path):
    good(tmp_path)
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    docs, [skip] = read(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert skip.reason == f"broken symlink (target {tmp_path / 'missing.txt'} does not exist)"


def test_fifo_is_skipped_not_waited_on(tmp_path):
    good(tmp_path)
    os.mkfifo(tmp_path / "pipe.txt")
    docs, [skip] = read(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert skip.reason == "not a regular file"


def test_reader_crash_becomes_a_skip(tmp_path, monkeypatch):
    import kgbuild.ingest.readers as readers

    good(tmp_path)
    (tmp_path / "page.html").write_text("<p>Paris</p>")

    def explode(raw, cfg):
        raise ValueError("parser bug")
        yield

    monkeypatch.setitem(readers.READERS, ".html", explode)
    docs, [skip] = read(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert skip.reason == "could not parse as html: ValueError: parser bug"
