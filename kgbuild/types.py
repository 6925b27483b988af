"""The small type system every stage shares. Recognisers map their own labels onto six types
(the DocRED entity types, so that relation schemas can constrain on them), and each type and
label maps to a schema.org class for the RDF graph."""

from __future__ import annotations

TYPES = {
    "PER": "person",
    "ORG": "organization",
    "LOC": "location",
    "TIME": "time",
    "NUM": "number",
    "MISC": "misc",
}

# spaCy / OntoNotes labels (and the CoNLL-2003 ones) onto kgbuild types.
LABEL_TO_TYPE = {
    "PERSON": "PER",
    "PER": "PER",
    "ORG": "ORG",
    "GPE": "LOC",
    "LOC": "LOC",
    "FAC": "LOC",
    "DATE": "TIME",
    "TIME": "TIME",
    "CARDINAL": "NUM",
    "QUANTITY": "NUM",
    "MONEY": "NUM",
    "PERCENT": "NUM",
    "ORDINAL": "NUM",
    "NUM": "NUM",
    "NORP": "MISC",
    "EVENT": "MISC",
    "WORK_OF_ART": "MISC",
    "LAW": "MISC",
    "LANGUAGE": "MISC",
    "PRODUCT": "MISC",
    "MISC": "MISC",
}

SCHEMA = "http://schema.org/"

# schema.org class per type; a finer label overrides it where schema.org has a closer class.
TYPE_TO_SCHEMA = {
    "PER": "Person",
    "ORG": "Organization",
    "LOC": "Place",
    "TIME": "Date",
    "NUM": "QuantitativeValue",
    "MISC": "Thing",
}
LABEL_TO_SCHEMA = {
    "GPE": "AdministrativeArea",
    "FAC": "LandmarksOrHistoricalBuildings",
    "EVENT": "Event",
    "WORK_OF_ART": "CreativeWork",
    "LAW": "Legislation",
    "LANGUAGE": "Language",
    "PRODUCT": "Product",
    "MONEY": "MonetaryAmount",
    "NORP": "Audience",
}


def type_of(label: str) -> str:
    """kgbuild type for a recogniser label; unknown labels fall back to MISC."""
    return LABEL_TO_TYPE.get(label.upper(), "MISC")


def schema_class(type_: str, label: str | None = None) -> str:
    """Full schema.org IRI for a mention's type and label."""
    name = LABEL_TO_SCHEMA.get(label or "") or TYPE_TO_SCHEMA.get(type_, "Thing")
    return SCHEMA + name
