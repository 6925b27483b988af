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

import functools
import json
from dataclasses import dataclass, field
from itertools import chain
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


# most words recur from text to text; a word's shape is worked out once
_cached_shape = functools.lru_cache(maxsize=1 << 16)(word_shape)


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
    wins = texts_windows([text], [words], tokenizer, max_length)
    for win in wins:
        win.text = text_index
    return wins


def texts_windows(texts: list[str], words: list[list[tuple[int, int]]], tokenizer: Any,
                  max_length: int) -> list[Window]:
    """The windows of every text (windows_of), text by text: one tokenizer call for all of them
    (the fast tokenizer spreads a batch over the cores) and the subword-to-word mapping done on
    flat arrays, since Python per subword costs more than the tokenizer itself."""
    import numpy as np

    if not texts:
        return []
    all_ids, all_offsets = _encode(tokenizer, texts)
    n_texts = len(texts)
    n_tok = np.fromiter(map(len, all_ids), np.int64, n_texts)
    n_words = np.fromiter(map(len, words), np.int64, n_texts)
    tok_base = np.cumsum(n_tok) - n_tok
    word_base = np.cumsum(n_words) - n_words
    # every text's characters shifted past the previous text's, so that one sorted search over
    # all word starts finds each subword's word
    char_base = np.cumsum([len(t) + 1 for t in texts]) - np.array([len(t) + 1 for t in texts])
    tok_text = np.repeat(np.arange(n_texts), n_tok)
    word_text = np.repeat(np.arange(n_texts), n_words)
    offsets = np.fromiter(chain.from_iterable(chain.from_iterable(all_offsets)), np.int64,
                          2 * int(n_tok.sum())).reshape(-1, 2)
    spans = np.fromiter(chain.from_iterable(chain.from_iterable(words)), np.int64,
                        2 * int(n_words.sum())).reshape(-1, 2)
    start = offsets[:, 0] + char_base[tok_text]
    word_start = spans[:, 0] + char_base[word_text]
    word_end = spans[:, 1] + char_base[word_text]
    w = np.searchsorted(word_start, start, side="right") - 1
    # a subword outside every word of its text (stray whitespace-like symbol) belongs to none
    valid = (offsets[:, 1] > offsets[:, 0]) & (w >= word_base[tok_text])
    valid[valid] &= start[valid] < word_end[w[valid]]
    t_local = np.arange(len(w)) - tok_base[tok_text]
    first = np.full(len(spans), np.iinfo(np.int64).max)
    last = np.full(len(spans), -1)
    np.minimum.at(first, w[valid], t_local[valid])
    np.maximum.at(last, w[valid], t_local[valid])
    present = np.flatnonzero(last >= 0)
    shapes = np.zeros(len(spans), np.int64)
    shapes[present] = [_cached_shape(texts[t][a:b]) for t, a, b in
                       zip(word_text[present].tolist(), spans[present, 0].tolist(), spans[present, 1].tolist())]
    tok_shapes = np.where(valid, shapes[np.maximum(w, 0)], 0)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    size = max_length - 2
    # most texts fit in one window: theirs are cut from whole-batch arrays; text i's words with
    # subwords are present[p_lo[i]:p_hi[i]]
    p_text = word_text[present]
    p_lo = np.searchsorted(p_text, np.arange(n_texts), side="left")
    p_hi = np.searchsorted(p_text, np.arange(n_texts), side="right")
    has = p_hi > p_lo
    base = np.zeros(n_texts, np.int64)
    base[has] = first[present[p_lo[has]]]
    end = np.zeros(n_texts, np.int64)
    end[has] = np.minimum(last[present[p_hi[has] - 1]] + 1, base[has] + size)
    fits = ~has
    if has.any():  # groups are contiguous, so each reduceat run stops where the next text's begins
        fits[has] = np.maximum.reduceat(last[present], p_lo[has]) - base[has] < size
    word_base_of = np.repeat(base, p_hi - p_lo)
    first_pos = (np.minimum(first[present] - word_base_of, size - 1) + 1).tolist()
    last_pos = (np.minimum(last[present] - word_base_of, size - 1) + 1).tolist()
    local = (present - word_base[p_text]).tolist()
    case = tok_shapes.tolist()
    out: list[Window] = []
    for i, (fit, lo, hi, b, e, t0) in enumerate(zip(fits.tolist(), p_lo.tolist(), p_hi.tolist(), base.tolist(),
                                                    end.tolist(), tok_base.tolist())):
        if fit:  # one window decides all the text's words
            chunk = local[lo:hi]
            out.append(Window(i, [cls, *all_ids[i][b:e], sep], chunk, first_pos[lo:hi], last_pos[lo:hi], set(chunk),
                              [0, *case[t0 + b : t0 + e], 0]))
            continue
        w_lo, w_hi = int(word_base[i]), int(word_base[i] + n_words[i])
        out.extend(_text_windows(i, all_ids[i], tok_shapes[t0 : t0 + int(n_tok[i])],
                                 np.flatnonzero(last[w_lo:w_hi] >= 0), first[w_lo:w_hi], last[w_lo:w_hi], cls, sep,
                                 size))
    return out


