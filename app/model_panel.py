"""The Models tab: cross-validation and SHAP explanations of the registered LE/H emulator versions.

Read-only: everything shown comes from the registry folder of the chosen version (``meta.json``,
``cv_*.parquet``, ``shap_*.parquet``, ``shap_interaction_*.parquet``, written at training time by
:mod:`models.tree_shap`); nothing is trained or explained in a request.
"""

from __future__ import annotations

import functools

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from app import ui
from catalog.errors import FluxLensError
from catalog.igbp import IGBP_NAMES
from models import explain, registry

SPLITS = ("random", "temporal", "spatial", "cluster")
SHAP_MODELS = {
    "EF (constrained)": "ef",
    "A = Rn − G": "a",
    "LE (direct)": "le_direct",
    "H (direct)": "h_direct",
}
SCATTER_MAX_POINTS = 4000
BEESWARM_TOP = 12
ROW_PX = 22  # per feature row of the bar and beeswarm plots
PLOT_MARGIN_PX = 110  # title, x axis and its label
# the wheel scrolls the page, not a plot it passes over (wheel zoom stays in the toolbar)
ACTIVE_TOOLS = ["pan"]
TARGET_LABELS = {"corrected": "LE_CORR/H_CORR", "raw": "LE_F_MDS/H_F_MDS"}


# The tab's width, fixed: a stretching tab takes the width of the widest tab (the Map tab's row of
# export buttons, wider than a 1280 px window), and its wrapping plots then ran off the window.
TAB_WIDTH = 880


def cv_rows(scores: pd.DataFrame, a_source: str = "observed", a_regime: str | None = None) -> pd.DataFrame:
    """The score rows of one A source and A regime (default the headline one, ``A>=…``); versions
    trained before A sources and regimes were recorded have only observed-A rows of every regime."""
    if "a_source" not in scores:
        return scores if a_source == "observed" and a_regime is None else scores.iloc[0:0]
    sel = scores[scores["a_source"] == a_source]
    if a_regime is None:
        return sel[sel["a_regime"].str.startswith("A>=")]
    return sel[sel["a_regime"] == a_regime]


def cv_table(scores: pd.DataFrame, targets: str, a_source: str = "observed", a_regime: str | None = None):
    """One row per split and model of one A source and regime (default: A observed, rows with A at or
    above the threshold); R², RMSE, bias for LE and H, n, and the energy-balance residual."""
    sel = cv_rows(scores, a_source, a_regime)
    sel = sel[sel["targets"] == targets]
    wide = sel.pivot_table(index=["split", "model"], columns="variable", values=["r2", "rmse", "bias"])
    label = {"r2": "R²", "rmse": "RMSE", "bias": "bias"}
    wide.columns = [f"{var.upper()} {label[m]}" for m, var in wide.columns]
    order = [f"{v} {m}" for v in ("LE", "H") for m in ("R²", "RMSE", "bias") if f"{v} {m}" in wide.columns]
    eb = sel.groupby(["split", "model"])["eb_residual_max_abs"].first().rename("max |LE+H−A|")
    n = sel.groupby(["split", "model"])["n"].max().rename("n")
    out = wide[order].join(n).join(eb).reset_index()
    out["split"] = pd.Categorical(out["split"], SPLITS, ordered=True)
    return out.sort_values(["split", "model"]).reset_index(drop=True)


def verdict_table(meta: dict) -> pd.DataFrame:
    """Closed vs direct per split, A source and variable: ΔR², ΔRMSE with their 95 % site-bootstrap
    intervals and the winner (``meta.json`` ``cv_verdicts``)."""
    rows = meta.get("cv_verdicts") or []
    return pd.DataFrame(
        [
            {
                "split": r["split"],
                "A": r["a_source"],
                "var": r["variable"].upper(),
                "ΔR² [95 %]": f"{r['delta_r2']:+.3f} [{r['delta_r2_lo']:+.3f}, {r['delta_r2_hi']:+.3f}]",
                "ΔRMSE W m-2 [95 %]": (
                    f"{r['delta_rmse']:+.2f} [{r['delta_rmse_lo']:+.2f}, {r['delta_rmse_hi']:+.2f}]"
                ),
                "winner": r["winner"],
                "sites": r["n_sites"],
            }
            for r in rows
        ]
    )


