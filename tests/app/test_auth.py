"""Login settings, and a real Panel server with basic auth: guests browse, only logged-in users submit."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.parse
import urllib.request

import panel as pn
import pytest

from app import auth
from catalog.errors import InputError
from models.jobs import AccessDenied, JobStore


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
    assert auth.serve_kwargs() == {
        "cookie_secret": "s3cret",
        "oauth_optional": True,
        "basic_auth": str(users),
    }
    assert auth.login_enabled()


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


def test_real_server_guest_browses_and_cannot_submit(monkeypatch, tmp_path):
    """Panel server with basic auth and guests allowed: a guest session gets the page but its submit
    is refused by the service; after logging in, the session user is the login name."""
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ana": "pw-ana"}))
    monkeypatch.setenv("FLUXLENS_AUTH", "basic")
    monkeypatch.setenv("FLUXLENS_COOKIE_SECRET", "test-secret")
    monkeypatch.setenv("FLUXLENS_BASIC_AUTH", str(users))
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

    server = pn.serve(app, port=0, show=False, start=False, threaded=False, **auth.serve_kwargs())
    import threading

    thread = threading.Thread(target=server.io_loop.start, daemon=True)
    server.start()
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        assert opener.open(base + "/", timeout=30).status == 200
        assert seen[-1][0] == "anonymous" and seen[-1][1] is True
        assert seen[-1][2] == "refused: log in to submit or cancel jobs"

        form = urllib.parse.urlencode({"username": "ana", "password": "wrong"}).encode()
        opener.open(base + "/login", data=form, timeout=30)
        assert not any(c.name == "user" for c in jar)

        form = urllib.parse.urlencode({"username": "ana", "password": "pw-ana"}).encode()
        opener.open(base + "/login", data=form, timeout=30)
        assert any(c.name == "user" for c in jar)
        opener.open(base + "/", timeout=30)
        assert seen[-1][0] == "ana"
        assert seen[-1][2].startswith("validated:")  # ana passes the login rule
        assert store.jobs() == []  # nothing was queued by any of these sessions
    finally:
        server.io_loop.add_callback(server.stop)
        server.io_loop.add_callback(server.io_loop.stop)
        thread.join(timeout=10)
