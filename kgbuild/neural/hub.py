"""Extraction models from the Hugging Face hub, by name or folder: token-classification NER
checkpoints (BERT-style, e.g. dslim/bert-base-NER) give entity spans, and REBEL-style
sequence-to-sequence models (e.g. Babelscape/rebel-large) give (head, relation, tail) strings.
The `transformers` backends of the ner and relations stages come here for any model that is not a
folder written by `kgbuild train`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kgbuild.device import fp32_weights, resolve_device
from kgbuild.errors import ModelLoadError
from kgbuild.types import TYPES, type_of

KGBUILD_MODEL_FILE = "kgbuild_model.json"
HINT = "pass a model folder, or a hub name on a machine with internet access"

# Labels of common NER checkpoints that kgbuild.types does not spell (WNUT, OntoNotes variants,
# MultiCoNER); anything else that kgbuild.types does not know becomes MISC.
_EXTRA_TYPES = {
    "PERSON": "PER", "PERS": "PER", "PEOPLE": "PER",
    "ORGANIZATION": "ORG", "ORGANISATION": "ORG", "CORPORATION": "ORG", "COMPANY": "ORG", "GROUP": "ORG",
    "LOCATION": "LOC", "PLACE": "LOC", "CITY": "LOC", "COUNTRY": "LOC", "GEO": "LOC",
    "DATETIME": "TIME", "DURATION": "TIME", "TIM": "TIME",
    "NUMBER": "NUM", "NUMERIC": "NUM",
}
# BIO / IOB2 / BIOES / BILOU prefixes: which start an entity, which close it.
_BEGIN, _INSIDE, _END, _SINGLE = "BIES"
_PREFIXES = {"B": _BEGIN, "I": _INSIDE, "E": _END, "L": _END, "S": _SINGLE, "U": _SINGLE}


def is_kgbuild_model_dir(path: Any) -> bool:
    """True when `path` is a directory holding kgbuild_model.json (a model `kgbuild train` wrote)."""
    try:
        return (Path(path) / KGBUILD_MODEL_FILE).is_file()
    except (TypeError, OSError):
        return False


def split_label(label: str) -> tuple[str, str]:
    """(prefix, entity label) of a token label: "B-PER" -> ("B", "PER"), "E_ORG" -> ("E", "ORG"),
    "S-LOC" -> ("S", "LOC"), "PER" (no scheme) -> ("I", "PER"), "O" -> ("O", "")."""
    if label in ("O", "o", ""):
        return "O", ""
    if len(label) > 2 and label[1] in "-_" and label[0].upper() in _PREFIXES:
        return _PREFIXES[label[0].upper()], label[2:]
    return _INSIDE, label


def kgbuild_type(label: str) -> str:
    """kgbuild type (PER, ORG, LOC, TIME, NUM, MISC) of an entity label; unknown labels give MISC."""
    key = label.upper()
    if key in TYPES:
        return key
    return _EXTRA_TYPES.get(key) or type_of(key)


def aggregate_spans(word_ids: list[int | None], offsets: list[tuple[int, int]], labels: list[str],
                    scores: list[float]) -> list[tuple[int, int, str, float]]:
    """Entity spans (char start, char end, raw entity label, mean score) from per-token predictions.

    One entry per token, in text order; `word_ids[i]` is None for special tokens, which are skipped.
    A word takes the label and score of its first word piece and spans all its pieces. Words then
    join into entities: B- (or S-) starts one, I- (or E-) of the same label continues it, E- and S-
    close it, O ends it; an I- after O or after another label starts a new entity (IOB1 and sloppy
    BIO output), and plain labels without a prefix join while the label stays the same. The score
    is the mean of the entity's words' scores."""
    words: list[list] = []  # [start, end, label, score] per word
    last_word = None
    for wid, (start, end), label, score in zip(word_ids, offsets, labels, scores):
        if wid is None or end <= start:
            continue
        if wid == last_word:
            words[-1][1] = max(words[-1][1], end)
        else:
            words.append([start, end, label, score])
            last_word = wid

    spans: list[tuple[int, int, str, float]] = []
    current: list | None = None  # [start, end, entity label, [scores]]

    def close() -> None:
        nonlocal current
        if current is not None:
            spans.append((current[0], current[1], current[2], sum(current[3]) / len(current[3])))
            current = None

    for start, end, label, score in words:
        prefix, entity = split_label(label)
        if prefix == "O":
            close()
            continue
        continues = current is not None and current[2] == entity and prefix in (_INSIDE, _END)
        if continues:
            current[1] = end
            current[3].append(score)
        else:
            close()
            current = [start, end, entity, [score]]
        if prefix in (_END, _SINGLE):
            close()
    close()
    return spans


def _check_local(name_or_path: str, what: str) -> str:
    """The name as given; a path that looks local but is not there fails here, without a hub lookup."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{what} {name!r} is a file, not a model folder", hint=HINT)
        return str(path)
    looks_local = name.startswith((".", "~", "/", "\\")) or name.count("/") > 1 or ":" in name[:3]
    if looks_local or not name:
        raise ModelLoadError(f"{what} {name!r} does not exist", hint=HINT)
    return name


