"""The embedding stage: graph -> PyKEEN embeddings -> predicted links.

    from kgbuild.embed import train_embeddings, predict
    result = train_embeddings("out/sample")              # saved under out/sample/embeddings/
    answers = predict("out/sample", head="Marie Curie", relation="place of birth")

`evaluate_linkpred` trains and scores a model on a benchmark (Nations, UMLS, Kinships or your
own TSV files) the same way, for the figures in README.
"""

from kgbuild.embed.graph import GraphTriples, read_graph
from kgbuild.embed.predict import (
    Candidate,
    PredictionResult,
    UnknownEntityError,
    UnknownRelationError,
    predict,
    predicted_graph_iri,
)
from kgbuild.embed.presets import PRESETS, TrainConfig, default_config
from kgbuild.embed.train import EmbeddingError, EmbeddingResult, load_embeddings, train_embeddings

__all__ = [
    "PRESETS",
    "Candidate",
    "EmbeddingError",
    "EmbeddingResult",
    "GraphTriples",
    "PredictionResult",
    "TrainConfig",
    "UnknownEntityError",
    "UnknownRelationError",
    "default_config",
    "load_embeddings",
    "predict",
    "predicted_graph_iri",
    "read_graph",
    "train_embeddings",
]
