"""Analyses run on one matched site: small classes with one interface, chosen in ``validation.yaml``.

An analysis declares its ``name``, the station variables it needs besides the matched pair
(``station_variables``; ilamb3's way of stating an analysis' inputs) and turns a :class:`SiteMatch`
into a flat dict of numbers, which become columns of the scoreboard (prefixed by its ``prefix``).
"""

from __future__ import annotations

import abc
import dataclasses

import pandas as pd

from catalog.errors import InputError
from validation import config, matching, metrics
from validation.config import ValidationOptions


@dataclasses.dataclass
class SiteMatch:
    """A product matched with one station for one variable."""

    site_id: str
    variable: str
    product: str
    obs_column: str
    pairs: pd.DataFrame  # columns obs, pred on the product's time step (absolute values)
    time_step: str
    pixel: dict  # method, pixel_lon, pixel_lat, distance_km
    station_table: pd.DataFrame | None = None  # the raw station rows (for closure)


class Analysis(abc.ABC):
    """One analysis of a :class:`SiteMatch`."""

    name: str
    prefix: str = ""
    station_variables: tuple[str, ...] = ()  # station columns needed besides the matched pair

    def has_inputs(self, match: SiteMatch) -> bool:
        """Whether the match carries the station variables this analysis needs."""
        if not self.station_variables:
            return True
        table = match.station_table
        return table is not None and set(self.station_variables) <= set(table.columns)

    @abc.abstractmethod
    def __call__(self, match: SiteMatch, options: ValidationOptions) -> dict[str, float]:
        """Numbers for the scoreboard row of this site."""

    def columns(self) -> list[str]:
        """Scoreboard columns this analysis fills."""
        return [self.prefix + name for name in metrics.METRIC_NAMES]


class Metrics(Analysis):
    """All metrics of :mod:`validation.metrics` on the pairs (on anomalies when ``options.anomaly``)."""

    name = "metrics"

    def __call__(self, match: SiteMatch, options: ValidationOptions) -> dict[str, float]:
        pairs = match.pairs
        if options.anomaly:
            pairs = matching.paired_anomalies(pairs, window_days=options.anomaly_window_days)
        return metrics.all_metrics(pairs["obs"], pairs["pred"], min_n=options.min_pairs)


class AnomalyMetrics(Analysis):
    """Metrics on anomalies from each series' mean seasonal cycle (Tramontana et al. 2016 practice)."""

    name = "anomaly_metrics"
    prefix = "anom_"

    def __call__(self, match: SiteMatch, options: ValidationOptions) -> dict[str, float]:
        anom = matching.paired_anomalies(match.pairs, window_days=options.anomaly_window_days)
        result = metrics.all_metrics(anom["obs"], anom["pred"], min_n=options.min_pairs)
        return {self.prefix + k: v for k, v in result.items()}


class EnergyClosure(Analysis):
    """Energy-balance closure of the tower (LE + H vs NETRAD - G) on QC-passed days."""

    name = "closure"
    prefix = "closure_"
    station_variables = ("LE", "H", "NETRAD")  # and G where the tower measures it

    def columns(self) -> list[str]:
        return [self.prefix + k for k in ("n", "slope_origin", "ols_slope", "ols_intercept", "ratio")]

    def __call__(self, match: SiteMatch, options: ValidationOptions) -> dict[str, float]:
        if not self.has_inputs(match):
            return dict.fromkeys(self.columns(), float("nan"))
        table = match.station_table
        names = ("LE", "H", "NETRAD", "G")
        cols = {}
        for name in names:
            if name not in table.columns:
                cols[name] = None
                continue
            qc = table.get(f"{name}_QC")
            values = table[name].astype("float64")
            if options.qc_min is not None and qc is not None:
                values = values.where(~(qc.astype("float64") < options.qc_min))
            cols[name] = values.to_numpy()
        result = matching.energy_balance_closure(
            cols["LE"], cols["H"], cols["NETRAD"], cols["G"], min_n=options.min_pairs
        )
        return {self.prefix + k: v for k, v in result.items()}


ANALYSES: dict[str, type[Analysis]] = {cls.name: cls for cls in (Metrics, AnomalyMetrics, EnergyClosure)}


def configured_analyses(names: list[str] | None = None) -> list[Analysis]:
    """Instances of the analyses named in ``validation.yaml`` (or ``names``)."""
    chosen = names if names is not None else config.load_config()["analyses"]
    unknown = [n for n in chosen if n not in ANALYSES]
    if unknown:
        raise InputError(f"validation: unknown analyses {unknown}; known: {sorted(ANALYSES)}")
    return [ANALYSES[n]() for n in chosen]


def run_analyses(match: SiteMatch, options: ValidationOptions, analyses: list[Analysis]) -> dict[str, float]:
    """One scoreboard row: every analysis' numbers merged."""
    row: dict[str, float] = {}
    for analysis in analyses:
        row.update(analysis(match, options))
    return row
