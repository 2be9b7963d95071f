"""CSV (and the scorecard's HTML) exports shared by the dashboard and ``fluxlens validate``.

Each CSV starts with ``# key: value`` lines (read back with ``pandas.read_csv(path, comment="#")``)
naming the product, variable, units, network, options and the sign convention.
"""

from __future__ import annotations

import html
import io
import json

import numpy as np
import pandas as pd

from validation import config
from validation.config import ValidationOptions
from validation.scoreboard import Scoreboard

SIGN_NOTE = "LE, H positive upward (away from the surface); G positive into the soil"
EVAPORATION_NOTE = (
    "LE as evaporation E = LE*86400/lambda(T), lambda = 2.501 - 0.002361 T MJ kg-1 (Harrison 1963; FAO-56 "
    "eq. 3-1), T the tower's daily mean TA (monthly mean for monthly pairs), 20 degC where missing; "
    "observation and product of a pair converted with the same T"
)


def _header(lines: dict) -> str:
    return "".join(f"# {k}: {v}\n" for k, v in lines.items())


def metrics_csv(board: Scoreboard, options: ValidationOptions) -> str:
    """The scoreboard table (one row per site) with a header describing the run and pooled metrics."""
    spec = config.variable_spec(board.variable)
    units = options.le_units if board.variable == "le" else spec["units"]
    head = {
        "product": board.product,
        "variable": f"{board.variable} ({spec['long_name']})",
        "units": f"{units} (bias, rmse, ubrmse, mae); distance_km in km; others unitless",
        "network": board.network,
        "sign_convention": SIGN_NOTE,
        "options": json.dumps(options.as_dict()),
        "pooled_metrics": json.dumps({k: _round(v) for k, v in board.pooled.items()}),
    }
    if units != spec["units"]:
        head["conversion"] = EVAPORATION_NOTE
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


# --------------------------------------------------------------------------------------------------
# ILAMB scorecard (validation.scorecard)


def _scorecard_head(card) -> dict:
    meta = card.meta
    versions = meta.get("product_versions") or {}
    return {
        "analysis": f"{meta['analysis']} (ILAMB scores; {meta['references']})",
        "products": ", ".join(
            f"{p} (version {versions[p]})" if versions.get(p) else p for p in meta["products"]
        ),
        "reference": f"{meta['reference']} ({meta['reference_kind']})",
        "variable": f"{meta['variable']} ({meta['long_name']})",
        "units": f"{meta['units']} (the variable; scores are unitless, 0-1, 1 = equal to the reference)",
        "period": f"{meta['period'][0]}…{meta['period'][1]}",
        "time_step": meta["time_step"],
        "sign_convention": SIGN_NOTE,
        "options": json.dumps(meta["options"]),
        "score_definitions": json.dumps(meta["score_definitions"]),
    }


def scorecard_csv(card) -> str:
    """The scorecard table (one row per product and region; :data:`validation.scorecard.TABLE_COLUMNS`)
    with a ``# key: value`` header naming the products, reference, period, variable and units."""
    buf = io.StringIO()
    buf.write(_header(_scorecard_head(card)))
    card.table.to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue()


def score_colour(score: float) -> str:
    """Background colour of a score cell: red (0) through yellow (0.5) to green (1); grey for NaN."""
    if score is None or not np.isfinite(score):
        return "#dddddd"
    s = float(np.clip(score, 0.0, 1.0))
    stops = ((0.0, (215, 48, 39)), (0.5, (254, 224, 139)), (1.0, (26, 152, 80)))
    (a, ca), (b, cb) = (stops[0], stops[1]) if s <= 0.5 else (stops[1], stops[2])
    t = (s - a) / (b - a)
    return "#" + "".join(f"{round(x + t * (y - x)):02x}" for x, y in zip(ca, cb, strict=True))


_HTML_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #999; padding: 0.25em 0.6em; }
th { background: #eee; }
td.score { text-align: center; font-variant-numeric: tabular-nums; min-width: 4em; }
td.n { text-align: right; }
dl.meta dt { font-weight: bold; float: left; clear: left; width: 9em; }
dl.meta dd { margin-left: 10em; }
.legend span { display: inline-block; padding: 0.1em 0.6em; }
"""


def scorecard_html(card) -> str:
    """A self-contained HTML page of the scorecard: one colour-coded table (regions × scores) per
    product, after the run's description; no external assets, every text escaped."""
    from validation.scorecard import SCORE_NAMES

    esc = html.escape
    head = _scorecard_head(card)
    meta_rows = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(str(v))}</dd>"
        for k, v in head.items()
        if k not in ("options", "score_definitions")
    )
    definitions = "".join(
        f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in card.meta["score_definitions"].items()
    )
    legend = (
        "".join(f'<span style="background:{score_colour(v)}">{v:.1f}</span>' for v in np.linspace(0, 1, 6))
        + f'<span style="background:{score_colour(np.nan)}">no value</span>'
    )
    sections = []
    for product, rows in card.table.groupby("product", sort=False):
        header = "".join(f"<th>{esc(s)}</th>" for s in ("region kind", "region", "locations", *SCORE_NAMES))
        body = []
        for _, row in rows.iterrows():
            cells = [
                f"<td>{esc(str(row['region_kind']))}</td>",
                f"<td>{esc(str(row['region']))}</td>",
                f'<td class="n">{int(row["n_locations"])}</td>',
            ]
            for score in SCORE_NAMES:
                v = row[score]
                text = f"{v:.3f}" if np.isfinite(v) else "–"
                cells.append(
                    f'<td class="score" data-score="{esc(score)}" style="background:{score_colour(v)}">'
                    f"{text}</td>"
                )
            body.append("<tr>" + "".join(cells) + "</tr>")
        version = (card.meta.get("product_versions") or {}).get(product)
        title = esc(str(product)) + (f" <small>(version {esc(str(version))})</small>" if version else "")
        sections.append(
            f"<h2>{title}</h2>\n<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n"
            + "\n".join(body)
            + "\n</tbody>\n</table>"
        )
    title = (
        f"ILAMB scorecard: {', '.join(map(str, card.meta['products']))} vs {card.meta['reference']} "
        f"({card.meta['variable']})"
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
        f"<style>{_HTML_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f'<dl class="meta">{meta_rows}</dl>\n'
        f'<p class="legend">score colour: {legend}</p>\n'
        + "\n".join(sections)
        + f"\n<h2>Scores</h2>\n<ul>{definitions}</ul>\n"
        f"<p>Options: <code>{esc(head['options'])}</code></p>\n"
        "</body>\n</html>\n"
    )
