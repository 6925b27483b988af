"""Convert FB15k-237's entity2wikidata.json (Freebase id -> Wikidata id, label, alternatives,
description; 14,515 entities, ../shared/data/fb15k-237) into a kgbuild KB .jsonl file:

    python -m kgbuild.linking.kb_convert ../shared/data/fb15k-237/entity2wikidata.json -o kb.jsonl

Each line: id (the Wikidata entity IRI), label, aliases (Wikidata alternatives, then the
Freebase id), description. FB15k-237 gives no types, so none is written."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def convert_fb15k(data: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for mid, row in data.items():
        label = row.get("label")
        if not label:
            continue
        qid = row.get("wikidata_id")
        yield {
            "id": f"http://www.wikidata.org/entity/{qid}" if qid else f"http://rdf.freebase.com/ns{mid.replace('/', '.')}",
            "label": label,
            "aliases": [a for a in row.get("alternatives") or [] if a and a != label],
            "description": row.get("description") or "",
            "freebase": mid,
        }


def write_kb(records: Iterator[dict[str, Any]], out: str | Path) -> int:
    n = 0
    with Path(out).open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="entity2wikidata.json")
    parser.add_argument("-o", "--output", required=True, help="KB .jsonl to write")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.source).read_text(encoding="utf-8"))
    n = write_kb(convert_fb15k(data), args.output)
    print(f"wrote {n} KB entries to {args.output}")


if __name__ == "__main__":
    main()
