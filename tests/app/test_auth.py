"""Login settings, and a real Panel server with the options of ``fluxlens serve`` and basic auth:
guests browse, only logged-in users submit; the login form needs its XSRF token; failed logins are
rate limited per user name and per client address."""

from __future__ import annotations

import http.cookiejar
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import panel as pn
import pytest

from app import auth, security, server
from catalog.errors import InputError
from models.jobs import AccessDenied, JobStore

USERS = {"ana": "pw-ana", "ben": "pw-ben"}


# --- a real server and a cookie-keeping HTTP client (127.0.0.1 only) --------------------------


@contextmanager
def running(app, **options) -> Iterator[str]:
    """``pn.serve(app, **options)`` on a free port of 127.0.0.1, its IO loop in a thread; yields
    the base URL."""
    srv = pn.serve(app, port=0, address="127.0.0.1", show=False, start=False, threaded=False, **options)
    thread = threading.Thread(target=srv.io_loop.start, daemon=True)
    srv.start()
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.io_loop.add_callback(srv.stop)
        srv.io_loop.add_callback(srv.io_loop.stop)
        thread.join(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body
        self.text = body.decode("utf-8", "replace")

    def cookies(self) -> dict[str, str]:
        """``Set-Cookie`` values by cookie name."""
        return {v.split("=", 1)[0]: v for v in self.headers.get_all("Set-Cookie") or []}


class Client:
    """HTTP against one server with a cookie jar, redirects not followed (a 302 is a response)."""

    def __init__(self, base: str):
        assert base.startswith("http://127.0.0.1:"), base
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def request(self, path: str, form: dict | None = None, headers: dict | None = None) -> Response:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self._opener.open(req, timeout=60) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())

    def has_cookie(self, name: str) -> bool:
        return any(c.name == name for c in self.jar)

    def xsrf_token(self) -> str:
        """GET the login page (sets the ``_xsrf`` cookie) and read the token from its form."""
        page = self.request("/login")
        assert page.status == 200, page.status
        match = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert match, "login form without an _xsrf field"
        return match.group(1)

    def login(self, username: str, password: str, *, token: str | None = None) -> Response:
        form = {"username": username, "password": password, "_xsrf": token or self.xsrf_token()}
        return self.request("/login", form)


