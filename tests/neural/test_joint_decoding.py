"""The joint model's array decoding against the plain rules it implements: greedy flat NER by
descending score within a window, every ordered pair of kept spans, a relation kept when it scores
at least the threshold, an entity from its home window, a relation's best score over windows."""

import numpy as np
import pytest
import torch

from kgbuild.neural.formats import split_words
from kgbuild.neural.joint import JointExtractor, flat_decode, pair_positions


def greedy(window, first, last, scores):
    """The rule, span by span: best score first over all spans (ties in input order), a span kept
    unless it overlaps one kept before it in its window; windows in the order they first keep one."""
    kept: dict[int, list[int]] = {}
    for k in sorted(range(len(scores)), key=lambda k: -scores[k]):
        chosen = kept.setdefault(window[k], [])
        if all(last[k] < first[c] or first[k] > last[c] for c in chosen):
            chosen.append(k)
    return [k for chosen in kept.values() for k in chosen]


def random_spans(rng, n_windows, n_spans, n_words=12, max_width=4, levels=None):
    window = rng.integers(0, n_windows, n_spans)
    first = rng.integers(0, n_words, n_spans)
    last = np.minimum(first + rng.integers(0, max_width, n_spans), n_words - 1)
    scores = rng.random(n_spans).astype(np.float32)
    if levels:  # few distinct scores: many ties
        scores = (np.floor(scores * levels) / levels).astype(np.float32)
    return window, first, last, scores


