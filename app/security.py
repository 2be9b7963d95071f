"""Web hardening of ``fluxlens serve``: security headers and cookie flags on every response, a
login form with an XSRF token and a rate limit on failed logins, and no tracebacks in responses.

Every HTTP response the tornado application writes passes :class:`SecurityHeaders` (a tornado
output transform, installed by :func:`server_settings`): it adds Content-Security-Policy,
X-Frame-Options, X-Content-Type-Options and Referrer-Policy, and gives each ``Set-Cookie``
``SameSite=Lax`` (and ``Secure`` when the request came over https, see
:func:`cookies_secure`). The policy allows what Bokeh and Panel pages need: inline scripts and
styles (the document is embedded in the page), ``eval`` (Bokeh compiles ``CustomJS`` code), blob
workers and images, and images from the basemap's tile server; everything else only from the
page's own origin, and no framing by other sites.

Basic-auth login goes through :class:`LoginHandler` (via :class:`BasicLogin`, the auth provider
``app.auth.serve_kwargs()`` hands to ``pn.serve``): the form carries tornado's XSRF token (a POST
without it gets 403), passwords are compared in constant time, and after
``$FLUXLENS_LOGIN_MAX_FAILURES`` failed logins within ``$FLUXLENS_LOGIN_WINDOW`` seconds for a user
name or from a client address, further attempts get 429 with ``Retry-After`` until the oldest
failure leaves the window.

Settings (environment):

- ``FLUXLENS_SECURE_COOKIES``: ``auto`` (default; Secure when the request is https, directly or by
  a TLS proxy's ``X-Forwarded-Proto``), ``1`` always, ``0`` never;
- ``FLUXLENS_LOGIN_MAX_FAILURES``: failed logins allowed per user name and per client address
  within the window (default 5); ``FLUXLENS_LOGIN_WINDOW``: the window in seconds (default 60);
- ``FLUXLENS_TRUST_PROXY=1``: behind a reverse proxy, take the client address and scheme from
  ``X-Forwarded-For`` / ``X-Real-Ip`` and ``X-Forwarded-Proto`` (tornado's ``xheaders``).
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import tornado.escape
from panel.auth import BasicAuthProvider, BasicLoginHandler, LogoutHandler, _validate_next_url
from panel.config import config as pn_config
from panel.io.resources import BASIC_LOGIN_TEMPLATE, LOCAL_DIST, LOGOUT_TEMPLATE
from panel.io.state import state as pn_state
from tornado import httputil
from tornado.web import HTTPError, OutputTransform

from catalog import settings
from catalog.errors import InputError

log = logging.getLogger("app.security")

ENV_SECURE_COOKIES = "FLUXLENS_SECURE_COOKIES"
ENV_LOGIN_MAX_FAILURES = "FLUXLENS_LOGIN_MAX_FAILURES"
ENV_LOGIN_WINDOW = "FLUXLENS_LOGIN_WINDOW"
ENV_TRUST_PROXY = "FLUXLENS_TRUST_PROXY"
DEFAULT_LOGIN_MAX_FAILURES = 5
DEFAULT_LOGIN_WINDOW_S = 60.0

FRAME_OPTIONS = "DENY"
REFERRER_POLICY = "same-origin"
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$")


# --- settings -------------------------------------------------------------------------------


def secure_cookies_mode() -> str:
    """``auto``, ``always`` or ``never``, from ``$FLUXLENS_SECURE_COOKIES`` (auto, 1 or 0)."""
    if settings.current().text(ENV_SECURE_COOKIES, "auto").lower() == "auto":
        return "auto"
    return "always" if settings.current().flag(ENV_SECURE_COOKIES, False) else "never"


def trust_proxy() -> bool:
    return settings.current().flag(ENV_TRUST_PROXY, False)


def login_limits() -> tuple[int, float]:
    """(failures allowed, window in seconds) from the environment."""
    return (
        int(settings.current().number(ENV_LOGIN_MAX_FAILURES, DEFAULT_LOGIN_MAX_FAILURES, int)),
        float(settings.current().number(ENV_LOGIN_WINDOW, DEFAULT_LOGIN_WINDOW_S, float)),
    )


# --- headers and cookies --------------------------------------------------------------------


def tile_source(url: str | None) -> str | None:
    """The CSP source expression for the basemap tile URL template (None: same origin or none).
    A template label such as ``{s}.tile.example.org`` becomes ``*.tile.example.org``; a template
    elsewhere in the host falls back to the scheme."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    if "{" in host:
        first, _, rest = host.partition(".")
        if re.fullmatch(r"\{[^{}]*\}", first) and rest and "{" not in rest:
            host = f"*.{rest}"
        else:
            return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}"


