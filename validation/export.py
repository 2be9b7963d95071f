"""CSV exports shared by the dashboard and ``fluxlens validate``.

Each CSV starts with ``# key: value`` lines (read back with ``pandas.read_csv(path, comment="#")``)
naming the product, variable, units, network, options and the sign convention.
"""

from __future__ import annotations

import io
import json

import pandas as pd

from validation import config
from validation.config import ValidationOptions
from validation.scoreboard import Scoreboard

SIGN_NOTE = "LE, H positive upward (away from the surface); G positive into the soil"


def _header(lines: dict) -> str:
    return "".join(f"# {k}: {v}\n" for k, v in lines.items())


def metrics_csv(board: Scoreboard, options: ValidationOptions) -> str:
    """The scoreboard table (one row per site) with a header describing the run and pooled metrics."""
    spec = config.variable_spec(board.variable)
    head = {
        "product": board.product,
        "variable": f"{board.variable} ({spec['long_name']})",
        "units": f"{spec['units']} (bias, rmse, ubrmse, mae); distance_km in km; others unitless",
        "network": board.network,
        "sign_convention": SIGN_NOTE,
        "options": json.dumps(options.as_dict()),
        "pooled_metrics": json.dumps({k: _round(v) for k, v in board.pooled.items()}),
    }
    buf = io.StringIO()
    buf.write(_header(head))
    board.table.to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue()


def site_series_csv(
    site: dict,
    network: str,
    variable: str,
    obs: pd.DataFrame,
    preds: dict[str, pd.Series],
    pixels: dict,
    *,
    units: str | None = None,
    note: str | None = None,
) -> str:
    """Observed series (with ``qc_pass``) and every product's series at one site, one row per time.
    ``units``: the series' units when not the variable's own (LE as evaporation, mm d-1), with
    ``note`` saying how they were converted."""
    spec = config.variable_spec(variable)
    head = {
        "site_id": site["site_id"],
        "network": network,
        "site_lon": site["lon"],
        "site_lat": site["lat"],
        "variable": f"{variable} ({spec['long_name']})",
        "units": units or spec["units"],
        **({"conversion": note} if note else {}),
        "sign_convention": SIGN_NOTE,
        "products": json.dumps({k: {kk: _round(vv) for kk, vv in v.items()} for k, v in pixels.items()}),
    }
    frame = pd.DataFrame({"obs": obs["value"], "obs_qc_pass": obs["qc_pass"]})
    for name, s in preds.items():
        frame = frame.join(s.rename(name), how="outer")
    frame.index.name = "time"
    buf = io.StringIO()
    buf.write(_header(head))
    frame.to_csv(buf, float_format="%.6g")
    return buf.getvalue()


def _round(v):
    return round(v, 6) if isinstance(v, float) else v
