"""Readers for real data formats, ingest into analysis-ready Zarr, and the demo world."""
