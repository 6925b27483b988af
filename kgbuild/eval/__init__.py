"""Benchmarks: run the pipeline on an annotated dataset and score what it finds."""
