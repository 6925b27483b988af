"""Bytes to text for the ingest stage: find the encoding (BOM, UTF-8, Western text, then
charset-normalizer), decode, and normalise newlines and Unicode."""

from __future__ import annotations

import codecs
import unicodedata

from charset_normalizer import from_bytes


class Unreadable(Exception):
    """A file or record cannot be turned into a document; `str(err)` is the Skipped reason."""


# UTF-32 first: its LE mark starts with the UTF-16 LE mark.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Non-letters that real Western text holds in cp1252 (typographic quotes, dashes, currency,
# Spanish marks, no-break space); digits-like marks such as ¹ ³ ¼ are left out because they are
# what Polish or Czech bytes turn into when read as cp1252.
_CP1252_PUNCT = frozenset("\u00a0’‘“”„–—…€£§°«»¡¿·•©®™")


# Pages that say latin-1 or ascii are cp1252 in practice (browsers read them so, per WHATWG).
_DECLARED_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252"}


def clean(text: str) -> str:
    """One newline convention and NFC, so ids, offsets and entity names match across files."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def _plausible_cp1252(data: bytes) -> str | None:
    """The cp1252 reading of data when it looks like Western European text, else None.

    charset-normalizer guesses badly on short Latin text ("Zürich café" comes back as Urdu
    cp1006), and cp1252 is by far the most common legacy encoding in the corpora we read, so it
    is tried first. Cyrillic or Greek read as cp1252 is mostly accented letters, and Central
    European text turns into symbols (ł -> ³), so both fail the test and go to the detector.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = non_ascii_letters = 0
    for ch in text:
        if ch.isascii():
            letters += ch.isalpha()
        elif ch.isalpha():
            letters += 1
            non_ascii_letters += 1
        elif ch not in _CP1252_PUNCT:
            return None
    if letters and non_ascii_letters / letters > 0.3:
        return None
    return text


def decode(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode a file's bytes; return (text, encoding name) or raise Unreadable.

    `declared` is an encoding the file names itself (an HTML meta charset); it is tried after
    UTF-8 and before any guessing.
    """
    if not data:
        raise Unreadable("empty file")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return clean(data[len(bom) :].decode(encoding.removesuffix("-sig"))), encoding
            except UnicodeDecodeError:
                raise Unreadable(f"undecodable: starts with a {encoding} byte-order mark but is not valid {encoding}")
    if b"\x00" in data:
        # NUL bytes are valid UTF-8, so test them before the fast path; only UTF-16/32
        # without a BOM legitimately has them.
        best = from_bytes(data).best()
        if best is not None and best.encoding.startswith(("utf_16", "utf_32")):
            return clean(str(best)), codecs.lookup(best.encoding).name
        raise Unreadable("binary file (contains NUL bytes)")
    # The common case, and a cheap one: no detection for files that are valid UTF-8.
    try:
        return clean(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            encoding = _DECLARED_ALIASES.get(codecs.lookup(declared).name, codecs.lookup(declared).name)
            if not encoding.startswith(("utf-16", "utf-32")):
                return clean(data.decode(encoding)), encoding
        except (LookupError, UnicodeDecodeError):
            pass  # the declaration is wrong or unknown: fall back to guessing
    text = _plausible_cp1252(data)
    if text is not None:
        return clean(text), "cp1252"
    best = from_bytes(data).best()
    if best is None:
        raise Unreadable("undecodable: not UTF-8 and no known text encoding fits")
    return clean(str(best)), codecs.lookup(best.encoding).name
