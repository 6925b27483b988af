"""Checks shared by the tests of the path models, NBFNet and A*Net (kgbuild/embed/nbfnet.py,
astarnet.py), which both score a candidate by message passing from the query's head."""

from __future__ import annotations

import shutil

import torch
from embed_samples import HELD_OUT, PEOPLE, iri

from kgbuild.embed import load_embeddings, predict

P19 = "http://www.wikidata.org/prop/direct/P19"


def inverse_factory(triples):
    """A TriplesFactory of labelled triples with inverse relations, as path models need."""
    import numpy as np
    from pykeen.triples import TriplesFactory

    return TriplesFactory.from_labeled_triples(np.asarray(triples, dtype=str), create_inverse_triples=True)


def check_held_out_birthplace(result) -> None:
    """The model trained on the sample graph ranks the held-out birthplace in its top 3 and above
    every person."""
    person, _, city = HELD_OUT
    e2i, r2i = result.training.entity_to_id, result.training.relation_to_id
    with torch.inference_mode():
        scores = result.model.predict_t(torch.tensor([[e2i[iri(person)], r2i[P19]]]))[0]
    true_score = scores[e2i[iri(city)]]
    assert int((scores > true_score).sum()) + 1 <= 3
    assert true_score > scores[[e2i[iri(p)] for p in PEOPLE]].max()


def check_saved_copy(out, result, tmp_path):
    """A copy of OUT loads with the trained model's scores and predicts the birthplace by name;
    returns the loaded embeddings."""
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    loaded = load_embeddings(copy)
    queries = torch.tensor([[0, 0], [3, 1]])
    with torch.inference_mode():
        assert torch.allclose(loaded.model.predict_t(queries), result.model.predict_t(queries), atol=1e-5)
    found = predict(copy, head="Zofia Nowak", relation="place of birth", top=3)
    assert iri("Warsaw") in [c.iri for c in found.candidates]
    return loaded
