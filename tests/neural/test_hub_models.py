"""Hub models by name, tested offline with tiny models that the tests build, train for a few steps
and save like a hub checkpoint (config, weights, tokenizer.json)."""

import json
import re

import pytest
import torch

from kgbuild.errors import KgbuildError, ModelLoadError
from kgbuild.neural.hub import (
    aggregate_spans,
    is_kgbuild_model_dir,
    kgbuild_type,
    load_seq2seq_extractor,
    load_token_classifier,
    parse_rebel,
    split_label,
)
from kgbuild.types import TYPES


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small spend more on thread synchronisation than they gain (7x the CPU time with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- NER: a tiny BERT token classifier -------------------------------------------------------

# Sentences with their entities; "curie" and "siemens" are not in the vocabulary as words, so they
# come out as word pieces (cur ##ie, sie ##mens).
SENTENCES = [
    ("marie curie worked in paris with ibm .", [("marie curie", "PER"), ("paris", "LOC"), ("ibm", "ORG")]),
    ("alan turing visited siemens in berlin .", [("alan turing", "PER"), ("siemens", "ORG"), ("berlin", "LOC")]),
    ("the team in london wrote a report about the results .", [("london", "LOC")]),
    ("nelson mandela met the staff of cern near geneva .",
     [("nelson mandela", "PER"), ("cern", "ORG"), ("geneva", "LOC")]),
]
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def _long_text(n_words: int = 200) -> tuple[str, list[tuple[int, int, str]]]:
    """The sentences repeated to at least n_words words, with the gold (start, end, type) spans."""
    text, gold, i = "", [], 0
    while len(text.split()) < n_words:
        sentence, entities = SENTENCES[i % len(SENTENCES)]
        base = len(text) + (1 if text else 0)
        text = f"{text} {sentence}" if text else sentence
        cursor = 0
        for name, type_ in entities:
            start = sentence.index(name, cursor)
            gold.append((base + start, base + start + len(name), type_))
            cursor = start + len(name)
        i += 1
    return text, gold


def _bert_tokenizer(tmp_path):
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    words = sorted({w for s, _ in SENTENCES for w in s.split()} - {"curie", "siemens"})
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = ["cur", "##ie", "sie", "##mens"] + [f"##{c}" for c in letters] + list(letters)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(dict.fromkeys(words + pieces))
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    wordpiece = BertWordPieceTokenizer(str(path), lowercase=True)
    return BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def _bert_ner(tokenizer, labels):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64,
                        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    return BertForTokenClassification(config)


def _token_labels(enc, w, gold):
    """BIO label ids for window w of a tokenised text: first word pieces only, the rest ignored (-100)."""
    ids, previous_word = [], None
    for word, (start, end) in zip(enc.word_ids(w), enc["offset_mapping"][w].tolist()):
        if word is None or word == previous_word:
            ids.append(-100)
        else:
            entity = next(((s, t) for s, e, t in gold if s <= start < e), None)
            ids.append(0 if entity is None else NER_LABELS.index(("B-" if entity[0] == start else "I-") + entity[1]))
        previous_word = word
    return ids


@pytest.fixture(scope="module")
def trained_ner_dir(tmp_path_factory):
    """A tiny BERT trained on the long text's 64-token windows, saved as a hub checkpoint."""
    tmp_path = tmp_path_factory.mktemp("bert_ner")
    tokenizer = _bert_tokenizer(tmp_path)
    model = _bert_ner(tokenizer, NER_LABELS)
    text, gold = _long_text()
    enc = tokenizer([text], truncation=True, max_length=64, stride=16, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding=True, return_tensors="pt")
    labels = torch.tensor([_token_labels(enc, w, gold) for w in range(enc["input_ids"].shape[0])])
    inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(120):
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def _assert_well_formed(text, spans):
    previous_end = 0
    for start, end, type_, score in spans:
        assert 0 <= start < end <= len(text)
        assert start >= previous_end, f"overlapping spans in {spans}"
        assert type_ in TYPES
        assert 0.0 <= score <= 1.0
        assert text[start:end] == text[start:end].strip()
        previous_end = end


def test_trained_token_classifier_finds_every_entity_of_a_text_longer_than_its_window(trained_ner_dir):
    ner = load_token_classifier(str(trained_ner_dir), device="cpu", batch_size=2)
    assert ner.max_length == 64
    text, gold = _long_text()
    spans = ner.predict([text])[0]
    _assert_well_formed(text, spans)
    # Entities far past the first 64-token window come back, each once, with their type.
    assert [(s, e, t) for s, e, t, _ in spans] == gold
    assert gold[-1][0] > len(text) * 3 // 4


def test_word_pieces_of_one_word_give_one_entity(trained_ner_dir):
    ner = load_token_classifier(str(trained_ner_dir), device="cpu")
    text = SENTENCES[1][0] + " " + SENTENCES[0][0]
    spans = ner.predict([text])[0]
    names = {text[s:e]: t for s, e, t, _ in spans}
    assert names["siemens"] == "ORG" and names["marie curie"] == "PER"


def test_batches_give_the_same_spans_as_one_text_at_a_time(trained_ner_dir):
    ner = load_token_classifier(str(trained_ner_dir), device="cpu", batch_size=3)
    texts = [s for s, _ in SENTENCES] + ["", _long_text(90)[0]]
    together = ner.predict(texts)
    alone = [ner.predict([t])[0] for t in texts]
    assert [[s[:3] for s in spans] for spans in together] == [[s[:3] for s in spans] for spans in alone]
    assert together[4] == []


def test_a_checkpoint_saved_in_half_precision_runs_in_float32_on_the_cpu(tmp_path, trained_ner_dir):
    import shutil

    from transformers import AutoModelForTokenClassification

    half = tmp_path / "half"
    shutil.copytree(trained_ner_dir, half)
    AutoModelForTokenClassification.from_pretrained(half).half().save_pretrained(half)
    ner = load_token_classifier(str(half), device="cpu")
    assert {p.dtype for p in ner.model.parameters()} == {torch.float32}
    full = load_token_classifier(str(trained_ner_dir), device="cpu")
    text = SENTENCES[0][0]
    assert [s[:3] for s in ner.predict([text])[0]] == [s[:3] for s in full.predict([text])[0]]


def test_untrained_model_with_mixed_label_schemes_gives_well_formed_spans(tmp_path):
    labels = ["O", "B-PER", "I-PER", "S-GPE", "B-CORPORATION", "E-CORPORATION", "DATE", "U-weird"]
    tokenizer = _bert_tokenizer(tmp_path)
    model = _bert_ner(tokenizer, labels)
    with torch.no_grad():  # make every label likely, so that all the schemes occur
        model.classifier.weight.mul_(50)
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    ner = load_token_classifier(str(tmp_path / "m"), device="cpu", max_length=32, stride=8)
    text = _long_text(120)[0]
    labelled = ner.predict_labelled([text])[0]
    assert labelled, "a random classifier with scaled weights should tag something"
    _assert_well_formed(text, [span[:4] for span in labelled])
    raw = {label for *_, label in labelled}
    assert raw <= {"PER", "GPE", "CORPORATION", "DATE", "weird"}
    for *_, type_, _score, label in labelled:
        assert type_ == kgbuild_type(label)


def test_byte_level_tokenizer_spans_leave_out_the_space_before_a_word(tmp_path):
    """A RoBERTa-style model: byte-level BPE with untrimmed offsets (the space before a word is part
    of its first piece), and positions counted from the padding index (66 positions, 64 tokens)."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForTokenClassification

    bpe = ByteLevelBPETokenizer(add_prefix_space=True, trim_offsets=False)
    bpe.train_from_iterator([s for s, _ in SENTENCES], vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe._tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=False,
                                                                 add_prefix_space=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                        sep_token="</s>", cls_token="<s>", pad_token="<pad>", unk_token="<unk>",
                                        mask_token="<mask>")
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=66, pad_token_id=1,
                           id2label=dict(enumerate(NER_LABELS)), label2id={x: i for i, x in enumerate(NER_LABELS)})
    model = RobertaForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.mul_(50)
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    ner = load_token_classifier(str(tmp_path / "m"), device="cpu")
    assert ner.max_length == 64
    text = _long_text(100)[0].title()
    spans = ner.predict([text])[0]
    _assert_well_formed(text, spans)
    assert spans and spans[-1][0] > len(text) // 2


def test_missing_model_is_a_kgbuild_error_with_a_hint(tmp_path):
    with pytest.raises(KgbuildError) as err:
        load_token_classifier(str(tmp_path / "no-such-model"))
    assert "hub name" in err.value.hint and "no-such-model" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError):
        load_seq2seq_extractor(str(tmp_path / "empty"))


def test_a_base_encoder_without_entity_labels_is_refused():
    from kgbuild.relations.encoder import resolve_model_path

    with pytest.raises(ModelLoadError, match="not fine-tuned for entity recognition"):
        load_token_classifier(resolve_model_path("auto"), device="cpu")  # the packaged all-MiniLM-L6-v2


def test_is_kgbuild_model_dir_needs_the_kgbuild_model_file(tmp_path):
    assert not is_kgbuild_model_dir(tmp_path)
    assert not is_kgbuild_model_dir("dslim/bert-base-NER")
    (tmp_path / "kgbuild_model.json").write_text(json.dumps({"task": "ner"}))
    assert is_kgbuild_model_dir(tmp_path) and is_kgbuild_model_dir(str(tmp_path))
    assert not is_kgbuild_model_dir(tmp_path / "kgbuild_model.json")


# --- aggregation on hand-made token predictions ----------------------------------------------

def _tokens(text, pieces):
    """word ids and offsets for `pieces`, a list of (word index, piece text) in text order."""
    offsets, cursor = [], 0
    for _word, piece in pieces:
        start = text.index(piece, cursor)
        offsets.append((start, start + len(piece)))
        cursor = start + len(piece)
    return [w for w, _ in pieces], offsets


def test_aggregation_takes_the_first_piece_label_and_merges_bio_runs():
    text = "Marie Curie met IBM staff"
    pieces = [(0, "Mar"), (0, "ie"), (1, "Cur"), (1, "ie"), (2, "met"), (3, "IBM"), (4, "staff")]
    word_ids, offsets = _tokens(text, pieces)
    word_ids, offsets = [None] + word_ids + [None], [(0, 0)] + offsets + [(0, 0)]
    labels = ["O", "B-PER", "B-ORG", "I-PER", "O", "O", "B-ORG", "O", "O"]
    scores = [1.0, 0.9, 0.1, 0.7, 0.2, 0.99, 0.8, 0.95, 1.0]
    spans = aggregate_spans(word_ids, offsets, labels, scores)
    assert [(text[s:e], label) for s, e, label, _ in spans] == [("Marie Curie", "PER"), ("IBM", "ORG")]
    assert spans[0][3] == pytest.approx(0.8)  # mean of the two words' first pieces (0.9, 0.7)


def test_aggregation_reads_bioes_and_plain_labels():
    text = "Paris Marie Curie Bank of France Rome Oslo"
    word_ids, offsets = _tokens(text, list(enumerate(text.split())))
    bioes = ["S-LOC", "B-PER", "E-PER", "B-ORG", "I-ORG", "E-ORG", "S-LOC", "S-LOC"]
    spans = aggregate_spans(word_ids, offsets, bioes, [1.0] * 8)
    assert [text[s:e] for s, e, *_ in spans] == ["Paris", "Marie Curie", "Bank of France", "Rome", "Oslo"]
    plain = ["LOC", "PER", "PER", "ORG", "ORG", "ORG", "LOC", "O"]
    spans = aggregate_spans(word_ids, offsets, plain, [1.0] * 8)
    assert [(text[s:e], label) for s, e, label, _ in spans] == [
        ("Paris", "LOC"), ("Marie Curie", "PER"), ("Bank of France", "ORG"), ("Rome", "LOC")]


def test_aggregation_starts_a_new_entity_on_i_after_o_or_after_another_type():
    text = "Curie and Turing at IBM Paris"
    word_ids, offsets = _tokens(text, list(enumerate(text.split())))
    labels = ["I-PER", "O", "I-PER", "O", "B-ORG", "I-LOC"]
    spans = aggregate_spans(word_ids, offsets, labels, [0.5] * 6)
    assert [(text[s:e], label) for s, e, label, _ in spans] == [
        ("Curie", "PER"), ("Turing", "PER"), ("IBM", "ORG"), ("Paris", "LOC")]


def test_labels_map_onto_kgbuild_types():
    assert [split_label(x) for x in ("B-PER", "I_ORG", "E-LOC", "S-GPE", "U-X", "L-X", "DATE", "O")] == [
        ("B", "PER"), ("I", "ORG"), ("E", "LOC"), ("S", "GPE"), ("S", "X"), ("E", "X"), ("I", "DATE"), ("O", "")]
    mapping = {"PER": "PER", "person": "PER", "ORG": "ORG", "organization": "ORG", "LOC": "LOC", "GPE": "LOC",
               "LOCATION": "LOC", "MISC": "MISC", "DATE": "TIME", "TIME": "TIME", "CARDINAL": "NUM",
               "corporation": "ORG", "creative-work": "MISC", "LABEL_3": "MISC"}
    assert {label: kgbuild_type(label) for label in mapping} == mapping


# --- REBEL-style relation extraction -----------------------------------------------------------

def test_parse_rebel_reads_several_triplets_and_several_tails_per_head():
    text = ("<s><triplet> Marie Curie <subj> Warsaw <obj> place of birth <subj> Pierre Curie <obj> spouse"
            "<triplet> Warsaw <subj> Poland <obj> country</s><pad><pad>")
    assert parse_rebel(text) == [("Marie Curie", "place of birth", "Warsaw"), ("Marie Curie", "spouse", "Pierre Curie"),
                                 ("Warsaw", "country", "Poland")]


def test_parse_rebel_drops_malformed_triplets():
    assert parse_rebel("<s><triplet> Curie <subj> Warsaw</s>") == []  # a tail without a relation
    assert parse_rebel("<subj> Warsaw <obj> country <triplet> IBM <subj> USA <obj> country") == [
        ("IBM", "country", "USA")]  # a tail before any head
    assert parse_rebel("<triplet> <subj> Warsaw <obj> country") == []  # an empty head
    assert parse_rebel("<triplet> IBM <obj> founded <subj> USA <obj> country <subj> <obj> x") == [
        ("IBM", "country", "USA")]  # <obj> without a tail, and an empty tail
    assert parse_rebel("[BOS]<triplet>A<subj>B<obj>r[EOS]", strip=("[BOS]", "[EOS]")) == [("A", "r", "B")]
    assert parse_rebel("") == []


REBEL_EXAMPLES = [
    ("marie curie was born in warsaw .", "<triplet> marie curie <subj> warsaw <obj> place of birth"),
    ("ibm is based in armonk .", "<triplet> ibm <subj> armonk <obj> headquarters location"),
]


@pytest.fixture(scope="module")
def rebel_dir(tmp_path_factory):
    """A tiny BART trained to write REBEL's linearisation for two sentences, saved as a checkpoint."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    markers = ["<triplet>", "<subj>", "<obj>"]
    words = sorted({w for pair in REBEL_EXAMPLES for side in pair for w in side.split()} - set(markers))
    vocab = ["<s>", "<pad>", "</s>", "<unk>"] + markers + words + ["filler", "word", "."]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(dict.fromkeys(vocab))}, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                           special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", additional_special_tokens=markers)
    torch.manual_seed(0)
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        decoder_start_token_id=2, forced_bos_token_id=None, forced_eos_token_id=2)
    model = BartForConditionalGeneration(config)
    inputs = tokenizer([s for s, _ in REBEL_EXAMPLES], padding=True, return_tensors="pt")
    labels = tokenizer([t for _, t in REBEL_EXAMPLES], padding=True, return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(150):
        loss = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("rebel") / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_seq2seq_extractor_generates_and_parses_triplets_end_to_end(rebel_dir):
    extractor = load_seq2seq_extractor(str(rebel_dir), device="cpu", batch_size=2, max_length=32, num_beams=2)
    texts = [s for s, _ in REBEL_EXAMPLES] + ["   "]
    predicted = extractor.predict(texts)
    assert predicted == [[("marie curie", "place of birth", "warsaw")],
                         [("ibm", "headquarters location", "armonk")], []]


def test_seq2seq_extractor_cuts_long_texts_at_sentence_ends_and_merges_their_triplets(rebel_dir):
    extractor = load_seq2seq_extractor(str(rebel_dir), device="cpu", max_length=32, num_beams=1)
    assert extractor.input_length == 64 and extractor.max_length == 32
    filler = " ".join(["filler word"] * 29) + " ."  # 59 tokens: no other sentence fits beside it
    first, second = REBEL_EXAMPLES[0][0], REBEL_EXAMPLES[1][0]
    text = " ".join([first, filler, second, filler, first])
    chunks = extractor.chunks(text)
    assert chunks == [first, filler, second, filler, first]
    assert all(len(extractor.tokenizer(c)["input_ids"]) <= 64 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    triples = extractor.predict([text])[0]
    assert ("marie curie", "place of birth", "warsaw") in triples
    assert ("ibm", "headquarters location", "armonk") in triples
    assert len(triples) == len(set(triples))
    long_sentence = " ".join(["word"] * 150)
    pieces = extractor.chunks(long_sentence)
    assert len(pieces) == 3 and re.fullmatch(r"(word ?)+", pieces[-1])
