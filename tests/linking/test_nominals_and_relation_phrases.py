"""Nominal mentions ("the company"), the salient-entity pronoun strategy, open relation phrases
(kept by the relations stage, merged and mapped onto the schema by the linking stage, labelled
in the graph), and the large-set neighbour index of cross-document merging."""

import numpy as np
import pytest

from kgbuild.graph.rdf import SKOS_ALT_LABEL, fact_quads
from kgbuild.linking.crossdoc import candidate_pairs
from kgbuild.linking.kb import ann_index
from kgbuild.linking.mentions import find_nominals
from kgbuild.linking.relphrases import RelationPhrases, phrase_key
from kgbuild.linking.rules import RuleLinker
from kgbuild.model import Document, Entity, Fact, Sentence
from kgbuild.ner.spacy_ner import SpacyNER
from kgbuild.relations.zeroshot import ZeroShotRelations


@pytest.fixture(scope="module")
def ner():
    return SpacyNER()


@pytest.fixture(scope="module")
def encode():
    return RuleLinker(device="cpu").encoder().encode


def test_nominal_mention_joins_the_preceding_company(ner):
    text = "Apple Inc. was founded by Steve Jobs in Cupertino. The company sells phones."
    doc = RuleLinker(nominals=True)(ner([Document("d", text)]))[0]
    nominal = [(m.text, m.type, m.entity) for m in doc.mentions if m.kind == "nominal"]
    assert nominal == [("The company", "ORG", "organization/apple-inc")]


def test_nominal_that_introduces_a_name_is_not_a_mention():
    text = "The city of Geneva is big. The company Apple grew. The company town left."
    doc = Document("d", text, sentences=[Sentence(0, 26), Sentence(27, 50), Sentence(51, len(text))])
    assert [m.text for m in find_nominals(doc)] == []


def test_nominals_are_off_by_default(ner):
    doc = RuleLinker()(ner([Document("d", "Apple Inc. makes phones. The company is large.")]))[0]
    assert all(m.kind != "nominal" for m in doc.mentions)


def test_salient_pronoun_strategy_prefers_the_entity_named_most(ner):
    text = ("Marie Curie was a physicist. Marie Curie won two prizes. Pierre Curie met Albert Einstein in Paris. "
            "She died in 1934.")
    she = {s: next(m.entity for m in RuleLinker(pronoun_strategy=s)(ner([Document("d", text)]))[0].mentions
                   if m.kind == "pronoun" and m.text == "She") for s in ("subject", "salient")}
    assert she == {"subject": "person/pierre-curie", "salient": "person/marie-curie"}


def test_phrase_key_drops_auxiliaries_and_articles():
    assert phrase_key("was born in") == phrase_key("born in") == "born in"
    assert phrase_key("is a native of") == "native of"


def test_synonymous_phrases_merge_and_a_schema_phrase_maps(encode):
    phrases = RelationPhrases(encode, "cluster", map_threshold=0.8, cluster_threshold=0.8)
    works, cosine = phrases.assign("works for", "PER", "ORG")
    assert works == "P108" and cosine > 0.8  # DocRED's "employer": "{head} works for {tail}"
    grew = phrases.assign("grew up in", "PER", "LOC")[0]
    assert grew.startswith("open/") or grew == "P19"
    native = phrases.assign("is a native of", "PER", "LOC")[0]
    assert native == phrases.assign("was a native of", "PER", "LOC")[0] == phrases.assign("native of", "PER", "LOC")[0]
    assert native.startswith("open/")
    labels = phrases.labels()
    assert labels["P108"][:2] == ["employer", "works for"]
    assert set(labels[native]) == {"is a native of", "was a native of", "native of"}


def test_map_mode_drops_what_it_cannot_map_and_drop_mode_drops_all(encode):
    mapped = RelationPhrases(encode, "map", map_threshold=0.8)
    assert mapped.assign("works for", "PER", "ORG")[0] == "P108"
    assert mapped.assign("is a native of", "PER", "LOC")[0] is None
    assert RelationPhrases(encode, "drop").assign("works for", "PER", "ORG") == (None, None)


def test_open_relations_run_from_text_to_merged_relations(ner):
    texts = ["Marie Curie is a native of Warsaw.", "Frederic Chopin was a native of Warsaw.",
             "Tim Cook works for Apple."]
    relations = ZeroShotRelations(open_relations=True, device="cpu")
    linker = RuleLinker()
    docs = linker(relations(ner([Document(f"d{i}", t) for i, t in enumerate(texts)])))
    rels = [[(d.mentions[r.head].text, r.relation, d.mentions[r.tail].text) for r in d.relations] for d in docs]
    assert rels[0][0][1] == rels[1][0][1] and rels[0][0][1].startswith("open/")
    assert ("Tim Cook", "P108", "Apple") in rels[2]
    assert not any(r.relation.startswith("open:") for d in docs for r in d.relations)
    assert set(linker.relation_labels()[rels[0][0][1]]) == {"is a native of", "was a native of"}


def test_open_relations_are_off_by_default(ner):
    doc = ZeroShotRelations(device="cpu")(ner([Document("d", "Marie Curie is a native of Warsaw.")]))[0]
    assert not any(r.relation.startswith("open:") for r in doc.relations)


def test_merged_relation_phrases_become_alt_labels_in_the_graph():
    fact = Fact("person/a", "open/native-of", "location/b", "d", "A is a native of B.", 0, 19, 0.7, "zeroshot")
    quads = list(fact_quads([fact], "http://x/", {"open/native-of": ["is a native of", "was a native of"]}))
    alt = [q.object.value for q in quads if q.predicate == SKOS_ALT_LABEL]
    assert alt == ["was a native of"]


def test_large_blocks_use_an_approximate_index_that_still_finds_close_pairs():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 32)).astype(np.float32)
    twins = base + 0.05 * rng.normal(size=base.shape).astype(np.float32)
    vectors = np.concatenate([base, twins])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert type(ann_index(vectors, exact_below=1000)).__name__ == "IndexFlatIP"
    assert type(ann_index(vectors, exact_below=100)).__name__ == "IndexHNSWSQ"
    names = [f"Entity number {i:03d}" for i in range(300)] + [f"Entity numbr {i:03d}" for i in range(300)]
    entities = [Entity(key=f"misc/{i}", name=n, type="MISC") for i, n in enumerate(names)]
    pairs = candidate_pairs(entities, vectors, k=5, min_cosine=0.6, min_fuzzy=90, exact_below=100)
    found = {(p.a, p.b) if p.a < p.b else (p.b, p.a) for p in pairs}
    assert len(found & {(i, i + 300) for i in range(300)}) >= 285


def test_open_phrase_runs_from_the_verb_to_the_tail_without_its_article(ner):
    from kgbuild.relations.phrases import open_phrase

    def phrase(text):
        doc = ner([Document("d", text)])[0]
        return open_phrase(doc, doc.mentions[0], doc.mentions[-1])

    assert phrase("Alan Turing was born in London.") == "was born in"
    assert phrase("Marie Curie won the Nobel Prize.") == "won"
    assert phrase("Nelson Mandela joined the African National Congress in 1944.") is None
