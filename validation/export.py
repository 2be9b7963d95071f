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


def _blend(stops, x: float) -> str:
    """The colour at ``x`` of a piecewise-linear ramp ``stops`` ((position, (r, g, b)), ascending)."""
    x = float(np.clip(x, stops[0][0], stops[-1][0]))
    for (a, ca), (b, cb) in zip(stops[:-1], stops[1:], strict=True):
        if x <= b:
            t = (x - a) / (b - a)
            return "#" + "".join(f"{round(u + t * (v - u)):02x}" for u, v in zip(ca, cb, strict=True))
    return "#" + "".join(f"{c:02x}" for c in stops[-1][1])


NO_VALUE = "#dddddd"
ABSOLUTE_STOPS = ((0.0, (215, 48, 39)), (0.5, (254, 224, 139)), (1.0, (26, 152, 80)))
RELATIVE_STOPS = ((-2.0, (202, 0, 32)), (0.0, (247, 247, 247)), (2.0, (5, 113, 176)))
RELATIVE_LIMIT = 2.0  # standard deviations at the ends of the relative scale
COLOURINGS = ("absolute", "relative")


def score_colour(score: float) -> str:
    """Background colour of a score cell: red (0) through yellow (0.5) to green (1); grey for NaN."""
    if score is None or not np.isfinite(score):
        return NO_VALUE
    return _blend(ABSOLUTE_STOPS, score)


def relative_colour(z: float) -> str:
    """Background colour of a relative score (standard deviations from the products' mean,
    :func:`validation.scorecard.relative_scores`): red (−2, worse) through white to blue (+2, better);
    grey for NaN (one product, or all equal)."""
    if z is None or not np.isfinite(z):
        return NO_VALUE
    return _blend(RELATIVE_STOPS, z)


_HTML_STYLE = """
.fluxlens-scorecard { font-family: sans-serif; color: #222; }
.fluxlens-scorecard table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
.fluxlens-scorecard th, .fluxlens-scorecard td { border: 1px solid #999; padding: 0.25em 0.6em; }
.fluxlens-scorecard th { background: #eee; }
.fluxlens-scorecard td.score { text-align: center; font-variant-numeric: tabular-nums; min-width: 4em; }
.fluxlens-scorecard td.n { text-align: right; }
.fluxlens-scorecard dl.meta dt { font-weight: bold; float: left; clear: left; width: 9em; }
.fluxlens-scorecard dl.meta dd { margin-left: 10em; }
.fluxlens-scorecard .legend span { display: inline-block; padding: 0.1em 0.6em; }
"""


def _as_set(cards):
    from validation.scorecard import Scorecard, ScorecardSet

    if isinstance(cards, Scorecard):
        return ScorecardSet({cards.meta["variable"]: cards})
    return cards


def _colours(values: pd.DataFrame, colouring: str) -> pd.DataFrame:
    """Cell colours of a table of scores (products in rows): absolute, or relative over the rows."""
    from validation.scorecard import relative_scores

    if colouring not in COLOURINGS:
        raise ValueError(f"colouring {colouring!r} is not one of {COLOURINGS}")
    if colouring == "absolute":
        return values.map(score_colour)
    return relative_scores(values).map(relative_colour)


def _score_cell(value: float, colour: str, attr: str) -> str:
    text = f"{value:.3f}" if np.isfinite(value) else "–"
    return f'<td class="score" {attr} style="background:{colour}">{text}</td>'


def scorecard_legend(colouring: str) -> str:
    """The colour legend of :func:`scorecard_tables` (HTML)."""
    if colouring == "absolute":
        steps = "".join(
            f'<span style="background:{score_colour(v)}">{v:.1f}</span>' for v in np.linspace(0, 1, 6)
        )
        what = "score colour (absolute, 0 … 1)"
    else:
        steps = "".join(
            f'<span style="background:{relative_colour(z)}">{z:+.0f} σ</span>'
            for z in np.linspace(-RELATIVE_LIMIT, RELATIVE_LIMIT, 5)
        )
        what = "score colour relative to the other products (standard deviations from their mean; ILAMB)"
    none = f'<span style="background:{NO_VALUE}">no value</span>'
    return f'<p class="legend">{html.escape(what)}: {steps}{none}</p>'


