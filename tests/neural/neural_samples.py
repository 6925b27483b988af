"""Four annotated sentences in the CoNLL04 format, for training the joint model in tests."""

import json
from pathlib import Path

SENTENCES = [
    ("John Smith works for Acme Corp .", [(0, 2, "Peop"), (4, 6, "Org")], [(0, 1, "Work_For")]),
    ("Mary Jones lives in Paris .", [(0, 2, "Peop"), (4, 5, "Loc")], [(0, 1, "Live_In")]),
    ("Acme Corp is based in Berlin .", [(0, 2, "Org"), (5, 6, "Loc")], [(0, 1, "OrgBased_In")]),
    ("Peter Brown works for Globex .", [(0, 2, "Peop"), (4, 5, "Org")], [(0, 1, "Work_For")]),
]


def write_conll04(path: Path, sentences=SENTENCES) -> Path:
    """The sentences in SpERT JSON (the CoNLL04 format)."""
    records = [{"tokens": text.split(), "entities": [{"type": t, "start": s, "end": e} for s, e, t in ents],
                "relations": [{"type": r, "head": h, "tail": t} for h, t, r in rels]}
               for text, ents, rels in sentences]
    path.write_text(json.dumps(records))
    return path
