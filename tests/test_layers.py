"""The layering of docs/architecture.md, checked: the import-linter contracts of pyproject.toml hold
for the tree, and they do fail on an upward import."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("catalog", "data_prep", "models", "validation", "app", "fluxlens")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_tree_keeps_every_contract():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_a_contract(tmp_path):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    names = tmp_path / "catalog" / "names.py"
    names.write_text(names.read_text() + "\nfrom models import registry  # noqa: E402 - the violation\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "catalog imports nothing of ours BROKEN" in result.stdout
    assert "catalog.names -> models.registry" in result.stdout
