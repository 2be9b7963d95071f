"""``fluxlens serve``: the dashboard server."""

from __future__ import annotations

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
        "--with-worker",
        action="store_true",
        help="also run a job worker (a separate process, stopped with the server) so re-predictions "
        "and retraining submitted from the dashboard run without a second command",
    )
    p.set_defaults(func=_serve)


def _serve(args) -> int:
    from app.server import serve

    serve(
        port=args.port or int(settings.current().number("PORT", 5006, int)),
        address=args.address,
        websocket_origin=args.allow_websocket_origin,
        show=args.show,
        with_worker=args.with_worker,
    )
    return 0
