"""``fluxlens serve``: the dashboard server."""

from __future__ import annotations

import argparse

from catalog import settings


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the dashboard of the data directory's catalog (make one with `fluxlens demo`)",
    )
    p.add_argument("--port", type=int, default=None, help="port (default $PORT or 5006)")
    p.add_argument("--address", default=None, help="address to listen on (e.g. 0.0.0.0)")
    p.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=None,
        metavar="HOST[:PORT]",
        help="allowed websocket origin, repeatable (default: $FLUXLENS_WEBSOCKET_ORIGIN or localhost)",
    )
    p.add_argument("--show", action="store_true", help="open a browser")
    p.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        metavar="N",
        help="job worker processes run beside the server and stopped with it, so re-predictions and "
        "retraining submitted from the dashboard run (default 1; 0 where workers run apart, e.g. "
        "the Procfile's worker process)",
    )
    p.set_defaults(func=_serve)


def _worker_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 16:
        raise argparse.ArgumentTypeError(f"--workers {text!r}: a whole number from 0 to 16")
    return n


def _serve(args) -> int:
    from app.server import serve

    serve(
        port=args.port or int(settings.current().number("PORT", 5006, int)),
        address=args.address,
        websocket_origin=args.allow_websocket_origin,
        show=args.show,
        workers=args.workers,
    )
    return 0
