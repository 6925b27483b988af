"""The graph written unit by unit, and updated in place unit by unit, is exactly the graph that
write_graph_data writes from the same entities and facts in one go."""

import kgbuild.graph.incremental as incremental
from kgbuild.graph.export import canonical_nquads
from kgbuild.graph.incremental import write_graph
from kgbuild.graph.spool import FactSpool
from kgbuild.graph.store import write_graph_data
from kgbuild.model import Entity, Fact

BASE = "http://kgbuild.org/kg/"
LABELS = {"P19": "place of birth", "P26": "spouse"}


def fact(s, o, doc, rel="P19", start=0, conf=0.9):
    return Fact(subject=s, relation=rel, object=o, document=doc, sentence="Marie Curie was born in Warsaw.",
                start=start, end=31, confidence=conf, extractor="zeroshot")


def entities(curie_docs, warsaw_docs):
    return [Entity(key="person/marie-curie", name="Marie Curie", type="PER", labels={"PERSON"},
                   aliases={"Curie"}, n_mentions=len(curie_docs), documents=set(curie_docs),
                   why=["short name 'Curie' of 'Marie Curie' in a.txt"]),
            Entity(key="person/pierre-curie", name="Pierre Curie", type="PER", documents={"b.txt"}, n_mentions=1),
            Entity(key="location/warsaw", name="Warsaw", type="LOC", documents=set(warsaw_docs), n_mentions=2)]


def written(tmp_path, name, ents, facts):
    """(what write_graph did, the graph it left) for a spool of `facts` into OUT `tmp_path/name`."""
    spool = FactSpool(tmp_path / name)
    spool.add(facts)
    how = write_graph(tmp_path / name, ents, spool, BASE, LABELS)
    spool.close()
    return how, canonical_nquads(tmp_path / name)


def expected(tmp_path, name, ents, facts):
    write_graph_data(tmp_path / name, ents, facts, BASE, LABELS)
    return canonical_nquads(tmp_path / name)


def test_graph_loaded_in_small_bulk_calls_is_the_graph_written_in_one_go(tmp_path, monkeypatch):
    # many bulk loads of 3 quads, LOADERS of them at a time into the same store
    monkeypatch.setattr(incremental, "BULK_QUADS", 3)
    assert incremental.LOADERS > 1
    ents = entities(["a.txt", "b.txt"], ["a.txt", "c.txt"])
    facts = [fact("person/marie-curie", "location/warsaw", "a.txt"),
             fact("person/marie-curie", "location/warsaw", "b.txt", conf=0.7),
             fact("person/marie-curie", "person/pierre-curie", "b.txt", rel="P26", start=40)]
    (tmp_path / "out").mkdir()
    how, graph = written(tmp_path, "out", ents, facts)
    assert how == "rebuilt"
    assert graph == expected(tmp_path, "memory", ents, facts)


def test_update_in_place_gives_the_graph_a_rebuild_gives(tmp_path):
    (tmp_path / "out").mkdir()
    first = [fact("person/marie-curie", "location/warsaw", "a.txt"),
             fact("person/marie-curie", "location/warsaw", "b.txt", conf=0.7),
             fact("person/marie-curie", "person/pierre-curie", "b.txt", rel="P26", start=40)]
    written(tmp_path, "out", entities(["a.txt", "b.txt"], ["a.txt", "b.txt"]), first)
    # b.txt loses its facts but is still mentioned; c.txt is new; the spouse relation is used no more,
    # the birth triple stays (a.txt still states it) and Pierre's only document is b.txt
    second = [fact("person/marie-curie", "location/warsaw", "a.txt", conf=0.8),
              fact("location/warsaw", "person/marie-curie", "c.txt", rel="P19")]
    ents = entities(["a.txt", "c.txt"], ["a.txt", "b.txt", "c.txt"])
    how, graph = written(tmp_path, "out", ents, second)
    assert how == "updated"
    assert graph == expected(tmp_path, "memory", ents, second)
    assert not any("P26" in q for q in graph) and any("document/b.txt" in q for q in graph)
