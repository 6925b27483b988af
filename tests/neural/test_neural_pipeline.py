import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kgbuild.config import load_config
from kgbuild.errors import ModelLoadError
from kgbuild.graph.query import query
from kgbuild.neural.train import evaluate
from kgbuild.registry import build
from kgbuild.runner import run

ROOT = Path(__file__).resolve().parents[2]
TEXT = "John Smith works for Acme Corp . Mary Jones lives in Paris .\n\nAcme Corp is based in Berlin .\n"


def _run(tmp_path, model, ner):
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "news.txt").write_text(TEXT)
    overrides = ["relations.backend=transformers", f"relations.model={model}", "device=cpu"]
    if ner == "transformers":  # neural.toml as shipped, pointed at the model
        config = load_config(ROOT / "pipelines/neural.toml", overrides + [f"ner.model={model}"])
    else:  # the default pipeline's spaCy NER
        config = load_config(None, overrides)
    out = tmp_path / f"out-{ner}"
    return run(corpus, out, config, quiet=True), out


def _facts(out):
    rows = query(out, "SELECT ?s ?label ?o WHERE { ?a ?p ?b . ?p <http://www.w3.org/2000/01/rdf-schema#label> ?label . "
                      "?a <http://www.w3.org/2000/01/rdf-schema#label> ?s . ?b <http://www.w3.org/2000/01/rdf-schema#label> ?o }")
    return {tuple(str(v) for v in row) for row in rows.rows}


def test_joint_model_runs_as_ner_and_relations_stages_with_readable_relation_labels(tmp_path, tiny_model):
    result, out = _run(tmp_path, tiny_model[0], "transformers")
    assert result.models["ner"]["kind"] == "kgbuild joint model"
    assert result.mentions.get("PER", 0) >= 2 and result.facts >= 2
    facts = _facts(out)
    assert any(label == "work for" for _, label, _ in facts), facts


def test_joint_relations_stage_after_spacy_ner_aligns_its_own_entities(tmp_path, tiny_model):
    result, out = _run(tmp_path, tiny_model[0], "spacy")
    assert result.models["ner"]["backend"] == "spacy"
    assert result.relation_mentions >= 2
    assert any(label == "work for" for _, label, _ in _facts(out))


def test_neural_toml_keys_are_commented_and_its_options_are_accepted(tiny_model):
    path = ROOT / "pipelines/neural.toml"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"key without comment: {line}"
    data = tomllib.loads(path.read_text())
    assert data["ner"]["backend"] == data["relations"]["backend"] == "transformers"
    cfg = load_config(path, [f"ner.model={tiny_model[0]}", f"relations.model={tiny_model[0]}"])
    for stage in ("ner", "relations"):
        stage_cfg = getattr(cfg, stage)
        assert build(stage, stage_cfg.backend, stage_cfg.options, device="cpu").joint is not None


def test_cli_trains_and_evaluates_a_relation_model(tmp_path, tiny_encoder, tiny_data):
    out = tmp_path / "model"
    cli = [sys.executable, "-m", "kgbuild.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model on a shared machine: one thread is fastest
    train = subprocess.run(cli + ["train", "re", "--train", str(tiny_data), "--dev", str(tiny_data), "--format", "conll04",
                                  "--base-model", str(tiny_encoder), "-o", str(out), "--epochs", "2", "--threads", "1",
                                  "--device", "cpu", "-q"], capture_output=True, text=True, env=env)
    assert train.returncode == 0, train.stderr
    assert "strict relation F1" in train.stdout and (out / "kgbuild_model.json").is_file()
    ev = subprocess.run(cli + ["eval", "re", "--model", str(out), "--data", str(tiny_data), "--json"],
                        capture_output=True, text=True, env=env)
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert set(result["relations"]["micro"]) >= {"precision", "recall", "f1"} and result["examples"] == 4
    with pytest.raises(ModelLoadError, match="not a model folder written by kgbuild train"):
        evaluate(tmp_path, tiny_data)


def test_cross_sentence_zeroshot_adds_only_relations_between_sentences(tiny_model, pipeline, sample_corpus):
    from kgbuild.model import Document

    model = str(tiny_model[0])
    text = (sample_corpus / "science" / "marie_curie.txt").read_text(encoding="utf-8")
    ner = pipeline.stages["ner"]  # spaCy: real mentions in several sentences
    plain, doc = ner([Document(id="a", text=text), Document(id="a", text=text)])
    build("relations", "transformers", {"model": model}, device="cpu")([plain])
    stage = build("relations", "transformers", {"model": model, "cross_sentence": "zeroshot"}, device="cpu")
    stage([doc])

    added = [r for r in doc.relations if r.extractor == "zeroshot"]
    assert added, "the zeroshot backend found no relation between sentences of the Marie Curie article"
    assert all(doc.mentions[r.head].sentence != doc.mentions[r.tail].sentence for r in added)
    assert all(r.confidence >= 0.6 for r in added)
    assert [m.label for m in doc.mentions] == [m.label for m in plain.mentions]  # labels lent to zeroshot come back
    # the model's own relations are those it gives without the option
    own = [(r.head, r.tail, r.relation, r.confidence) for r in doc.relations if r.extractor != "zeroshot"]
    assert own == [(r.head, r.tail, r.relation, r.confidence) for r in plain.relations]
    labels = stage.labels()
    assert labels["Work_For"] and labels["P17"] == "country"  # both schemas' names reach the graph
    assert stage.info()["cross_sentence"]["backend"] == "zeroshot"


def test_unknown_cross_sentence_backend_is_refused(tiny_model):
    from kgbuild.errors import ConfigError

    with pytest.raises(ConfigError, match="cross_sentence"):
        build("relations", "transformers", {"model": str(tiny_model[0]), "cross_sentence": "rules"}, device="cpu")


def test_a_model_trained_again_into_the_same_folder_is_not_served_from_the_cache(tmp_path, tiny_model):
    import shutil

    import torch

    model = tmp_path / "model"
    shutil.copytree(tiny_model[0], model)
    first, _ = _run(tmp_path, model, "transformers")
    again, _ = _run(tmp_path, model, "transformers")
    assert (first.reused, again.reused) == (0, 1)
    heads = torch.load(model / "heads.pt", weights_only=True)  # as if trained again: other weights, same files
    heads["span_head.4.bias"] += 1.0
    torch.save(heads, model / "heads.pt")
    retrained, _ = _run(tmp_path, model, "transformers")
    assert retrained.reused == 0
    # nor by the model loaded in this process before: the folder's files key the in-memory copy too
    from kgbuild.neural.annotate import joint_model

    loaded = joint_model(str(model), "cpu")
    assert float(loaded.net.span_head[4].bias[0].detach()) == float(heads["span_head.4.bias"][0])
    assert joint_model(str(model), "cpu") is loaded


def test_stage_precision_reaches_the_joint_model(tiny_model):
    from kgbuild.ner.transformers_ner import TransformersNER
    from kgbuild.relations.transformers_re import TransformersRelations

    ner = TransformersNER(model=str(tiny_model[0]), device="cpu", precision="bf16")
    relations = TransformersRelations(model=str(tiny_model[0]), device="cpu")
    assert ner.info()["precision"] == "bf16" and ner.joint.precision == "bf16"
    assert relations.info()["precision"] == "fp32"

