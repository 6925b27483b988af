"""Re-running is cheap: the results of the document-local stages (sentences, mentions, relation
mentions) are kept per document in OUT/cache.sqlite, keyed by the document's content hash and
the hash of the config of those stages. An unchanged document is never parsed twice; linking and
the graph, which depend on the whole corpus, are rebuilt from the cached results every run.

Each batch is committed in one SQLite transaction, so a run that is killed keeps every batch it
finished and the next run resumes from there."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kgbuild.model import Document, Mention, RelationMention, Sentence

CACHE_FILE = "cache.sqlite"
# Bump when the cached layout or the meaning of cached fields changes.
FORMAT = 1


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def stages_hash(config: Any, versions: dict[str, str]) -> str:
    """Hash of everything that changes what the cached stages produce: their config, the package
    versions, and the files of the local model folders they name (`model_digests`)."""
    blob = json.dumps({"format": FORMAT, "ner": asdict(config.ner), "relations": asdict(config.relations),
                       "versions": versions, "models": model_digests(config)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Files up to this size are hashed whole (a trained model's heads, configs, tokenizers); larger ones
# (encoder weights) by size and modification time, which every rewrite changes.
_HASHED_WHOLE = 32 << 20


def model_digests(config: Any) -> dict[str, str]:
    """A digest of every local folder that an option of the ner or relations stage names (a model
    trained with `kgbuild train`, an ensemble with its members, a local checkpoint): a model trained
    again into the same folder changes the results, so the cache must not serve the old ones."""
    out = {}
    for stage in (config.ner, config.relations):
        for value in stage.options.values():
            if isinstance(value, str) and value and Path(value).is_dir():
                out[value] = folder_digest(Path(value))
    return out


def folder_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path).as_posix()}\0{st.st_size}\0".encode())
        h.update(f.read_bytes() if st.st_size <= _HASHED_WHOLE else str(st.st_mtime_ns).encode())
    marker = path / "kgbuild_model.json"  # an ensemble: its members' files too
    if marker.is_file():
        for member in json.loads(marker.read_text()).get("members", []):
            if (path / member).is_dir():
                h.update(folder_digest(path / member).encode())
    return h.hexdigest()[:16]


def pack(doc: Document) -> bytes:
    """A document's document-local results (not its text), compact: what the cache keeps and
    what workers send back."""
    data = {
        "sentences": [[s.start, s.end] for s in doc.sentences],
        "mentions": [asdict(m) for m in doc.mentions],
        "relations": [asdict(r) for r in doc.relations],
    }
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 1)


def unpack(doc: Document, blob: bytes) -> Document:
    """Fill `doc` with the results `pack` saved."""
    data = json.loads(zlib.decompress(blob))
    doc.sentences = [Sentence(s, e) for s, e in data["sentences"]]
    doc.mentions = [Mention(**m) for m in data["mentions"]]
    doc.relations = [RelationMention(**r) for r in data["relations"]]
    return doc


class DocumentCache:
    """Cached document-local results of one output folder."""

    def __init__(self, out: str | Path, key: str) -> None:
        self.path = Path(out) / CACHE_FILE
        self.key = key  # stages_hash of the current config
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, content TEXT NOT NULL, "
                         "stages TEXT NOT NULL, data BLOB NOT NULL)")
        self.hits = 0
        self.misses = 0

    def restore(self, doc: Document) -> bool:
        """Fill `doc` from the cache when its text and the stage config are unchanged."""
        row = self._db.execute("SELECT content, stages, data FROM docs WHERE id = ?", (doc.id,)).fetchone()
        if row is None or row[0] != content_hash(doc.text) or row[1] != self.key:
            self.misses += 1
            return False
        unpack(doc, row[2])
        self.hits += 1
        return True

    def store(self, docs: list[Document], blobs: list[bytes] | None = None) -> None:
        """Save the results of freshly processed documents, in one transaction; `blobs` are
        their `pack`ed results when a worker already packed them."""
        blobs = blobs if blobs is not None else [pack(d) for d in docs]
        rows = [(d.id, content_hash(d.text), self.key, b) for d, b in zip(docs, blobs)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", rows)

    def prune(self, keep: set[str]) -> int:
        """Forget documents that are no longer in the corpus; returns how many."""
        ids = [r[0] for r in self._db.execute("SELECT id FROM docs")]
        gone = [(i,) for i in ids if i not in keep]
        with self._db:
            self._db.executemany("DELETE FROM docs WHERE id = ?", gone)
        return len(gone)

    def close(self) -> None:
        self._db.close()