def _load(name_or_path: str, auto_model: Any, what: str, device: str) -> tuple[Any, Any, Any]:
    """(tokenizer, model, torch device): the model in eval mode on the device, fp16 on CUDA."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # kgbuild shows its own progress
    name = _check_local(name_or_path, what)
    torch_device = resolve_device(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = auto_model.from_pretrained(name, **fp32_weights())
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"cannot load {what} {name!r}: {first}", hint=HINT) from None
    model.eval().to(torch_device)
    if torch_device.type == "cuda":
        model.half()
    return tokenizer, model, torch_device


# RoBERTa and its kin number positions from pad_token_id + 1, so 514 positions hold 512 tokens.
_POSITIONS_AFTER_PADDING = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer",
                            "mpnet", "luke"}


def _window(tokenizer: Any, model: Any, max_length: int | None) -> int:
    """Tokens per model input: what the caller asked for, within what the model can take."""
    # A tokenizer that does not know its limit says 1e30; a config without positions says nothing.
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions and getattr(model.config, "model_type", "") in _POSITIONS_AFTER_PADDING:
        positions -= (model.config.pad_token_id or 0) + 1
    limits = [int(n) for n in (getattr(tokenizer, "model_max_length", None), positions, max_length)
              if n and n < 100_000]
    return min(limits) if limits else 512


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without surrounding white space: byte-level and SentencePiece tokenizers may count
    the space before a word as part of it."""
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip())


class TokenClassifierNER:
    """A token-classification checkpoint as an entity recogniser over raw texts.

    Texts longer than the model's window are cut into overlapping windows (`stride` tokens shared by
    neighbours); a token seen by two windows keeps the prediction of the window where it lies
    further from the edge, so an entity in the overlap comes out once."""

    def __init__(self, tokenizer: Any, model: Any, device: Any, name: str, batch_size: int = 32,
                 max_length: int | None = None, stride: int | None = None) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(f"NER model {name!r} has no fast tokenizer (needed for character offsets)",
                                 hint="use a model folder with tokenizer.json")
        self.tokenizer, self.model, self.device, self.name = tokenizer, model, device, name
        self.batch_size = batch_size
        self.max_length = _window(tokenizer, model, max_length)
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        self.stride = stride if stride is not None else max(0, (self.max_length - specials) // 4)
        self.stride = min(self.stride, max(0, self.max_length - specials - 1))
        self.id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        # transformers names the labels of a head it has just initialised LABEL_0, LABEL_1, ...: a base
        # encoder loads as a token classifier without complaint, and tags at random.
        if all(re.fullmatch(r"LABEL_\d+", label) for label in self.id2label.values()):
            labels = ", ".join(sorted(self.id2label.values()))
            raise ModelLoadError(f"NER model {name!r} has no entity labels ({labels}): "
                                 "it is not fine-tuned for entity recognition",
                                 hint="pass an NER checkpoint such as dslim/bert-base-NER, "
                                      "or train one with kgbuild train ner")

    def predict(self, texts: list[str]) -> list[list[tuple[int, int, str, float]]]:
        """Per text, its entities as (char start, char end, kgbuild type, score), in text order."""
        return [[span[:4] for span in spans] for spans in self.predict_labelled(texts)]

    def predict_labelled(self, texts: list[str]) -> list[list[tuple[int, int, str, float, str]]]:
        """As `predict`, with a 5th element: the model's own label ("PER", "GPE", "CORPORATION"),
        which keeps what the kgbuild type folds into MISC."""
        out = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self._predict_batch(texts[i:i + self.batch_size]))
        return out

    def _predict_batch(self, texts: list[str]) -> list[list[tuple[int, int, str, float, str]]]:
        import torch

        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, stride=self.stride,
                             return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
                             return_tensors="pt")
        n_windows = enc["input_ids"].shape[0]
        owners = enc["overflow_to_sample_mapping"].tolist() if "overflow_to_sample_mapping" in enc \
            else list(range(n_windows))
        inputs = {k: enc[k] for k in self.tokenizer.model_input_names if k in enc}
        labels, scores = [], []
        with torch.inference_mode():
            for start in range(0, n_windows, self.batch_size):
                chunk = {k: v[start:start + self.batch_size].to(self.device) for k, v in inputs.items()}
                probs = self.model(**chunk).logits.float().softmax(-1)
                best = probs.max(-1)
                labels.extend(best.indices.cpu().tolist())
                scores.extend(best.values.cpu().tolist())

        # Per text, per token (keyed by its character offsets): (distance from window edge, label, score).
        tokens: list[dict] = [{} for _ in texts]
        offsets = enc["offset_mapping"].tolist()
        for w in range(n_windows):
            word_ids = enc.word_ids(w)
            positions = [j for j, wid in enumerate(word_ids) if wid is not None]
            seen: dict = tokens[owners[w]]
            for rank, j in enumerate(positions):
                start, end = offsets[w][j]
                if end <= start:
                    continue
                centrality = min(rank, len(positions) - 1 - rank)
                key = (start, end, word_ids[j])
                if key not in seen or seen[key][0] < centrality:
                    seen[key] = (centrality, self.id2label.get(labels[w][j], "O"), scores[w][j])

        results = []
        for text, seen in zip(texts, tokens):
            keys = sorted(seen)
            spans = aggregate_spans([k[2] for k in keys], [(k[0], k[1]) for k in keys],
                                    [seen[k][1] for k in keys], [seen[k][2] for k in keys])
            trimmed = [(_trim(text, start, end), label, score) for start, end, label, score in spans]
            results.append([(start, end, kgbuild_type(label), score, label)
                            for (start, end), label, score in trimmed if end > start])
        return results