def scorecard_tables(cards, colouring: str = "absolute") -> str:
    """HTML fragment of a scorecard or a :class:`validation.scorecard.ScorecardSet`: an overview
    (overall score of region ``all``, products × variables) and, per variable, one table (regions ×
    scores) per product; cells coloured by absolute score or relative to the other products; every
    text escaped, no external assets."""
    from validation.scorecard import ALL, SCORE_NAMES

    cardset = _as_set(cards)
    esc = html.escape
    overview = cardset.overview()
    colours = _colours(overview, colouring)
    head = "".join(f"<th>{esc(str(v))}</th>" for v in overview.columns)
    rows = []
    for product in overview.index:
        cells = "".join(
            _score_cell(overview.loc[product, v], colours.loc[product, v], f'data-overview="{esc(str(v))}"')
            for v in overview.columns
        )
        rows.append(f"<tr><th>{esc(str(product))}</th>{cells}</tr>")
    parts = [
        f"<h2>Overall score, region {esc(ALL)}</h2>",
        f'<table class="overview"><thead><tr><th>product</th>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>",
    ]
    for variable, why in cardset.skipped.items():
        parts.append(f'<p class="skipped"><b>{esc(variable)}</b>: no scorecard ({esc(why)})</p>')
    header = "".join(f"<th>{esc(s)}</th>" for s in ("region kind", "region", "locations", *SCORE_NAMES))
    for variable, card in cardset.cards.items():
        table = card.table
        keyed = table.set_index(["region_kind", "region", "product"])[list(SCORE_NAMES)]
        cell_colours = {}
        for score in SCORE_NAMES:
            by_product = keyed[score].unstack(["region_kind", "region"])  # products in rows
            cell_colours[score] = _colours(by_product, colouring).T.stack(future_stack=True)
        meta = card.meta
        parts.append(
            f"<h2>{esc(str(variable))} ({esc(str(meta['long_name']))}, {esc(str(meta['units']))}) vs "
            f"{esc(str(meta['reference']))}, {esc(meta['period'][0])}…{esc(meta['period'][1])}</h2>"
        )
        for product, rows_of in table.groupby("product", sort=False):
            body = []
            for _, row in rows_of.iterrows():
                cells = [
                    f"<td>{esc(str(row['region_kind']))}</td>",
                    f"<td>{esc(str(row['region']))}</td>",
                    f'<td class="n">{int(row["n_locations"])}</td>',
                ]
                where = (row["region_kind"], row["region"], product)
                for score in SCORE_NAMES:
                    colour = cell_colours[score].get(where, NO_VALUE)
                    cells.append(_score_cell(float(row[score]), colour, f'data-score="{esc(score)}"'))
                body.append("<tr>" + "".join(cells) + "</tr>")
            version = (meta.get("product_versions") or {}).get(product)
            title = esc(str(product)) + (f" <small>(version {esc(str(version))})</small>" if version else "")
            parts.append(
                f"<h3>{title}</h3>\n<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n"
                + "\n".join(body)
                + "\n</tbody>\n</table>"
            )
    return (
        f'<style>{_HTML_STYLE}</style>\n<div class="fluxlens-scorecard">\n{scorecard_legend(colouring)}\n'
        + "\n".join(parts)
        + "\n</div>"
    )


def scorecard_html(cards, colouring: str = "absolute") -> str:
    """A self-contained HTML page of a scorecard or a :class:`validation.scorecard.ScorecardSet`: the
    run's description per variable, then :func:`scorecard_tables`; no external assets, every text
    escaped."""
    esc = html.escape
    cardset = _as_set(cards)
    first = next(iter(cardset.cards.values()))
    descriptions = []
    for variable, card in cardset.cards.items():
        head = _scorecard_head(card)
        rows = "".join(
            f"<dt>{esc(k)}</dt><dd>{esc(str(v))}</dd>"
            for k, v in head.items()
            if k not in ("options", "score_definitions")
        )
        descriptions.append(f'<h2>{esc(variable)}</h2>\n<dl class="meta">{rows}</dl>')
    definitions = "".join(
        f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in first.meta["score_definitions"].items()
    )
    title = (
        f"ILAMB scorecard: {', '.join(map(str, cardset.products))} vs {first.meta['reference']} "
        f"({', '.join(cardset.cards)})"
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
        "</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f'<div class="fluxlens-scorecard">{"".join(descriptions)}</div>\n'
        + scorecard_tables(cardset, colouring)
        + f"\n<h2>Scores</h2>\n<ul>{definitions}</ul>\n"
        f"<p>Options: <code>{esc(_scorecard_head(first)['options'])}</code></p>\n"
        "</body>\n</html>\n"
    )


def scorecard_set_csv(cardset) -> str:
    """Every variable's scorecard table in one CSV (a ``variable`` column first), with a header per
    variable (``# <variable> <key>: value``)."""
    buf = io.StringIO()
    for variable, card in cardset.cards.items():
        buf.write("".join(f"# {variable} {k}: {v}\n" for k, v in _scorecard_head(card).items()))
    for variable, why in cardset.skipped.items():
        buf.write(f"# {variable} skipped: {why}\n")
    tables = [card.table.assign(variable=v) for v, card in cardset.cards.items()]
    table = pd.concat(tables, ignore_index=True)
    table = table[["variable", *[c for c in table.columns if c != "variable"]]]
    table.to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue()
