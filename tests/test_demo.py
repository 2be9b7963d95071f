"""``fluxlens demo`` (``fluxlens/demo.py``): the demo world and its emulator, built by the command,
never by the server; ``fluxlens serve`` on a data directory without a catalog refuses in one line."""

from __future__ import annotations

import subprocess

import pytest

from catalog import api
from fluxlens import cli, demo
from models import registry
from tests.test_cli import fluxlens_command


@pytest.mark.slow
def test_demo_small_builds_the_world_and_trains_its_emulator(data_dir, capsys):
    """``fluxlens demo --small``: progress on stderr, a trained emulator, a catalog intake opens."""
    import intake

    assert cli.main(["demo", "--small"]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "gssm1km_demo  (synthetic)" in out and "fluxnet_demo  (synthetic)" in out
    cat = intake.from_yaml_file(str(data_dir / "catalog.yaml"))
    assert {"gssm1km_demo", "fluxes_demo", "fluxnet_demo.sites", "ismn_demo.observations"} <= set(cat.entries)
    for name, entry in cat.entries.items():
        assert entry.metadata["synthetic"] is True, name
        assert len(cat[name].read()) > 0
    assert all(p.synthetic for p in api.list_products())
    steps = [line for line in err.splitlines() if line.startswith("fluxlens demo: [")]  # progress
    assert any("world simulated" in s for s in steps) and any("towers written" in s for s in steps)
    assert "trained in" in steps[-1] and len(steps) >= 8
    (version,) = [v["version"] for v in registry.list_versions()]
    assert f"demo emulator {version} trained on fluxnet_demo" in out
    settings = registry.read_meta(version)["settings"]
    assert settings["sites_source"] == "fluxnet_demo" and settings["n_folds"] == 3
    assert settings["num_boost_round"] == demo.DEMO_MODEL_ROUNDS[True]
    assert {"gssm1km_demo", "fluxes_demo"} <= {p.name for p in api.list_products()}
    assert (data_dir / "catalog.yaml").is_file()


def test_serve_without_a_catalog_builds_nothing_and_says_what_to_run(tmp_path):
    data_dir = tmp_path / "fluxlens-data"
    result = subprocess.run(
        fluxlens_command("--data-dir", str(data_dir), "serve", "--port", "0"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"fluxlens serve: error: no catalog in {data_dir}")
    assert "fluxlens demo" in lines[0]
    assert not data_dir.exists()  # nothing built, not even the folder