def content_security_policy(host: str | None = None, tiles: str | None = None) -> str:
    """The Content-Security-Policy for a page served to ``host`` (the request's Host: the
    websocket goes back to it), with images allowed from the tile source ``tiles``."""
    connect = ["'self'"]
    if host and _HOST_RE.match(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    images = ["'self'", "data:", "blob:"] + ([tiles] if tiles else [])
    directives = {
        "default-src": ["'self'"],
        # Bokeh embeds the document and its start-up in inline scripts and compiles CustomJS
        # (the map's lon/lat hover) with new Function; Panel's ESM components load blob modules.
        "script-src": ["'self'", "'unsafe-inline'", "'unsafe-eval'", "blob:"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": images,
        "font-src": ["'self'", "data:"],
        "connect-src": connect,
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(host: str | None = None, tiles: str | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(host, tiles),
        "X-Frame-Options": FRAME_OPTIONS,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": REFERRER_POLICY,
    }


def request_is_https(request: httputil.HTTPServerRequest) -> bool:
    """The request reached us over https, directly or through a TLS proxy (``X-Forwarded-Proto``)."""
    if request.protocol == "https":
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return forwarded == "https"


def cookies_secure(mode: str, request: httputil.HTTPServerRequest) -> bool:
    return mode == "always" or (mode == "auto" and request_is_https(request))


def with_cookie_flags(set_cookie: str, *, secure: bool) -> str:
    """A ``Set-Cookie`` value with ``SameSite=Lax`` (unless it names a SameSite) and ``Secure``
    (when ``secure`` and not already there)."""
    attributes = {part.split("=", 1)[0].strip().lower() for part in set_cookie.split(";")[1:]}
    if "samesite" not in attributes:
        set_cookie += "; SameSite=Lax"
    if secure and "secure" not in attributes:
        set_cookie += "; Secure"
    return set_cookie


class _CookieFlagHeaders(httputil.HTTPHeaders):
    """Response headers that flag every ``Set-Cookie`` added to them. Tornado writes a handler's
    cookies into its headers after the output transforms ran, so the transform hands back this
    object and sees them arrive."""

    def __init__(self, headers: httputil.HTTPHeaders, *, secure: bool) -> None:
        self._secure = secure
        super().__init__()
        for name, value in headers.get_all():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        if name.lower() == "set-cookie":
            value = with_cookie_flags(value, secure=self._secure)
        super().add(name, value)

    def __setitem__(self, name: str, value: str) -> None:
        if name.lower() == "set-cookie":
            value = with_cookie_flags(value, secure=self._secure)
        super().__setitem__(name, value)


class SecurityHeaders(OutputTransform):
    """Output transform adding the security headers and cookie flags to every response; the
    class attributes are set by :func:`security_transform`."""

    tiles: str | None = None
    cookie_mode: str = "auto"

    def __init__(self, request: httputil.HTTPServerRequest) -> None:
        self.request = request

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        for name, value in security_headers(self.request.host, self.tiles).items():
            if name not in headers:
                headers[name] = value
        secure = cookies_secure(self.cookie_mode, self.request)
        return status_code, _CookieFlagHeaders(headers, secure=secure), chunk


def security_transform(*, tiles: str | None = None, cookie_mode: str | None = None) -> type:
    """A :class:`SecurityHeaders` subclass for this deployment's tile server and cookie mode."""
    return type(
        "FluxLensSecurityHeaders",
        (SecurityHeaders,),
        {"tiles": tiles, "cookie_mode": cookie_mode or secure_cookies_mode()},
    )


def server_settings() -> dict:
    """Keyword arguments for ``pn.serve`` (passed on to the Bokeh server and tornado): the security
    headers, no debug mode and no tracebacks in error pages, an HttpOnly XSRF cookie, and
    ``use_xheaders`` when ``$FLUXLENS_TRUST_PROXY`` is set."""
    return {
        "transforms": [security_transform(tiles=tile_source(settings.tile_url()))],
        "debug": False,
        "serve_traceback": False,
        "xsrf_cookie_kwargs": {"httponly": True},
        "use_xheaders": trust_proxy(),
    }


# --- login ----------------------------------------------------------------------------------


class LoginRateLimiter:
    """Failed logins per key (user name, client address) in a sliding window. An attempt is
    refused while any of its keys has ``max_failures`` failures within the last ``window_s``
    seconds; :meth:`retry_after` says for how long. Memory is bounded by ``max_keys``."""

    def __init__(
        self,
        max_failures: int = DEFAULT_LOGIN_MAX_FAILURES,
        window_s: float = DEFAULT_LOGIN_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ValueError("max_failures must be >= 1 and window_s > 0")
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], collections.deque[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> LoginRateLimiter:
        return cls(*login_limits())

    def _recent(self, key, now: float) -> collections.deque[float]:
        times = self._failures.get(key)
        if times is None:
            return collections.deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, *keys) -> int:
        """Seconds (rounded up, ≥ 1) until an attempt with these keys is allowed; 0 when it is."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    wait = max(wait, times[-self.max_failures] + self.window_s - now)
            return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, *keys) -> None:
        with self._lock:
            now = self._clock()
            for key in keys:
                self._failures.setdefault(key, collections.deque()).append(now)
            if len(self._failures) > self._max_keys:
                self._shrink(now)

    def reset(self, *keys) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _shrink(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
        excess = len(self._failures) - self._max_keys
        if excess > 0:  # drop the keys whose last failure is oldest
            for key in sorted(self._failures, key=lambda k: self._failures[k][-1])[:excess]:
                del self._failures[key]


def limiter_keys(username: str, address: str | None) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("user", username[:200]), ("address", address or "?")


def check_password(credentials: dict, username: str, password: str) -> bool:
    """Constant-time comparison against the credentials (``{"user": "password"}``); an unknown
    user costs the same comparison."""
    expected = credentials.get(username)
    ok = isinstance(expected, str)
    given = password.encode("utf-8", "surrogateescape")
    target = expected.encode("utf-8", "surrogateescape") if ok else b"\0" * max(len(given), 1)
    return hmac.compare_digest(given, target) and ok


def read_credentials(path: str | os.PathLike) -> dict:
    """The users file (read at every login, so edits apply without a restart)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{user: password}}")
    return data


# Messages the login page shows for ``?error=<code>`` (never text from the URL itself).
LOGIN_ERRORS = {"invalid": "Invalid username or password!"}
_FORM_TAG = re.compile(r"<form\b[^>]*>", re.IGNORECASE)


def _local_dist() -> str:
    """Panel's bundled files, relative to the login page (no CDN: the page works offline and
    under the Content-Security-Policy)."""
    return LOCAL_DIST


class LoginHandler(BasicLoginHandler):
    """Panel's basic login page with an XSRF token in the form, constant-time password checks
    and the failed-login rate limit. ``credentials`` and ``limiter`` are set per server by
    :class:`BasicLogin`."""

    credentials: str = ""
    limiter: LoginRateLimiter = LoginRateLimiter()

    def _page(self, errormessage: str = "") -> str:
        html = self._login_template.render(
            login_endpoint=self._login_endpoint, errormessage=errormessage, PANEL_CDN=_local_dist()
        )
        token_field = self.xsrf_form_html()
        html, n = _FORM_TAG.subn(lambda m: m.group(0) + token_field, html, count=1)
        if not n:
            raise RuntimeError("login template has no <form>: cannot add the XSRF token")
        return html

    def get(self):
        errormessage = LOGIN_ERRORS.get(self.get_argument("error", ""), "")
        next_url = _validate_next_url(self.get_argument("next", pn_state.base_url))
        if next_url:
            self.set_cookie("next_url", next_url, httponly=True, path=pn_config.cookie_path)
        self.write(self._page(errormessage))

    def post(self):
        self.check_xsrf_cookie()  # HTTPError 403 without a matching token
        username = self.get_argument("username", "")
        password = self.get_argument("password", "")
        keys = limiter_keys(username, self.request.remote_ip)
        wait = self.limiter.retry_after(*keys)
        if wait:
            address = self.request.remote_ip
            log.warning("login refused (rate limit, %d s): user %r from %s", wait, username[:200], address)
            self.set_status(429)
            self.set_header("Retry-After", str(wait))
            self.write(self._page(f"Too many failed logins: try again in {wait} s."))
            return
        try:
            ok = check_password(read_credentials(self.credentials), username, password)
        except (OSError, ValueError, InputError):
            log.exception("cannot read the credentials file %s", self.credentials)
            raise HTTPError(500) from None
        if ok:
            self.limiter.reset(keys[0])
            self.set_current_user(username)
            self.redirect(_validate_next_url(self.get_cookie("next_url", pn_state.base_url)))
        else:
            self.limiter.failed(*keys)
            log.warning("failed login: user %r from %s", username[:200], self.request.remote_ip)
            self.redirect(self.request.path + "?error=invalid")

    def write_error(self, status_code: int, **kwargs) -> None:
        """A short page, never a traceback."""
        messages = {
            403: "The login form was not sent from this site or has expired: reload the login page.",
            429: "Too many failed logins: try again later.",
        }
        message = messages.get(status_code, "The server could not handle this request.")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            f"<!DOCTYPE html><html><head><title>{status_code}</title></head><body>"
            f"<p>{status_code}: {tornado.escape.xhtml_escape(message)}</p>"
            f'<p><a href=".{tornado.escape.xhtml_escape(self._login_endpoint)}">Login</a></p></body></html>'
        )


class LocalLogoutHandler(LogoutHandler):
    """Panel's logout page with Panel's bundled images instead of the CDN's."""

    def get(self):
        for name in ("user", "id_token", "access_token", "refresh_token", "oauth_expiry"):
            self.clear_cookie(name, path=pn_config.cookie_path)
        self.clear_cookie("panel-oauth-state", path=pn_config.cookie_path)
        self.write(self._logout_template.render(PANEL_CDN=_local_dist(), LOGIN_ENDPOINT=self._login_endpoint))


class BasicLogin(BasicAuthProvider):
    """Panel's basic auth provider with :class:`LoginHandler`: the users file ``credentials``
    (``{"user": "password"}``) and a :class:`LoginRateLimiter` (from the environment when None)."""

    def __init__(self, credentials: str | Path, *, limiter: LoginRateLimiter | None = None, **kwargs) -> None:
        self.credentials = str(credentials)
        self.limiter = limiter or LoginRateLimiter.from_env()
        self._handlers: dict[str, type] = {}
        super().__init__(**kwargs)  # Bokeh's validation asks for the handlers already

    @property
    def login_handler(self):
        if "login" not in self._handlers:
            self._handlers["login"] = type(
                "FluxLensLoginHandler",
                (LoginHandler,),
                {
                    "credentials": self.credentials,
                    "limiter": self.limiter,
                    "_login_endpoint": self._login_endpoint,
                    "_login_template": self._login_template or BASIC_LOGIN_TEMPLATE,
                },
            )
        return self._handlers["login"]

    @property
    def logout_handler(self):
        if "logout" not in self._handlers:
            self._handlers["logout"] = type(
                "FluxLensLogoutHandler",
                (LocalLogoutHandler,),
                {
                    "_login_endpoint": self._login_endpoint,
                    "_logout_template": self._logout_template or LOGOUT_TEMPLATE,
                },
            )
        return self._handlers["logout"]
