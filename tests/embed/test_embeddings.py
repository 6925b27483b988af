"""Training, saving and loading embeddings of a hand-made graph (embed_samples.py), on the CPU."""

from __future__ import annotations

import json

import torch
from embed_samples import HELD_OUT, PEOPLE, iri

from kgbuild.embed import EmbeddingResult, load_embeddings, read_graph
from kgbuild.embed.presets import default_config
from kgbuild.embed.train import split_triples

P19 = "http://www.wikidata.org/prop/direct/P19"


def _tail_scores(result: EmbeddingResult, head: str, relation: str) -> torch.Tensor:
    e2i, r2i = result.training.entity_to_id, result.training.relation_to_id
    with torch.inference_mode():
        return result.model.predict_t(torch.tensor([[e2i[head], r2i[relation]]]))[0]


def test_only_facts_between_entities_are_read(embedded):
    out, _ = embedded
    graph = read_graph(out)
    # 13 people employed, 12 born (one held out), 3 couples both ways, 3 cities + 3 universities in countries
    assert len(graph.triples) == 13 + 12 + 6 + 6
    for h, r, t in graph.triples:
        assert h.startswith(graph.base + "entity/") and t.startswith(graph.base + "entity/")
        assert r.startswith("http://www.wikidata.org/prop/direct/P")


def test_held_out_birthplace_ranks_above_random_entities(embedded):
    _, result = embedded
    person, _, city = HELD_OUT
    scores = _tail_scores(result, iri(person), P19)
    true_score = scores[result.training.entity_to_id[iri(city)]]
    rank = int((scores > true_score).sum()) + 1
    random_people = [result.training.entity_to_id[iri(p)] for p in PEOPLE if p != person]
    assert rank <= 3, f"Warsaw ranked {rank} of {len(scores)}"
    assert true_score > scores[random_people].max()


def test_validation_split_is_seeded_and_keeps_every_entity_in_training(embedded):
    out, _ = embedded
    graph = read_graph(out)
    config = default_config(None, len(graph.triples))
    train_a, valid_a = split_triples(graph.triples, config, seed=3)
    train_b, valid_b = split_triples(graph.triples, config, seed=3)
    assert valid_a is not None and valid_a.num_triples > 0
    assert sorted(map(tuple, valid_a.triples)) == sorted(map(tuple, valid_b.triples))
    train_entities = {e for h, _, t in train_a.triples for e in (h, t)}
    assert {e for h, _, t in valid_a.triples for e in (h, t)} <= train_entities


def test_training_summary_records_curves_and_validation_mrr(embedded):
    out, result = embedded
    summary = json.loads((out / "embeddings" / "summary.json").read_text())
    assert summary["config"]["model"] == result.config.model
    assert summary["validation_triples"] > 0 and 0.0 < summary["metrics"]["mrr"] <= 1.0
    assert len(summary["curves"]["losses"]) == summary["epochs"]
    assert summary["curves"]["validation_mrr"] and summary["best_epoch"] in summary["curves"]["validation_epochs"]


def test_saved_and_loaded_embeddings_give_the_same_scores(embedded):
    out, result = embedded
    loaded = load_embeddings(out)
    assert loaded.training.entity_to_id == result.training.entity_to_id
    assert loaded.training.relation_to_id == result.training.relation_to_id
    for person in ("Zofia Nowak", "Marie Curie"):
        assert torch.allclose(_tail_scores(loaded, iri(person), P19), _tail_scores(result, iri(person), P19), atol=1e-5)


def test_settings_change_the_training_and_are_saved(embedded_copy):
    from kgbuild.embed import load_embeddings, train_embeddings

    result = train_embeddings(embedded_copy, device="cpu", seed=0, settings=["embedding_dim=8", "epochs=3"])
    assert (result.config.embedding_dim, result.epochs) == (8, 3)
    assert load_embeddings(embedded_copy).config.embedding_dim == 8


def test_embed_command_time_box_ends_training_in_the_first_epoch(embedded_copy):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kgbuild.cli", "embed", str(embedded_copy), "--device", "cpu",
                           "--max-minutes", "0", "--quiet", "--set", "embedding_dim=8", "--set", "batch_size=4"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "; 1 epochs (best 1)" in proc.stdout
    summary = json.loads((embedded_copy / "embeddings" / "summary.json").read_text())
    assert len(summary["curves"]["losses"]) == 1
