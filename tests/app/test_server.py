"""``fluxlens serve`` options, the server's start-up helpers, and its web hardening against a real
``fluxlens serve`` (security headers on pages, static files, the login page and errors; cookie
flags; no tracebacks) and, in Chromium, the dashboard working under the Content-Security-Policy."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from bokeh.client import pull_session

from app import security, server
from catalog.errors import InputError
from fluxlens.cli import build_parser
from tests.app.test_auth import USERS, Client, running
from tests.browser import ServerDidNotStart, save_screenshot, serving, wait_idle


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


# --- web hardening: settings -------------------------------------------------------------------


def test_content_security_policy():
    csp = security.content_security_policy("127.0.0.1:5006", "https://tiles.example.org")
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["connect-src"] == "'self' ws://127.0.0.1:5006 wss://127.0.0.1:5006"
    assert "https://tiles.example.org" in directives["img-src"].split()
    assert "http:" not in csp and "https:" not in directives["script-src"]  # no scripts from elsewhere
    # a Host header that is not a host name is not copied into the policy
    assert "evil" not in security.content_security_policy("x; script-src evil", None)


def test_tile_source():
    osm = "https://tile.openstreetmap.org"
    assert security.tile_source(osm + "/{Z}/{X}/{Y}.png") == osm
    assert security.tile_source("https://{s}.tiles.example.org:8443/{Z}/{X}/{Y}.png") == (
        "https://*.tiles.example.org:8443"
    )
    assert security.tile_source("https://tiles-{s}.example.org/{Z}/{X}/{Y}.png") == "https:"
    assert security.tile_source("/tiles/{Z}/{X}/{Y}.png") is None  # same origin
    assert security.tile_source(None) is None and security.tile_source("") is None


def test_cookie_flags_and_settings(monkeypatch):
    assert security.with_cookie_flags("a=1; Path=/", secure=False) == "a=1; Path=/; SameSite=Lax"
    assert security.with_cookie_flags("a=1; Path=/", secure=True) == "a=1; Path=/; SameSite=Lax; Secure"
    kept = "a=1; SameSite=Strict; Secure"
    assert security.with_cookie_flags(kept, secure=True) == kept
    monkeypatch.delenv(security.ENV_SECURE_COOKIES, raising=False)
    assert security.secure_cookies_mode() == "auto"
    for value, mode in (("1", "always"), ("true", "always"), ("0", "never"), ("AUTO", "auto")):
        monkeypatch.setenv(security.ENV_SECURE_COOKIES, value)
        assert security.secure_cookies_mode() == mode
    monkeypatch.setenv(security.ENV_SECURE_COOKIES, "sometimes")
    with pytest.raises(InputError, match="FLUXLENS_SECURE_COOKIES"):
        security.server_settings()
    monkeypatch.delenv(security.ENV_SECURE_COOKIES)
    monkeypatch.setenv(security.ENV_TRUST_PROXY, "1")
    options = security.server_settings()
    assert options["use_xheaders"] is True and options["serve_traceback"] is False and not options["debug"]


# --- web hardening: a real ``fluxlens serve`` --------------------------------------------------

HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


def _assert_hardened(response) -> None:
    for name in HEADERS:
        assert response.headers.get(name), f"{name} missing (status {response.status})"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text and "site-packages" not in text, text[:2000]


@pytest.fixture(scope="module")
def login_server(demo_world, tmp_path_factory):
    """``fluxlens serve`` with basic auth on a hard-link copy of the small demo world; ``base`` is
    its http://127.0.0.1 URL, ``users`` the credentials file."""
    base = tmp_path_factory.mktemp("login-server")
    data_dir = base / "fluxlens-data"
    shutil.copytree(demo_world, data_dir, copy_function=os.link)
    users = base / "users.json"
    users.write_text(json.dumps(USERS))
    env = dict(
        os.environ,
        FLUXLENS_DATA_DIR=str(data_dir),
        FLUXLENS_VALIDATION_CACHE=str(base / "cache"),
        FLUXLENS_AUTH="basic",
        FLUXLENS_BASIC_AUTH=str(users),
        FLUXLENS_COOKIE_SECRET="serve-test-secret",
        FLUXLENS_SECURE_COOKIES="auto",
    )
    try:
        with serving(env, base / "serve.log", timeout_s=300) as url:
            yield {"base": url.replace("localhost", "127.0.0.1"), "users": users}
    except ServerDidNotStart as exc:
        pytest.fail(str(exc), pytrace=False)