def load_token_classifier(name_or_path: str, device: str = "auto", batch_size: int = 32,
                          max_length: int | None = None, stride: int | None = None) -> TokenClassifierNER:
    """A token-classification NER model (AutoModelForTokenClassification) from a folder or hub name.

    Its `config.id2label` may use BIO, IOB2, BIOES/BILOU or plain labels. `max_length` caps the
    window (default: what the tokenizer and the model's position table take; 512 when neither
    says); `stride` is the overlap of neighbouring windows (default: a quarter of the window).
    Raises ModelLoadError when the model cannot be found or is not a token classifier."""
    from transformers import AutoModelForTokenClassification

    tokenizer, model, torch_device = _load(name_or_path, AutoModelForTokenClassification, "NER model", device)
    return TokenClassifierNER(tokenizer, model, torch_device, str(name_or_path), batch_size=batch_size,
                              max_length=max_length, stride=stride)


# REBEL's linearisation: <triplet> head <subj> tail <obj> relation [<subj> tail <obj> relation ...]
_MARKERS = re.compile(r"(<triplet>|<subj>|<obj>)")
_NOISE = ("<s>", "</s>", "<pad>")


def parse_rebel(text: str, strip: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """(head, relation, tail) triples from REBEL's decoded output, in order.

    `<triplet> h <subj> t1 <obj> r1 <subj> t2 <obj> r2` gives (h, r1, t1) and (h, r2, t2).
    `<s>`, `</s>`, `<pad>` and the strings in `strip` are removed first; a triple with an empty
    head, tail or relation (a tail without `<obj>`, a `<subj>` before any `<triplet>`) is dropped."""
    for token in _NOISE + tuple(strip):
        if token:
            text = text.replace(token, " ")
    triples: list[tuple[str, str, str]] = []
    head: str | None = None
    tail: str | None = None
    state = None  # what the next text piece is: "head", "tail", "relation" or None (ignored)
    for piece in _MARKERS.split(text):
        if piece == "<triplet>":
            head, tail, state = "", None, "head"
        elif piece == "<subj>":
            tail, state = ("", "tail") if head else (None, None)
        elif piece == "<obj>":
            state = "relation" if tail else None
        else:
            piece = " ".join(piece.split())
            if state == "head":
                head = piece
            elif state == "tail":
                tail = piece
            elif state == "relation":
                if head and tail and piece:
                    triples.append((head, piece, tail))
                tail, state = None, None
    return triples


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Seq2SeqRelationExtractor:
    """A REBEL-style sequence-to-sequence model: text in, linearised triplets out, parsed.

    A text longer than the encoder's window is cut at sentence ends into chunks that fit (a single
    sentence that does not fit is cut by tokens); the triples of all chunks are merged, each once."""

    def __init__(self, tokenizer: Any, model: Any, device: Any, name: str, batch_size: int = 8,
                 max_length: int = 256, num_beams: int = 3, input_length: int | None = None) -> None:
        self.tokenizer, self.model, self.device, self.name = tokenizer, model, device, name
        # Generating past the decoder's last position fails, so the output is capped there too.
        positions = getattr(model.config, "max_position_embeddings", None)
        self.max_length = min(max_length, positions) if positions else max_length
        self.batch_size, self.num_beams = batch_size, num_beams
        self.input_length = _window(tokenizer, model, input_length)
        # Pad, bos and eos come back in the decoded text; the relation markers must stay.
        self.strip = tuple(t for t in (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token)
                           if t and t not in ("<triplet>", "<subj>", "<obj>"))

    def predict(self, texts: list[str]) -> list[list[tuple[str, str, str]]]:
        """Per text, its (head, relation, tail) triples as the model wrote them, in order, each once."""
        chunks, owners = [], []
        for i, text in enumerate(texts):
            for chunk in self.chunks(text):
                chunks.append(chunk)
                owners.append(i)
        decoded = []
        for i in range(0, len(chunks), self.batch_size):
            decoded.extend(self._generate(chunks[i:i + self.batch_size]))
        results: list[list[tuple[str, str, str]]] = [[] for _ in texts]
        for owner, out in zip(owners, decoded):
            for triple in parse_rebel(out, strip=self.strip):
                if triple not in results[owner]:
                    results[owner].append(triple)
        return results

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chunks(self, text: str) -> list[str]:
        """The text cut into pieces that fit the encoder: whole sentences where they fit."""
        budget = self.input_length - self.tokenizer.num_special_tokens_to_add(pair=False)
        if not text.strip():
            return []
        if self._count(text) <= budget:
            return [text]
        pieces: list[tuple[str, int]] = []  # (text, tokens)
        for sentence in _SENTENCE_END.split(text.strip()):
            count = self._count(sentence)
            if count <= budget:
                pieces.append((sentence, count))
            else:
                pieces.extend((cut, self._count(cut)) for cut in self._cut_by_tokens(sentence, budget))
        # Neighbouring sentences share a chunk while their token counts fit; the sum can be a token
        # off the count of the joined text, which the truncation in _generate absorbs.
        chunks: list[list] = []
        for piece, count in pieces:
            if chunks and chunks[-1][1] + count <= budget:
                chunks[-1] = [chunks[-1][0] + " " + piece, chunks[-1][1] + count]
            else:
                chunks.append([piece, count])
        return [chunk for chunk, _ in chunks]

    def _cut_by_tokens(self, sentence: str, budget: int) -> list[str]:
        enc = self.tokenizer(sentence, add_special_tokens=False, return_offsets_mapping=True)
        offsets = [o for o in enc["offset_mapping"] if o[1] > o[0]]
        cuts = []
        for i in range(0, len(offsets), budget):
            part = offsets[i:i + budget]
            cuts.append(sentence[part[0][0]:part[-1][1]])
        return cuts

    def _generate(self, texts: list[str]) -> list[str]:
        import torch

        enc = self.tokenizer(texts, truncation=True, max_length=self.input_length, padding=True,
                             return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            out = self.model.generate(**enc, max_length=self.max_length, num_beams=self.num_beams)
        return self.tokenizer.batch_decode(out, skip_special_tokens=False)


def load_seq2seq_extractor(name_or_path: str, device: str = "auto", batch_size: int = 8, max_length: int = 256,
                           num_beams: int = 3) -> Seq2SeqRelationExtractor:
    """A REBEL-style relation extractor (AutoModelForSeq2SeqLM) from a folder or hub name.

    `max_length` bounds the generated linearisation, `num_beams` the beam search (REBEL's own
    settings are 256 and 3). Raises ModelLoadError when the model cannot be found or is not a
    sequence-to-sequence model."""
    from transformers import AutoModelForSeq2SeqLM

    tokenizer, model, torch_device = _load(name_or_path, AutoModelForSeq2SeqLM, "relation model", device)
    return Seq2SeqRelationExtractor(tokenizer, model, torch_device, str(name_or_path), batch_size=batch_size,
                                    max_length=max_length, num_beams=num_beams)
