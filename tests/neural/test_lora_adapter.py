import json
import shutil

import pytest
import torch

from kgbuild.errors import KgbuildError
from kgbuild.neural.joint import JointExtractor, write_half
from kgbuild.neural.train import evaluate, train

TEXT = "John Smith works for Acme Corp in Boston ."


@pytest.fixture(scope="module")
def lora_model(tmp_path_factory, tiny_encoder, tiny_data):
    """The joint model with a LoRA adapter on the tiny encoder, trained to overfit the sentences."""
    out = tmp_path_factory.mktemp("lora") / "joint"
    threads = torch.get_num_threads()
    try:
        result = train(tiny_data, tiny_data, out, task="re", base_model=str(tiny_encoder), epochs=30, batch_size=4,
                       lr=1e-2, head_lr=1e-2, patience=30, quiet=True, seed=0, threads=1, adapter="lora",
                       lora_rank=4)
    finally:
        torch.set_num_threads(threads)
    return out, result


def test_lora_training_stores_the_adapter_not_the_encoder(lora_model, tiny_encoder):
    out, result = lora_model
    assert (out / "encoder" / "adapter_config.json").is_file()
    assert (out / "encoder" / "adapter_model.safetensors").is_file()
    assert not (out / "encoder" / "model.safetensors").exists()
    config = json.loads((out / "training_config.json").read_text())
    assert config["adapter"] == "lora" and config["lora_rank"] == 4
    assert config["base_model_name"] == str(tiny_encoder.resolve())
    assert result.history[-1]["loss"] < result.history[0]["loss"] / 3


def test_lora_model_loads_onto_its_base_and_reproduces_its_dev_scores(lora_model, tiny_data):
    out, result = lora_model
    again = evaluate(out, tiny_data, "conll04", device="cpu")
    assert again["entities"] == result.dev["entities"] and again["relations"] == result.dev["relations"]
    assert result.dev["entities"]["micro"]["f1"] > 50


def test_the_adapter_changes_the_encoder_and_the_base_stays_untouched(lora_model, tiny_encoder):
    from transformers import AutoModel, AutoTokenizer

    out, _ = lora_model
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    inputs = tokenizer([TEXT], return_tensors="pt")
    base = AutoModel.from_pretrained(tiny_encoder).eval()
    adapted = JointExtractor.load(out, "cpu").net.encoder.eval()
    with torch.inference_mode():
        plain = base(**inputs).last_hidden_state
        tuned = adapted(**inputs).last_hidden_state
    assert not torch.allclose(plain, tuned, atol=1e-4)
    with torch.inference_mode():  # the base folder itself was not changed by training or merging
        assert torch.equal(AutoModel.from_pretrained(tiny_encoder).eval()(**inputs).last_hidden_state, plain)


def test_lora_model_folder_moved_elsewhere_predicts_the_same(lora_model, tmp_path):
    out, _ = lora_model
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(out, moved)
    (here,) = JointExtractor.load(out, "cpu").predict([TEXT])
    (there,) = JointExtractor.load(moved, "cpu").predict([TEXT])
    assert here == there


def test_half_copy_of_a_lora_model_keeps_the_adapter_and_the_labels(lora_model, tmp_path):
    from safetensors.torch import load_file

    out, _ = lora_model
    result = write_half(out, tmp_path / "half")
    weights = load_file(tmp_path / "half" / "encoder" / "adapter_model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float16}
    assert result["bytes_after"] < result["bytes_before"]
    (full,) = JointExtractor.load(out, "cpu").predict([TEXT])
    (half,) = JointExtractor.load(tmp_path / "half", "cpu").predict([TEXT])
    assert [e[:3] for e in half.entities] == [e[:3] for e in full.entities]


def test_training_goes_on_from_a_lora_model_folder(lora_model, tiny_data, tmp_path):
    # intermediate-task training: the adapter is merged into its base, which is fine-tuned whole
    out, _ = lora_model
    result = train(tiny_data, tiny_data, tmp_path / "next", task="ner", base_model=str(out), epochs=1, batch_size=4,
                   quiet=True, device="cpu")
    assert (tmp_path / "next" / "encoder" / "model.safetensors").is_file()
    assert result.history[0]["loss"] == result.history[0]["loss"]  # a number, not NaN


def test_unknown_adapter_and_rank_zero_are_refused(tiny_data, tiny_encoder, tmp_path):
    with pytest.raises(KgbuildError, match="unknown adapter"):
        train(tiny_data, tiny_data, tmp_path / "x", base_model=str(tiny_encoder), adapter="prefix", quiet=True)
    with pytest.raises(KgbuildError, match="rank must be 1 or more"):
        train(tiny_data, tiny_data, tmp_path / "y", base_model=str(tiny_encoder), adapter="lora", lora_rank=0,
              quiet=True, epochs=1)

