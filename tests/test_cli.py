"""The ``fluxlens`` command as a whole: exit codes, one-line errors, closed pipes, full disks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxlens import cli

SCRIPT = Path(sys.executable).with_name("fluxlens")


def fluxlens_command(*args: str) -> list[str]:
    """The installed console script (as users run it), else the module."""
    if SCRIPT.exists():
        return [str(SCRIPT), *args]
    return [sys.executable, "-m", "fluxlens.cli", *args]


def _cube(n_time, n_lat, n_lon, seed=0):
    rng = np.random.default_rng(seed)
    return xr.DataArray(
        rng.uniform(0.05, 0.45, (n_time, n_lat, n_lon)).astype(np.float32),
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range("2018-07-01", periods=n_time),
            "lat": 40.0 - (np.arange(n_lat) + 0.5) * 0.01,
            "lon": -100.0 + (np.arange(n_lon) + 0.5) * 0.01,
        },
    )


def test_help_documents_exit_codes_and_tracebacks(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in ("exit status", "internal error", "-v", "141", "the output pipe was closed"):
        assert text in out


def test_closed_pipe_ends_quietly(data_dir):
    """``fluxlens catalog`` whose reader has gone: no BrokenPipeError traceback, exit 141."""
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir))
    proc = subprocess.Popen(
        fluxlens_command("catalog"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()  # the reader goes away before the command writes anything
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err
    assert err == ""


def test_catalog_piped_into_head(data_dir):
    env = dict(os.environ, FLUXLENS_DATA_DIR=str(data_dir))
    command = " ".join(f"'{c}'" for c in fluxlens_command("catalog")) + " | head -1"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout == f"catalog: {data_dir / 'catalog.yaml'}\n"
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_internal_error_is_one_line_with_the_traceback_in_a_log(data_dir, monkeypatch, capsys):
    from data_prep import commands

    def broken(args):
        raise ZeroDivisionError("boom in the catalog listing")

    monkeypatch.setattr(commands, "run_catalog", broken)
    assert cli.main(["catalog"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    prefix = "fluxlens catalog: internal error: ZeroDivisionError: boom in the catalog listing (traceback in "
    assert err.startswith(prefix) and err.endswith(", or rerun as fluxlens -v catalog ...)\n")
    log = Path(err[len(prefix) :].split(",")[0])
    try:
        text = log.read_text()
        assert text.startswith("fluxlens catalog\n") and "Traceback" in text
        assert "ZeroDivisionError: boom in the catalog listing" in text
        assert "in broken" in text
    finally:
        log.unlink(missing_ok=True)

    assert cli.main(["-v", "catalog"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in broken" in err
    assert err.rstrip().endswith("ZeroDivisionError: boom in the catalog listing (traceback above)")


def test_too_long_data_dir_exits_2(tmp_path, capsys):
    long_dir = tmp_path / ("d" * 300)
    assert cli.main(["--data-dir", str(long_dir), "catalog"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fluxlens catalog: error: path or file name too long: ")
    assert "longest name 300 bytes" in err and "Traceback" not in err


@pytest.fixture
def full_disk(tmp_path):
    """A real 2 MiB tmpfs (needs root and mount); skips with the reason where it cannot be mounted."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to create a small filesystem")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 2 MiB tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_ingest_into_a_full_disk(full_disk, tmp_path, monkeypatch, capsys):
    from data_prep.gssm import write_gssm_geotiff

    tif = write_gssm_geotiff(tmp_path / "six_days.tif", _cube(6, 400, 500))
    assert tif.stat().st_size > 1.5 * 2**20
    data_dir = full_disk / "data"
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(data_dir))
    assert cli.main(["ingest", "gssm", str(tif), "--name", "big"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fluxlens ingest: error: product 'big': the disk holding {data_dir} is full (")
    assert "MiB free; this write needs up to about" in err and "nothing was changed" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not list((data_dir / "products").iterdir())


def test_demo_into_a_full_disk(full_disk, capsys):
    """The demo writes its raw GeoTIFFs outside the store: GDAL reports only 'Write error'."""
    data_dir = full_disk / "demo"
    assert cli.main(["--data-dir", str(data_dir), "demo", "--small"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(lines)
    assert lines[-1].startswith("fluxlens demo: error: no space left on the device: cannot write ")
    assert "MiB free on that filesystem" in lines[-1] and "needs up to about" in lines[-1]
    assert not list(full_disk.rglob("*.part"))


def test_validate_output_on_a_full_disk(full_disk, demo_world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLUXLENS_DATA_DIR", str(demo_world))
    monkeypatch.setenv("FLUXLENS_VALIDATION_CACHE", str(tmp_path / "cache"))
    filler = full_disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    out = full_disk / "metrics.csv"
    argv = ["validate", "--product", "fluxes_demo", "--variable", "le", "--network", "fluxnet_demo"]
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fluxlens validate: error: no space left on the device: cannot write {out} (")
    assert "MiB free on that filesystem" in err and "Traceback" not in err
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no partial file left behind


def _help_texts(parser) -> list[str]:
    import argparse

    out = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.extend(_help_texts(sub))
    return out


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "FluxLens: explore and validate" in top
    texts = _help_texts(cli.build_parser())
    assert len(texts) > 15  # every command and subcommand
    for text in texts:
        assert "`" not in text and ":func:" not in text and ":mod:" not in text, text[:200]
    assert cli.plain_text("see :func:`a.b` and ``c`` or `d`") == "see a.b and c or d"


def test_logs_plain_warnings_only_labelled_as_warnings(capsys):
    import logging

    log = logging.getLogger("models.something")
    cli.setup_logging("train")
    log.info("routine step")
    log.warning("a real warning")
    err = capsys.readouterr().err
    assert err == "fluxlens train: warning: a real warning\n"  # a batch command: INFO not shown
    cli.setup_logging("worker")  # a service: its INFO records are the record of what it did
    log.info("job 3 claimed")
    logging.getLogger("bokeh.server").info("third-party chatter")
    assert capsys.readouterr().err == "fluxlens worker: job 3 claimed\n"
    cli.setup_logging("train", verbose=True)
    log.info("routine step")
    assert "INFO models.something: routine step" in capsys.readouterr().err
    assert sum(getattr(h, "fluxlens", False) for h in logging.getLogger().handlers) == 1
    cli.setup_logging("catalog")