def coverage_table(coverage: pd.DataFrame, split: str) -> pd.DataFrame:
    """Interval coverage and mean width of LE and H on one split, per A source and regime, then per
    IGBP class (all rows)."""
    part = coverage[coverage["split"] == split]
    rows = []
    for (source, regime, igbp), g in part.groupby(["a_source", "a_regime", "igbp"], sort=False, dropna=False):
        if np.isfinite(igbp) and regime != "all":
            continue
        v = {r["variable"]: r for r in g.to_dict("records")}
        rows.append(
            {
                "A": source,
                "rows": regime if not np.isfinite(igbp) else IGBP_NAMES.get(int(igbp), "?"),
                "LE coverage": round(v["le"]["coverage"], 3),
                "H coverage": round(v["h"]["coverage"], 3),
                "LE width W m-2": round(v["le"]["mean_width"], 1),
                "n": v["le"]["n"],
            }
        )
    return pd.DataFrame(rows)


def _scatter(oof: pd.DataFrame, split: str, var: str, obs_col: str):
    """Predicted against observed (A observed) on one split, both models, and the 1:1 line. A plain
    Bokeh figure: HoloViews took ~0.1 s to render each of these, a tenth of the tab's first open."""
    part = oof[(oof["split"] == split) & (oof["a_source"] == "observed" if "a_source" in oof else True)]
    fig = figure(
        width=330,
        height=300,
        title=f"{var.upper()} — {split} split",
        x_axis_label=f"observed {obs_col} (W m-2)",
        y_axis_label=f"predicted {var.upper()} (W m-2)",
        tools="pan,wheel_zoom,box_zoom,save,reset",
        active_drag="pan",
        active_scroll=None,
    )
    fig.toolbar.logo = None
    lim = (0.0, 1.0)
    for model, colour in (("constrained", "#1f77b4"), ("direct", "#ff7f0e")):
        p = part[part["model"] == model][[obs_col, var]].dropna()
        if len(p) > SCATTER_MAX_POINTS:
            p = p.sample(SCATTER_MAX_POINTS, random_state=0)
        if len(p):
            lim = (min(lim[0], p.min().min()), max(lim[1], p.max().max()))
        source = ColumnDataSource({"x": p[obs_col].to_numpy(), "y": p[var].to_numpy()})
        fig.scatter("x", "y", source=source, color=colour, alpha=0.3, size=3, legend_label=model)
    fig.line([lim[0], lim[1]], [lim[0], lim[1]], color="black", line_dash="dashed")
    fig.legend.location = "top_left"
    return fig


def _rows_height(n_rows: int) -> int:
    """Plot height giving each of ``n_rows`` categorical rows ROW_PX pixels (labels never overlap)."""
    return PLOT_MARGIN_PX + ROW_PX * n_rows


def _importance_plot(frame: pd.DataFrame, units: str) -> hv.Bars:
    imp = explain.global_importance(frame)
    return hv.Bars(imp.iloc[::-1], "feature", "mean_abs_shap").opts(
        invert_axes=True,
        width=380,
        height=_rows_height(len(imp)),
        title="global importance (mean |SHAP|)",
        ylabel=f"mean |SHAP| ({units})",
        xlabel="",
        active_tools=ACTIVE_TOOLS,
    )


def _beeswarm_plot(frame: pd.DataFrame, units: str) -> hv.Overlay:
    bee = explain.beeswarm_data(frame, top=BEESWARM_TOP)
    n = int(bee["row"].max()) + 1
    names = bee.drop_duplicates("row").sort_values("row")["feature"]
    ticks = [(n - 1 - row, name) for row, name in enumerate(names)]
    points = hv.Points(bee, ["shap", "y"], ["value_rank", "feature", "value", "site_id"]).opts(
        color="value_rank",
        cmap="coolwarm",
        clim=(0, 1),
        size=3,
        alpha=0.7,
        colorbar=True,
        clabel="feature value rank",
        tools=["hover"],
    )
    return (hv.VLine(0).opts(color="#888888", line_width=1) * points).opts(
        width=480,
        height=_rows_height(n),
        yticks=ticks,
        ylim=(-0.5, n - 0.5),
        ylabel="",
        xlabel=f"SHAP value ({units})",
        title=f"beeswarm: top {n} features",
        show_grid=False,
        active_tools=ACTIVE_TOOLS,
    )


