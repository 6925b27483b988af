"""The joint entity and relation model (SpERT-style, span-based) behind the `transformers`
backends of the `ner` and `relations` stages, and what turns texts into its inputs and its
outputs back into character spans.

A transformer encoder reads a window of subword tokens. Every run of up to `max_width` words is
a candidate entity span, represented by its first and last subword, the mean of its subwords
and a width embedding, next to the window's [CLS]; a span classifier gives its type or "none".
With an uncased encoder (the packaged all-MiniLM-L6-v2 lowercases every text), each subword
token's input embedding also gets a learned vector for the shape of the word it belongs to
(lower, Title, UPPER, digits, ...; `CASE_SHAPES`), zero at the start of training, so that the
capitalisation the tokenizer throws away still reaches every layer of the encoder.
Every ordered pair of predicted (in training: gold) entity spans is then represented by the two
span vectors, the mean of the subwords between them and the two entity types, and a relation
classifier gives its relation type or "none". Relations depend on this model's own entities, so
relation extraction never inherits another recogniser's mistakes.

Texts longer than the encoder window are cut into overlapping windows of subword tokens; an
entity is kept from the window where its first word sits furthest from the edges, and a relation
from whichever window scores it highest.

A trained model is a folder (MODEL_DIR): `encoder/` (weights and tokenizer, Hugging Face format),
`heads.pt`, `labels.json`, `training_config.json`, `dev_scores.json`, `learning_curve.png` and
`kgbuild_model.json`, the marker that tells a kgbuild model folder from a hub checkpoint."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgbuild.errors import ModelLoadError
from kgbuild.neural.formats import Example, split_words
from kgbuild.types import LABEL_TO_TYPE, type_of

MARKER = "kgbuild_model.json"
# Dataset entity labels with no spaCy namesake, onto kgbuild types (CoNLL04's "Peop").
_EXTRA_TYPES = {"PEOP": "PER", "PEOPLE": "PER", "PERSON": "PER", "LOCATION": "LOC", "ORGANIZATION": "ORG"}


# Word shapes told apart by the case features; 0 is special and padding tokens.
CASE_SHAPES = ("none", "lower", "title", "upper", "capital", "mixed", "digits", "alphanumeric", "other")


def word_shape(word: str) -> int:
    """Index in CASE_SHAPES of a word's shape: "Paris" title, "IBM" upper, "I" capital, "iPhone"
    mixed, "1990" digits, "B52" alphanumeric, "," or a word of a script without case other."""
    cased = [c for c in word if c.isupper() or c.islower()]
    if any(c.isdigit() for c in word):
        return 7 if any(c.isalpha() for c in word) else 6
    if not cased:
        return 8
    if all(c.isupper() for c in cased):
        return 4 if len(cased) == 1 else 3
    if cased[0].isupper():
        return 2
    return 1 if all(c.islower() for c in cased) else 5


def lowercases(tokenizer: Any) -> bool:
    """Whether the tokenizer loses capitalisation (BERT uncased, all-MiniLM-L6-v2)."""
    return tokenizer.tokenize("Paris PARIS") == tokenizer.tokenize("paris paris")


def kgbuild_type(label: str) -> str:
    """kgbuild type of a trained entity label; unknown labels (CasRel's ENT) are MISC."""
    key = label.upper()
    return _EXTRA_TYPES.get(key) or (LABEL_TO_TYPE.get(key) and type_of(key)) or "MISC"


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


@dataclass
class Labels:
    """The label set of a trained model; index 0 of each classifier is "none"."""

    entities: list[str]  # entity types, in classifier order (after "none")
    relations: list[str]  # relation types, in classifier order (after "none")
    relation_names: dict[str, str] = field(default_factory=dict)  # readable name of each relation type

    @classmethod
    def from_examples(cls, examples: list[Example], names: dict[str, str] | None = None, relations: bool = True) -> "Labels":
        ents = sorted({e[2] for ex in examples for e in ex.entities})
        rels = sorted({r[2] for ex in examples for r in ex.relations}) if relations else []
        names = names or {}
        return cls(ents, rels, {r: names.get(r) or r.replace("_", " ").lower() for r in rels})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"entities": self.entities, "relations": self.relations,
                                    "relation_names": self.relation_names,
                                    "kgbuild_types": {e: kgbuild_type(e) for e in self.entities}}, indent=2))

    @classmethod
    def load(cls, path: Path) -> "Labels":
        data = json.loads(path.read_text())
        return cls(data["entities"], data["relations"], data.get("relation_names", {}))


