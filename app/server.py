"""Start the dashboard server on a data directory that has a catalog (``fluxlens demo`` or
``fluxlens ingest`` make one; the server builds nothing), warm datashader, serve
:func:`app.dashboard.create_dashboard` with the login settings of :mod:`app.auth` and the web
hardening of :mod:`app.security` (security headers and cookie flags on every response, no
tracebacks in pages)."""

from __future__ import annotations

import gc
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import xarray as xr

from catalog import settings
from catalog.errors import InputError

log = logging.getLogger("app")

ENV_WEBSOCKET_ORIGIN = "FLUXLENS_WEBSOCKET_ORIGIN"


def has_catalog(data_dir) -> bool:
    return (settings.data_dir(data_dir) / "catalog.yaml").is_file()


def require_catalog() -> None:
    """:class:`InputError` (one line, exit code 2 in ``fluxlens serve``) when the data directory has no
    catalog: the web process never builds the demo world or trains a model."""
    d = settings.data_dir()
    if not has_catalog(d):
        raise InputError(
            f"no catalog in {d}: build the demo world with `fluxlens demo` (or ingest data with "
            "`fluxlens ingest`), or point $FLUXLENS_DATA_DIR / --data-dir at a data directory"
        )


def warm_up() -> float:
    """Compile datashader's raster kernels (first call takes seconds) on a small synthetic grid;
    returns the time spent."""
    from app import compute

    t0 = time.perf_counter()
    lat = np.arange(89.5, -90, -1.0)
    lon = np.arange(-179.5, 180, 1.0)
    values = np.cos(np.deg2rad(lat))[:, None] * np.ones(lon.size, dtype="float32")
    da = xr.DataArray(values.astype("float32"), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    compute.rasterize_to_screen(da, (-180, 180), (-90, 90), 200, 100)  # downsample path
    compute.rasterize_to_screen(da, (-10, 10), (-5, 5), 200, 100)  # upsample path
    return time.perf_counter() - t0


def websocket_origins(option: list[str] | None, port: int) -> list[str]:
    """Allowed websocket origins: the option, else ``$FLUXLENS_WEBSOCKET_ORIGIN`` (comma separated),
    else localhost on the port."""
    values = list(option or [])
    if not values:
        values = [v.strip() for v in settings.current().text(ENV_WEBSOCKET_ORIGIN).split(",") if v.strip()]
    return values or [f"localhost:{port}", f"127.0.0.1:{port}"]


def serve_options() -> dict:
    """``pn.serve`` keyword arguments of ``fluxlens serve`` besides the apps and the address:
    :func:`app.security.server_settings` and :func:`app.auth.serve_kwargs`."""
    from app import auth, security

    return security.server_settings() | auth.serve_kwargs()


PAGE_FAILED = "The dashboard could not be built for this visit; the error is in the server's log."


def safe_page(factory: Callable):
    """``factory`` for ``pn.serve``, except that an exception building a session's page is logged
    with its traceback and the visitor sees a short error instead (Panel would put the traceback
    into the page)."""
    import panel as pn

    def page():
        try:
            return factory()
        except Exception:
            log.exception("building the dashboard page failed")
            return pn.pane.Alert(PAGE_FAILED, alert_type="danger")

    page.__name__ = getattr(factory, "__name__", "page")
    return page


class Shutdown:
    """SIGTERM / SIGINT of ``fluxlens serve``. A Python signal handler must not raise: one that ran
    while the main thread was inside a C callback (numba's compiler during the warm-up) had its
    ``SystemExit`` printed and ignored, and the server never stopped. The handler only records the
    request, asks the worker to finish its current job, and stops the IOLoop once one runs; the
    start-up steps check :attr:`requested` between them."""

    def __init__(self) -> None:
        self.requested = False
        self.workers: list[subprocess.Popen] = []
        self.server = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_signal)

    def on_signal(self, signum, _frame) -> None:
        log.info("signal %d: stopping the server and its %d job worker(s)", signum, len(self.workers))
        self.requested = True
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()  # the worker finishes its current job, then exits
        if self.server is not None:
            self.server.io_loop.asyncio_loop.call_soon_threadsafe(self.server.io_loop.stop)

    def run(self, server) -> None:
        """Start ``server`` (a bokeh ``Server`` not yet started) and run its IOLoop until a signal."""
        self.server = server
        self.install()  # pn.serve puts its own SIGINT handler in place
        if self.requested:
            return
        server.start()
        server.io_loop.start()


def start_worker() -> subprocess.Popen:
    """A ``fluxlens worker`` child process on the same data directory and job database
    (``fluxlens serve --workers N``: the one-command setup runs jobs too; jobs still never run in the
    web process). :func:`stop_worker` ends it."""
    command = [sys.executable, "-m", "fluxlens.cli", "worker"]
    proc = subprocess.Popen(command, env=settings.child_environment())
    log.info("job worker started (pid %d)", proc.pid)
    return proc


def stop_worker(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Ask the worker to stop after its current job; kill it after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("job worker %d still running after %.0f s: killed", proc.pid, timeout)
        proc.kill()
        proc.wait()


def _progress():
    """``say(text)``: one start-up step on stderr with the time since the start."""
    t0 = time.perf_counter()

    def say(text: str) -> None:
        print(f"fluxlens serve: [{time.perf_counter() - t0:6.1f} s] {text}", file=sys.stderr, flush=True)

    return say


def serve(
    *, port: int = 5006, address: str | None = None, websocket_origin=None, show=False, workers: int = 1
):  # fmt: skip
    """Serve the dashboard until interrupted, with ``workers`` job worker processes beside it
    (0: none, where workers run apart, e.g. the Procfile's ``worker`` process)."""
    import panel as pn

    from app import auth, dashboard

    require_catalog()
    options = serve_options()  # bad login or security settings fail before the slow start-up
    shutdown = Shutdown()
    shutdown.install()
    shutdown.workers = [start_worker() for _ in range(workers)]
    say = _progress()
    try:
        say(f"{workers} job worker(s) started; warming up datashader")
        say(f"datashader warmed up ({warm_up():.1f} s); building the dashboard once")
        auth.apply_to_config()
        dashboard._load_extensions()
        t0 = time.perf_counter()
        try:  # imports every tab and opens the default product once, so the first visitor waits less
            dashboard.create_dashboard()
        except Exception:
            log.exception("dashboard warm-up failed")
        # The imports and the warm-up leave ~600 k long-lived objects; frozen, the collector's full
        # passes no longer scan them (such a pass stalled a page build for 0.3 s every few visits).
        gc.collect()
        gc.freeze()
        say(f"dashboard built ({time.perf_counter() - t0:.1f} s); serving http://localhost:{port}/app")
        if shutdown.requested:
            return
        server = pn.serve(
            {"app": safe_page(dashboard.create_dashboard)},
            port=port,
            address=address,
            websocket_origin=websocket_origins(websocket_origin, port),
            show=show,
            title=dashboard.TITLE,
            index="app",
            start=False,
            **options,
        )
        shutdown.run(server)
    finally:
        for worker in shutdown.workers:
            stop_worker(worker)