def _dependence_plot(frame: pd.DataFrame, feature: str, units: str) -> hv.Points:
    dep = explain.dependence_data(frame, feature)
    dep["igbp_class"] = [IGBP_NAMES.get(int(c), "?") if np.isfinite(c) else "?" for c in dep["igbp"]]
    return hv.Points(dep, ["value", "shap"], ["igbp_class", "site_id"]).opts(
        color="igbp_class",
        cmap="Category20",
        size=4,
        alpha=0.6,
        width=480,
        height=340,
        xlabel=feature,
        ylabel=f"SHAP of {feature} ({units})",
        title=f"dependence: {feature}",
        tools=["hover"],
        legend_position="right",
        active_tools=ACTIVE_TOOLS,
    )


def _interaction_plot(pair: pd.DataFrame, units: str) -> hv.Points:
    first, second, _ = explain.interaction_pair(pair)
    return hv.Points(pair, ["x_first", "interaction"], ["x_second", "site_id"]).opts(
        color="x_second",
        cmap="viridis",
        size=4,
        alpha=0.7,
        colorbar=True,
        clabel=second,
        width=480,
        height=340,
        xlabel=first,
        ylabel=f"SHAP interaction value ({units})",
        title=f"interaction: {first} × {second}",
        tools=["hover"],
        active_tools=ACTIVE_TOOLS,
    )


def _interaction_view(version: str, model: str, units: str):
    try:
        pair = registry.read_table(version, f"shap_interaction_{model}")
    except FluxLensError:
        return pn.pane.Markdown(
            "No SHAP interaction values cached for this version (trained before they were computed).",
            width=380,
        )
    first, second, mean_abs = explain.interaction_pair(pair)
    note = (
        f"The strongest interacting pair: SHAP interaction value Φ({first}, {second}) (half the pair's "
        f"interaction effect) on {len(pair)} sampled rows, mean |Φ| = {mean_abs:.3g} {units}; "
        f"colour: {second}."
    )
    return pn.Column(pn.pane.HoloViews(_interaction_plot(pair, units)), pn.pane.Markdown(note, width=480))


def _site_plot(frame: pd.DataFrame, site, units: str):
    if not site:
        return pn.pane.Markdown("Select a tower on the map to see its explanation.", width=380)
    site_id = site[1] if isinstance(site, (tuple, list)) else str(site)
    expl = explain.site_explanation(frame, site_id)
    if expl is None:
        return pn.pane.Markdown(f"Site `{site_id}` is not in this model's training set.", width=380)
    return hv.Bars(expl.iloc[::-1], "feature", "mean_shap").opts(
        invert_axes=True,
        width=380,
        height=_rows_height(len(expl)),
        color="mean_shap",
        cmap="RdBu_r",
        title=f"{site_id}: mean SHAP over {expl.attrs['n']} samples",
        ylabel=f"mean SHAP ({units})",
        xlabel="",
        active_tools=ACTIVE_TOOLS,
    )


def _split_text(cv: dict) -> str:
    """How the splits were made: temporal unit, cluster distance, skipped splits."""
    unit = cv.get("temporal_unit")
    parts = [f"Temporal split unit: {unit}." if unit else "Temporal split unit: not recorded."]
    clusters = cv.get("clusters")
    if clusters:
        parts.append(
            f"Cluster split: towers within {clusters['distance_km']:g} km linked (single linkage), "
            f"{clusters['n_clusters']} clusters of {clusters['n_sites']} sites; "
            f"{clusters['sites_with_neighbour']} sites have a neighbour within that distance."
        )
    for split, reason in (cv.get("skipped_splits") or {}).items():
        parts.append(f"{split} split skipped: {reason}.")
    return " ".join(parts)