def test_served_pages_static_files_and_errors_carry_the_security_headers(login_server):
    client = Client(login_server["base"])
    page = client.request("/app")
    assert page.status == 200 and "Bokeh" in page.text
    _assert_hardened(page)
    csp = page.headers["Content-Security-Policy"]
    assert f"ws://{login_server['base'].split('//')[1]}" in csp  # the page's websocket is allowed
    assert "https://tile.openstreetmap.org" in csp  # the default basemap tiles
    scripts = re.findall(r'src="\.?/?(static/[^"?]+)', page.text)[:3]
    assert scripts
    for path in [*scripts, "static/extensions/panel/images/logo_stacked.png"]:
        static = client.request("/" + path)
        assert static.status == 200, path
        _assert_hardened(static)
    for path in ("/login", "/logout", "/favicon.ico", "/no-such-page"):
        response = client.request(path)
        assert response.status in (200, 404), (path, response.status)
        _assert_hardened(response)
        _no_traceback(response.text)
    login_page = client.request("/login").text
    assert 'name="_xsrf"' in login_page
    assert "cdn.holoviz.org" not in login_page  # Panel's images from this server: offline, under the CSP
    redirect = client.request("/")
    assert redirect.status in (301, 302) and redirect.headers.get("Content-Security-Policy")


def test_served_cookie_flags_and_login(login_server):
    client = Client(login_server["base"])
    guest = client.request("/app").cookies()["is_guest"]
    assert "SameSite=Lax" in guest and "Secure" not in guest  # plain http
    behind_tls = Client(login_server["base"]).request("/app", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_tls.cookies()["is_guest"] and "SameSite=Lax" in behind_tls.cookies()["is_guest"]

    assert client.request("/login", {"username": "ana", "password": "pw-ana"}).status == 403  # no token
    ok = client.login("ana", "pw-ana")
    assert ok.status == 302 and client.has_cookie("user")
    _assert_hardened(ok)
    for name in ("user", "id_token"):
        assert {"HttpOnly", "SameSite=Lax"} <= {p.strip() for p in ok.cookies()[name].split(";")}, name
    logout = client.request("/logout")
    assert logout.status == 200 and "cdn.holoviz.org" not in logout.text
    assert "SameSite=Lax" in logout.cookies()["user"] and not client.has_cookie("user")


def test_served_error_page_has_no_traceback(login_server):
    """An unreadable credentials file makes the login fail on the server: the visitor gets a short
    500 page with the security headers, the traceback stays in the server's log."""
    users = login_server["users"]
    saved = users.read_text()
    users.write_text("{not json")
    try:
        client = Client(login_server["base"])
        response = client.login("ana", "pw-ana")
    finally:
        users.write_text(saved)
    assert response.status == 500
    _assert_hardened(response)
    _no_traceback(response.text)
    assert client.login("ana", "pw-ana").status == 302


def test_a_failing_page_shows_a_message_not_the_traceback(monkeypatch):
    monkeypatch.delenv("FLUXLENS_AUTH", raising=False)

    def broken():
        raise ZeroDivisionError("secret detail of the failure")

    with running(server.safe_page(broken), **server.serve_options()) as base:
        page = Client(base).request("/")
        session = pull_session(url=base + "/")  # the document goes to the browser over the websocket
        try:
            document = json.dumps(session.document.to_json(), default=str)
        finally:
            session.close()
    assert page.status == 200
    _assert_hardened(page)
    assert server.PAGE_FAILED.split(";")[0] in document
    for text in (page.text, document):
        assert "secret detail" not in text and "ZeroDivisionError" not in text
        _no_traceback(text)


# --- the dashboard under the policy, in Chromium ----------------------------------------------

CSP_LISTENER = """document.addEventListener('securitypolicyviolation', e => console.error(
  'CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI
  + ' at ' + e.sourceFile + ':' + e.lineNumber))"""
MAP_IMAGE = """() => { const m = Bokeh.documents[0].get_model_by_name('main_map');
  const img = m.renderers.find(r => r.glyph && r.glyph.type === 'Image').data_source.data.image[0];
  let finite = 0; for (let i = 0; i < img.length; i++) { if (Number.isFinite(img[i])) finite++; }
  return finite; }"""


@pytest.mark.browser
@pytest.mark.slow
def test_dashboard_renders_under_the_csp_without_violations(demo_server, browser_page):
    """The served dashboard in Chromium with the Content-Security-Policy on: the map draws, the
    lon/lat hover (CustomJS, compiled in the browser) shows, another tab opens; any CSP violation
    or console error fails the test (``browser_page``)."""
    page, errors = browser_page
    page.add_init_script(CSP_LISTENER)
    response = page.goto(demo_server["url"])
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    try:
        wait_idle(page)
        page.get_by_text("pyramid level").first.wait_for(state="visible", timeout=60_000)
        page.wait_for_function(f"({MAP_IMAGE})() > 1000", timeout=60_000)
        boxes = (c.bounding_box() for c in page.locator("canvas").all())
        canvases = [b for b in boxes if b and b["width"] > 100]
        box = max(canvases, key=lambda b: b["width"] * b["height"])
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
        page.get_by_text("lon:").first.wait_for(state="visible", timeout=30_000)
        page.locator(".bk-tab", has_text="Validation").first.click()
        wait_idle(page)
        page.get_by_text("Scoreboard", exact=True).first.wait_for(state="visible", timeout=60_000)
        page.wait_for_timeout(500)
        save_screenshot(page, "csp_dashboard")
    except BaseException:
        save_screenshot(page, "csp_failure")
        raise
    assert not [e for e in errors if "Content Security Policy" in e or "CSP violation" in e], errors
