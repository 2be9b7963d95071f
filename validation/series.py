"""Pure functions from station tables and product point series to matched (obs, pred) pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from catalog.errors import InputError
from validation import config, matching
from validation.config import ValidationOptions


def is_ismn_table(table: pd.DataFrame) -> bool:
    """ISMN station tables carry ``soil_moisture``; FLUXNET-style tables carry upper-case columns."""
    return "soil_moisture" in table.columns


def observed_column(table: pd.DataFrame, variable: str, options: ValidationOptions) -> str:
    """The station column compared with a product ``variable`` (``LE_CORR`` when asked and present)."""
    spec = config.variable_spec(variable)
    if is_ismn_table(table):
        column = spec.get("ismn_obs")
        if column is None:
            raise InputError(f"validation: ISMN stations have no observation for variable {variable!r}")
        return column
    if options.use_corrected and spec.get("obs_corrected") in table.columns:
        return spec["obs_corrected"]
    return spec["obs"]


def station_series(table: pd.DataFrame, variable: str, options: ValidationOptions) -> pd.DataFrame:
    """Observed ``value`` and ``qc_pass`` (bool) on a ``DatetimeIndex`` for one site and variable.

    FLUXNET tables: ``qc_pass`` where ``<NAME>_QC >= qc_min`` (the QC of LE/H is used for LE_CORR/
    H_CORR, which have none); a missing QC (NaN) passes. ISMN tables: sensors whose depth lies within
    ``options.depth`` are averaged per time stamp, using only sensors whose flag is in
    ``options.ismn_flags`` when any does (``qc_pass`` True), else all of them (``qc_pass`` False).
    The period filter of ``options`` is applied.
    """
    if "time" not in table.columns:
        raise InputError("validation: station table has no 'time' column")
    column = observed_column(table, variable, options)
    if column not in table.columns:
        raise InputError(f"validation: station table has no column {column!r} for variable {variable!r}")
    if is_ismn_table(table):
        out = _ismn_series(table, column, options)
    else:
        values = table[column].astype("float64").to_numpy()
        qc_name = f"{column}_QC" if f"{column}_QC" in table.columns else f"{column.split('_')[0]}_QC"
        qc = (
            table[qc_name].astype("float64").to_numpy()
            if qc_name in table.columns
            else np.full(len(table), np.nan)
        )
        qc_pass = np.ones(len(table), dtype=bool) if options.qc_min is None else ~(qc < options.qc_min)
        out = pd.DataFrame({"value": values, "qc_pass": qc_pass}, index=pd.DatetimeIndex(table["time"]))
        out = out.sort_index()
    out.index.name = "time"
    return _in_period(out, options)


def _ismn_series(table: pd.DataFrame, column: str, options: ValidationOptions) -> pd.DataFrame:
    lo, hi = options.depth
    t = table[(table["depth_from"] >= lo - 1e-9) & (table["depth_to"] <= hi + 1e-9)]
    if t.empty:
        raise InputError(f"validation: no ISMN sensor between {lo} and {hi} m depth")
    # readers blank rejected values but may keep them as ``<column>_raw`` for display
    raw = f"{column}_raw" if f"{column}_raw" in t.columns else column
    flags = t["flag"].astype(str)
    good = flags.map(lambda f: all(part.strip() in options.ismn_flags for part in f.split(",")))
    frame = pd.DataFrame(
        {
            "time": pd.DatetimeIndex(t["time"]),
            "all": t[raw].astype("float64").to_numpy(),
            "good": t[column].astype("float64").where(good.to_numpy()).to_numpy(),
        }
    )
    grouped = frame.groupby("time").mean()
    qc_pass = grouped["good"].notna()
    value = grouped["good"].where(qc_pass, grouped["all"])
    return pd.DataFrame({"value": value, "qc_pass": qc_pass.to_numpy()}, index=grouped.index)


def _in_period(frame, options: ValidationOptions):
    if options.period is None:
        return frame
    start, end = (pd.Timestamp(p) for p in options.period)
    return frame[(frame.index >= start) & (frame.index < end + pd.Timedelta(days=1))]


def product_series(
    ds: xr.Dataset, variable: str, *, product_name: str = "", options: ValidationOptions | None = None
) -> pd.Series:
    """One variable of a product point series (dim ``time``) as a pandas Series.

    Values whose flag (the rule's ``variable``, else ``flag``) fails the product family's quality
    rule (``validation.yaml``) become NaN;
    several values on one day (e.g. SMAP AM and PM) are averaged per day when the product is daily.
    """
    if variable not in ds:
        have = list(ds.data_vars)
        raise InputError(f"validation: product {product_name!r} has no variable {variable!r} (has {have})")
    values = np.asarray(ds[variable].values, dtype="float64")
    rule = config.quality_rule(product_name)
    flag_name = next((f for f in ((rule or {}).get("variable"), "flag") if f and f in ds), None)
    if rule is not None and flag_name is not None and values.shape == ds[flag_name].shape:
        values = np.where(config.flag_keep_mask(ds[flag_name].values, rule), values, np.nan)
    s = pd.Series(values, index=pd.DatetimeIndex(ds["time"].values), name=variable).sort_index()
    if ds.attrs.get("time_step", "day") == "day" and not (s.index == s.index.normalize()).all():
        s = s.groupby(s.index.normalize()).mean()
    if options is not None:
        s = _in_period(s, options)
    return s


def match_pairs(
    obs: pd.DataFrame, pred: pd.Series, time_step: str, options: ValidationOptions
) -> pd.DataFrame:
    """QC-passed observations aggregated to the product's step, paired with the product.

    Columns ``obs``, ``pred`` (absolute values; anomalies are taken by the analyses).
    """
    passed = obs["value"].where(obs["qc_pass"])
    aggregated = matching.to_time_step(passed, time_step, min_coverage=options.min_coverage)
    return matching.pair(aggregated, pred)
