"""Site lists: which towers to use (and where they stand) for ``fluxlens train --sites``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from catalog.errors import InputError
from data_prep.fluxnet import read_site_table


def read_sites_file(path) -> pd.DataFrame:
    """A site list for ``--sites``: a FLUXNET site table or file inventory
    (:func:`data_prep.fluxnet.read_site_table`: ``SITE_ID, LOCATION_LAT, LOCATION_LONG[, IGBP]``), a
    CSV with a ``site_id`` column (optional ``lat``, ``lon``, ``igbp``), or plain text with one site
    id per line (``#`` starts a comment). Returns ``site_id`` and, where given, ``lat, lon, igbp``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such site list")
    lines = path.read_text(errors="replace").splitlines()
    header = [c.strip() for c in (lines[0] if lines else "").split(",")]
    if {"SITE_ID", "LOCATION_LAT", "LOCATION_LONG"} <= set(header) or "filename" in header:
        table = read_site_table(path)
    elif "site_id" in [c.lower() for c in header]:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        table.columns = [c.strip().lower() for c in table.columns]
        for col in ("lat", "lon"):
            if col in table:
                table[col] = pd.to_numeric(table[col].replace("", np.nan), errors="coerce")
    else:
        ids = [ln.split("#", 1)[0].strip() for ln in lines]
        table = pd.DataFrame({"site_id": [i for i in ids if i]})
    table["site_id"] = table["site_id"].astype(str).str.strip()
    if table.empty:
        raise InputError(f"{path}: the site list names no site")
    dup = table.loc[table["site_id"].duplicated(), "site_id"].tolist()
    if dup:
        raise InputError(f"{path}: sites listed twice: {dup[:10]}")
    table = table[[c for c in ("site_id", "name", "lat", "lon", "igbp") if c in table.columns]]
    table.attrs["source"] = str(path)
    return table


def site_records(table: pd.DataFrame) -> tuple[dict, ...]:
    """The rows of a site list as plain records, leaving out what the list does not give (NaN,
    empty), as a training run records them."""
    return tuple(
        {k: v for k, v in row.items() if not (v is None or v == "" or (isinstance(v, float) and np.isnan(v)))}
        for row in table.to_dict("records")
    )
