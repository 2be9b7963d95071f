"""A pixel's SHAP contributions over time, from an explanation product (``models.explain_map``).

Each day is a stacked bar: the features that raised LE above the base value LE0 stack upwards from 0,
those that lowered it stack downwards, so the bar's net height is LE − LE0 = Σ c_i (W m-2), drawn as
a line. Contributions in W m-2 come from the secant linearisation of LE = A g(s) stated in the
product (``shap_le_<feature>``); the colours are the dominant-driver map's, one per feature.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import xarray as xr

from app.categories import Categories

BAR_FRACTION = 0.8  # of a day: the gap between bars shows where one day ends
SHOWN = 6  # features drawn apiece (largest mean |contribution| at the pixel); the rest as one "other"
OTHER_COLOUR = "#9e9e9e"


def is_explanation(info) -> bool:
    """Whether catalog product ``info`` is an explanation map (its provenance says what it explains)."""
    return bool((info.provenance or {}).get("explained")) and bool(features(info))


def features(info) -> list[str]:
    """The explained model's features, in the order of the dominant-driver codes."""
    return list((info.provenance or {}).get("features") or [])


def variables(feature_names: list[str]) -> list[str]:
    """The product variables a pixel's contribution plot reads."""
    return [f"shap_le_{f}" for f in feature_names] + ["le_base"]


def _matrix(ds: xr.Dataset, feature_names: list[str]) -> np.ndarray:
    """Contributions in W m-2, days × features."""
    return np.stack([np.asarray(ds[f"shap_le_{f}"].values, dtype=float) for f in feature_names], axis=1)


def stacked(ds: xr.Dataset, feature_names: list[str]) -> pd.DataFrame:
    """One row per (day, feature) with a valid contribution: ``time``, ``feature``, ``contribution``
    (W m-2) and the bar segment ``bottom``/``top``: positive contributions stacked upwards from 0 in
    feature order, negative ones downwards."""
    t = pd.to_datetime(ds["time"].values)
    c = _matrix(ds, feature_names)
    valid = np.isfinite(c)
    pos = np.where(valid & (c > 0), c, 0.0)
    neg = np.where(valid & (c < 0), c, 0.0)
    top_pos, top_neg = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    bottom = np.where(c > 0, top_pos - pos, top_neg - neg)
    top = np.where(c > 0, top_pos, top_neg)
    days, feats = np.nonzero(valid)
    return pd.DataFrame(
        {
            "time": t[days],
            "feature": np.asarray(feature_names, dtype=object)[feats],
            "contribution": c[days, feats],
            "bottom": bottom[days, feats],
            "top": top[days, feats],
        }
    )


def net(ds: xr.Dataset, feature_names: list[str]) -> np.ndarray:
    """Σ c_i per day (W m-2) = LE − LE0; NaN on days without an explanation."""
    c = _matrix(ds, feature_names)
    return np.where(np.isfinite(c).any(axis=1), np.nansum(c, axis=1), np.nan)


def ranking(ds: xr.Dataset, feature_names: list[str]) -> list[tuple[str, float]]:
    """Features by mean |contribution| at the pixel (W m-2), largest first; days without one skipped."""
    means = [(f, float(np.nanmean(np.abs(ds[f"shap_le_{f}"].values)))) for f in feature_names]
    means = [(f, m) for f, m in means if np.isfinite(m)]
    return sorted(means, key=lambda fm: -fm[1])


def grouped(
    ds: xr.Dataset, feature_names: list[str], shown: int = SHOWN
) -> tuple[xr.Dataset, list[str], str]:
    """``ds`` with the contributions of all but the ``shown`` strongest features (mean |c| at the
    pixel) summed into one ``shap_le_<other>`` variable: (dataset, names in the order drawn, name of
    the summed group or '' when every feature is drawn apiece)."""
    ranked = [f for f, _ in ranking(ds, feature_names)]
    if len(ranked) <= shown + 1:
        return ds, [f for f in feature_names if f in ranked], ""
    keep = [f for f in feature_names if f in ranked[:shown]]  # the model's order: stable colours
    rest = [f for f in feature_names if f not in keep]
    other = f"other {len(rest)} inputs"
    parts = xr.concat([ds[f"shap_le_{f}"] for f in rest], dim="feature")
    summed = parts.sum("feature", min_count=1)
    return ds.assign({f"shap_le_{other}": summed}), [*keep, other], other


def plot(ds: xr.Dataset, feature_names: list[str], title: str, width: int = 800, height: int = 300):
    """The stacked contributions and their sum at a pixel, or None when no day is explained. The
    :data:`SHOWN` strongest features are drawn apiece in the dominant-driver map's colours, the rest
    as one grey "other" segment."""
    colour_of = dict(
        zip(
            feature_names,
            Categories(tuple(range(len(feature_names))), tuple(feature_names)).palette(),
            strict=True,
        )
    )
    ds, drawn, other = grouped(ds, feature_names)
    rows = stacked(ds, drawn)
    if rows.empty:
        return None
    colour_of[other] = OTHER_COLOUR
    half = pd.Timedelta(days=BAR_FRACTION / 2)
    y = hv.Dimension("contribution_le", label="contribution to LE (W m-2)")
    layers = []
    for f in drawn:
        part = rows[rows["feature"] == f]
        if part.empty:
            continue
        rect = hv.Rectangles(
            (part["time"] - half, part["bottom"], part["time"] + half, part["top"], part["contribution"]),
            kdims=["time", y, "time_end", "top"],
            vdims=[hv.Dimension("contribution", label=f"{f} (W m-2)")],
            label=f,
        )
        layers.append(rect.opts(color=colour_of[f], line_alpha=0, tools=["hover"]))
    t = pd.to_datetime(ds["time"].values)
    total = hv.Curve((t, net(ds, drawn)), "time", y, label="Σ = LE − LE0")
    layers.append(total.opts(color="black", line_width=2, tools=["hover"]))
    layers.append(hv.HLine(0).opts(color="grey", line_width=1))
    return hv.Overlay(layers).opts(
        title=title,
        width=width,
        height=height,
        show_grid=True,
        legend_position="right",
        legend_opts={
            "label_height": 12,
            "glyph_height": 12,
            "spacing": 1,
            "padding": 4,
            "label_text_font_size": "9pt",
        },
        active_tools=["pan"],
    )
