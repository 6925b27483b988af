"""Facts spooled to disk during a run give the same graph as write_graph_data over the same facts
held in memory: merges applied, self-loops dropped, a repeated extraction kept once at its best
confidence."""

from kgbuild.graph.export import canonical_nquads
from kgbuild.graph.spool import FactSpool, extend_store
from kgbuild.graph.store import write_graph_data
from kgbuild.model import Entity, Fact

BASE = "http://kgbuild.org/kg/"


def fact(s, o, doc="a.txt", start=0, conf=0.9, rel="P19"):
    return Fact(subject=s, relation=rel, object=o, document=doc, sentence="Marie Curie was born in Warsaw.",
                start=start, end=31, confidence=conf, extractor="zeroshot")


def test_spooled_facts_give_the_graph_of_the_same_facts_in_memory(tmp_path):
    entities = [Entity(key="person/marie-curie", name="Marie Curie", type="PER", documents={"a.txt"}),
                Entity(key="location/warsaw", name="Warsaw", type="LOC", documents={"a.txt", "b.txt"})]
    facts = [fact("person/marie-curie", "location/warsaw"),
             fact("person/marie-curie", "location/warsaw", conf=0.6),  # same extraction, lower score
             fact("person/curie", "location/warsaw", doc="b.txt", conf=0.7),  # merged into marie-curie
             fact("person/curie", "person/marie-curie", doc="b.txt", rel="P26"),  # becomes a self-loop
             fact("location/warsaw", "person/marie-curie", doc="b.txt", start=40, rel="P112")]
    remap = {"person/curie": "person/marie-curie"}

    in_memory = [Fact(**{k: getattr(f, k) for k in f.__slots__}) for f in facts]
    for f in in_memory:
        f.subject, f.object = remap.get(f.subject, f.subject), remap.get(f.object, f.object)
    in_memory = [f for f in in_memory if f.subject != f.object]
    write_graph_data(tmp_path / "memory", entities, in_memory, BASE, {"P19": "place of birth"})

    spool = FactSpool(tmp_path)
    spool.add(facts[:2])
    spool.add(facts[2:])
    spool.remap(remap)
    assert spool.counts() == (2, 4)  # (distinct triples, extractions)
    write_graph_data(tmp_path / "spooled", entities, [], BASE, {"P19": "place of birth"})
    extend_store(tmp_path / "spooled", spool.quads(BASE, {"P19": "place of birth"}))
    spool.close()
    assert not (tmp_path / ".facts.sqlite").exists()
    assert canonical_nquads(tmp_path / "spooled") == canonical_nquads(tmp_path / "memory")
    confidences = [q.split('"')[1] for q in canonical_nquads(tmp_path / "spooled") if "/confidence>" in q]
    assert sorted(float(c) for c in confidences) == [0.7, 0.9, 0.9]  # 0.6 lost to 0.9
