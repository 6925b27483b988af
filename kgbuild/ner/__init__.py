"""Sentences and entity recognition: documents in, documents with sentences and mentions out."""
