"""QA4SM-style soil-moisture validation on the real Hawaii set: pairing, scaling, triple collocation.

Reads the ISMN stations (SCAN, 0-0.1 m, flag G) and the time-series cells of ESA CCI SM combined
v08.1, C3S v202505, SMAP L3 V9 AM+PM and ERA5-Land (``swvl1``, 0-7 cm) from
``../shared/data/qa4sm_hawaii`` (qa4sm test data: awst-austria/qa4sm-testdata; ESA CCI SM CC-BY-4.0,
C3S Copernicus licence, NASA SMAP public domain, ERA5-Land Copernicus licence, ISMN terms: Dorigo
et al. 2021) and prints, per product and sensor, 2017-2018:

1. n and R of FluxLens's daily-mean pairing against QA4SM's nearest-in-time pairing (±12 h, the
   station or the product as temporal reference);
2. ubRMSD of the product as delivered and after mean-std, linear-regression and CDF-matching scaling;
3. triple collocation at the stations (ISMN, CCI, ERA5-Land) and (ISMN, SMAP, ERA5-Land), and as a map
   over the CCI locations (CCI, SMAP, ERA5-Land).

SMAP is used with its quality rule off (``quality="off"``): in 2017-18 the only SMAP cell over the
Big Island with recommended retrievals is not the nearest cell of any station.

    .venv/bin/python bench/bench_qa4sm_hawaii.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

CELLS = {  # name: cell folder, soil-moisture variable, flag variables
    "CCI_v08.1": ("ts_cells/ESA_CCI_SM_combined/ESA_CCI_SM_C_V08_1", "sm", ["flag"]),
    "C3S_v202505": ("ts_cells/C3S_combined/C3S_V202505/TCDR/063_images_to_ts/combined-daily", "sm", ["flag"]),
    "SMAP_V9": ("ts_cells/SMAP_L3/SMAP_V9_AM_PM/netcdf", "soil_moisture", ["retrieval_qual_flag"]),
    "ERA5_Land": ("ts_cells/ERA5_LAND/ERA5_LAND_V20190904", "swvl1", []),
}
PERIOD = ("2017-01-01", "2018-12-31")


def load(root: Path):
    from data_prep.ismn import read_ismn_folder
    from data_prep.ts_cells import read_ts_cells

    sites, obs = read_ismn_folder(root / "ISMN" / "ISMN_TESTDATA_HAWAII")
    products = {}
    for name, (folder, var, flags) in CELLS.items():
        ds = read_ts_cells(root / folder, variables=[var, *flags])
        products[name] = ds if "ssm" in ds else ds.rename({var: "ssm"})
    return sites, obs, products


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    from validation import qa4sm
    from validation.config import ValidationOptions

    pd.set_option("display.width", 160, "display.max_columns", 30)
    t0 = time.perf_counter()
    sites, obs, products = load(args.data / "qa4sm_hawaii")
    print(f"read {len(sites)} stations, {len(products)} products in {time.perf_counter() - t0:.1f} s")
    base = ValidationOptions.from_config(period=list(PERIOD))
    sats = {k: products[k] for k in ("CCI_v08.1", "C3S_v202505", "SMAP_V9")}

    def run(**kw):
        quality = kw.pop("quality", "on")
        out = [
            qa4sm.validate({k: v}, sites, obs, qa4sm.Qa4smOptions(base=base, quality=q, **kw))
            for k, v in sats.items()
            for q in [("off" if k == "SMAP_V9" else quality)]
        ]
        return pd.concat(out, ignore_index=True).set_index(["product", "site_id", "sensor"])

    t0 = time.perf_counter()
    daily = run()
    nearest_station = run(pairing="nearest", temporal_reference="station")
    nearest_product = run(pairing="nearest", temporal_reference="product")
    print(f"three pairings in {time.perf_counter() - t0:.1f} s\n")
    table = pd.DataFrame(
        {
            "n_daily": daily["n"],
            "n_near_st": nearest_station["n"],
            "n_near_pr": nearest_product["n"],
            "R_daily": daily["r"],
            "R_near_st": nearest_station["r"],
            "R_near_pr": nearest_product["r"],
        }
    )
    table = table[table["n_daily"] >= base.min_pairs]
    table["dn"] = table["n_near_st"] - table["n_daily"]
    table["dR"] = table["R_near_st"] - table["R_daily"]
    print(
        "1. pairing: daily mean (FluxLens) vs nearest within ±12 h (QA4SM); "
        "st = station, pr = product as temporal reference"
    )
    print(table.round(3).to_string())
    print(f"   max |dn| = {int(table['dn'].abs().max())}, max |dR| = {table['dR'].abs().max():.3f}\n")

    scaled = {m: run(pairing="nearest", scaling=m) for m in ("none", "mean_std", "linreg", "cdf_match")}
    frame = pd.DataFrame({"n": scaled["none"]["n"], "bias": scaled["none"]["bias"]})
    for m, res in scaled.items():
        frame[f"ubRMSD_{m}"] = res["ubrmse"]
    frame["R"] = scaled["none"]["r"]
    frame = frame[frame["n"] >= base.min_pairs]
    print(
        "2. ubRMSD (m3 m-3) as delivered and after scaling to the station (nearest pairing); "
        "bias = product - station"
    )
    print(frame.round(4).to_string(), "\n")

    t0 = time.perf_counter()
    opts = qa4sm.Qa4smOptions(base=base, quality="off")
    rows = []
    for pair in (("CCI_v08.1", "ERA5_Land"), ("SMAP_V9", "ERA5_Land")):
        tc = qa4sm.station_triple_collocation({k: products[k] for k in pair}, sites, obs, opts)
        tc.insert(0, "triplet", "ISMN+" + "+".join(pair))
        keep = ["triplet", "site_id", "sensor", "n"] + [
            f"{q}_{n}" for q in ("err_var_scaled", "snr_db") for n in ("ismn", *pair)
        ]
        rows.append(
            tc[keep].rename(columns=lambda c: c.replace("CCI_v08.1", "cci").replace("SMAP_V9", "smap"))
        )
    print("3a. triple collocation at the stations (error SD scaled to the station, m3 m-3; SNR dB; NaN where")
    print("    the error model fails: a covariance product or an error variance is not positive)")
    for tc in rows:
        shown = tc[tc["n"] >= 100].copy()
        for c in [c for c in shown.columns if c.startswith("err_var_scaled")]:
            variance = shown.pop(c)  # negative where the error model fails: shown as NaN
            shown[c.replace("err_var_scaled", "err_sd")] = np.sqrt(variance.where(variance > 0))
        print(shown.round(3).to_string(index=False))
    tmap = qa4sm.product_triple_collocation_map(
        {k: products[k] for k in ("CCI_v08.1", "SMAP_V9", "ERA5_Land")}, opts
    )
    valid = tmap["n"] >= 100
    print(
        f"\n3b. triple collocation map over {int(tmap.sizes['location'])} CCI locations "
        f"({int(valid.sum())} with >= 100 common days), in {time.perf_counter() - t0:.1f} s:"
    )
    for name in ("CCI_v08.1", "SMAP_V9", "ERA5_Land"):
        variance = tmap[f"err_var_{name}"].where(valid)
        sd = np.sqrt(variance.where(variance > 0))
        snr = tmap[f"snr_db_{name}"].where(valid)
        print(
            f"   {name:10s} error SD median {float(sd.median()):.4f} m3 m-3 "
            f"(range {float(sd.min()):.4f}-{float(sd.max()):.4f}), SNR median {float(snr.median()):.1f} dB"
        )


if __name__ == "__main__":
    main()