def _encode(tokenizer: Any, texts: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Subword ids and character offsets of each text, without special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and backend.truncation is None and backend.padding is None:
        # the Rust tokenizer straight: the Python wrapper adds nothing here but dicts to fill
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        return [e.ids for e in encodings], [e.offsets for e in encodings]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], enc["offset_mapping"]


def _text_windows(text_index: int, ids: list[int], shapes: Any, present: Any, first: Any, last: Any, cls: int,
                  sep: int, size: int) -> list[Window]:
    """The windows of one text too long for one; `present`: its words that have subwords, `first` /
    `last`: each word's first and last subword (indexed by word), `shapes`: each subword's CASE_SHAPES
    index."""
    import numpy as np

    def window(chunk: Any) -> Window:
        base = int(first[chunk[0]])
        end = min(int(last[chunk[-1]]) + 1, base + size)
        return Window(text_index, [cls, *ids[base:end], sep], chunk.tolist(),
                      (np.minimum(first[chunk] - base, size - 1) + 1).tolist(),
                      (np.minimum(last[chunk] - base, size - 1) + 1).tolist(),
                      case_ids=[0, *shapes[base:end].tolist(), 0])

    out: list[Window] = []
    fl, ll, pl = first.tolist(), last.tolist(), present.tolist()
    lo = 0
    while True:
        # the longest run of whole words from `lo` that fits in `size` subwords
        hi = lo
        while hi < len(pl) and ll[pl[hi]] - fl[pl[lo]] < size:
            hi += 1
        hi = max(hi, lo + 1)
        out.append(window(present[lo:hi]))
        if hi >= len(pl):
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


@functools.lru_cache(maxsize=1024)
def _span_grid(n: int, max_width: int):
    """candidate_spans of a window of n words as two arrays (first, last word positions)."""
    import numpy as np

    width = np.minimum(max_width, n - np.arange(n))
    first = np.repeat(np.arange(n), width)
    last = first + np.arange(len(first)) - np.repeat(np.cumsum(width) - width, width)
    return first, last


