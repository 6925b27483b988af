"""Encodings are detected, not assumed, and text comes out with one newline style and NFC."""

import pytest

from kgbuild.config import IngestConfig
from kgbuild.ingest import iter_corpus
from kgbuild.ingest.decoding import Unreadable, decode
from kgbuild.model import Document


def only_doc(root):
    [item] = list(iter_corpus(root, IngestConfig()))
    assert isinstance(item, Document), item
    return item


def test_cp1252_file_is_detected_and_decoded(tmp_path):
    (tmp_path / "zh.txt").write_bytes("Zürich café – “naïve” déjà vu.".encode("cp1252"))
    doc = only_doc(tmp_path)
    assert doc.text == "Zürich café – “naïve” déjà vu."
    assert doc.meta["encoding"] == "cp1252"


def test_short_cp1252_text_is_not_misread(tmp_path):
    # charset-normalizer alone reads these eleven bytes as Urdu (cp1006)
    (tmp_path / "short.txt").write_bytes("Zürich café".encode("cp1252"))
    assert only_doc(tmp_path).text == "Zürich café"


def test_cyrillic_cp1251_is_not_forced_into_cp1252(tmp_path):
    text = "Москва — столица России, крупнейший город на реке Москве."
    (tmp_path / "ru.txt").write_bytes(text.encode("cp1251"))
    assert only_doc(tmp_path).text == text


def test_utf16_with_bom(tmp_path):
    text = "Marie Curie, née Skłodowska.\n"
    (tmp_path / "le.txt").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    (tmp_path / "be.txt").write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    docs = list(iter_corpus(tmp_path, IngestConfig()))
    assert [(d.id, d.text, d.meta["encoding"]) for d in docs] == [
        ("be.txt", text, "utf-16-be"),
        ("le.txt", text, "utf-16-le"),
    ]


def test_utf8_bom_is_removed(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + "Curie".encode())
    doc = only_doc(tmp_path)
    assert (doc.text, doc.meta["encoding"]) == ("Curie", "utf-8-sig")


def test_newlines_are_normalised(tmp_path):
    (tmp_path / "crlf.txt").write_bytes(b"one\r\ntwo\rthree\n")
    assert only_doc(tmp_path).text == "one\ntwo\nthree\n"


def test_text_is_nfc_normalised(tmp_path):
    decomposed = "Mare\u0301chal"  # e + combining acute
    (tmp_path / "nfd.txt").write_text(decomposed, encoding="utf-8")
    assert only_doc(tmp_path).text == "Maréchal"


def test_html_meta_charset_is_used(tmp_path):
    html = '<html><head><meta charset="windows-1250"></head><body><p>Łódź</p></body></html>'
    (tmp_path / "pl.html").write_bytes(html.encode("cp1250"))
    doc = only_doc(tmp_path)
    assert (doc.text, doc.meta["encoding"]) == ("Łódź", "cp1250")


def test_utf8_never_goes_to_the_detector(monkeypatch):
    import kgbuild.ingest.decoding as decode_module

    def fail(*args, **kwargs):
        raise AssertionError("charset detection ran on valid UTF-8")

    monkeypatch.setattr(decode_module, "from_bytes", fail)
    assert decode("Zürich".encode()) == ("Zürich", "utf-8")


def test_bad_utf16_after_bom_is_unreadable():
    with pytest.raises(Unreadable, match="utf-16-le byte-order mark"):
        decode(b"\xff\xfe\x00\xd8")  # an unpaired surrogate
