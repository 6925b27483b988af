"""Relation extraction: documents with mentions in, documents with relation mentions out."""
