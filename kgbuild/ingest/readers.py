"""Format readers for the ingest stage: decoded file text in, Documents (or Skipped records) out,
keyed by file extension in READERS."""

from __future__ import annotations

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


def read_jsonl(raw: RawFile, cfg: IngestConfig) -> Iterator[Document | Skipped]:
    """One document per line; a bad line is reported as `path:LINE` and the rest still load."""
    _require_text(raw.text, "empty file (whitespace only)")
    first_line: dict[str, int] = {}  # record id -> line it was first seen on
    for number, line in enumerate(raw.text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{raw.path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield Skipped(where, f"invalid JSON: {err.msg} at column {err.colno}")
            continue
        if not isinstance(record, dict):
            yield Skipped(where, f"not a JSON object (got {type(record).__name__})")
            continue
        if cfg.text_field not in record:
            fields = ", ".join(map(str, record)) or "none"
            yield Skipped(where, f'no "{cfg.text_field}" field (fields: {fields}; set ingest.text_field)')
            continue
        text = record[cfg.text_field]
        if not isinstance(text, str):
            yield Skipped(where, f'"{cfg.text_field}" is not a string (got {type(text).__name__})')
            continue
        if not text.strip():
            yield Skipped(where, f'empty "{cfg.text_field}"')
            continue
        key = record.get(cfg.id_field)
        key = f"L{number}" if key is None or key == "" else str(key)
        if key in first_line:
            # Two records under one id would overwrite each other downstream (caching and
            # linking are keyed by document id), so the second is reported, not renamed.
            yield Skipped(where, f'duplicate id "{key}" (first on line {first_line[key]})')
            continue
        first_line[key] = number
        extra = {k: v for k, v in record.items() if k not in (cfg.text_field, cfg.id_field)}
        meta = {"encoding": raw.encoding, "format": "jsonl", "line": number}
        if extra:
            meta["fields"] = extra
        yield Document(f"{raw.id}#{key}", clean(text), raw.path, meta)


READERS: dict[str, Reader] = {
    ".txt": read_txt,
    ".md": read_markdown,
    ".jsonl": read_jsonl,
    ".html": read_html,
    ".htm": read_html,
}
