import json

import torch

from kgbuild.neural.formats import split_words
from kgbuild.neural.joint import (CASE_SHAPES, JointExtractor, candidate_spans, texts_windows, windows_of, word_shape,
                                  write_half)
from kgbuild.neural.train import evaluate, train


def test_training_writes_the_model_folder_and_loss_falls(tiny_model):
    out, result = tiny_model
    for name in ("kgbuild_model.json", "labels.json", "training_config.json", "dev_scores.json", "learning_curve.png",
                 "heads.pt", "encoder/config.json", "encoder/tokenizer.json"):
        assert (out / name).is_file(), name
    labels = json.loads((out / "labels.json").read_text())
    assert labels["entities"] == ["Loc", "Org", "Peop"]
    assert labels["relations"] == ["Live_In", "OrgBased_In", "Work_For"]
    assert labels["kgbuild_types"] == {"Loc": "LOC", "Org": "ORG", "Peop": "PER"}
    scores = json.loads((out / "dev_scores.json").read_text())
    assert scores["best_epoch"] == result.best_epoch and len(scores["history"]) == result.epochs
    assert result.history[-1]["loss"] < result.history[0]["loss"] / 5
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_saved_model_reproduces_the_dev_scores_of_training(tiny_model, tiny_data):
    out, result = tiny_model
    again = evaluate(out, tiny_data, "conll04", device="cpu")
    assert again["entities"] == result.dev["entities"]
    assert again["relations"] == result.dev["relations"]


def test_encoder_weights_saved_in_half_precision_load_as_float32(tmp_path, tiny_model, tiny_data):
    # transformers keeps a checkpoint's own dtype unless told; a model folder (or base model) saved
    # in fp16 must still train and predict with float32 weights on the CPU
    import shutil

    import torch
    from transformers import AutoModel

    from kgbuild.neural.train import train

    half = tmp_path / "half"
    shutil.copytree(tiny_model[0], half)
    AutoModel.from_pretrained(half / "encoder").half().save_pretrained(half / "encoder")
    assert AutoModel.from_pretrained(half / "encoder").dtype == torch.float16  # what the loader is given
    model = JointExtractor.load(half, "cpu")
    assert {p.dtype for p in model.net.parameters()} == {torch.float32}
    (pred,) = model.predict(["John Smith works for Acme Corp ."])
    (full,) = JointExtractor.load(tiny_model[0], "cpu").predict(["John Smith works for Acme Corp ."])
    assert [e[:3] for e in pred.entities] == [e[:3] for e in full.entities]
    result = train(tiny_data, tiny_data, tmp_path / "again", task="ner", base_model=str(half / "encoder"), epochs=1,
                   batch_size=4, quiet=True, device="cpu")
    assert result.history[0]["loss"] == result.history[0]["loss"]  # a number, not NaN