@pytest.mark.parametrize("seed", range(30))
def test_flat_decode_keeps_what_the_greedy_rule_keeps_in_the_same_order(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    spans = random_spans(rng, int(rng.integers(1, 6)), n, levels=3 if seed % 2 else None)
    assert flat_decode(*spans).tolist() == greedy(*(a.tolist() for a in spans))


def test_flat_decode_of_no_span_and_of_one_span():
    nothing = np.zeros(0, np.int64)
    assert flat_decode(nothing, nothing, nothing, np.zeros(0, np.float32)).tolist() == []
    one = np.array([3])
    assert flat_decode(one, np.array([2]), np.array([5]), np.array([0.7], np.float32)).tolist() == [0]


def test_flat_decode_drops_spans_overlapping_a_better_one_only_in_their_own_window():
    window = np.array([0, 0, 0, 0, 1])
    first = np.array([0, 2, 3, 5, 2])
    last = np.array([2, 4, 3, 6, 4])  # [0,2] and [2,4] share word 2; [3,3] lies inside [2,4]
    scores = np.array([0.6, 0.9, 0.8, 0.5, 0.95], np.float32)
    # window 1 first (its best beats window 0's best); in window 0 [2,4] wins over [0,2] and [3,3]
    assert flat_decode(window, first, last, scores).tolist() == [4, 1, 3]


def test_flat_decode_breaks_score_ties_by_input_order():
    window = np.array([1, 0, 0, 1])
    first = np.array([0, 0, 1, 1])
    last = np.array([1, 1, 2, 2])
    scores = np.full(4, 0.5, np.float32)
    assert flat_decode(window, first, last, scores).tolist() == greedy([1, 0, 0, 1], [0, 0, 1, 1], [1, 1, 2, 2],
                                                                       [0.5] * 4) == [0, 1]


def test_pair_positions_are_every_ordered_pair_within_a_window_head_major():
    window = np.array([4, 4, 4, 7, 2, 2])
    heads, tails = pair_positions(window)
    expected = [(x, y) for group in ([0, 1, 2], [3], [4, 5]) for x in group for y in group if x != y]
    assert list(zip(heads.tolist(), tails.tolist())) == expected
    assert [len(a) for a in pair_positions(np.zeros(0, np.int64))] == [0, 0]


def reference_predict(model, texts, batch_size, threshold):
    """predict as span-by-span Python: per window the greedy rule, an entity from the window its
    first word calls home, the relation of every ordered pair of kept spans in one window scoring
    at least `threshold`, at its best score over windows, where both spans are entities."""
    words = [split_words(t) for t in texts]
    ents = [{} for _ in texts]
    rels = [{} for _ in texts]
    for batch in model.batches(model.windows(texts, words), batch_size):
        ids, mask, case, spans = model.tensors(batch)
        if len(spans) == 0:
            continue
        states, probs = model.forward_spans(ids, mask, case, spans)
        score, label = probs.max(-1)
        rows = spans.tolist()
        keep = [k for k in range(len(rows)) if label[k] > 0]
        order = greedy([rows[k][0] for k in keep], [rows[k][1] for k in keep], [rows[k][2] for k in keep],
                       [score[k].item() for k in keep])
        kept = [keep[k] for k in order]
        for k in kept:
            b, i, j = rows[k][:3]
            win, ws = batch[b], words[batch[b].text]
            if win.words[i] in win.home:
                ents[win.text][(ws[win.words[i]][0], ws[win.words[j]][1])] = (model.labels.entities[label[k] - 1],
                                                                              score[k].item())
        pairs = [(x, y) for x in kept for y in kept if x != y and rows[x][0] == rows[y][0]]
        if not pairs:
            continue
        p = torch.tensor([[rows[x][0], x, y, rows[x][3], rows[x][4], rows[y][3], rows[y][4], label[x], label[y]]
                          for x, y in pairs])
        rscore, rlabel = model.forward_pairs(states, p).max(-1)
        for (x, y), sc, lab in zip(pairs, rscore.tolist(), rlabel.tolist()):
            if lab > 0 and sc >= threshold:
                win, ws = batch[rows[x][0]], words[batch[rows[x][0]].text]
                span = lambda r: (ws[win.words[rows[r][1]]][0], ws[win.words[rows[r][2]]][1])  # noqa: E731
                key = (span(x), span(y), model.labels.relations[lab - 1])
                rels[win.text][key] = max(sc, rels[win.text].get(key, 0.0))
    out = []
    for e, r in zip(ents, rels):
        spans = sorted(e)
        index = {s: i for i, s in enumerate(spans)}
        out.append(([(s, t, e[(s, t)][0], round(e[(s, t)][1], 4)) for s, t in spans],
                    sorted((index[h], index[t], name, round(sc, 4)) for (h, t, name), sc in r.items()
                           if h in index and t in index)))
    return out


def test_predict_decodes_as_the_span_by_span_rules_over_windows_of_one_text(tiny_model):
    model = JointExtractor.load(tiny_model[0], "cpu")
    model.max_length = 24  # several windows for the long texts, so entities and relations meet twice
    sentences = ["John Smith works for Acme Corp .", "Mary Jones lives in Paris .", "Acme Corp is based in Berlin .",
                 "Peter Brown works for Globex ."]
    texts = [*sentences, " ".join(sentences), " ".join(reversed(sentences * 2)), "", "Globex", "and so on ."]
    with torch.inference_mode():
        for batch_size, threshold in ((3, 0.5), (64, 0.05)):
            expected = reference_predict(model, texts, batch_size, threshold)
            got = model.predict(texts, batch_size=batch_size, threshold=threshold)
            assert [(p.entities, p.relations) for p in got] == expected
            assert sum(len(r) for _, r in expected) > 0  # the texts do exercise relations
            assert len(model.windows(texts[5:6], [split_words(texts[5])])) > 2


TEXTS = ["John Smith works for Acme Corp .", "Mary Jones lives in Paris .", "", "Acme Corp is based in Berlin .",
         " ".join(["Peter Brown works for Globex ."] * 6), "Globex", "Ünïcode Straße in Zürich .",
         "Mary Jones works for Acme Corp in Berlin ."]


def test_batches_queued_ahead_decode_as_one_at_a_time(tiny_model):
    # on a GPU the next batch's encoder is queued before this batch's spans are decoded; the same
    # order on the CPU must give the same predictions
    model = JointExtractor.load(tiny_model[0], "cpu")
    model.max_length = 24
    model.queue_ahead = False
    one_at_a_time = model.predict(TEXTS, batch_size=2, threshold=0.05)
    model.queue_ahead = True
    assert model.predict(TEXTS, batch_size=2, threshold=0.05) == one_at_a_time
    assert sum(len(p.relations) for p in one_at_a_time) > 0


def test_working_ahead_queues_the_next_batch_before_waiting_on_this_one(tiny_model, monkeypatch):
    # launch (L) a batch's encoder, decode its spans and queue its pairs (S) once the next batch is
    # launched, decode its relations (R) once the batch after it has queued its pairs
    model = JointExtractor.load(tiny_model[0], "cpu")
    model.queue_ahead = True
    seen = []

    def logged(real, tag):
        def call(*args):
            out = real(*args)
            if out is not None:  # a batch without spans is not launched
                seen.append(tag)
            return out
        return call

    for name, tag in (("_launch", "L"), ("_score_pairs", "S"), ("_relations", "R")):
        monkeypatch.setattr(model, name, logged(getattr(model, name), tag))
    model.predict(TEXTS, batch_size=1, threshold=0.05)
    m = seen.count("L")
    expected = ["L"]
    for i in range(1, m):
        expected += ["L", "S"] + (["R"] if i >= 2 else [])
    expected += ["S"] + (["R"] if m >= 2 else []) + ["R"]
    assert m > 4 and seen == expected


def test_texts_are_read_in_runs_that_cover_them_all_once(tiny_model, monkeypatch):
    import kgbuild.neural.joint as joint

    monkeypatch.setattr(joint, "STREAM_TEXTS", 4)
    assert JointExtractor.chunks(0) == []
    assert JointExtractor.chunks(4) == [(0, 4)]
    assert JointExtractor.chunks(10) == [(0, 3), (3, 6), (6, 10)]
    model = JointExtractor.load(tiny_model[0], "cpu")
    # batches of one window do not depend on which texts are batched together, so runs of 3 texts
    # and one run of all of them must give the same predictions, text for text
    monkeypatch.setattr(joint, "STREAM_TEXTS", 3)
    runs = model.predict(TEXTS, batch_size=1)
    model.queue_ahead = True  # as on a GPU: the next run's windows built in the background
    assert model.predict(TEXTS, batch_size=1) == runs
    model.queue_ahead = None
    monkeypatch.setattr(joint, "STREAM_TEXTS", 8192)
    assert runs == model.predict(TEXTS, batch_size=1)
    assert len(runs) == len(TEXTS) and sum(len(p.entities) for p in runs) > 0
