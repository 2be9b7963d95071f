import panel as pn
import pytest

from app import model_panel
from app.state import AppState
from models import explain, registry
from tests.conftest import demo_copy_with_model


@pytest.fixture(scope="module")
def demo_registry(demo_world, tmp_path_factory):
    """A copy of the small demo world holding one model trained on its towers."""
    d = tmp_path_factory.mktemp("model-panel") / "data"
    settings = dict(num_boost_round=10, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, d, **settings) as version:
        yield version


def _texts(root) -> str:
    out = []
    for model in root.select({"type": object}) if hasattr(root, "select") else []:
        for attr in ("text", "title"):
            v = getattr(model, attr, None)
            if isinstance(v, str):
                out.append(v)
    return "\n".join(out)


def test_panel_renders_from_registry(demo_registry):
    state = AppState()
    from catalog import api

    site = api.sites("fluxnet_demo")["site_id"].iloc[0]
    state.site = ("fluxnet_demo", site)
    view = model_panel.panel(state)
    assert isinstance(view, pn.viewable.Viewable)
    sections = _sections(view)
    assert sections._names == ["Cross-validation", "SHAP"]
    sections.active = 1  # the SHAP section is built when first opened
    root = view.get_root()
    text = _texts(root)
    assert demo_registry in text and "spatial" in text
    assert f"{site}: mean SHAP" in text  # the per-site explanation of the selected tower
    first, second, _ = explain.interaction_pair(registry.read_table(demo_registry, "shap_interaction_ef"))
    assert f"interaction: {first} × {second}" in text  # the strongest pair, read from the cache
    assert "beeswarm: top 12 features" in text
    assert "Temporal split unit: month" in text  # the demo year is split by month
    assert "1 − SS_res/SS_tot" in text and "Closed vs direct" in text
    assert "90 % prediction intervals" in text and "le_q05, le_q95, h_q05, h_q95" in text


def _sections(view) -> pn.Tabs:
    return next(t for t in view.select(pn.Tabs) if t.name == "model_sections")


def _scatter_titles(view) -> list[str]:
    return sorted(t for t in _texts(view.get_root()).splitlines() if t.endswith(" split"))


def test_first_open_draws_one_split_and_builds_the_rest_on_demand(demo_registry):
    state = AppState()
    view = model_panel.panel(state)
    first = _scatter_titles(view)
    assert first == ["H — random split", "LE — random split"]  # the headline split's LE and H
    assert "beeswarm" not in _texts(view.get_root())  # the SHAP section is not built yet
    toggle = next(w for w in view.select(pn.widgets.Toggle) if w.label == "Scatter plots of every split")
    toggle.value = True
    oof = registry.read_table(demo_registry, "cv_predictions")
    splits = [s for s in model_panel.SPLITS if s in set(oof["split"])]
    assert _scatter_titles(view) == sorted(f"{v} — {s} split" for v in ("LE", "H") for s in splits)
    sections = _sections(view)
    sections.active = 1
    assert "beeswarm: top 12 features" in _texts(view.get_root())
    # a tower chosen on the map redraws its explanation only: the sections stay as they are
    from catalog import api

    site = api.sites("fluxnet_demo")["site_id"].iloc[0]
    state.site = ("fluxnet_demo", site)
    assert _sections(view) is sections and sections.active == 1
    assert f"{site}: mean SHAP" in _texts(view.get_root())


def test_verdict_coverage_and_band(demo_registry):
    meta = registry.read_meta(demo_registry)
    verdicts = model_panel.verdict_table(meta)
    assert len(verdicts) == len(meta["cv_verdicts"]) and set(verdicts["var"]) == {"LE", "H"}
    coverage = registry.read_table(demo_registry, "cv_coverage")
    table = model_panel.coverage_table(coverage, "cluster")
    ref = coverage.query(
        "split == 'cluster' and a_source == 'a_model' and a_regime == 'all' and variable == 'h'"
    )
    ref = ref[ref["igbp"].isna()]
    row = table[(table["A"] == "a_model") & (table["rows"] == "all")]
    assert row["H coverage"].item() == pytest.approx(ref["coverage"].item(), abs=1e-3)
    bounds = registry.read_table(demo_registry, "cv_bounds")
    assert (bounds["le_lo"] + bounds["h_hi"]).round(6).equals((bounds["le"] + bounds["h"]).round(6))


def test_beeswarm_rows_follow_importance_and_heights_fit_the_labels(demo_registry):
    frame = registry.read_table(demo_registry, "shap_ef")
    bee = model_panel._beeswarm_plot(frame, "logit(EF)")
    order = list(explain.global_importance(frame)["feature"].head(model_panel.BEESWARM_TOP))
    ticks = sorted(bee.opts.get("plot").kwargs["yticks"], reverse=True)
    assert [name for _, name in ticks] == order  # one named row per feature, most important on top
    imp = model_panel._importance_plot(frame, "logit(EF)")
    assert imp.opts.get("plot").kwargs["height"] >= model_panel.ROW_PX * len(explain.feature_names(frame))


def test_cv_table_matches_registry(demo_registry):
    scores = registry.read_table(demo_registry, "cv_scores")
    table = model_panel.cv_table(scores, "corrected")
    assert list(table["split"]) == [s for s in model_panel.SPLITS for _ in range(2)]
    row = table[(table["split"] == "spatial") & (table["model"] == "direct")].iloc[0]
    ref = scores.query(
        "split == 'spatial' and model == 'direct' and targets == 'corrected' and variable == 'h' "
        "and a_source == 'observed' and a_regime == 'A>=10'"
    )
    assert row["n"] == ref["n"].item()
    chain = model_panel.cv_table(scores, "corrected", "a_model")
    ref_chain = scores.query(
        "split == 'spatial' and model == 'direct' and targets == 'corrected' and variable == 'h' "
        "and a_source == 'a_model' and a_regime == 'A>=10'"
    )
    assert chain[(chain["split"] == "spatial") & (chain["model"] == "direct")][
        "H R²"
    ].item() == pytest.approx(ref_chain["r2"].item())
    assert row["H R²"] == pytest.approx(ref["r2"].item()) and row["H RMSE"] == pytest.approx(
        ref["rmse"].item()
    )
    assert table[table["model"] == "constrained"]["max |LE+H−A|"].max() < 1e-9


def test_panel_without_models(data_dir):
    view = model_panel.panel(AppState())
    assert "fluxlens train" in _texts(view.get_root())
