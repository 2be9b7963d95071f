"""``fluxlens predict --dry-run``: the plan's sizes follow from the request, one block is measured,
nothing is written or registered."""

from __future__ import annotations

import pytest

from catalog.errors import InputError
from models import predict, registry
from tests.conftest import demo_copy_with_model

BBOX = (-110.0, 20.0, -80.0, 50.0)


@pytest.fixture(scope="module")
def world(demo_world, tmp_path_factory):
    d = tmp_path_factory.mktemp("plan") / "data"
    settings = dict(num_boost_round=15, n_folds=2, params={"min_data_in_leaf": 5}, shap_sample=100)
    with demo_copy_with_model(demo_world, d, **settings) as version:
        yield d, version


def test_plan_counts_pixel_days_blocks_and_bytes(world):
    d, version = world
    before = sorted(p.name for p in (d / "products").iterdir())
    plan = predict.plan_region(version, BBOX, "2018-06-03", "2018-06-12", block=(4, 8, 8))
    nt, ny, nx = plan.shape
    assert nt == 10 and plan.pixel_days == nt * ny * nx
    assert plan.n_blocks == 3 * -(-ny // 8) * -(-nx // 8)
    # float32 outputs (le, h, ef and the four interval bounds): at least scratch + level 0, at most with
    # a full pyramid and series copy
    per_pixel_day = 4 * (3 + len(predict.interval_attrs(registry.read_meta(version))))
    assert 2 * per_pixel_day * plan.pixel_days <= plan.bytes_written <= 4 * per_pixel_day * plan.pixel_days
    assert plan.measured_block_s > 0 and 0 < plan.measured_pixel_days <= 4 * 8 * 8
    rate = plan.pixel_days_per_core_s
    assert plan.estimated_s(4) == pytest.approx(plan.pixel_days / (rate * 4))
    text = "\n".join(plan.lines())
    assert f"{plan.pixel_days:,}" in text and "per core" in text and "estimated time on 32 cores" in text
    assert sorted(p.name for p in (d / "products").iterdir()) == before
    assert not list((d / "tmp").iterdir())


def test_plan_checks_the_request_like_a_prediction(world):
    _, version = world
    with pytest.raises(InputError, match="outside the forcing product"):
        predict.plan_region(version, (200.0, 0.0, 210.0, 10.0), "2018-06-01", "2018-06-02")
