"""Provenance of a store: checksums of its sources and the digests that make ingest idempotent."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd


def sha256_file(path: str | os.PathLike, block: int = 4 * 2**20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def source_provenance(paths, *, reader: str, reader_version: str = "", options: dict | None = None) -> dict:
    """Provenance dict for files read by ``reader``: each source with its size and sha256."""
    sources = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file())
        else:
            files = [p]
        for f in files:
            sources.append({"path": str(f.resolve()), "size": f.stat().st_size, "sha256": sha256_file(f)})
    return {"sources": sources, "reader": reader, "reader_version": reader_version, "options": options or {}}


def jsonable(obj):
    """Plain JSON types (tuples → lists, numpy scalars → Python, Paths → str)."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (Path, pd.Timestamp, np.datetime64, datetime)):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {o!r}")


def input_digest(provenance: dict, synthetic: bool) -> str | None:
    """sha256 identifying an ingest's input, or None when the sources carry no checksums."""
    sources = provenance.get("sources") or []
    if not sources or not all(isinstance(s, dict) and s.get("sha256") for s in sources):
        return None
    key = {
        "sources": sorted(s["sha256"] for s in sources),
        "reader": provenance.get("reader"),
        "reader_version": provenance.get("reader_version"),
        "options": provenance.get("options"),
        "synthetic": bool(synthetic),
    }
    return hashlib.sha256(json.dumps(jsonable(key), sort_keys=True).encode()).hexdigest()


def content_digest(zarr_dir: Path) -> str:
    """sha256 over the relative paths and bytes of every file of a Zarr store (sorted)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(zarr_dir).rglob("*") if p.is_file()):
        h.update(f.relative_to(zarr_dir).as_posix().encode())
        h.update(bytes.fromhex(sha256_file(f)))
    return h.hexdigest()