def basic_auth_env(monkeypatch, tmp_path, **extra: str) -> None:
    users = tmp_path / "users.json"
    users.write_text(json.dumps(USERS))
    monkeypatch.setenv("FLUXLENS_AUTH", "basic")
    monkeypatch.setenv("FLUXLENS_COOKIE_SECRET", "test-secret")
    monkeypatch.setenv("FLUXLENS_BASIC_AUTH", str(users))
    for name in ("FLUXLENS_LOGIN_MAX_FAILURES", "FLUXLENS_LOGIN_WINDOW", "FLUXLENS_SECURE_COOKIES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def _user_page():
    return pn.pane.Markdown(f"user {auth.current_user()}")


# --- settings ---------------------------------------------------------------------------------


def test_off_by_default(monkeypatch):
    monkeypatch.delenv("FLUXLENS_AUTH", raising=False)
    assert auth.auth_mode() == "off"
    assert auth.serve_kwargs() == {}
    assert not auth.job_service(JobStore(":memory:")).require_login


def test_basic_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("FLUXLENS_AUTH", "basic")
    monkeypatch.delenv("FLUXLENS_COOKIE_SECRET", raising=False)
    with pytest.raises(InputError, match="FLUXLENS_COOKIE_SECRET"):
        auth.serve_kwargs()
    monkeypatch.setenv("FLUXLENS_COOKIE_SECRET", "s3cret")
    monkeypatch.setenv("FLUXLENS_BASIC_AUTH", str(tmp_path / "missing.json"))
    with pytest.raises(InputError, match="no such credentials file"):
        auth.serve_kwargs()
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ana": "pw-ana"}))
    monkeypatch.setenv("FLUXLENS_BASIC_AUTH", str(users))
    monkeypatch.setenv("FLUXLENS_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("FLUXLENS_LOGIN_WINDOW", "7.5")
    kwargs = auth.serve_kwargs()
    provider = kwargs.pop("auth_provider")
    assert kwargs == {"cookie_secret": "s3cret", "oauth_optional": True}
    assert isinstance(provider, security.BasicLogin) and provider.credentials == str(users)
    assert (provider.limiter.max_failures, provider.limiter.window_s) == (3, 7.5)
    assert issubclass(provider.login_handler, security.LoginHandler)
    assert auth.login_enabled()
    monkeypatch.setenv("FLUXLENS_LOGIN_WINDOW", "soon")
    with pytest.raises(InputError, match="FLUXLENS_LOGIN_WINDOW"):
        auth.serve_kwargs()
    monkeypatch.setenv("FLUXLENS_LOGIN_WINDOW", "0")
    with pytest.raises(InputError, match="must be > 0"):
        auth.serve_kwargs()


def test_oauth_settings_and_bad_mode(monkeypatch):
    monkeypatch.setenv("FLUXLENS_AUTH", "oauth")
    monkeypatch.setenv("FLUXLENS_COOKIE_SECRET", "c")
    monkeypatch.setenv("FLUXLENS_OAUTH_PROVIDER", "github")
    monkeypatch.setenv("FLUXLENS_OAUTH_KEY", "id")
    monkeypatch.setenv("FLUXLENS_OAUTH_SECRET", "sec")
    kwargs = auth.serve_kwargs()
    assert (kwargs["oauth_provider"], kwargs["oauth_key"], kwargs["oauth_secret"]) == ("github", "id", "sec")
    monkeypatch.setenv("FLUXLENS_AUTH", "ldap")
    with pytest.raises(InputError, match="expected one of off, basic, oauth"):
        auth.auth_mode()


def test_anonymous_names():
    assert auth.is_anonymous(None) and auth.is_anonymous("guest") and auth.is_anonymous("anonymous")
    assert not auth.is_anonymous("ana")


# --- rate limiter and password check (no server) ---------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_sliding_window():
    clock = FakeClock()
    limiter = security.LoginRateLimiter(5, 60, clock=clock)
    user, addr = security.limiter_keys("ana", "10.0.0.1")
    for _ in range(5):
        assert limiter.retry_after(user, addr) == 0
        limiter.failed(user, addr)
        clock.now += 10  # failures at 1000, 1010, …, 1040
    assert clock.now == 1050
    assert limiter.retry_after(user, addr) == 10  # the first failure leaves the window at 1060
    assert limiter.retry_after(("user", "ben"), addr) == 10  # same address, other user
    assert limiter.retry_after(("user", "ana"), ("address", "10.0.0.2")) == 10  # same user, elsewhere
    assert limiter.retry_after(("user", "ben"), ("address", "10.0.0.2")) == 0
    clock.now = 1059.5
    assert limiter.retry_after(user, addr) == 1  # rounded up, never 0 while refused
    clock.now = 1060
    assert limiter.retry_after(user, addr) == 0  # one failure left the window: one more attempt
    limiter.failed(user, addr)
    assert limiter.retry_after(user, addr) == 10
    limiter.reset(user)
    assert limiter.retry_after(user, ("address", "10.0.0.3")) == 0
    assert limiter.retry_after(addr) == 10  # a login resets the user, not the address


def test_rate_limiter_memory_is_bounded():
    clock = FakeClock()
    limiter = security.LoginRateLimiter(5, 60, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.failed(("user", f"u{i}"))
        clock.now += 0.01
    assert len(limiter._failures) <= 101
    assert limiter.retry_after(("user", "u999")) == 0  # one failure of five


def test_check_password():
    assert security.check_password(USERS, "ana", "pw-ana")
    assert not security.check_password(USERS, "ana", "pw-ben")
    assert not security.check_password(USERS, "ana", "")
    assert not security.check_password(USERS, "zoe", "pw-ana")
    assert not security.check_password({"x": 1}, "x", "1")


# --- real server ------------------------------------------------------------------------------


def test_real_server_guest_browses_and_cannot_submit(monkeypatch, tmp_path):
    """Panel server with basic auth and guests allowed: a guest session gets the page but its submit
    is refused by the service; after logging in, the session user is the login name."""
    basic_auth_env(monkeypatch, tmp_path)
    store = JobStore(tmp_path / "jobs.sqlite")
    seen: list[tuple[str, bool, str]] = []

    def app():
        user = auth.current_user()
        service = auth.job_service(store)
        try:
            service.submit("repredict", {}, user)
            outcome = "accepted"
        except AccessDenied as exc:
            outcome = f"refused: {exc}"
        except InputError as exc:  # passed the login check, stopped by validation
            outcome = f"validated: {exc}"
        seen.append((user, service.require_login, outcome))
        return pn.pane.Markdown(f"user {user}")

    with running(app, **server.serve_options()) as base:
        client = Client(base)
        assert client.request("/").status == 200
        assert seen[-1][0] == "anonymous" and seen[-1][1] is True
        assert seen[-1][2] == "refused: log in to submit or cancel jobs"

        wrong = client.login("ana", "wrong")
        assert wrong.status == 302 and wrong.headers["Location"] == "/login?error=invalid"
        assert not client.has_cookie("user")
        assert "Invalid username or password!" in client.request("/login?error=invalid").text
        assert "injected" not in client.request("/login?error=injected").text  # no text from the URL

        ok = client.login("ana", "pw-ana")
        assert ok.status == 302 and client.has_cookie("user")
        assert "HttpOnly" in ok.cookies()["user"] and "SameSite=Lax" in ok.cookies()["user"]
        client.request("/")
        assert seen[-1][0] == "ana"
        assert seen[-1][2].startswith("validated:")  # ana passes the login rule
        assert store.jobs() == []  # nothing was queued by any of these sessions


def test_login_post_needs_the_xsrf_token(monkeypatch, tmp_path):
    basic_auth_env(monkeypatch, tmp_path)
    with running(_user_page, **server.serve_options()) as base:
        client = Client(base)
        page = client.request("/login")
        assert page.status == 200 and client.has_cookie("_xsrf")
        xsrf_cookie = page.cookies()["_xsrf"]
        assert "HttpOnly" in xsrf_cookie and "SameSite=Lax" in xsrf_cookie

        no_token = client.request("/login", {"username": "ana", "password": "pw-ana"})
        assert no_token.status == 403 and not client.has_cookie("user")
        assert "reload the login page" in no_token.text and "Traceback" not in no_token.text

        forged = client.login("ana", "pw-ana", token="2|00000000|" + "0" * 32 + "|1700000000")
        assert forged.status == 403 and not client.has_cookie("user")

        other = Client(base)  # a token from another visitor's page does not match this cookie
        other.request("/login")
        assert other.login("ana", "pw-ana", token=client.xsrf_token()).status == 403

        ok = client.login("ana", "pw-ana")
        assert ok.status == 302 and ok.headers["Location"] == "/" and client.has_cookie("user")


def test_failed_logins_are_rate_limited_then_allowed_after_the_wait(monkeypatch, tmp_path):
    """5 failures within the window (2 s here instead of a minute) for a user: the 6th attempt is
    429 with Retry-After, even with the right password; after the wait the right password works.
    Then 5 failures from one address across user names lock that address the same way."""
    basic_auth_env(monkeypatch, tmp_path, FLUXLENS_LOGIN_MAX_FAILURES="5", FLUXLENS_LOGIN_WINDOW="2")
    with running(_user_page, **server.serve_options()) as base:
        client = Client(base)
        token = client.xsrf_token()
        for _ in range(5):
            assert client.login("ana", "wrong", token=token).status == 302
        sixth = client.login("ana", "wrong", token=token)
        assert sixth.status == 429, sixth.status
        wait = int(sixth.headers["Retry-After"])
        assert 1 <= wait <= 2
        assert f"try again in {wait} s" in sixth.text
        assert "Content-Security-Policy" in sixth.headers
        right_but_locked = client.login("ana", "pw-ana", token=token)
        assert right_but_locked.status == 429 and not client.has_cookie("user")

        time.sleep(float(right_but_locked.headers["Retry-After"]) + 0.1)
        ok = client.login("ana", "pw-ana", token=token)
        assert ok.status == 302 and client.has_cookie("user")

        # per address: five user names (the limit per user is never reached) lock the address
        time.sleep(2.1)  # the window forgets the failures above
        names = ["u1", "u2", "u3", "u4", "u5"]
        for name in names:
            assert client.login(name, "wrong", token=token).status == 302
        locked = client.login("ben", "pw-ben", token=token)
        assert locked.status == 429 and int(locked.headers["Retry-After"]) >= 1
        time.sleep(float(locked.headers["Retry-After"]) + 0.1)
        assert client.login("ben", "pw-ben", token=token).status == 302


def test_secure_cookies_setting(monkeypatch, tmp_path):
    """``FLUXLENS_SECURE_COOKIES``: auto flags cookies Secure only over https (here: a TLS proxy's
    X-Forwarded-Proto), 1 always, 0 never; every cookie is SameSite=Lax."""
    for mode, plain, proxied in (("auto", False, True), ("1", True, True), ("0", False, False)):
        basic_auth_env(monkeypatch, tmp_path, FLUXLENS_SECURE_COOKIES=mode)
        with running(_user_page, **server.serve_options()) as base:
            for headers, secure in (({}, plain), ({"X-Forwarded-Proto": "https"}, proxied)):
                client = Client(base)  # fresh cookies: the _xsrf cookie is set only once
                cookies = client.request("/", headers=headers).cookies()
                cookies |= client.request("/login", headers=headers).cookies()
                assert {"is_guest", "_xsrf", "next_url"} <= set(cookies), cookies
                for value in cookies.values():
                    assert "SameSite=Lax" in value, value
                    assert ("Secure" in value) is secure, (mode, headers, value)
