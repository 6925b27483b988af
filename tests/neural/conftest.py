"""A tiny random BERT (with the real all-MiniLM-L6-v2 tokenizer) and a few annotated sentences:
enough to train the joint model for a few seconds in a test."""

from pathlib import Path

import pytest
from neural_samples import write_conll04


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from kgbuild.neural.joint import base_model_path

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(base_model_path("auto"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_conll04(tmp_path_factory.mktemp("data") / "tiny.json")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_encoder, tiny_data):
    """The joint model trained to overfit the four sentences (train = dev)."""
    from kgbuild.neural.train import train

    import torch

    out = tmp_path_factory.mktemp("model") / "joint"
    threads = torch.get_num_threads()
    try:  # one thread: a tiny model gains nothing from more, and loses much on a busy machine
        result = train(tiny_data, tiny_data, out, task="re", base_model=str(tiny_encoder), epochs=30, batch_size=4,
                       lr=3e-3, head_lr=1e-2, patience=30, quiet=True, seed=0, threads=1)
    finally:
        torch.set_num_threads(threads)
    return out, result