@functools.lru_cache(maxsize=256)
def _pair_grid(m: int):
    """Every ordered pair (x, y), x != y, of m items, x-major: the pairs of m entity spans."""
    import numpy as np

    x, y = np.divmod(np.arange(m * m), m)
    return x[x != y], y[x != y]


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
    import numpy as np
    import torch

    lengths = np.fromiter((len(w.input_ids) for w in batch), np.int64, len(batch))
    filled = np.arange(lengths.max()) < lengths[:, None]  # row-major, as the windows' ids are chained
    ids = np.full(filled.shape, pad_id, np.int64)
    ids[filled] = np.fromiter(chain.from_iterable(w.input_ids for w in batch), np.int64, int(lengths.sum()))
    case = np.zeros(filled.shape, np.int64)
    if all(len(w.case_ids) == len(w.input_ids) for w in batch):
        case[filled] = np.fromiter(chain.from_iterable(w.case_ids for w in batch), np.int64, int(lengths.sum()))
    else:
        for b, win in enumerate(batch):
            case[b, : len(win.case_ids)] = win.case_ids
    return torch.from_numpy(ids), torch.from_numpy(filled.astype(np.int64)), torch.from_numpy(case)


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
        return texts_windows(texts, words, self.tokenizer, self.max_length)

    def batches(self, wins: list[Window], batch_size: int) -> list[list[Window]]:
        """Batches of windows of similar length (little padding)."""
        order = sorted(range(len(wins)), key=lambda k: len(wins[k].input_ids))
        return [[wins[k] for k in order[s : s + batch_size]] for s in range(0, len(order), batch_size)]

    def tensors(self, batch: list[Window]):
        """input_ids, attention_mask, case ids, and the candidate spans of a batch of windows as tensors;
        a span row is (window, first word pos, last word pos, first subword, last subword, width)."""
        import numpy as np
        import torch

        ids, mask, case = input_tensors(batch, self.tokenizer.pad_token_id or 0)
        n_words = np.fromiter((len(w.words) for w in batch), np.int64, len(batch))
        grids = [_span_grid(n, self.max_width) for n in n_words.tolist()]
        counts = np.fromiter((len(g[0]) for g in grids), np.int64, len(batch))
        i = np.concatenate([g[0] for g in grids])
        j = np.concatenate([g[1] for g in grids])
        base = np.repeat(np.cumsum(n_words) - n_words, counts)  # each window's words in the chained lists
        first = np.fromiter(chain.from_iterable(w.first for w in batch), np.int64, int(n_words.sum()))
        last = np.fromiter(chain.from_iterable(w.last for w in batch), np.int64, int(n_words.sum()))
        window = np.repeat(np.arange(len(batch)), counts)
        spans = np.stack([window, i, j, first[base + i], last[base + j], j - i + 1], 1)
        return ids, mask, case, torch.from_numpy(spans.astype(np.int64, copy=False))

    def to_device(self, *tensors):
        """The tensors on the model's device, in one copy when they share a dtype: each copy is a
        round trip to the device, whatever its size."""
        if self.device.type == "cpu":
            return tensors
        import torch

        if len({t.dtype for t in tensors}) > 1:
            return tuple(t.to(self.device) for t in tensors)
        flat = torch.cat([t.reshape(-1) for t in tensors]).to(self.device)
        return tuple(part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors))

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
        found_e: list[dict[tuple[int, int], tuple[str, float]]] = [{} for _ in texts]
        found_r: list[dict[tuple[tuple[int, int], tuple[int, int], str], float]] = [{} for _ in texts]
        self.net.eval()
        with torch.inference_mode(), self.autocast():
            for batch in self.batches(self.windows(texts, words), batch_size):
                self._predict_batch(batch, words, found_e, found_r, threshold, relations)
        return [_assemble(ents, rels) for ents, rels in zip(found_e, found_r)]

    def forward_spans(self, ids, mask, case, spans):
        """Encoder and span head over device tensors: hidden states, prefix sums, span vectors, type logits."""
        hidden, sums = self.net.encode(ids, mask, case)
        reps, logits = self.net.spans(hidden, sums, spans[:, 0], spans[:, 3], spans[:, 4],
                                      spans[:, 5].clamp(max=self.max_width))
        return hidden, sums, reps, logits

    def forward_pairs(self, hidden, sums, reps, pairs):
        """Relation logits of pair rows (window, head row, tail row, their subword bounds, their types)."""
        p = pairs
        return self.net.pairs(hidden, sums, reps, p[:, 0], p[:, 1], p[:, 2], p[:, 3], p[:, 4], p[:, 5], p[:, 6],
                              p[:, 7], p[:, 8])

    def _predict_batch(self, batch, words, found_e, found_r, threshold, relations):
        """Fill found_e / found_r from one batch of windows; returns the device tensors that the two
        forward passes read (ids, mask, case, spans, pairs or None), so the model can be timed alone."""
        import numpy as np
        import torch

        ids, mask, case, spans = self.tensors(batch)
        if len(spans) == 0:
            return None
        inputs = self.to_device(ids, mask, case, spans)
        hidden, sums, reps, logits = self.forward_spans(*inputs)
        score, label = logits.float().softmax(-1).max(-1)
        # one copy back for all spans (labels are small integers, exact as floats)
        top = torch.stack([score, label.float()]).cpu().numpy()
        rows = spans.numpy()
        keep = np.flatnonzero(top[1] > 0)
        kept = _flat_decode(rows[keep], top[0, keep], top[1, keep].astype(np.int64), keep)
        # kept: per window, [(row in spans, first word pos, last word pos, label, score)]
        for b, chosen in kept.items():
            win = batch[b]
            ws = words[win.text]
            for _, i, j, lab, sc in chosen:
                if win.words[i] in win.home:
                    found_e[win.text][(ws[win.words[i]][0], ws[win.words[j]][1])] = (self.labels.entities[lab - 1], sc)
        pairs = _pair_rows(kept, rows) if relations and self.labels.relations else None
        if pairs is None:
            return (*inputs, None)
        (p,) = self.to_device(torch.from_numpy(pairs))
        rscore, rlabel = self.forward_pairs(hidden, sums, reps, p).float().softmax(-1).max(-1)
        top = torch.stack([rscore, rlabel.float()]).cpu().numpy()
        hits = np.flatnonzero((top[1] > 0) & (top[0] >= threshold))
        for (b, x, y), sc, lab in zip(pairs[hits, :3].tolist(), top[0, hits].tolist(),
                                      top[1, hits].astype(np.int64).tolist()):
            win = batch[b]
            ws = words[win.text]
            (_, hi, hj), (_, ti, tj) = rows[x, :3].tolist(), rows[y, :3].tolist()
            key = ((ws[win.words[hi]][0], ws[win.words[hj]][1]), (ws[win.words[ti]][0], ws[win.words[tj]][1]),
                   self.labels.relations[lab - 1])
            found_r[win.text][key] = max(sc, found_r[win.text].get(key, 0.0))
        return (*inputs, p)


