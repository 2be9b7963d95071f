#!/usr/bin/env bash
# One entry point for a fresh machine:
#   bash dev.sh serve   set everything up, build the demo world and train its emulator when the
#                       data directory has no catalog (fluxlens demo; FLUXLENS_DEMO_SIZE=small for
#                       the small test world), serve the dashboard with a job worker beside it
#                       (re-predictions run from the dashboard)
#   bash dev.sh test    set everything up and run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

setup_python() {
    if [ ! -x .venv/bin/python ]; then
        "$PY" -m venv .venv
    fi
    local stamp=.setup-stamp
    local want
    want=$(cat pyproject.toml dev.sh | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        local t0=$SECONDS
        echo "dev.sh: installing FluxLens and its pinned dependencies into .venv (first run: 2-3 min)" >&2
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e ".[test]"
        # GRIB reading (cfgrib + the ecCodes wheels) lives apart, in .venv/grib, on the path of the
        # GRIB child process only: those wheels put their own OpenSSL, PROJ and LDAP into the global
        # symbol scope, and cfgrib's xarray plugin would load them into every process that lets
        # xarray guess a file's engine (see data_prep/grib.py).
        .venv/bin/python -m pip install -q --no-deps --upgrade --target .venv/grib \
            cfgrib==0.9.15.1 eccodes==2.50.0 eccodeslib==2.50.0.33 eckitlib==2.5.0.33 findlibs==0.1.3
        echo "$want" > "$stamp"
        echo "dev.sh: dependencies installed in $((SECONDS - t0)) s" >&2
    fi
}

setup_browser() {
    # Browser tests drive Debian's chromium; they skip with a reason where it is missing.
    if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            chromium fonts-dejavu-core >/dev/null) || echo "warning: chromium install failed; browser tests will skip"
    fi
}

setup_postgres() {
    # The job-queue tests start a throwaway PostgreSQL cluster; they skip with a reason without one.
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null \
        && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            postgresql >/dev/null) || echo "warning: postgresql install failed; PostgreSQL tests will skip"
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    serve)
        setup_python
        # fluxlens serve builds nothing: a data directory without a catalog gets the demo world first
        # (the same default as catalog/settings.py: $FLUXLENS_DATA_DIR, else ./fluxlens-data)
        data_dir=${FLUXLENS_DATA_DIR:-fluxlens-data}
        if [ ! -f "$data_dir/catalog.yaml" ]; then
            case "${FLUXLENS_DEMO_SIZE:-full}" in
                full) size=() ;;
                small) size=(--small) ;;
                *) echo "dev.sh: FLUXLENS_DEMO_SIZE is 'full' (default) or 'small'" >&2; exit 2 ;;
            esac
            echo "dev.sh: no catalog in $data_dir: building the demo world and its emulator (fluxlens demo ${size[*]-})" >&2
            .venv/bin/fluxlens demo ${size[@]+"${size[@]}"}
        fi
        exec .venv/bin/fluxlens serve "$@"
        ;;
    test)
        setup_python
        setup_browser
        setup_postgres
        .venv/bin/ruff check .
        # two pytest processes (pytest-xdist), each test module's fixtures in one of them;
        # FLUXLENS_TEST_WORKERS=0 runs in this process (for pdb), N for N processes
        exec .venv/bin/python -m pytest -n "${FLUXLENS_TEST_WORKERS:-2}" --dist loadscope "$@"
        ;;
    *)
        echo "usage: bash dev.sh serve|test [args]" >&2
        exit 2
        ;;
esac