def _version_header(meta: dict) -> str:
    td = meta.get("training_data", {})
    t = meta.get("targets", {})
    return (
        f"**{meta['version']}** — primary model: {meta.get('primary_model')}; trained on "
        f"{td.get('n_rows')} rows from {td.get('n_sites')} sites ({td.get('source')}, "
        f"{td.get('time_step')}, years {td.get('years')}, synthetic: {td.get('synthetic')}); "
        f"targets `{t.get('le')}`/`{t.get('h')}`; EF objective: {meta.get('ef_objective', '')}. "
        f"Fixed parameters, no tuning on test folds. {_split_text(meta.get('cv_settings', {}))}"
        + (
            " Note: trained on monthly means; predictions on daily cubes carry a scale error the "
            "cross-validation does not measure."
            if td.get("time_step") == "month"
            else ""
        )
    )


A_SOURCE_LABELS = {
    "observed": "the towers' measured Rn − G",
    "a_model": "the emulator's A model, as a map without a radiation product gets it",
}


def _frame(frame: pd.DataFrame) -> pn.pane.DataFrame:
    # scrolls inside its own box: its min-content width would otherwise widen the whole tab
    return pn.pane.DataFrame(frame, index=False, sizing_mode="stretch_width", styles={"overflow-x": "auto"})


def _verdict_view(meta: dict):
    table = verdict_table(meta)
    if table.empty:
        return pn.pane.Markdown(
            "No closed-vs-direct verdict stored (version trained before they were computed)."
        )
    note = (
        "**Closed vs direct** (rows with observed A ≥ threshold): ΔR² = R²(constrained) − R²(direct) and "
        "ΔRMSE, 95 % percentile bootstrap over sites; a model wins only where the interval excludes 0."
    )
    return pn.Column(pn.pane.Markdown(note), _frame(table), sizing_mode="stretch_width")


def _interval_view(version: str, meta: dict):
    info = meta.get("intervals")
    if not info:
        return pn.pane.Markdown("No prediction intervals calibrated (version trained before they were).")
    split = info["calibration_split"]
    parts = [
        pn.pane.Markdown(
            f"**{round(100 * info['level'])} % prediction intervals** ({info['method']}; calibrated on the "
            f"{split} split). Coverage in CV, each fold bounded with quantiles from the other folds; "
            "prediction products carry them as "
            + ", ".join(f"{v}_{b}" for v in ("le", "h") for b in info["bounds"])
            + "."
        )
    ]
    try:
        parts.append(_frame(coverage_table(registry.read_table(version, "cv_coverage"), split)))
    except FluxLensError as exc:
        parts.append(pn.pane.Alert(str(exc), alert_type="warning"))
    return pn.Column(*parts, sizing_mode="stretch_width")


