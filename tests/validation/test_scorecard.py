"""ILAMB scorecard of a monthly LE product against eight real FLUXNET2015 monthly towers.

Towers (``../shared/data/fluxnet2015_monthly``): US-ARM, US-Blo, US-Ha1 (North America), DE-Tha, FI-Hyy,
FR-Pue, IT-Lav (Europe), AU-How (Oceania). The product is a 5° global monthly grid, 2000-2014, built
here from each tower's own ``LE_F_MDS`` as ``a · LE + b`` in the tower's pixel (``SITES``), so the
scores have known answers: s_rmse = s_iav = exp(−|a − 1|), s_phase = 1 (a > 0), and
s_bias = exp(−|(a − 1) ō + b| / σ_o) on the months whose ``LE_F_MDS_QC`` ≥ 0.8, recomputed here
from the CSV with plain pandas. FLUXNET2015: CC-BY-4.0, Pastorello et al. 2020, Sci Data 7:225.
"""

from __future__ import annotations

import html.parser
import io
import json
import math
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.validation import flux_world as flux_world_data
from tests.validation.flux_world import EUROPE, IGBP, LAT, LON, MONTHS, SITES

SCORES = ("bias", "rmse", "phase", "iav", "dist", "overall")


@pytest.fixture(scope="module")
def flux_world(shared_data, tmp_path_factory):
    """Network ``fluxnet_mm`` (the eight towers), products ``le_monthly`` and ``le_monthly_b`` in a
    fresh data dir (:mod:`tests.validation.flux_world`)."""
    root = tmp_path_factory.mktemp("scorecard-flux")
    d = root / "fluxlens-data"
    d.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("FLUXLENS_DATA_DIR", str(d))
    mp.setenv("FLUXLENS_VALIDATION_CACHE", str(root / "cache"))
    world = flux_world_data.build(shared_data)
    yield {"dir": d, "root": root, **world}
    mp.undo()


def _hand_site_scores(world) -> pd.DataFrame:
    """Per tower, by hand: the QC-passed months (QC ≥ 0.8) of 2000-2014 paired with the product."""
    rows = {}
    for site, (a, b) in SITES.items():
        t = world["towers"][site]
        t = t[(t.index >= MONTHS[0]) & (t.index <= MONTHS[-1]) & (t["le_qc"] >= 0.8) & t["le"].notna()]
        o = t["le"].to_numpy()
        p = (a * o + b).astype("float32").astype("float64")  # the product stores float32
        sigma = math.sqrt(((o - o.mean()) ** 2).mean())
        crmse = math.sqrt((((p - p.mean()) - (o - o.mean())) ** 2).mean())
        rows[site] = {
            "n_months": len(o),
            "mean_mod": p.mean(),
            "mean_ref": o.mean(),
            "bias": math.exp(-abs(p.mean() - o.mean()) / sigma),
            "rmse": math.exp(-crmse / sigma),
        }
    return pd.DataFrame(rows).T


def _dist(m, r) -> float:
    m, r = np.asarray(m, float), np.asarray(r, float)
    sigma = m.std() / r.std()
    corr = np.corrcoef(m, r)[0, 1]
    return 2 * (1 + corr) / (sigma + 1 / sigma) ** 2


def test_fluxnet_monthly_scores_have_known_answers(flux_world):
    from validation import scorecard

    card = scorecard.compute_scorecard("le_monthly", "le", "fluxnet_mm")
    loc = card.locations.set_index("location")
    hand = _hand_site_scores(flux_world)
    assert sorted(loc.index) == sorted(SITES)
    for site, (a, _) in SITES.items():
        assert loc.loc[site, "n_months"] == hand.loc[site, "n_months"]
        assert loc.loc[site, "bias"] == pytest.approx(hand.loc[site, "bias"], rel=1e-6)
        assert loc.loc[site, "rmse"] == pytest.approx(hand.loc[site, "rmse"], rel=1e-6)
        assert loc.loc[site, "rmse"] == pytest.approx(math.exp(-abs(a - 1)), rel=1e-5)  # crmse = |a-1| σ
        assert loc.loc[site, "iav"] == pytest.approx(math.exp(-abs(a - 1)), rel=1e-5)
        assert loc.loc[site, "phase"] == 1.0
        assert loc.loc[site, "igbp"] == IGBP[site]
    table = card.table.set_index(["region_kind", "region"])
    assert list(card.table.columns) == scorecard.TABLE_COLUMNS
    assert set(table.index) == {
        ("all", "all"), ("continent", "Europe"), ("continent", "North America"), ("continent", "Oceania"),
        ("igbp", "CRO"), ("igbp", "DBF"), ("igbp", "EBF"), ("igbp", "ENF"), ("igbp", "WSA"),
    }  # fmt: skip
    europe = table.loc[("continent", "Europe")]
    assert europe["n_locations"] == 4
    assert europe["bias"] == pytest.approx(hand.loc[list(EUROPE), "bias"].mean(), rel=1e-6)
    assert europe["dist"] == pytest.approx(
        _dist(hand.loc[list(EUROPE), "mean_mod"], hand.loc[list(EUROPE), "mean_ref"]), rel=1e-6
    )
    enf = [s for s, c in IGBP.items() if c == "ENF"]
    assert table.loc[("igbp", "ENF"), "rmse"] == pytest.approx(hand.loc[enf, "rmse"].mean(), rel=1e-6)
    for key in table.index:  # overall = (bias + 2 rmse + phase + iav + dist) / 6 over the defined ones
        row = table.loc[key]
        have = {s: w for s, w in zip(SCORES[:5], (1, 2, 1, 1, 1), strict=True) if np.isfinite(row[s])}
        want = sum(w * row[s] for s, w in have.items()) / sum(have.values())
        assert row["overall"] == pytest.approx(want, rel=1e-12)
    assert np.isnan(table.loc[("continent", "Oceania"), "dist"])  # one tower: no spatial distribution
    assert card.meta["units"] == "W m-2" and card.meta["variable"] == "le"
    assert card.meta["product_versions"]["le_monthly"]


