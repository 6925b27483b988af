"""Each format reader keeps the text a person would read and drops the markup."""

import json

from kgbuild.config import IngestConfig
from kgbuild.ingest import iter_corpus
from kgbuild.model import Document, Skipped


def read(root, cfg=None):
    items = list(iter_corpus(root, cfg or IngestConfig()))
    return [i for i in items if isinstance(i, Document)], [i for i in items if isinstance(i, Skipped)]


def test_txt_is_read_as_is_with_source_and_meta(tmp_path):
    (tmp_path / "curie.txt").write_text("Marie Curie was born in Warsaw.\n", encoding="utf-8")
    docs, skipped = read(tmp_path)
    assert skipped == []
    [doc] = docs
    assert doc.text == "Marie Curie was born in Warsaw.\n"
    assert doc.source == str(tmp_path / "curie.txt")
    assert doc.meta == {"encoding": "utf-8", "format": "txt"}


def test_html_keeps_visible_text_only(tmp_path):
    html = """<!DOCTYPE html><html><head><title>Curie  bio</title>
    <meta name="description" content="HIDDEN-META"><style>p { color: red }</style>
    <script>var hidden = "HIDDEN-SCRIPT";</script></head>
    <body><!-- HIDDEN-COMMENT --><noscript>HIDDEN-NOSCRIPT</noscript>
    <template><p>HIDDEN-TEMPLATE</p></template>
    <h1>Marie Curie</h1><p>She was born in <b>Warsaw</b>.</p><p>She moved to Paris.</p>
    <ul><li>Physics</li><li>Chemistry</li></ul>Line one<br>Line two
    <table><tr><td>1867</td><td>born</td></tr><tr><td>1934</td><td>died</td></tr></table>
    </body></html>"""
    (tmp_path / "curie.html").write_text(html, encoding="utf-8")
    [doc], _ = read(tmp_path)
    assert "HIDDEN" not in doc.text and "color" not in doc.text and "<" not in doc.text
    assert doc.text.split("\n\n") == [
        "Marie Curie",
        "She was born in Warsaw.",
        "She moved to Paris.",
        "Physics",
        "Chemistry",
        "Line one",
        "Line two",
        "1867\tborn",
        "1934\tdied",
    ]
    assert doc.meta["title"] == "Curie bio"
    assert doc.meta["format"] == "html"


def test_html_keeps_preformatted_whitespace(tmp_path):
    (tmp_path / "code.htm").write_text("<p>Example:</p><pre>a  =  1\nb = 2</pre>", encoding="utf-8")
    [doc], _ = read(tmp_path)
    assert doc.text == "Example:\n\na  =  1\n\nb = 2"


def test_html_with_no_visible_text_is_skipped(tmp_path):
    (tmp_path / "empty.html").write_text("<html><head><title>T</title><script>x()</script></head></html>")
    docs, [skip] = read(tmp_path)
    assert docs == []
    assert skip.reason == "no visible text after removing markup"


def test_deeply_nested_html_does_not_crash(tmp_path):
    (tmp_path / "deep.html").write_text("<div>" * 5000 + "Deep text." + "</div>" * 5000)
    [doc], skipped = read(tmp_path)
    assert skipped == []
    assert doc.text == "Deep text."


def test_markdown_is_rendered_to_plain_text(tmp_path):
    md = (
        "# Marie Curie\n\n"
        "She was born in **Warsaw** and worked in *Paris*.\n\n"
        "- [Nobel Prize](https://www.nobelprize.org/curie) in 1903\n"
        "- `radium`\n\n"
        "<script>alert('HIDDEN')</script>\n"
    )
    (tmp_path / "curie.md").write_text(md, encoding="utf-8")
    [doc], _ = read(tmp_path)
    assert doc.text.split("\n\n") == [
        "Marie Curie",
        "She was born in Warsaw and worked in Paris.",
        "Nobel Prize in 1903",
        "radium",
    ]
    assert doc.meta["format"] == "md"


def test_jsonl_records_become_documents_with_ids(tmp_path):
    lines = [
        {"id": "q1", "text": "Marie Curie was born in Warsaw.", "url": "https://x"},
        {"text": "Pierre Curie was born in Paris."},
        {"id": 7, "text": "Radium was discovered in 1898."},
    ]
    (tmp_path / "facts.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    docs, skipped = read(tmp_path)
    assert skipped == []
    assert [d.id for d in docs] == ["facts.jsonl#q1", "facts.jsonl#L2", "facts.jsonl#7"]
    assert docs[0].meta == {"encoding": "utf-8", "format": "jsonl", "line": 1, "fields": {"url": "https://x"}}
    assert docs[1].text == "Pierre Curie was born in Paris."


def test_jsonl_bad_line_is_skipped_others_load(tmp_path):
    path = tmp_path / "facts.jsonl"
    path.write_text(
        '{"id": "a", "text": "Good one."}\n'
        '{"id": "b", "text": "broken\n'
        '{"id": "c", "body": "no text field"}\n'
        "\n"
        '["not", "an", "object"]\n'
        '{"id": "a", "text": "Same id again."}\n'
        '{"id": "e", "text": "Good two."}\n',
        encoding="utf-8",
    )
    docs, skipped = read(tmp_path)
    assert [d.id for d in docs] == ["facts.jsonl#a", "facts.jsonl#e"]
    assert [s.path for s in skipped] == [f"{path}:2", f"{path}:3", f"{path}:5", f"{path}:6"]
    assert skipped[0].reason.startswith("invalid JSON: ")
    assert skipped[1].reason == 'no "text" field (fields: id, body; set ingest.text_field)'
    assert skipped[2].reason == "not a JSON object (got list)"
    assert skipped[3].reason == 'duplicate id "a" (first on line 1)'


def test_jsonl_field_names_come_from_config(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"doc_id": "x", "body": "Curie won twice."}\n', encoding="utf-8")
    [doc], _ = read(tmp_path, IngestConfig(text_field="body", id_field="doc_id"))
    assert (doc.id, doc.text) == ("r.jsonl#x", "Curie won twice.")