# -- inputs ------------------------------------------------------------------------------------

@dataclass
class Window:
    """One encoder input: a run of subword tokens of one text and the words it covers."""

    text: int  # index of the text in the batch
    input_ids: list[int]  # [CLS] subwords [SEP]
    words: list[int]  # indexes (into the text's words) of the words in the window
    first: list[int]  # position in input_ids of each of those words' first subword
    last: list[int]  # ... and of its last subword
    home: set[int] = field(default_factory=set)  # words whose entities this window decides
    case_ids: list[int] = field(default_factory=list)  # per input id: CASE_SHAPES index of its word


def windows_of(text_index: int, text: str, words: list[tuple[int, int]], tokenizer: Any,
               max_length: int) -> list[Window]:
    """Subword windows of a text, overlapping by half a window when it does not fit in one."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    starts = [w[0] for w in words]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    shapes = [0] * len(ids)
    for t, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        w = bisect.bisect_right(starts, s) - 1
        if w < 0 or s >= words[w][1]:
            continue  # a subword outside every word (stray whitespace-like symbol)
        if w not in first:
            first[w] = t
            shape = word_shape(text[words[w][0] : words[w][1]])
        shapes[t] = shape
        last[w] = t
    present = sorted(first)
    size = max_length - 2
    out: list[Window] = []
    lo = 0
    while True:
        # the longest run of whole words from `lo` that fits in `size` subwords
        hi = lo
        while hi < len(present) and last[present[hi]] - first[present[lo]] < size:
            hi += 1
        hi = max(hi, lo + 1) if present else lo
        chunk = present[lo:hi]
        base = first[chunk[0]] if chunk else 0
        end = last[chunk[-1]] + 1 if chunk else 0
        end = min(end, base + size)
        out.append(Window(text_index, [tokenizer.cls_token_id, *ids[base:end], tokenizer.sep_token_id], chunk,
                          [min(first[w] - base, size - 1) + 1 for w in chunk],
                          [min(last[w] - base, size - 1) + 1 for w in chunk],
                          case_ids=[0, *shapes[base:end], 0]))
        if hi >= len(present):
            break
        lo = max(lo + 1, lo + (hi - lo) // 2)
    # each word's entities are decided by the window where it sits furthest from the edges
    best: dict[int, tuple[int, int]] = {}
    for k, win in enumerate(out):
        n = len(win.words)
        for i, w in enumerate(win.words):
            margin = min(i, n - 1 - i)
            if w not in best or margin > best[w][0]:
                best[w] = (margin, k)
    for w, (_, k) in best.items():
        out[k].home.add(w)
    return out


def candidate_spans(win: Window, max_width: int) -> list[tuple[int, int]]:
    """(first word, last word) positions within the window, widths 1..max_width."""
    n = len(win.words)
    return [(i, j) for i in range(n) for j in range(i, min(n, i + max_width))]


# -- the network -------------------------------------------------------------------------------

def build_network(encoder: Any, n_entities: int, n_relations: int, max_width: int, width_dim: int = 32,
                  type_dim: int = 32, dropout: float = 0.1, case_features: bool = False):
    import torch
    from torch import nn

    class JointNetwork(nn.Module):
        """Encoder + span classifier + pair classifier (see the module docstring)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            hidden = encoder.config.hidden_size
            self.width = nn.Embedding(max_width + 1, width_dim)
            self.case = None
            if case_features:  # zero at first: training starts from the pretrained encoder's own inputs
                self.case = nn.Embedding(len(CASE_SHAPES), hidden)
                nn.init.zeros_(self.case.weight)
            self.types = nn.Embedding(n_entities + 1, type_dim)
            span_dim = 3 * hidden + width_dim
            self.span_dim = span_dim
            self.span_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(span_dim + hidden, hidden), nn.GELU(),
                                           nn.Dropout(dropout), nn.Linear(hidden, n_entities + 1))
            self.pair_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * span_dim + hidden + 2 * type_dim, hidden),
                                           nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_relations + 1))

        def encode(self, input_ids, attention_mask, case_ids):
            if self.case is not None:
                embeds = self.encoder.get_input_embeddings()(input_ids) + self.case(case_ids)
                hidden = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
            else:
                hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            # prefix sums (float32 even under autocast) make every span and gap mean one subtraction
            sums = torch.nn.functional.pad(hidden.float().cumsum(1), (0, 0, 1, 0))
            return hidden, sums

        def spans(self, hidden, sums, b, s, e, w):
            """Span vectors and type logits; b, s, e: window, first and last subword position; w: width in words."""
            mean = (sums[b, e + 1] - sums[b, s]) / (e - s + 1).unsqueeze(-1).to(sums.dtype)
            rep = torch.cat([hidden[b, s], hidden[b, e], mean.to(hidden.dtype), self.width(w).to(hidden.dtype)], -1)
            return rep, self.span_head(torch.cat([rep, hidden[b, 0]], -1))

        def pairs(self, hidden, sums, reps, b, h, t, hs, he, ts, te, h_type, t_type):
            """Relation logits of span pairs (h, t: rows of `reps`; hs..te their subword bounds)."""
            lo = torch.minimum(he, te) + 1
            hi = torch.maximum(hs, ts)  # the gap is [lo, hi); empty when the spans touch or overlap
            n = (hi - lo).clamp(min=0)
            gap = (sums[b, lo + n] - sums[b, lo]) / n.clamp(min=1).unsqueeze(-1).to(sums.dtype)
            x = torch.cat([reps[h], reps[t], gap.to(hidden.dtype), self.types(h_type).to(hidden.dtype),
                           self.types(t_type).to(hidden.dtype)], -1)
            return self.pair_head(x)

    return JointNetwork()


