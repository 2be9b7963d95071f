"""``fluxlens serve`` options and the server's start-up helpers."""

from __future__ import annotations

from app import server
from fluxlens.cli import build_parser


def test_serve_options_parse():
    args = build_parser().parse_args(
        ["serve", "--port", "8080", "--address", "0.0.0.0", "--allow-websocket-origin", "example.org"]
    )
    assert args.port == 8080 and args.address == "0.0.0.0"
    assert args.allow_websocket_origin == ["example.org"]


def test_websocket_origins_option_env_default(monkeypatch):
    monkeypatch.delenv(server.ENV_WEBSOCKET_ORIGIN, raising=False)
    assert server.websocket_origins(None, 5006) == ["localhost:5006", "127.0.0.1:5006"]
    monkeypatch.setenv(server.ENV_WEBSOCKET_ORIGIN, "a.example.org, b.example.org:443")
    assert server.websocket_origins(None, 5006) == ["a.example.org", "b.example.org:443"]
    assert server.websocket_origins(["c.org"], 5006) == ["c.org"]


def test_has_catalog(tmp_path):
    assert not server.has_catalog(tmp_path)
    (tmp_path / "catalog.yaml").write_text("{}")
    assert server.has_catalog(tmp_path)


def test_warm_up_compiles_the_raster_kernels():
    assert server.warm_up() >= 0