def test_half_copy_of_a_model_folder_is_smaller_and_predicts_the_same_labels(tmp_path, tiny_model):
    import pytest
    import torch
    from typer.testing import CliRunner

    from kgbuild.cli import app
    from kgbuild.errors import KgbuildError

    out = tmp_path / "half"
    result = CliRunner().invoke(app, ["train", "half", str(tiny_model[0]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "fp16 copy" in result.output
    weights = out / "encoder" / "model.safetensors"
    assert weights.stat().st_size < 0.6 * (tiny_model[0] / "encoder" / "model.safetensors").stat().st_size
    assert {v.dtype for v in torch.load(out / "heads.pt", weights_only=True).values() if v.is_floating_point()} == {torch.float16}
    half, full = JointExtractor.load(out, "cpu"), JointExtractor.load(tiny_model[0], "cpu")
    assert {p.dtype for p in half.net.parameters()} == {torch.float32}
    texts = ["John Smith works for Acme Corp .", "Mary Jones lives in Paris ."]
    labels = lambda preds: [([e[:3] for e in p.entities], [r[:3] for r in p.relations]) for p in preds]
    assert labels(half.predict(texts)) == labels(full.predict(texts))
    with pytest.raises(KgbuildError, match="fp16, bf16"):
        write_half(tiny_model[0], tmp_path / "x", "int8")
    with pytest.raises(KgbuildError, match="overwrite"):
        write_half(tiny_model[0], tiny_model[0])


def test_tiny_model_overfits_four_sentences_and_predicts_their_relation(tiny_model):
    model = JointExtractor.load(tiny_model[0], "cpu")
    text = "John Smith works for Acme Corp ."
    (pred,) = model.predict([text])
    ents = [(text[s:e], label) for s, e, label, _ in pred.entities]
    assert ("John Smith", "Peop") in ents and ("Acme Corp", "Org") in ents
    rels = [(ents[h][0], r, ents[t][0]) for h, t, r, _ in pred.relations]
    assert ("John Smith", "Work_For", "Acme Corp") in rels


def test_text_longer_than_the_window_is_read_in_overlapping_windows(tiny_model):
    model = JointExtractor.load(tiny_model[0], "cpu")
    sentence = "Mary Jones lives in Paris ."
    text = f"{sentence} {' '.join(['and'] * 60)} {sentence}"
    words = split_words(text)
    windows = windows_of(0, text, words, model.tokenizer, model.max_length)
    assert len(windows) >= 2
    assert all(len(w.input_ids) <= model.max_length for w in windows)
    homes = [w for win in windows for w in win.home]
    assert sorted(homes) == list(range(len(words)))  # every word decided by exactly one window
    for win in windows:  # each word's subwords in the window spell the word (uncased tokenizer)
        for k, w in enumerate(win.words):
            piece = model.tokenizer.decode(win.input_ids[win.first[k] : win.last[k] + 1]).replace(" ", "")
            assert piece == text[words[w][0] : words[w][1]].lower()
    (pred,) = model.predict([text])
    assert (0, 10) in [(s, e) for s, e, _, _ in pred.entities]
    assert all(e <= len(text) for _, e, _, _ in pred.entities)


def test_windows_of_many_texts_at_once_match_each_text_alone(tiny_model):
    model = JointExtractor.load(tiny_model[0], "cpu")
    long = f"Mary Jones lives in Paris . {' '.join(['and'] * 60)} IBM hired her ."
    texts = ["John Smith works for Acme Corp .", "", long, "   ", "北京 is BIG , B52 1990 ."]
    words = [split_words(t) for t in texts]
    alone = [w for i, (t, ws) in enumerate(zip(texts, words)) for w in windows_of(i, t, ws, model.tokenizer, 32)]
    assert len(alone) > len(texts)  # the long text needs several windows
    assert list(texts_windows(texts, words, model.tokenizer, 32)) == alone


def test_windows_built_on_arrays_match_the_window_by_window_rule(tiny_model):
    # the texts that fit in one window are cut from whole-batch arrays; the general rule, word
    # runs that fit and overlap by half (the one long texts take), gives the same windows
    import numpy as np

    from kgbuild.neural.joint import Window, _encode, _text_windows

    model = JointExtractor.load(tiny_model[0], "cpu")
    texts = ["John Smith works for Acme Corp .", "", "   ", "Ünïcode Straße , 北京 and B52 in 1990 .",
             "Tabs\tand\x07 bells , Mary Jones .", f"Mary Jones lives in Paris . {' '.join(['and'] * 40)} IBM ."]
    words = [split_words(t) for t in texts]
    wins = texts_windows(texts, words, model.tokenizer, 24)
    enc = _encode(model.tokenizer, texts)
    expected = []
    for i, (text, ws) in enumerate(zip(texts, words)):
        (win,) = texts_windows([text], [ws], model.tokenizer, 512)  # one window: subword to word map, shapes
        first, last = np.full(len(ws), 10**9), np.full(len(ws), -1)
        first[win.words], last[win.words] = np.array(win.first) - 1, np.array(win.last) - 1
        if not win.words:  # nothing to read: [CLS] [SEP] alone
            expected.append(Window(i, [model.tokenizer.cls_token_id, model.tokenizer.sep_token_id], [], [], [],
                                   set(), [0, 0]))
            continue
        expected += _text_windows(i, enc.of(i)[0], np.array(win.case_ids[1:-1]), np.flatnonzero(last >= 0), first, last,
                                  model.tokenizer.cls_token_id, model.tokenizer.sep_token_id, 22)
    assert list(wins) == expected
    assert len(wins) > len(texts)
    batch = model.batches(wins, 3)[1]
    assert list(batch) == [expected[k] for k in np.argsort([len(w.input_ids) for w in expected], kind="stable")[3:6]]


def test_word_shapes_at_once_match_word_shape(tiny_model):
    import random

    from kgbuild.neural.joint import word_shapes

    rng = random.Random(0)
    alphabet = "aZ9 .,-'ÉéßǅⅣ٣北ıİ\x00\t"
    words = ["", *("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(3000)),
             "paris", "Paris", "IBM", "I", "iPhone", "1990", "B52", ",", "北京"]
    text = "\n".join(words)
    starts = [0]
    for w in words[:-1]:
        starts.append(starts[-1] + len(w) + 1)
    ends = [s + len(w) for s, w in zip(starts, words)]
    import numpy as np

    assert word_shapes(text, np.array(starts), np.array(ends)).tolist() == [word_shape(w) for w in words]


def test_tokenizer_fast_path_gives_the_tokenizers_own_ids_and_offsets(tiny_model):
    from kgbuild.neural.joint import _encode

    model = JointExtractor.load(tiny_model[0], "cpu")
    backend = model.tokenizer.backend_tokenizer
    texts = ["John SMITH works for Acme Corp .", "Ünïcode Straße", "bell\x07 and\x00nul", "tab\tnew\nline", "",
             "MiXeD CaSe 1990s U.S.A."]
    for batch in (texts, texts[:1] + texts[3:]):  # mixed, and all printable ASCII
        enc = _encode(model.tokenizer, batch)
        own = backend.encode_batch(batch, add_special_tokens=False)
        assert [enc.of(i) for i in range(len(batch))] == [(e.ids, e.offsets) for e in own]


def test_pieces_of_cached_pre_tokens_are_the_tokenizers_own_ids_and_offsets(tiny_model):
    # printable ASCII goes through the cache of each pre-token's pieces: the same ids and offsets
    # as the tokenizer over whole texts, for texts of every ASCII character, words past WordPiece's
    # 100 characters, added tokens named in the text, and texts mixed with other scripts
    import random

    from kgbuild.neural.joint import _encode, _fast_paths

    model = JointExtractor.load(tiny_model[0], "cpu")
    backend = model.tokenizer.backend_tokenizer
    pieces = _fast_paths(backend).pieces
    assert pieces is not None
    pieces.clear()
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(32, 127)] + ["\t", "\n", "\r"] + list("aeinorstAEINORST  ")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(300)]
    texts += ["x" * 101 + " ok", "A" * 100, "he said [MASK] and [cls] , [SEP]]", "naïve café", "a\x07b", "",
              "Steve Jobs co-founded Apple Inc. in Cupertino , California , in 1976 ."]
    for batch in (texts, texts[::-1], texts[:50] * 2):  # a cold cache, then a warm one
        enc = _encode(model.tokenizer, batch)
        own = backend.encode_batch(batch, add_special_tokens=False)
        assert [enc.of(i) for i in range(len(batch))] == [(e.ids, e.offsets) for e in own]
    assert 0 < len(pieces.index) < sum(len(t) for t in texts)
    pieces.LIMIT = 10  # past the limit the cache starts again, and gives the same
    enc = _encode(model.tokenizer, texts[:20])
    assert [enc.of(i) for i in range(20)] == [(e.ids, e.offsets) for e in backend.encode_batch(texts[:20], add_special_tokens=False)]
    del pieces.LIMIT


def test_bert_normalizer_with_another_pre_tokenizer_reads_as_the_tokenizer_does(tiny_model):
    # BERT's normalizer without BERT's pre-tokenizer: no piece cache, the copy without the
    # normalizer for printable ASCII, the tokenizer itself for the rest
    from types import SimpleNamespace

    from tokenizers import Tokenizer, pre_tokenizers

    from kgbuild.neural.joint import _encode, _fast_paths

    backend = Tokenizer.from_str(JointExtractor.load(tiny_model[0], "cpu").tokenizer.backend_tokenizer.to_str())
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = _fast_paths(backend)
    assert fast.plain is not None and fast.pieces is None
    texts = ["John SMITH works for Acme-Corp.", "naïve café", "he said [MASK]", "", "U.S.A. 1990s"]
    enc = _encode(SimpleNamespace(backend_tokenizer=backend), texts)
    assert [enc.of(i) for i in range(len(texts))] == [(e.ids, e.offsets) for e in
                                                       backend.encode_batch(texts, add_special_tokens=False)]


def test_span_head_taken_apart_gives_the_span_heads_own_logits(tiny_model):
    # predict scores spans from per-subword products of the span head's first layer (span_tables);
    # in eval mode that is the same layer as over each span's concatenated vector
    import torch

    model = JointExtractor.load(tiny_model[0], "cpu")
    texts = ["John Smith works for Acme Corp .", "", f"Mary Jones lives in Paris . {' '.join(['and'] * 60)} IBM ."]
    ids, mask, case, spans = model.to_device(*model.tensors(model.windows(texts, [split_words(t) for t in texts])))
    net = model.net.eval()
    width = spans[:, 5].clamp(max=model.max_width)
    with torch.inference_mode():
        hidden, sums = net.encode(ids, mask, case)
        own = net.spans(hidden, sums, spans[:, 0], spans[:, 3], spans[:, 4], width)[1]
        parts = net.span_logits(net.span_tables(hidden), spans[:, 0], spans[:, 3], spans[:, 4], width)
    assert len(own) > 100
    torch.testing.assert_close(parts, own, rtol=1e-4, atol=1e-5)
    assert (parts.argmax(-1) == own.argmax(-1)).all()


def test_pair_head_taken_apart_gives_the_pair_heads_own_logits(tiny_model):
    import torch

    model = JointExtractor.load(tiny_model[0], "cpu")
    texts = ["John Smith works for Acme Corp .", "Mary Jones lives in Paris and works for IBM ."] * 3
    batch = model.windows(texts, [split_words(t) for t in texts])
    net = model.net.eval()
    with torch.inference_mode():
        _, (ids, mask, case, spans, placed) = model._predict_batch(batch)
        p, rows, which = placed
        assert len(p) > 10 and len(rows) < len(which) == 2 * len(p)
        assert torch.equal(rows[which], torch.cat([p[:, 1], p[:, 2]]))
        hidden, sums = net.encode(ids, mask, case)
        paired = spans[torch.cat([p[:, 1], p[:, 2]])]
        reps = net.span_reps(hidden, sums, paired[:, 0], paired[:, 3], paired[:, 4], paired[:, 5].clamp(max=model.max_width))
        head = torch.arange(len(p))
        args = (hidden, sums, reps, p[:, 0], head, head + len(p), *p[:, 3:9].T)
        own, parts = net.pairs(*args), net.pair_logits(*args)
    torch.testing.assert_close(parts, own, rtol=1e-4, atol=1e-5)


def test_span_rows_are_the_candidate_spans_of_each_window(tiny_model):
    model = JointExtractor.load(tiny_model[0], "cpu")
    texts = ["John Smith works for Acme Corp .", "", f"Mary Jones lives in Paris . {' '.join(['and'] * 60)}"]
    batch = model.windows(texts, [split_words(t) for t in texts])
    spans = model.tensors(batch)[3].tolist()
    assert spans == [[b, i, j, win.first[i], win.last[j], j - i + 1] for b, win in enumerate(batch)
                     for i, j in candidate_spans(win, model.max_width)]


def test_word_shapes_reach_every_subword_of_an_uncased_encoder(tiny_model):
    words = ("paris", "Paris", "IBM", "I", "iPhone", "1990", "B52", ",", "北京")
    assert [CASE_SHAPES[word_shape(w)] for w in words] == [
        "lower", "title", "upper", "capital", "mixed", "digits", "alphanumeric", "other", "other"]
    model = JointExtractor.load(tiny_model[0], "cpu")
    assert model.config["case_features"] is True  # all-MiniLM-L6-v2's tokenizer lowercases
    assert model.net.case.weight.abs().sum() > 0  # learned from zero, saved and loaded
    text = "Acmeworks hired IBM in 1990 ."
    words = split_words(text)
    (win,) = windows_of(0, text, words, model.tokenizer, model.max_length)
    assert len(win.case_ids) == len(win.input_ids) and win.case_ids[0] == win.case_ids[-1] == 0
    for k, w in enumerate(win.words):  # every subword of a word carries the word's shape
        word = text[words[w][0] : words[w][1]]
        assert set(win.case_ids[win.first[k] : win.last[k] + 1]) == {word_shape(word)}
    assert win.last[0] > win.first[0]  # "Acmeworks" is several subwords, all "title"


def test_case_features_can_be_turned_off(tmp_path, tiny_encoder, tiny_data):
    out = tmp_path / "plain"
    train(tiny_data, tiny_data, out, task="re", base_model=str(tiny_encoder), epochs=1, batch_size=4, quiet=True,
          threads=1, case_features=False)
    model = JointExtractor.load(out, "cpu")
    assert model.config["case_features"] is False and model.net.case is None
    assert "case.weight" not in torch.load(out / "heads.pt", weights_only=True)


def test_select_picks_the_epoch_by_the_named_dev_f1(tmp_path, tiny_encoder, tiny_data):
    import pytest

    from kgbuild.errors import KgbuildError

    result = train(tiny_data, tiny_data, tmp_path / "mean", task="re", base_model=str(tiny_encoder), epochs=6,
                   batch_size=4, lr=3e-3, head_lr=1e-2, patience=6, quiet=True, seed=0, threads=1, select="mean")
    keys = [((r["entity_f1"] + r["relation_f1"]) / 2, r["entity_f1"]) for r in result.history]
    assert result.best_epoch == keys.index(max(keys)) + 1
    assert json.loads((tmp_path / "mean" / "training_config.json").read_text())["select"] == "mean"
    with pytest.raises(KgbuildError, match="--select mean does not fit `train ner`"):
        train(tiny_data, tiny_data, tmp_path / "x", task="ner", base_model=str(tiny_encoder), epochs=1, quiet=True,
              select="mean")
    with pytest.raises(KgbuildError, match="--select f1 does not fit"):
        train(tiny_data, tiny_data, tmp_path / "x", task="re", base_model=str(tiny_encoder), epochs=1, quiet=True,
              select="f1")


def test_training_can_go_on_from_a_trained_model_folder(tmp_path, tiny_model, tiny_encoder, tiny_data):
    import pytest

    from kgbuild.errors import KgbuildError

    first, _ = tiny_model
    out = tmp_path / "next"
    # no step is taken at rate 0: what the new model holds is what it started from
    train(tiny_data, tiny_data, out, task="ner", base_model=str(first), epochs=1, batch_size=4, lr=0.0, head_lr=0.0,
          quiet=True, threads=1)
    before, after = JointExtractor.load(first, "cpu"), JointExtractor.load(out, "cpu")
    assert after.config["base_model"] == str(first / "encoder")
    assert after.config["transferred"] == ["case.weight", "width.weight"]
    old, new = before.net.state_dict(), after.net.state_dict()
    for name in [n for n in old if n.startswith("encoder.")] + ["case.weight", "width.weight"]:
        assert torch.equal(old[name], new[name]), name
    assert bool(old["case.weight"].abs().sum() > 0)  # trained, not the zero start
    # the classifiers start afresh for the new task's labels
    assert not after.labels.relations and not torch.equal(old["span_head.4.weight"], new["span_head.4.weight"])
    plain = train(tiny_data, tiny_data, tmp_path / "plain", task="ner", base_model=str(tiny_encoder), epochs=1,
                  batch_size=4, quiet=True, threads=1)
    assert json.loads((tmp_path / "plain" / "training_config.json").read_text())["transferred"] == []
    assert plain.best_epoch == 1
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "kgbuild_model.json").write_text(json.dumps({"kind": "kgbuild-ensemble", "members": []}))
    with pytest.raises(KgbuildError, match="is an ensemble"):
        train(tiny_data, tiny_data, tmp_path / "x", task="ner", base_model=str(tmp_path / "ens"), epochs=1, quiet=True)


def test_predict_pauses_the_cyclic_collector_and_puts_it_back(tiny_model):
    import gc

    from kgbuild.neural.joint import JointExtractor, collector_paused

    model = JointExtractor.load(tiny_model[0], "cpu")
    seen = []
    hook = model.net.encoder.register_forward_pre_hook(lambda *args: seen.append(gc.isenabled()))
    try:
        assert gc.isenabled()
        model.predict(["Alice Smith works for Acme Corp in Paris ."])
        assert seen == [False] and gc.isenabled()
        model.pause_collector = False  # the benchmark's baseline
        model.predict(["Alice Smith works for Acme Corp in Paris ."])
        assert seen == [False, True]
        gc.disable()  # a caller that turned it off keeps it off
        try:
            with collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        hook.remove()


def test_span_head_in_chunks_predicts_what_it_predicts_in_one_go(tiny_model, tiny_data, monkeypatch):
    from kgbuild.neural import joint
    from kgbuild.neural.formats import read_examples

    examples = read_examples(tiny_data, "conll04")
    texts, words = [e.text for e in examples], [e.words for e in examples]
    model = joint.JointExtractor.load(tiny_model[0], "cpu")
    whole = model.predict(texts, words, batch_size=4)
    assert any(p.relations for p in whole)  # the pair head, which rebuilds the paired spans' vectors, ran
    monkeypatch.setattr(joint, "SPAN_CHUNK", 3)
    assert model.predict(texts, words, batch_size=4) == whole


def test_pair_head_on_rebuilt_span_vectors_scores_as_on_all_of_them(tiny_model, tiny_data):
    import torch

    from kgbuild.neural.formats import read_examples
    from kgbuild.neural.joint import BestLabels, JointExtractor, decode_spans

    examples = read_examples(tiny_data, "conll04")
    model = JointExtractor.load(tiny_model[0], "cpu")
    net = model.net.eval()
    batch = model.windows([e.text for e in examples], [e.words for e in examples])
    ids, mask, case, spans = model.tensors(batch)
    with torch.inference_mode():
        states, probs = model.forward_spans(ids, mask, case, spans)
        _, pairs = decode_spans(batch, spans.numpy(), *BestLabels(probs).get())
        p = torch.from_numpy(pairs)
        assert len(p) > 0
        # as training scores them: every span's vector built, the pairs indexing into them
        hidden, sums = net.encode(ids, mask, case)
        reps, _ = net.spans(hidden, sums, spans[:, 0], spans[:, 3], spans[:, 4], spans[:, 5].clamp(max=model.max_width))
        expected = net.pairs(hidden, sums, reps, *p.unbind(1)).softmax(-1)
        got = model.forward_pairs(states, p)  # the pair head's first layer taken apart (pair_logits)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
        assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_precision_bf16_runs_the_model_in_bf16_on_the_cpu_and_auto_stays_fp32(tiny_model):
    import torch

    from kgbuild.neural.joint import JointExtractor

    dtypes = {}
    for precision in ("auto", "bf16", "fp32"):
        model = JointExtractor.load(tiny_model[0], "cpu", precision)
        def seen(module, args, out, precision=precision):
            dtypes.setdefault(precision, out.dtype)

        hook = model.net.span_head[4].register_forward_hook(seen)  # its last layer
        try:
            found = model.predict(["Alice Smith works for Acme Corp in Paris ."])
        finally:
            hook.remove()
        assert len(found) == 1
        assert model.precision == ("fp32" if precision == "auto" else precision)
    assert dtypes == {"auto": torch.float32, "bf16": torch.bfloat16, "fp32": torch.float32}


def test_unknown_precision_and_fp16_on_the_cpu_are_refused_with_the_choices(tiny_model):
    import pytest

    from kgbuild.errors import KgbuildError
    from kgbuild.neural.joint import JointExtractor

    with pytest.raises(KgbuildError, match="auto, fp32, bf16, fp16"):
        JointExtractor.load(tiny_model[0], "cpu", "int4")
    with pytest.raises(KgbuildError, match="fp16 is for GPUs"):
        JointExtractor.load(tiny_model[0], "cpu", "fp16")


def test_eval_takes_a_precision_and_says_which_it_ran(tiny_model, tiny_data):
    from typer.testing import CliRunner

    from kgbuild.cli import app
    from kgbuild.errors import KgbuildError

    runner = CliRunner()
    scored = runner.invoke(app, ["eval", "re", "--model", str(tiny_model[0]), "--data", str(tiny_data),
                                 "--format", "conll04", "--device", "cpu", "--precision", "bf16"])
    assert scored.exit_code == 0, scored.output
    assert "s on cpu (bf16)\n" in scored.output
    refused = runner.invoke(app, ["eval", "ner", "--model", str(tiny_model[0]), "--data", str(tiny_data),
                                  "--format", "conll04", "--device", "cpu", "--precision", "fp16"])
    assert isinstance(refused.exception, KgbuildError) and "fp16 is for GPUs" in str(refused.exception)


def test_weight_average_follows_the_steps_and_swaps_both_ways():
    import pytest

    from kgbuild.errors import KgbuildError
    from kgbuild.neural.train import WeightAverage

    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    average = WeightAverage(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(4.0)
    average.update(net)  # first step: keep min(0.5, 2 / 11) of the average
    expected = 4.0 * (1 - 2 / 11)
    average.swap(net)
    assert torch.allclose(net.weight, torch.full((1, 2), expected))
    average.swap(net)
    assert torch.allclose(net.weight, torch.full((1, 2), 4.0))
    with pytest.raises(KgbuildError, match="--ema"):
        WeightAverage(net, decay=1.0)


def test_training_with_a_weight_average_keeps_the_averaged_weights(tmp_path, tiny_encoder, tiny_data):
    threads = torch.get_num_threads()
    try:
        result = train(tiny_data, tiny_data, tmp_path / "ema", task="re", base_model=str(tiny_encoder), epochs=3,
                       batch_size=4, lr=3e-3, head_lr=1e-2, quiet=True, seed=0, threads=1, ema=0.9)
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "ema" / "training_config.json").read_text())
    assert saved["ema"] == 0.9
    # the folder holds the weights that were scored: loading it gives the dev scores of training
    again = evaluate(tmp_path / "ema", tiny_data, "conll04", device="cpu")
    assert again["entities"] == result.dev["entities"] and again["relations"] == result.dev["relations"]