def load_pretrained(name: str | Path, hint: str) -> tuple[Any, Any]:
    """(fast tokenizer, encoder) of a hub name or folder, or a ModelLoadError with `hint`."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        encoder = AutoModel.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load encoder {str(name)!r}: {str(err).splitlines()[0]}", hint=hint) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"encoder {str(name)!r} has no fast tokenizer", hint="pick a model with tokenizer.json")
    return tokenizer, encoder


def input_tensors(batch: list[Window], pad_id: int):
    """Padded input_ids, attention_mask and case ids of a batch of windows."""
    import torch

    length = max(len(w.input_ids) for w in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    case = torch.zeros((len(batch), length), dtype=torch.long)
    for b, win in enumerate(batch):
        ids[b, : len(win.input_ids)] = torch.tensor(win.input_ids)
        mask[b, : len(win.input_ids)] = 1
        if win.case_ids:
            case[b, : len(win.case_ids)] = torch.tensor(win.case_ids)
    return ids, mask, case


# -- a loaded model ----------------------------------------------------------------------------

@dataclass
class Prediction:
    """What the model found in one text."""

    entities: list[tuple[int, int, str, float]]  # (start, end, label, score), character offsets, by start
    relations: list[tuple[int, int, str, float]]  # (head, tail, relation, score), indexes into entities


class JointExtractor:
    """A trained joint model on a device, ready to predict on raw texts."""

    def __init__(self, net: Any, tokenizer: Any, labels: Labels, config: dict[str, Any], device: Any,
                 source: str = "") -> None:
        self.net, self.tokenizer, self.labels, self.config, self.device = net, tokenizer, labels, config, device
        self.max_width = int(config.get("max_width", 10))
        self.max_length = int(config.get("max_length", 256))
        self.source = source

    @classmethod
    def load(cls, path: str | Path, device: Any = None) -> "JointExtractor":
        import torch

        from kgbuild.device import resolve_device

        path = Path(path)
        if not is_model_dir(path):
            raise ModelLoadError(f"{path} is not a model folder written by kgbuild train",
                                 hint=f"it has no {MARKER}; train one with `kgbuild train re ...`")
        device = device if device is not None and not isinstance(device, str) else resolve_device(device or "auto")
        config = json.loads((path / "training_config.json").read_text())
        labels = Labels.load(path / "labels.json")
        tokenizer, encoder = load_pretrained(path / "encoder", "the folder is incomplete; train it again")
        net = build_network(encoder, len(labels.entities), len(labels.relations), int(config["max_width"]),
                            case_features=bool(config.get("case_features", False)))
        missing, unexpected = net.load_state_dict(torch.load(path / "heads.pt", map_location="cpu", weights_only=True),
                                                  strict=False)
        if unexpected or any(not k.startswith("encoder.") for k in missing):
            raise ModelLoadError(f"{path}/heads.pt does not fit its labels.json", hint="train the model again")
        net.eval().to(device)
        return cls(net, tokenizer, labels, config, device, str(path))

    def save(self, path: str | Path) -> None:
        import torch

        path = Path(path)
        (path / "encoder").mkdir(parents=True, exist_ok=True)
        self.net.encoder.save_pretrained(path / "encoder")
        self.tokenizer.save_pretrained(path / "encoder")
        heads = {k: v.detach().cpu() for k, v in self.net.state_dict().items() if not k.startswith("encoder.")}
        torch.save(heads, path / "heads.pt")
        self.labels.save(path / "labels.json")
        (path / "training_config.json").write_text(json.dumps(self.config, indent=2))
        (path / MARKER).write_text(json.dumps({"kind": "kgbuild-joint", "format": 1,
                                               "task": self.config.get("task", "re"),
                                               "base_model": self.config.get("base_model", "")}, indent=2))

    # -- batching -----------------------------------------------------------------------------
    def windows(self, texts: list[str], words: list[list[tuple[int, int]]]) -> list[Window]:
        return [w for i, (t, ws) in enumerate(zip(texts, words))
                for w in windows_of(i, t, ws, self.tokenizer, self.max_length)]

    def tensors(self, batch: list[Window]):
        """input_ids, attention_mask, case ids, and the candidate spans of a batch of windows as tensors."""
        import torch

        ids, mask, case = input_tensors(batch, self.tokenizer.pad_token_id or 0)
        rows = []  # (window, first word pos, last word pos, first subword, last subword, width)
        for b, win in enumerate(batch):
            rows.extend((b, i, j, win.first[i], win.last[j], j - i + 1) for i, j in candidate_spans(win, self.max_width))
        spans = torch.tensor(rows, dtype=torch.long).reshape(-1, 6)
        return ids, mask, case, spans

    def autocast(self):
        import contextlib

        import torch

        if self.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    @property
    def precision(self) -> str:
        if self.device.type != "cuda":
            return "fp32"
        import torch
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, texts: list[str], words: list[list[tuple[int, int]]] | None = None, batch_size: int = 32,
                threshold: float = 0.5, relations: bool = True) -> list[Prediction]:
        """Entities and relations of each text; `words` are its word spans (default: split_words)."""
        import torch

        words = words if words is not None else [split_words(t) for t in texts]
        wins = self.windows(texts, words)
        order = sorted(range(len(wins)), key=lambda k: len(wins[k].input_ids))  # length buckets: little padding
        found_e: list[dict[tuple[int, int], tuple[str, float]]] = [{} for _ in texts]
        found_r: list[dict[tuple[tuple[int, int], tuple[int, int], str], float]] = [{} for _ in texts]
        self.net.eval()
        with torch.inference_mode(), self.autocast():
            for s in range(0, len(order), batch_size):
                batch = [wins[k] for k in order[s : s + batch_size]]
                self._predict_batch(batch, words, found_e, found_r, threshold, relations)
        return [_assemble(ents, rels) for ents, rels in zip(found_e, found_r)]

    def _predict_batch(self, batch, words, found_e, found_r, threshold, relations) -> None:
        import torch

        ids, mask, case, spans = self.tensors(batch)
        if len(spans) == 0:
            return
        dev = self.device
        hidden, sums = self.net.encode(ids.to(dev), mask.to(dev), case.to(dev))
        sp = spans.to(dev)
        reps, logits = self.net.spans(hidden, sums, sp[:, 0], sp[:, 3], sp[:, 4], sp[:, 5].clamp(max=self.max_width))
        probs = logits.float().softmax(-1)
        score, label = probs.max(-1)
        keep = (label > 0).nonzero().squeeze(-1)
        kept = _flat_decode(spans[keep.cpu()].tolist(), score[keep].tolist(), label[keep].tolist(), keep.tolist())
        # kept: per window, [(row in spans, first word pos, last word pos, label, score)]
        pairs = []
        for b, chosen in kept.items():
            win = batch[b]
            for row, i, j, lab, sc in chosen:
                if win.words[i] in win.home:
                    ws = words[win.text]
                    found_e[win.text][(ws[win.words[i]][0], ws[win.words[j]][1])] = (self.labels.entities[lab - 1], sc)
            if relations and self.labels.relations:
                pairs.extend((b, x, y) for x in chosen for y in chosen if x is not y)
        if not pairs:
            return
        p = torch.tensor([[b, x[0], y[0], spans[x[0], 3], spans[x[0], 4], spans[y[0], 3], spans[y[0], 4], x[3], y[3]]
                          for b, x, y in pairs], dtype=torch.long, device=dev)
        rel = self.net.pairs(hidden, sums, reps, p[:, 0], p[:, 1], p[:, 2], p[:, 3], p[:, 4], p[:, 5], p[:, 6],
                             p[:, 7], p[:, 8]).float().softmax(-1)
        rscore, rlabel = rel.max(-1)
        hits = ((rlabel > 0) & (rscore >= threshold)).nonzero().squeeze(-1).tolist()
        for k, sc, lab in zip(hits, rscore[hits].tolist(), rlabel[hits].tolist()):
            b, x, y = pairs[k]
            win = batch[b]
            ws = words[win.text]
            key = ((ws[win.words[x[1]]][0], ws[win.words[x[2]]][1]), (ws[win.words[y[1]]][0], ws[win.words[y[2]]][1]),
                   self.labels.relations[lab - 1])
            found_r[win.text][key] = max(sc, found_r[win.text].get(key, 0.0))


def _flat_decode(rows: list[list[int]], scores: list[float], labels: list[int], index: list[int]):
    """Non-overlapping entity spans per window, best score first (flat NER)."""
    by_window: dict[int, list] = {}
    for row, sc, lab, k in sorted(zip(rows, scores, labels, index), key=lambda r: -r[1]):
        chosen = by_window.setdefault(row[0], [])
        if all(row[2] < c[1] or row[1] > c[2] for c in chosen):
            chosen.append((k, row[1], row[2], lab, sc))
    return by_window


def _assemble(ents: dict, rels: dict) -> Prediction:
    spans = sorted(ents)
    index = {s: i for i, s in enumerate(spans)}
    entities = [(s, e, ents[(s, e)][0], round(ents[(s, e)][1], 4)) for s, e in spans]
    relations = sorted((index[h], index[t], r, round(sc, 4)) for (h, t, r), sc in rels.items()
                       if h in index and t in index)
    return Prediction(entities, relations)
