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
    root = view.get_root()
    text = _texts(root)
    assert demo_registry in text and "spatial" in text
    assert f"{site}: mean SHAP" in text  # the per-site explanation of the selected tower
    first, second, _ = explain.interaction_pair(registry.read_table(demo_registry, "shap_interaction_ef"))
    assert f"interaction: {first} × {second}" in text  # the strongest pair, read from the cache
    assert "beeswarm: top 12 features" in text


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
        "split == 'spatial' and model == 'direct' and targets == 'corrected' and variable == 'h'"
    )
    assert row["H R²"] == pytest.approx(ref["r2"].item()) and row["H RMSE"] == pytest.approx(
        ref["rmse"].item()
    )
    assert table[table["model"] == "constrained"]["max |LE+H−A|"].max() < 1e-9


def test_panel_without_models(data_dir):
    view = model_panel.panel(AppState())
    assert "fluxlens train" in _texts(view.get_root())
