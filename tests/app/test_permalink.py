"""Permalink encoding round-trips every selection; malformed or hostile values are left out with a
notice the page shows as plain text, and a dashboard that cannot be built gives a plain page."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

import panel as pn
import pytest

from app import dashboard, data, permalink, ui
from app.state import AppState
from catalog import api


def test_round_trip_restores_selections():
    s = AppState(
        product="gssm1km_demo",
        variable="ssm",
        date=dt.date(2018, 7, 14),
        aggregation="period",
        period=(dt.date(2018, 7, 1), dt.date(2018, 7, 10)),
        x_range=(-100.5, -95.25),
        y_range=(35.125, 40.0),
        pixel=(-97.3, 36.6),
        box=(-99.0, 35.5, -96.0, 38.0),
        cmap="viridis",
        clim_mode="typed",
        clim=(0.05, 0.45),
        compare=["ssm_global_demo", "esacci_demo"],
        common_mask=True,
        basemap=True,
        projection="equal_earth",
    )
    q = permalink.to_query(s)
    assert q["view"] == "-100.5,-95.25,35.125,40"
    restored = AppState(**permalink.from_query(q))
    for name in (
        "product",
        "variable",
        "date",
        "aggregation",
        "period",
        "x_range",
        "y_range",
        "pixel",
        "box",
        "projection",
    ):
        assert getattr(restored, name) == getattr(s, name), name
    assert restored.clim_mode == "typed" and restored.clim == (0.05, 0.45)
    assert restored.compare == ["ssm_global_demo", "esacci_demo"] and restored.common_mask
    assert q["basemap"] == "1" and restored.basemap
    assert "basemap" not in permalink.to_query(AppState())
    assert q["proj"] == "equal_earth" and "proj" not in permalink.to_query(AppState())


def test_malformed_values_are_ignored():
    out = permalink.from_query({"date": "2018-13-40", "view": "1,2,x,4", "agg": "decade", "box": "5,5,1,1"})
    assert out == {}
    assert permalink.from_query({"clim": "auto"}) == {"clim_mode": "auto"}


# -- hostile links ------------------------------------------------------------------------------

HOSTILE = [
    ("date", "2018-02-30", "not a date"),
    ("date", "2018-07-01<script>", "not a date"),
    ("date", "99999-01-01", "not a date"),
    ("agg", "decade", "not one of"),
    ("period", "2018-07-01", "not two dates"),
    ("period", "2018-07-01~2018-07-xx", "not two dates"),
    ("view", "nan,nan,30,40", "finite"),
    ("view", "-inf,inf,30,40", "finite"),
    ("view", "-1e300,1e300,-1e300,1e300", "farther than"),
    ("view", "10,0,30,40", "reversed"),
    ("view", "0,0,30,40", "empty"),
    ("px", "nan,0", "finite"),
    ("px", "200,0", "longitude"),
    ("px", "0,-95", "latitude"),
    ("box", "5,5,1,1", "reversed"),
    ("box", "1,5,1,8", "empty"),
    ("box", "nan,1,2,3", "finite"),
    ("box", "-1e9,0,1e9,1", "longitude"),
    ("cmap", "jet", "unknown colormap"),
    ("cmap", "<img src=x onerror=alert(1)>", "unknown colormap"),
    ("clim", "typed:1,nan", "finite"),
    ("clim", "typed:2,1", "not below"),
    ("clim", "typed:-1e300,1e300", "beyond"),
    ("clim", "rainbow", "not auto"),
    ("mask", "yes", "not 1"),
    ("basemap", "<b>1</b>", "not 1"),
    ("basemap", "true", "not 1"),
    ("proj", "robinson", "not one of lonlat, equal_earth"),
    ("product", "x" * 5000, "longer than"),
    ("product", "a\x00b", "control characters"),
]


@pytest.mark.parametrize(("key", "value", "reason"), HOSTILE)
def test_each_hostile_value_is_left_out_with_a_notice(key, value, reason):
    updates, notices = permalink.decode({key: value})
    assert updates == {}
    assert len(notices) == 1 and notices[0].key == key and reason in notices[0].reason, notices
    text = notices[0].text()
    assert text.startswith(f"Link setting {key}=") and "ignored" in text
    assert len(text) < 400 and "\x00" not in text


def test_good_values_still_decode_and_off_switches_work():
    query = {"px": "-97.3,36.6", "mask": "0", "basemap": "0", "clim": "fixed", "proj": "lonlat"}
    updates, notices = permalink.decode(query)
    assert notices == []
    assert updates == {
        "pixel": (-97.3, 36.6),
        "common_mask": False,
        "basemap": False,
        "clim_mode": "fixed",
        "projection": "lonlat",
    }


def test_unknown_keys_long_values_and_swapped_periods_are_reported():
    updates, notices = permalink.decode(
        {"<script>": "1", "period": "2018-07-10~2018-07-01", "compare": "a~b~c", "product": "é" * 300}
    )
    assert updates == {"period": (dt.date(2018, 7, 1), dt.date(2018, 7, 10)), "compare": ["a", "b"]}
    by_key = {n.key: n for n in notices}
    assert by_key["<script>"].reason == "not a FluxLens link setting"
    assert by_key["period"].action == "reordered" and by_key["compare"].action == "shortened"
    long = by_key["product"].text()
    assert "(300 characters)" in long and len(long) < 200


def _info(name, variables=("ssm",), start="2018-07-01", end="2018-07-30"):
    return api.ProductInfo(
        name=name,
        title=name,
        variables={v: {"units": "1"} for v in variables},
        resolution=0.5,
        time_start=start,
        time_end=end,
        n_time=30,
        time_step="day",
        bbox=(-180.0, -90.0, 180.0, 90.0),
        levels=[{"level": 0, "n_lat": 360, "n_lon": 720, "resolution": 0.5}],
        synthetic=True,
        provenance={},
        kind="soil_moisture",
    )


PRODUCTS = [_info("sm_july"), _info("fluxes", ("le", "h"), "2018-01-01", "2018-12-31"), _info("sm_two")]


def _check(query, tiles=True):
    updates, notices = permalink.decode(query)
    out, more = permalink.check(
        updates,
        PRODUCTS,
        default_product="sm_july",
        variables_of=lambda p: list(p.variables),
        query=query,
        tiles=tiles,
    )
    return out, notices + more


def test_check_against_the_catalog():
    out, notices = _check({"product": "<b>nope</b>", "var": "le", "date": "2019-01-01"})
    assert out == {}  # the default product, its first variable, its first day
    assert [n.key for n in notices] == ["product", "var", "date"]
    assert "no such product" in notices[0].reason and notices[0].value == "<b>nope</b>"
    assert "sm_july has no such variable (has ssm)" in notices[1].reason
    assert "2018-07-01 … 2018-07-30" in notices[2].reason

    out, notices = _check({"product": "fluxes", "var": "h", "date": "2018-03-04"})
    assert out == {"product": "fluxes", "variable": "h", "date": dt.date(2018, 3, 4)} and notices == []


def test_period_outside_the_product_is_dropped_and_overlapping_one_clipped():
    out, notices = _check({"agg": "period", "period": "2017-01-01~2017-02-01"})
    assert out == {"aggregation": "period"} and notices[0].key == "period"
    out, notices = _check({"agg": "period", "period": "2018-06-20~2018-07-05"})
    assert out["period"] == (dt.date(2018, 7, 1), dt.date(2018, 7, 5))
    assert notices[0].action.startswith("clipped")


def test_compare_and_basemap_against_the_catalog():
    out, notices = _check({"compare": "sm_two~fluxes"})
    assert out == {"compare": ["sm_two"]}
    assert notices[0].value == "fluxes" and "'ssm'" in notices[0].reason
    out, notices = _check({"basemap": "1"}, tiles=False)
    assert out == {} and "no web tiles" in notices[0].reason


def test_query_string_percent_encodes_values():
    s = AppState(
        product="a&b c", variable="ssm", cmap="viridis", compare=["x", "y"], box=(1.0, 2.0, 3.0, 4.0)
    )
    qs = permalink.query_string(permalink.to_query(s))
    assert "product=a%26b+c" in qs and "compare=x~y" in qs and "box=1,2,3,4" in qs
    parsed = {k: v[0] for k, v in parse_qs(qs[1:]).items()}
    assert permalink.from_query(parsed)["product"] == "a&b c"


# -- in the dashboard ---------------------------------------------------------------------------


@pytest.fixture
def demo(demo_world, monkeypatch):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    data.view_data().forget_products()
    return demo_world


def _panes(page, name):
    return [o for o in page.main[0].select() if getattr(o, "name", None) == name]


def _widget(page, label):
    """The sidebar widget labelled ``label``."""
    (widget,) = [o for o in page.sidebar[0].select(pn.widgets.Widget) if o.name == label]
    return widget


def test_dashboard_shows_notices_escaped_and_falls_back(demo):
    page = dashboard.build_dashboard(
        {
            "product": "<script>alert(1)</script>",
            "agg": "period",
            "period": "2017-01-01~2017-02-01",  # outside every product: the picker's bounds refused it
            "cmap": "jet",
            "view": "nan,1,2,3",
        }
    )
    (notes,) = _panes(page, "link_notices")
    assert notes.visible
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in notes.object and "<script" not in notes.object
    for key in ("product=", "period=2017-01-01~2017-02-01", "cmap=jet", "view=nan,1,2,3"):
        assert key in notes.object, key
    (message,) = _panes(page, "message")
    assert not message.visible, message.object  # the map was drawn with the defaults
    product, period = _widget(page, "Product"), _widget(page, "Period (mean over)")
    assert product.value == "gssm1km_demo" and period.visible
    assert period.value == (dt.date(2018, 7, 1), dt.date(2018, 7, 10))


def test_good_link_has_no_notice(demo):
    page = dashboard.build_dashboard({"product": "ssm_global_demo", "var": "ssm", "date": "2018-07-03"})
    (notes,) = _panes(page, "link_notices")
    assert not notes.visible and notes.object == ""
    assert _widget(page, "Product").value == "ssm_global_demo"


def test_failure_while_building_gives_a_plain_page(demo, monkeypatch):
    def broken(state):
        raise RuntimeError("boom in /srv/fluxlens/secret/app.py")

    monkeypatch.setattr(dashboard, "Controls", broken)
    page = dashboard.create_dashboard()
    text = " ".join(str(getattr(o, "object", "")) for o in page.select())
    assert "could not be built" in text and "RuntimeError" in text
    assert "/srv/fluxlens" not in text and "Traceback" not in text
    assert "…/app.py" in text


def test_messages_redact_paths_and_never_render_markup():
    state = AppState()

    @ui.guarded(state, "map")
    def fail():
        raise OSError("cannot open /tmp/pytest-of-x/data/products/p/levels/0.zarr <b>now</b>")

    fail()
    assert state.message == "map failed: OSError: cannot open …/0.zarr <b>now</b>"
    pane = ui.alert("danger")
    ui.show_alert(pane, state.message)
    assert pane.visible and pane.object == "map failed: OSError: cannot open …/0.zarr &lt;b&gt;now&lt;/b&gt;"
    ui.show_alert(pane, "")
    assert not pane.visible


def test_le_units_round_trip_and_bad_value():
    s = AppState(le_units="mm d-1")
    q = permalink.to_query(s)
    assert q["le"] == "mm_d" and "le" not in permalink.to_query(AppState())
    assert AppState(**permalink.from_query(q)).le_units == "mm d-1"
    assert permalink.from_query({"le": "W_m2"}) == {"le_units": "W m-2"}
    out, notices = permalink.decode({"le": "kg"})
    assert out == {} and "not one of W_m2, mm_d" in notices[0].text()
