"""Ingest, the first stage: walk the corpus and turn every readable file into Documents, reporting
each file or record it cannot read as Skipped."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from kgbuild.config import IngestConfig
from kgbuild.errors import CorpusError
from kgbuild.ingest.decoding import Unreadable, decode
from kgbuild.ingest.parts import split_document
from kgbuild.ingest.readers import BINARY_READERS, READERS, RawFile, declared_charset
from kgbuild.model import Document, Skipped

__all__ = ["READERS", "check_corpus", "count_documents", "iter_corpus"]

_MB = 1024 * 1024
_HINT = "pass a folder of documents (" + ", ".join([*READERS, *BINARY_READERS]) + ") or a single such file"


def check_corpus(root: str | Path) -> Path:
    """Return the corpus path, or raise CorpusError when there is nothing there to read."""
    path = Path(root).expanduser()
    if not path.exists():
        if path.is_symlink():
            raise CorpusError(f"corpus {path} is a broken symlink", hint=f"point it at an existing folder; {_HINT}")
        raise CorpusError(f"corpus {path} does not exist", hint=f"check the path; {_HINT}")
    if not (path.is_dir() or path.is_file()):
        raise CorpusError(f"corpus {path} is neither a file nor a folder", hint=_HINT)
    return path


def _extensions(cfg: IngestConfig) -> list[str]:
    """cfg.extensions as lower-case '.ext', keeping only those a reader exists for."""
    wanted = ["." + ext.lower().lstrip(".") for ext in cfg.extensions]
    return [ext for ext in dict.fromkeys(wanted) if ext in READERS or ext in BINARY_READERS]


def _selected(doc_id: str, cfg: IngestConfig) -> bool:
    """Whether a file passes the include / exclude globs (matched against its relative path;
    `*` crosses folders, so "*.txt" is every .txt file and "drafts/*" everything under drafts)."""
    if cfg.include and not any(fnmatch.fnmatchcase(doc_id, g) for g in cfg.include):
        return False
    return not any(fnmatch.fnmatchcase(doc_id, g) for g in cfg.exclude)


def _walk(root: Path) -> Iterator[tuple[str, str] | Skipped]:
    """(document id, path) for every non-hidden file under root, in sorted path order.

    Directory symlinks are followed, but only after the real folders and once per real
    folder, so a link back to a parent cannot loop and a linked folder is not read twice.
    """
    if not root.is_dir():
        yield root.name, str(root)
        return
    found: list[tuple[str, str]] = []
    problems: list[Skipped] = []
    seen: dict[str, str] = {os.path.realpath(root): "."}  # real folder -> id prefix it was read as
    links: list[tuple[str, Path]] = []  # (link path, its id prefix), walked after the real tree

    def unreadable_dir(err: OSError) -> None:
        problems.append(Skipped(str(err.filename), f"cannot read folder: {err.strerror}"))

    def walk(top: str, prefix: Path) -> None:
        for dirpath, dirnames, filenames in os.walk(top, onerror=unreadable_dir):
            rel_dir = prefix / Path(dirpath).relative_to(top)
            keep = []
            for name in sorted(dirnames):
                full = os.path.join(dirpath, name)
                if name.startswith("."):
                    continue
                if os.path.islink(full):
                    links.append((full, rel_dir / name))
                    continue
                real = os.path.realpath(full)
                if real not in seen:  # only a linked folder outside the corpus can meet one again
                    seen[real] = (rel_dir / name).as_posix()
                    keep.append(name)
            dirnames[:] = keep
            for name in filenames:
                if not name.startswith("."):
                    found.append(((rel_dir / name).as_posix(), os.path.join(dirpath, name)))

    walk(str(root), Path())
    while links:
        link, prefix = links.pop(0)
        real = os.path.realpath(link)
        if real in seen:
            problems.append(Skipped(link, f"symlink to a folder already read ({seen[real]}/), not read twice"))
        elif not os.path.isdir(real):
            problems.append(Skipped(link, "broken symlink to a folder"))
        else:
            seen[real] = prefix.as_posix()
            walk(link, prefix)
    items: list[tuple[str, str] | Skipped] = [*found, *problems]
    items.sort(key=lambda item: item.path if isinstance(item, Skipped) else item[1])
    yield from items


def _unsupported(ext: str, readable: list[str]) -> str:
    kind = f"file type {ext}" if ext else "file type (no extension)"
    return f"unsupported {kind} (readable: {', '.join(readable)})"


def _read_file(doc_id: str, path: str, ext: str, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            yield Skipped(path, f"broken symlink (target {os.readlink(path)} does not exist)")
        else:
            yield Skipped(path, "file disappeared while reading the corpus")
        return
    except OSError as err:
        yield Skipped(path, f"cannot read: {err.strerror}")
        return
    if not stat.S_ISREG(st.st_mode):
        # Opening a FIFO would block the run forever.
        yield Skipped(path, "not a regular file")
        return
    if st.st_size > cfg.max_file_mb * _MB:
        limit = f"{cfg.max_file_mb:g}"
        yield Skipped(path, f"too large: {st.st_size / _MB:.1f} MB (limit ingest.max_file_mb = {limit})")
        return
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        yield Skipped(path, f"cannot read: {err.strerror}")
        return
    try:
        if ext in BINARY_READERS:
            yield from BINARY_READERS[ext](doc_id, path, data, cfg)
            return
        declared = declared_charset(data) if ext in (".html", ".htm") else None
        text, encoding = decode(data, declared)
        yield from READERS[ext](RawFile(doc_id, path, text, encoding), cfg)
    except Unreadable as err:
        yield Skipped(path, str(err))
    except Exception as err:  # noqa: BLE001
        # The stage's contract: one bad file never stops a run over a large corpus.
        yield Skipped(path, f"could not parse as {ext.lstrip('.')}: {type(err).__name__}: {err}")


def iter_corpus(root: str | Path, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    """Every document under root (a folder, read recursively, or one file), in sorted id order;
    a text over cfg.max_document_chars comes out as its parts (kgbuild.ingest.parts).

    Files and records that cannot be read come out as Skipped with the reason; only a missing
    corpus raises (CorpusError), on the first next().
    """
    root = check_corpus(root)
    readable = _extensions(cfg)
    for item in _walk(root):
        if isinstance(item, Skipped):
            yield item
            continue
        doc_id, path = item
        if not _selected(doc_id, cfg):
            continue
        ext = os.path.splitext(path)[1].lower()
        if ext not in readable:
            yield Skipped(path, _unsupported(ext, readable))
            continue
        for doc in _read_file(doc_id, path, ext, cfg):
            if isinstance(doc, Document):
                yield from split_document(doc, cfg.max_document_chars)
            else:
                yield doc


def _count_lines(path: str) -> int:
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def _parts_estimate(path: str, cfg: IngestConfig) -> int:
    """How many part documents a file's text makes, from its size in bytes."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return 1
    limit = cfg.max_document_chars
    return max(1, -(-size // limit)) if limit > 0 else 1


def count_documents(root: str | Path, cfg: IngestConfig) -> int:
    """A cheap estimate of how many Documents iter_corpus yields, for a progress bar: one per
    readable file, one per line of a .jsonl file. Nothing is decoded."""
    root = check_corpus(root)
    readable = _extensions(cfg)
    total = 0
    for item in _walk(root):
        if isinstance(item, Skipped):
            continue
        doc_id, path = item
        ext = os.path.splitext(path)[1].lower()
        if ext not in readable or not _selected(doc_id, cfg):
            continue
        if ext not in (".jsonl", ".csv"):
            total += _parts_estimate(path, cfg)
            continue
        try:
            if os.path.getsize(path) <= cfg.max_file_mb * _MB:
                total += _count_lines(path)
        except OSError:
            pass  # iter_corpus reports it
    return total
