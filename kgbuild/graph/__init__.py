"""The graph stage: linked entities and extracted facts become RDF in an embedded Oxigraph store
in OUT/store, which SPARQL queries, the rdflib and networkx views and every export read.

Each fact is one triple in the default graph plus one `rdf:Statement` node per extraction
that carries its provenance, so plain SPARQL answers both questions users ask first.

What do we know about X? Every fact where X (by name or alias, any case) is subject or object,
with how many extractions back it and the best confidence among them:

```sparql
PREFIX rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX owl:  <http://www.w3.org/2002/07/owl#>
PREFIX kg:   <http://kgbuild.org/kg/ontology/>

SELECT ?subject ?relation ?object (COUNT(DISTINCT ?statement) AS ?sources) (MAX(?score) AS ?confidence)
WHERE {
  ?x rdfs:label|skos:altLabel ?name .
  FILTER(LCASE(STR(?name)) = LCASE("Marie Curie"))
  { ?x ?p ?o . BIND(?x AS ?s) } UNION { ?s ?p ?x . BIND(?x AS ?o) }
  # EXISTS and OPTIONAL, not plain joins: Oxigraph then looks up each row instead of scanning
  FILTER EXISTS { ?p a owl:ObjectProperty }
  OPTIONAL { ?statement rdf:subject ?s ; rdf:predicate ?p ; rdf:object ?o ; kg:confidence ?score }
  OPTIONAL { ?p rdfs:label ?relation }
  OPTIONAL { ?s rdfs:label ?subject }
  OPTIONAL { ?o rdfs:label ?object }
}
GROUP BY ?s ?p ?o ?subject ?relation ?object
ORDER BY ?relation ?subject ?object
```

Where does this fact come from? Every extraction of one (subject, relation, object), with its
document, sentence, character offsets, confidence and extractor:

```sparql
PREFIX rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX wdt:  <http://www.wikidata.org/prop/direct/>
PREFIX kg:   <http://kgbuild.org/kg/ontology/>

SELECT ?document ?sentence ?start ?end ?confidence ?extractor
WHERE {
  ?statement a rdf:Statement ;
      rdf:subject <http://kgbuild.org/kg/entity/person/marie-curie> ;
      rdf:predicate wdt:P19 ;
      rdf:object <http://kgbuild.org/kg/entity/location/warsaw> ;
      prov:wasDerivedFrom ?doc ;
      kg:sentence ?sentence ;
      kg:start ?start ;
      kg:end ?end ;
      kg:confidence ?confidence ;
      kg:extractor ?extractor .
  ?doc kg:path ?document .
}
ORDER BY DESC(?confidence) ?document ?start
```

Both assume the default base IRI `http://kgbuild.org/kg/`; with another `base_iri`, change the
`kg:` prefix and the entity IRIs. `query()` predeclares rdf, rdfs, xsd, owl, skos, prov, schema,
wd, wdt, void and kg (for the graph's own base), so the PREFIX lines are only needed elsewhere.
"""

from kgbuild.graph.export import EXPORT_FORMATS, write_graph
from kgbuild.graph.query import RESULT_FORMATS, QueryResult, format_result, query
from kgbuild.graph.rdf import entity_iri, entity_quads, fact_quads, relation_iri
from kgbuild.graph.store import (
    GraphStats,
    facts_from_documents,
    open_store,
    write_graph_data,
)
from kgbuild.graph.views import to_networkx, to_rdflib

__all__ = [
    "EXPORT_FORMATS",
    "RESULT_FORMATS",
    "GraphStats",
    "QueryResult",
    "entity_iri",
    "entity_quads",
    "fact_quads",
    "facts_from_documents",
    "format_result",
    "open_store",
    "query",
    "relation_iri",
    "to_networkx",
    "to_rdflib",
    "write_graph",
    "write_graph_data",
]
