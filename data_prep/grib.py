"""GRIB files decoded in a child process, handed back as netCDF.

The ecCodes wheels (eccodeslib, eckitlib) load their bundled libraries — their own OpenSSL 1.1,
PROJ, SQLite, LDAP, curl — into the process's global symbol scope. Any library loaded after that
resolves those symbols to them: pyproj then fails ("no database context"), and psycopg's libpq
crashes the process at exit (in its LDAP library's destructor). And installed beside xarray,
cfgrib's xarray plugin loads them into every process that lets xarray list or guess engines. So
cfgrib and ecCodes are installed apart, in ``<venv>/grib`` (``bash dev.sh`` does it; or set
``$FLUXLENS_GRIB_PATH``), and only a child process with that folder on its path reads the GRIB
file: it writes each of the file's datasets as netCDF (variables, coordinates and the ``GRIB_*``
attributes such as ``GRIB_stepType`` kept), and the parent opens those.

    python -m data_prep.grib IN.grib OUT_DIR     # prints the netCDF paths written, one a line
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from catalog import settings
from catalog.errors import InputError

TIMEOUT_S = 3600
ENV_GRIB_PATH = "FLUXLENS_GRIB_PATH"


def libs_path() -> Path:
    """Folder holding cfgrib and the ecCodes wheels: ``$FLUXLENS_GRIB_PATH`` or ``<venv>/grib``."""
    return Path(settings.current().text(ENV_GRIB_PATH) or Path(sys.prefix) / "grib")


def child_env() -> dict:
    """Environment of a process that may import cfgrib / eccodes."""
    path = str(libs_path())
    return settings.child_environment(
        PYTHONPATH=os.pathsep.join(filter(None, [path, settings.current().text("PYTHONPATH")]))
    )


def to_netcdf(path: str, out_dir: Path) -> list[Path]:
    """The datasets of GRIB file ``path`` as netCDF files in ``out_dir`` (decoded in a child process)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (libs_path() / "cfgrib").is_dir():
        raise InputError(
            f"{path}: GRIB support is not installed ({libs_path()} has no cfgrib); run bash dev.sh "
            f"once, or install cfgrib and eccodes with pip --target {libs_path()}"
        )
    proc = subprocess.run(
        [sys.executable, "-m", "data_prep.grib", str(path), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=Path(__file__).resolve().parents[1],
        env=child_env(),
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise InputError(f"{path}: not a readable GRIB file ({reason})")
    return [Path(p) for p in proc.stdout.split("\n") if p.strip()]


def _convert(path: str, out_dir: str) -> list[str]:
    import cfgrib

    datasets = cfgrib.open_datasets(path, backend_kwargs={"indexpath": ""})
    if not datasets:
        raise ValueError("no GRIB messages")
    written = []
    for i, ds in enumerate(datasets):
        for v in [*ds.data_vars, *ds.coords]:
            ds[v].attrs = {k: a for k, a in ds[v].attrs.items() if isinstance(a, (str, int, float))}
        ds.attrs = {k: a for k, a in ds.attrs.items() if isinstance(a, (str, int, float))}
        target = Path(out_dir) / f"{Path(path).stem}.{i}.nc"
        ds.to_netcdf(target)
        written.append(str(target))
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m data_prep.grib IN.grib OUT_DIR", file=sys.stderr)
        return 2
    try:
        written = _convert(argv[0], argv[1])
    except Exception as exc:  # noqa: BLE001 - eccodes raises many types; the parent reports it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
