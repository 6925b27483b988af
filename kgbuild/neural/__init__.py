"""Transformer extraction models: the joint entity and relation model that `kgbuild train` fits, and
models from the Hugging Face hub by name (hub.py)."""