def version_view(version: str, site=None) -> pn.viewable.Viewable:
    """Everything shown for one version (reads the registry only); ``site`` is the selected tower, or
    the session's ``site`` parameter (the tower's explanation then follows it)."""
    try:
        meta = registry.read_meta(version)
        scores = registry.read_table(version, "cv_scores")
        oof = registry.read_table(version, "cv_predictions")
    except FluxLensError as exc:
        return pn.pane.Alert(str(exc), alert_type="danger")
    trained_on = meta["targets"]["set"]
    targets = pn.widgets.RadioButtonGroup(options=sorted(scores["targets"].unique()), value=trained_on)
    sources = list(dict.fromkeys(scores["a_source"])) if "a_source" in scores else ["observed"]
    a_source = pn.widgets.RadioButtonGroup(options=sources, value="observed")
    regimes = sorted(set(scores["a_regime"]), reverse=True) if "a_regime" in scores else ["all rows"]
    a_regime = pn.widgets.RadioButtonGroup(options=regimes, value=regimes[0])

    def table_for(t, source, regime):
        note = (
            f"Scores against **{t}** targets ({TARGET_LABELS[t]});"
            f" both models were trained on **{trained_on}** targets. R² is the coefficient of "
            "determination 1 − SS_res/SS_tot of the out-of-fold predictions (= Nash–Sutcliffe "
            "efficiency; not the squared correlation, can be negative). RMSE and bias in W m-2. "
            f"A used to close: **{source}** "
            f"({A_SOURCE_LABELS.get(source, 'rn − g of this radiation product')}); "
            f"rows: **{regime}** (observed A; the headline is A observed, {regimes[0]})."
        )
        return pn.Column(
            pn.pane.Markdown(note),
            # scrolls inside its own box: its min-content width would otherwise widen the whole tab
            pn.pane.DataFrame(
                cv_table(scores, t, source, None if regime == "all rows" else regime).round(3),
                index=False,
                sizing_mode="stretch_width",
                styles={"overflow-x": "auto"},
            ),
        )

    splits = [s for s in SPLITS if s in set(oof["split"])]
    every_split = pn.widgets.Toggle(label="Scatter plots of every split", value=False, width=240)

    def scatter_title(every):
        shown = (
            "every split" if every or not splits else f"the {splits[0]} split (the button adds the others)"
        )
        return f"**Predicted against observed** (A observed), {shown}"

    def scatters_for(t, every):
        le_col, h_col = ("le_corr", "h_corr") if t == "corrected" else ("le_raw", "h_raw")
        plots = [
            _scatter(oof, s, v, f"obs_{c}")
            for v, c in (("le", le_col), ("h", h_col))
            for s in (splits if every else splits[:1])
            if f"obs_{c}" in oof
        ]
        # one pane per plot (a gridplot drew these overlays empty), in a wrapping FlexBox, so the plots
        # never run out of a narrow window
        panes = [pn.pane.Bokeh(p) for p in plots]
        return pn.FlexBox(*panes, sizing_mode="stretch_width")

    shap_model = pn.widgets.Select(label="explained model", options=SHAP_MODELS, value="ef")
    features = [f["name"] for f in meta["features"]]
    dep_feature = pn.widgets.Select(label="dependence feature", options=features, value=features[0])

    def shap_for(model, feature):
        try:
            frame = registry.read_table(version, f"shap_{model}")
        except FluxLensError as exc:
            return pn.pane.Alert(str(exc), alert_type="warning")
        units = explain.shap_units(meta, model)  # as the version recorded them (logit(EF) before L2)
        if f"shap_{feature}" not in frame:
            feature = explain.feature_names(frame)[0]
        # a wrapping FlexBox: each plot keeps its own box (legends and colour bars inside it) and moves
        # to the next line when the window is too narrow, instead of overlapping its neighbour
        return pn.FlexBox(
            pn.pane.HoloViews(_importance_plot(frame, units)),
            pn.pane.HoloViews(_beeswarm_plot(frame, units)),
            pn.pane.HoloViews(_dependence_plot(frame, feature, units)),
            _interaction_view(version, model, units),
            # its own binding: choosing a tower on the map redraws this plot only
            pn.panel(pn.bind(lambda chosen: _site_plot(frame, chosen, units), site)),
            sizing_mode="stretch_width",
        )

    cross_validation = pn.Column(
        pn.Row(pn.pane.Markdown("**Cross-validation**"), targets),
        pn.Row(a_source, a_regime),
        pn.bind(table_for, targets, a_source, a_regime),
        _verdict_view(meta),
        _interval_view(version, meta),
        pn.Row(pn.pane.Markdown(pn.bind(scatter_title, every_split)), every_split),
        pn.bind(scatters_for, targets, every_split),
        sizing_mode="stretch_width",
    )

    def shap_section():
        return pn.Column(
            pn.pane.Markdown("**SHAP (TreeSHAP on a site-stratified sample of the training table)**"),
            pn.Row(shap_model, dep_feature),
            pn.bind(shap_for, shap_model, dep_feature),
            sizing_mode="stretch_width",
        )

    return pn.Column(
        pn.pane.Markdown(_version_header(meta)),
        ui.lazy_tabs(
            [("Cross-validation", lambda: cross_validation), ("SHAP", shap_section)], name="model_sections"
        ),
        sizing_mode="stretch_width",
    )


def panel(state) -> pn.viewable.Viewable:
    """The Models tab for one session (reads ``state.site`` only)."""
    hv.extension("bokeh", logo=False)
    versions = [v["version"] for v in registry.list_versions()]
    if not versions:
        return pn.Column(pn.pane.Markdown("No trained emulator yet: run `fluxlens train`."), name="Models")
    picker = pn.widgets.Select(label="model version", options=versions, value=versions[0])
    site = state.param.site if hasattr(state, "param") and "site" in state.param else None
    # the site parameter goes in as it is (not its value): a tower chosen on the map redraws its own
    # explanation, not the whole tab
    view = pn.bind(functools.partial(version_view, site=site), picker)
    return pn.Column(picker, view, name="Models", width=TAB_WIDTH)  # the parts stretch inside it
