"""PDF text layers, CSV rows and include / exclude globs."""

from pathlib import Path

import pytest

from kgbuild.config import IngestConfig
from kgbuild.ingest import count_documents, iter_corpus
from kgbuild.model import Document, Skipped


def read(root: Path, cfg: IngestConfig | None = None):
    items = list(iter_corpus(root, cfg or IngestConfig()))
    return [i for i in items if isinstance(i, Document)], [i for i in items if isinstance(i, Skipped)]


def make_pdf(path: Path, pages: list[str]) -> None:
    """A real PDF with a text layer: one Helvetica text object per page, offsets computed."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None,
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET" if text else ""
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)


def test_pdf_text_layer_is_read_page_by_page(tmp_path):
    make_pdf(tmp_path / "report.pdf", ["Marie Curie was born in Warsaw.", "She moved to Paris."])
    [doc], skipped = read(tmp_path)
    assert not skipped
    assert doc.id == "report.pdf" and doc.meta["pages"] == 2
    assert doc.text == "Marie Curie was born in Warsaw.\n\nShe moved to Paris."


def test_pdf_without_text_layer_is_skipped_with_reason(tmp_path):
    make_pdf(tmp_path / "scan.pdf", [""])
    docs, [skip] = read(tmp_path)
    assert not docs and "no text layer" in skip.reason and "OCR" in skip.reason


def test_broken_pdf_is_skipped_not_fatal(tmp_path):
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    (tmp_path / "ok.txt").write_text("Alan Turing lived in London.")
    docs, [skip] = read(tmp_path)
    assert [d.id for d in docs] == ["ok.txt"] and skip.path.endswith("bad.pdf")


def test_csv_rows_are_documents_with_configurable_text_field(tmp_path):
    (tmp_path / "news.csv").write_text(
        'uid;body;source\n1;"Siemens is based in Munich.";wire\n2;"IBM was founded in 1911.\nIt grew.";web\n',
        encoding="utf-8")
    docs, skipped = read(tmp_path, IngestConfig(text_field="body", id_field="uid"))
    assert not skipped
    assert [d.id for d in docs] == ["news.csv#1", "news.csv#2"]
    assert docs[1].text == "IBM was founded in 1911.\nIt grew." and docs[0].meta["fields"] == {"source": "wire"}
    assert count_documents(tmp_path, IngestConfig()) >= 2


def test_csv_without_the_text_column_is_skipped_naming_the_columns(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    docs, [skip] = read(tmp_path)
    assert not docs and 'no "text" column (columns: a, b' in skip.reason


def test_csv_row_with_too_many_cells_is_skipped_others_load(tmp_path):
    (tmp_path / "t.csv").write_text("id,text\n1,Paris is in France.\n2,too,many,cells\n3,Rome is in Italy.\n")
    docs, [skip] = read(tmp_path)
    assert [d.id for d in docs] == ["t.csv#1", "t.csv#3"] and skip.path.endswith("t.csv:3")


@pytest.mark.parametrize("include, exclude, expected", [
    ([], [], ["a.txt", "drafts/b.txt", "notes.md"]),
    (["*.txt"], [], ["a.txt", "drafts/b.txt"]),
    ([], ["drafts/*"], ["a.txt", "notes.md"]),
    (["*.txt"], ["drafts/*"], ["a.txt"]),
])
def test_include_and_exclude_globs_select_files(tmp_path, include, exclude, expected):
    (tmp_path / "drafts").mkdir()
    for name in ["a.txt", "drafts/b.txt", "notes.md"]:
        (tmp_path / name).write_text("Ada Lovelace lived in London.")
    cfg = IngestConfig(include=include, exclude=exclude)
    docs, skipped = read(tmp_path, cfg)
    assert [d.id for d in docs] == expected and not skipped
    assert count_documents(tmp_path, cfg) == len(expected)
