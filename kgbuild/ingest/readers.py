"""Format readers for the ingest stage: decoded file text in, Documents (or Skipped records) out,
keyed by file extension in READERS."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from bs4 import BeautifulSoup, CData, NavigableString, Tag

from kgbuild.config import IngestConfig
from kgbuild.ingest.decoding import Unreadable, clean
from kgbuild.model import Document, Skipped

if TYPE_CHECKING:
    from markdown_it import MarkdownIt


@dataclass(frozen=True, slots=True)
class RawFile:
    """A decoded file on its way to a reader."""

    id: str  # document id: path relative to the corpus root, posix style
    path: str  # the file path, as Document.source and Skipped.path
    text: str  # decoded, newline- and NFC-normalised
    encoding: str  # the encoding it was decoded from


Reader = Callable[[RawFile, IngestConfig], Iterator["Document | Skipped"]]


def _require_text(text: str, why: str) -> str:
    if not text.strip():
        raise Unreadable(why)
    return text


def read_txt(raw: RawFile, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    text = _require_text(raw.text, "empty file (whitespace only)")
    yield Document(raw.id, text, raw.path, {"encoding": raw.encoding, "format": "txt"})


# --- HTML ---------------------------------------------------------------------------------

# Never shown to a reader of the page; <head> goes too, after its <title> is kept in meta.
_HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "meta", "link", "title"})
# Elements that start a new line on the page: without a break here, "<p>He won.</p><p>She"
# would read "He won.She" and sentence splitting would fail.
_BLOCK = frozenset(
    "address article aside blockquote br caption dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table "
    "tbody tfoot thead tr ul".split()
)
_CELL = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\n\r\f\v]+")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)

# Markers pushed on the walk stack to act when an element closes.
_NEWLINE, _TAB, _PRE_END = object(), object(), object()


def declared_charset(data: bytes) -> str | None:
    """The charset an HTML file names in a <meta> tag near its top, if any."""
    match = _CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def visible_text(soup: BeautifulSoup) -> str:
    """The text a browser would show, one paragraph per block element.

    Blocks are separated by a blank line so that a heading never runs into the sentence after
    it: the sentence splitter treats a blank line as a boundary."""
    parts: list[str] = []
    pre_depth = 0
    # An explicit stack, not recursion: malformed pages (thousands of unclosed <div>s) nest
    # deeper than Python's recursion limit.
    stack: list[object] = [soup]
    while stack:
        node = stack.pop()
        if node is _NEWLINE:
            parts.append("\n")
        elif node is _TAB:
            parts.append("\t")
        elif node is _PRE_END:
            pre_depth -= 1
        elif isinstance(node, NavigableString):
            # Subclasses are comments, doctypes, processing instructions: not visible.
            if type(node) is NavigableString or type(node) is CData:
                parts.append(str(node) if pre_depth else _SPACES.sub(" ", node))
        elif isinstance(node, Tag) and node.name not in _HIDDEN:
            if node.name in _BLOCK:
                parts.append("\n")
                stack.append(_NEWLINE)
            elif node.name in _CELL:
                stack.append(_TAB)
            if node.name == "pre":
                pre_depth += 1
                stack.append(_PRE_END)
            stack.extend(reversed(node.contents))
    lines = ("".join(parts)).split("\n")
    return "\n\n".join(line.strip() for line in lines if line.strip())


def _html_document(raw: RawFile, html: str, fmt: str) -> Document:
    soup = BeautifulSoup(html, "html.parser")
    meta: dict[str, object] = {"encoding": raw.encoding, "format": fmt}
    title = soup.head.title if soup.head and soup.head.title else soup.title
    if title is not None and title.get_text(strip=True):
        meta["title"] = _SPACES.sub(" ", title.get_text(strip=True))
    text = _require_text(visible_text(soup), "no visible text after removing markup")
    return Document(raw.id, text, raw.path, meta)


def read_html(raw: RawFile, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    _require_text(raw.text, "empty file (whitespace only)")
    yield _html_document(raw, raw.text, "html")


# --- Markdown -----------------------------------------------------------------------------


@cache
def _markdown() -> MarkdownIt:
    # Imported on first use: only corpora with .md files pay for it. Raw HTML is passed
    # through so that the HTML reader drops it the same way as in an .html file.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def read_markdown(raw: RawFile, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    _require_text(raw.text, "empty file (whitespace only)")
    yield _html_document(raw, _markdown().render(raw.text), "md")


# --- JSON Lines ---------------------------------------------------------------------------


def _record_document(raw: RawFile, cfg: IngestConfig, record: dict, number: int, fmt: str,
                     first_line: dict[str, int]) -> Document | Skipped:
    """One .jsonl / .csv record as a Document, or the reason it cannot be one."""
    where = f"{raw.path}:{number}"
    if cfg.text_field not in record:
        fields = ", ".join(map(str, record)) or "none"
        return Skipped(where, f'no "{cfg.text_field}" field (fields: {fields}; set ingest.text_field)')
    text = record[cfg.text_field]
    if not isinstance(text, str):
        return Skipped(where, f'"{cfg.text_field}" is not a string (got {type(text).__name__})')
    if not text.strip():
        return Skipped(where, f'empty "{cfg.text_field}"')
    key = record.get(cfg.id_field)
    key = f"L{number}" if key is None or key == "" else str(key)
    if key in first_line:
        # Two records under one id would overwrite each other downstream (caching and
        # linking are keyed by document id), so the second is reported, not renamed.
        return Skipped(where, f'duplicate id "{key}" (first on line {first_line[key]})')
    first_line[key] = number
    extra = {k: v for k, v in record.items() if k not in (cfg.text_field, cfg.id_field)}
    meta = {"encoding": raw.encoding, "format": fmt, "line": number}
    if extra:
        meta["fields"] = extra
    return Document(f"{raw.id}#{key}", clean(text), raw.path, meta)


def read_jsonl(raw: RawFile, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    """One document per line; a bad line is reported as `path:LINE` and the rest still load."""
    _require_text(raw.text, "empty file (whitespace only)")
    first_line: dict[str, int] = {}  # record id -> line it was first seen on
    for number, line in enumerate(raw.text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield Skipped(f"{raw.path}:{number}", f"invalid JSON: {err.msg} at column {err.colno}")
            continue
        if not isinstance(record, dict):
            yield Skipped(f"{raw.path}:{number}", f"not a JSON object (got {type(record).__name__})")
            continue
        yield _record_document(raw, cfg, record, number, "jsonl", first_line)


# --- CSV ----------------------------------------------------------------------------------


def read_csv(raw: RawFile, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    """One document per row, text and id from the header's ingest.text_field / id_field columns.

    The delimiter is sniffed (comma, semicolon, tab or pipe); rows are numbered by the line
    they start on, so a quoted multi-line text still points at the right line."""
    _require_text(raw.text, "empty file (whitespace only)")
    sample = raw.text[:65536]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(raw.text, newline=""), dialect=dialect)
    if not reader.fieldnames or cfg.text_field not in reader.fieldnames:
        columns = ", ".join(reader.fieldnames or []) or "none"
        raise Unreadable(f'no "{cfg.text_field}" column (columns: {columns}; set ingest.text_field)')
    first_line: dict[str, int] = {}
    line = reader.line_num + 1
    for row in reader:
        if None in row:  # more cells than header columns
            yield Skipped(f"{raw.path}:{line}", f"{len(reader.fieldnames) + len(row[None])} cells for "
                                                f"{len(reader.fieldnames)} columns")
        elif any(v is not None and v.strip() for v in row.values()):
            yield _record_document(raw, cfg, dict(row), line, "csv", first_line)
        line = reader.line_num + 1


# --- PDF ----------------------------------------------------------------------------------


def read_pdf(doc_id: str, path: str, data: bytes, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    """The text layer of a PDF, a paragraph break between pages. A PDF without one (a scan) is
    reported, not guessed at: OCR is a separate step."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pdf = PdfReader(io.BytesIO(data))
        if pdf.is_encrypted and not pdf.decrypt(""):
            raise Unreadable("encrypted PDF (needs a password); decrypt it first")
        pages = [page.extract_text() or "" for page in pdf.pages]
    except PdfReadError as err:
        raise Unreadable(f"not a readable PDF: {err}") from None
    text = "\n\n".join(clean(p).strip() for p in pages if p.strip())
    if not text.strip():
        raise Unreadable(f"PDF has no text layer ({len(pages)} page(s), scanned?); run OCR first")
    meta: dict[str, object] = {"encoding": "pdf", "format": "pdf", "pages": len(pages)}
    title = (pdf.metadata or {}).get("/Title") if pdf.metadata else None
    if isinstance(title, str) and title.strip():
        meta["title"] = title.strip()
    yield Document(doc_id, text, path, meta)


READERS: dict[str, Reader] = {
    ".txt": read_txt,
    ".md": read_markdown,
    ".jsonl": read_jsonl,
    ".csv": read_csv,
    ".html": read_html,
    ".htm": read_html,
}

# Formats read from bytes, not decoded text.
BinaryReader = Callable[[str, str, bytes, IngestConfig], Iterator["Document | Skipped"]]
BINARY_READERS: dict[str, BinaryReader] = {".pdf": read_pdf}