def _flat_decode(rows: Any, scores: Any, labels: Any, index: Any) -> dict[int, list]:
    """Non-overlapping entity spans per window, best score first (flat NER); arrays of the kept spans."""
    import numpy as np

    by_window: dict[int, list] = {}
    order = np.argsort(-scores, kind="stable")
    for row, sc, lab, k in zip(rows[order, :3].tolist(), scores[order].tolist(), labels[order].tolist(),
                               index[order].tolist()):
        chosen = by_window.setdefault(row[0], [])
        if all(row[2] < c[1] or row[1] > c[2] for c in chosen):
            chosen.append((k, row[1], row[2], lab, sc))
    return by_window


def _pair_rows(kept: dict[int, list], rows: Any):
    """Pair rows (window, head row, tail row, head first / last subword, tail first / last subword,
    head type, tail type) of every ordered pair of kept spans in one window; None when there is none."""
    import numpy as np

    windows, heads, tails, head_types, tail_types = [], [], [], [], []
    for b, chosen in kept.items():
        if len(chosen) < 2:
            continue
        x, y = _pair_grid(len(chosen))
        span_rows = np.array([c[0] for c in chosen])
        types = np.array([c[3] for c in chosen])
        windows.append(np.full(len(x), b))
        heads.append(span_rows[x])
        tails.append(span_rows[y])
        head_types.append(types[x])
        tail_types.append(types[y])
    if not windows:
        return None
    h, t = np.concatenate(heads), np.concatenate(tails)
    return np.stack([np.concatenate(windows), h, t, rows[h, 3], rows[h, 4], rows[t, 3], rows[t, 4],
                     np.concatenate(head_types), np.concatenate(tail_types)], 1).astype(np.int64, copy=False)


def _assemble(ents: dict, rels: dict) -> Prediction:
    spans = sorted(ents)
    index = {s: i for i, s in enumerate(spans)}
    entities = [(s, e, ents[(s, e)][0], round(ents[(s, e)][1], 4)) for s, e in spans]
    relations = sorted((index[h], index[t], r, round(sc, 4)) for (h, t, r), sc in rels.items()
                       if h in index and t in index)
    return Prediction(entities, relations)