class _WellFormed(html.parser.HTMLParser):
    """Every non-void element closed in order; collects the score cells and the text."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.scores, self.text, self.errors = [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        self.stack.append(tag)
        attrs = dict(attrs)
        if tag == "td" and "data-score" in attrs:
            self._cell = [attrs["data-score"], ""]

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} ")
        else:
            self.stack.pop()
        if tag == "td" and self._cell is not None:
            self.scores.append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell[1] += data


def parse_html(text: str) -> _WellFormed:
    parser = _WellFormed()
    parser.feed(text)
    parser.close()
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack)
    return parser


def test_cli_writes_csv_and_html_and_serves_the_cache(flux_world, tmp_path, capsys):
    from fluxlens import cli
    from validation.scorecard import TABLE_COLUMNS

    box = json.dumps(
        {"type": "Polygon", "coordinates": [[[-125, 30], [-90, 30], [-90, 45], [-125, 45], [-125, 30]]]}
    )
    (tmp_path / "west.geojson").write_text(box)
    csv_path, html_path = tmp_path / "out" / "card.csv", tmp_path / "out" / "card.html"
    argv = ["validate", "scorecard", "--product", "le_monthly", "--variable", "le",
            "--reference", "fluxnet_mm", "--polygon", f"<West & co>={tmp_path / 'west.geojson'}",
            "--regions", "Germany", "--csv", str(csv_path), "--html", str(html_path)]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "scorecard le_monthly le (W m-2) vs fluxnet_mm (stations)" in out and "(cached)" not in out
    text = csv_path.read_text()
    head = dict(line[2:].split(": ", 1) for line in text.splitlines() if line.startswith("# "))
    assert head["units"].startswith("W m-2")
    assert head["reference"] == "fluxnet_mm (stations)" and head["products"].startswith(
        "le_monthly (version "
    )
    assert head["variable"] == "le (latent heat flux)" and head["period"] == "2000-01…2014-12"
    table = pd.read_csv(io.StringIO(text), comment="#")
    assert list(table.columns) == TABLE_COLUMNS
    rows = table.set_index("region")
    assert rows.loc["<West & co>", "region_kind"] == "polygon"
    assert rows.loc["<West & co>", "n_locations"] == 2  # US-ARM and US-Blo lie in the box
    assert rows.loc["Germany", "n_locations"] == 1 and rows.loc["Germany", "rmse"] == pytest.approx(1.0)
    page = html_path.read_text()
    parsed = parse_html(page)
    assert "&lt;West &amp; co&gt;" in page and "<West" not in page
    assert "http://" not in page and "https://" not in page and "<script" not in page and "src=" not in page
    assert len(parsed.scores) == len(table) * len(SCORES)
    shown = {}
    for score, value in parsed.scores:
        shown.setdefault(score, []).append(value)
    assert set(shown) == set(SCORES)
    assert shown["rmse"] == [f"{v:.3f}" for v in table["rmse"]]
    assert "W m-2" in "".join(parsed.text) and "fluxnet_mm" in "".join(parsed.text)
    # the same request again: served from the cache
    assert cli.main(argv) == 0
    assert "(cached)" in capsys.readouterr().out
    assert pd.read_csv(csv_path, comment="#").equals(table)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--product": "no_such"}, "unknown product 'no_such'"),
        ({"--variable": "ssm"}, "product 'le_monthly' has no variable 'ssm'"),
        ({"--variable": "precip"}, "variable 'precip' cannot be validated"),
        ({"--reference": "nowhere"}, "unknown reference 'nowhere': neither a station network (fluxnet_mm)"),
        ({"--period": ["1990-01-01", "1995-12-31"]}, "does not overlap product 'le_monthly'"),
        ({"--min-months": "200"}, "no station has 200 paired months"),
    ],
)
def test_cli_bad_input_is_a_clear_error_and_writes_nothing(flux_world, tmp_path, capsys, change, message):
    from fluxlens import cli

    args = {"--product": "le_monthly", "--variable": "le", "--reference": "fluxnet_mm"}
    args.update(change)
    argv = ["validate", "scorecard"]
    for k, v in args.items():
        argv += [k, *(v if isinstance(v, list) else [v])]
    argv += ["--csv", str(tmp_path / "o" / "c.csv"), "--html", str(tmp_path / "o" / "c.html")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fluxlens validate: error: ") and message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_sites_outside_the_product_are_an_error(flux_world, tmp_path):
    from catalog import store
    from catalog.errors import InputError
    from validation import scorecard

    ds = xr.Dataset(
        {"le": (("time", "lat", "lon"), np.ones((MONTHS.size, 2, 2), "float32"), {"units": "W m-2"})},
        coords={"time": MONTHS.values.astype("datetime64[ns]"), "lat": [-70.5, -71.5], "lon": [0.5, 1.5]},
        attrs={"time_step": "month"},
    )
    store.write_product(ds, "le_antarctic", provenance={"test": "no tower inside"}, synthetic=True)
    with pytest.raises(InputError, match="none of the 8 sites lies inside the product"):
        scorecard.compute_scorecard("le_antarctic", "le", "fluxnet_mm")
    with pytest.raises(InputError, match="le_antarctic le vs le_monthly: the product's grid does not"):
        scorecard.compute_scorecard("le_antarctic", "le", "le_monthly")


def test_gridded_reference_scores_by_hand(flux_world):
    """The product against a gridded reference: the reference is the product's pixels over Europe ×
    1.25 − 5 (a second product), so per cell s_rmse = exp(−0.2) and s_bias by hand; the region's
    score is the area-weighted mean (Δλ Δ sin φ of each cell)."""
    from catalog import store
    from validation import scorecard

    sub = slice(2, 6)  # lat 77.5 … 62.5
    cols = slice(36, 41)  # lon 2.5 … 22.5
    cube = flux_world["product"][:, sub, cols].astype("float64")
    ref = cube * 1.25 - 5.0
    ds = xr.Dataset(
        {"le": (("time", "lat", "lon"), ref.astype("float32"), {"units": "W m-2"})},
        coords={"time": MONTHS.values.astype("datetime64[ns]"), "lat": LAT[sub], "lon": LON[cols]},
        attrs={"time_step": "month"},
    )
    store.write_product(ds, "le_reference", provenance={"test": "gridded reference"}, synthetic=True)
    card = scorecard.compute_scorecard("le_monthly", "le", "le_reference")
    assert card.meta["reference_kind"] == "gridded"
    r = ds["le"].values.astype("float64")
    p = cube.astype("float32").astype("float64")
    sigma = r.std(axis=0)
    s_bias = np.exp(-np.abs(p.mean(0) - r.mean(0)) / sigma)
    s_rmse = np.exp(-np.sqrt((((p - p.mean(0)) - (r - r.mean(0))) ** 2).mean(0)) / sigma)
    lat = LAT[sub]
    area = np.abs(np.sin(np.deg2rad(lat + 2.5)) - np.sin(np.deg2rad(lat - 2.5)))[:, None] * np.ones(5)
    row = card.table.set_index("region").loc["all"]
    assert row["n_locations"] == 20
    assert row["bias"] == pytest.approx((s_bias * area).sum() / area.sum(), rel=1e-6)
    assert row["rmse"] == pytest.approx((s_rmse * area).sum() / area.sum(), rel=1e-6)
    np.testing.assert_allclose(s_rmse, math.exp(-0.2), rtol=1e-4)


def test_scorecard_job_run_by_the_worker_is_cached(flux_world, tmp_path, monkeypatch):
    """A products × variables scorecard job (LE and H of two products, G held by neither) run by a
    real worker process: one cached scorecard per variable, G skipped with its reason."""
    from models.jobs import ANONYMOUS, SUCCEEDED, JobService, JobStore, job_kinds
    from tests.models.test_jobs_cli import worker_command
    from validation import jobs, scorecard

    monkeypatch.setenv("FLUXLENS_JOBS_DB", str(tmp_path / "jobs.sqlite"))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "job-cache"))
    assert "scorecard" in job_kinds()
    options = scorecard.ScorecardOptions.from_config(igbp=False)
    service = JobService(JobStore())
    products = ["le_monthly", "le_monthly_b"]
    with pytest.raises(Exception, match="unknown product 'nope'"):
        service.submit(
            "scorecard", jobs.scorecard_request("nope", "le", "fluxnet_mm", options=options), ANONYMOUS
        )
    with pytest.raises(
        Exception, match="no variable can be scored .g: none of le_monthly, le_monthly_b holds it"
    ):
        service.submit(
            "scorecard", jobs.scorecard_request(products, ["g"], "fluxnet_mm", options=options), ANONYMOUS
        )
    request = jobs.scorecard_request(products, ["le", "h", "g"], "fluxnet_mm", options=options)
    job = service.submit("scorecard", request, ANONYMOUS)
    keys = {v: scorecard.scorecard_key(products, v, "fluxnet_mm", options) for v in ("le", "h")}
    assert all(scorecard.cached_scorecard(k) is None for k in keys.values())
    with open(tmp_path / "worker.log", "w") as log:
        done = subprocess.run(
            [*worker_command(), "--once"], env=dict(os.environ), stdout=log, stderr=log, timeout=600
        )
    assert done.returncode == 0, (tmp_path / "worker.log").read_text()
    job = service.job(job.id, ANONYMOUS)
    assert job.status == SUCCEEDED and json.loads(job.output)["cards"] == keys
    assert job.progress_done == job.progress_total == 3000
    cards = jobs.scorecard_set_of(job.output)
    assert (
        list(cards.cards) == ["le", "h"] and "none of le_monthly, le_monthly_b holds g" in cards.skipped["g"]
    )
    card = cards.cards["le"]
    assert card.cached and set(card.table["region_kind"]) == {"all", "continent"}  # igbp rows switched off
    again = scorecard.compute_scorecard(products, "le", "fluxnet_mm", options=options)
    assert again.cached and again.table.equals(card.table)


def test_products_by_variables_overview_and_relative_colouring(flux_world):
    """The overview holds each product's overall score per variable; le_monthly_b equals the towers
    (every location score 1), so relative to it le_monthly is worse wherever the two differ: with two
    products the relative score is exactly ∓1 standard deviation (population SD)."""
    from validation import export, scorecard

    options = scorecard.ScorecardOptions.from_config(igbp=False, continents=False)
    cards = scorecard.compute_scorecards(
        ["le_monthly", "le_monthly_b"], ["le", "h", "ssm"], "fluxnet_mm", options=options
    )
    assert list(cards.cards) == ["le", "h"] and "holds ssm" in cards.skipped["ssm"]
    overview = cards.overview()
    for v in ("le", "h"):
        all_row = cards.cards[v].table.set_index(["product", "region"]).loc[:, "overall"]
        assert overview.loc["le_monthly", v] == all_row[("le_monthly", "all")]
        assert overview.loc["le_monthly_b", v] == pytest.approx(1.0, abs=1e-6)  # the towers themselves
        assert overview.loc["le_monthly", v] < 0.95
    z = scorecard.relative_scores(overview)
    np.testing.assert_allclose(z.loc["le_monthly"], -1.0)
    np.testing.assert_allclose(z.loc["le_monthly_b"], 1.0)
    one = scorecard.relative_scores(overview.loc[["le_monthly"]])
    assert one.isna().all().all()  # one product: no relative scale
    page = export.scorecard_html(cards, colouring="relative")
    parsed = parse_html(page)
    worse, better = export.relative_colour(-1.0), export.relative_colour(1.0)
    assert worse != better
    assert f'data-overview="le" style="background:{worse}"' in page  # le_monthly's cell
    assert f'data-overview="le" style="background:{better}"' in page
    assert len(parsed.scores) == sum(len(c.table) for c in cards.cards.values()) * len(SCORES)
    phase = f'data-score="phase" style="background:{export.NO_VALUE}"'  # both 1: equal, no relative colour
    assert phase in page
    absolute = export.scorecard_html(cards)
    assert f'style="background:{export.score_colour(1.0)}">1.000</td>' in absolute
    text = export.scorecard_set_csv(cards)
    table = pd.read_csv(io.StringIO(text), comment="#")
    assert list(table.columns[:2]) == ["variable", "product"] and set(table["variable"]) == {"le", "h"}
    assert "# ssm skipped:" in text and "# h units: W m-2" in text
