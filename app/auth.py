"""Who is using the dashboard, and whether submitting jobs needs a login.

Browsing is always open. With authentication off (the demo default) everyone is the user
``anonymous`` and may submit and cancel the jobs of ``anonymous``. With authentication on,
anonymous visitors browse as guests and must log in to submit or cancel; each user sees only
their own jobs. The rule is enforced by ``models.jobs.JobService`` (``require_login``), not only
by the widgets.

Settings (environment):

| variable | meaning |
|---|---|
| ``FLUXLENS_AUTH`` | ``off`` (default), ``basic`` or ``oauth`` |
| ``FLUXLENS_BASIC_AUTH`` | ``basic``: JSON file ``{"user": "password", ...}`` |
| ``FLUXLENS_COOKIE_SECRET`` | secret signing the login cookie (required when on) |
| ``FLUXLENS_OAUTH_PROVIDER`` | ``oauth``: Panel provider (``github``, ``google``, ``generic`` …) |
| ``FLUXLENS_OAUTH_KEY``, ``FLUXLENS_OAUTH_SECRET`` | ``oauth``: client id and secret |
| ``FLUXLENS_OAUTH_REDIRECT_URI``, ``FLUXLENS_OAUTH_ENCRYPTION_KEY`` | ``oauth``, optional |

``serve_kwargs()`` turns them into ``pn.serve`` arguments; a server started with
``panel serve --basic-auth … --oauth-optional`` or ``--oauth-provider …`` is recognised too.
Basic auth logs in through ``app.security.BasicLogin`` (XSRF token on the form, failed-login rate
limit: ``FLUXLENS_LOGIN_MAX_FAILURES``, ``FLUXLENS_LOGIN_WINDOW``); see ``app.security`` for the
headers and cookie flags on every response.
"""

from __future__ import annotations

from pathlib import Path

import panel as pn

from app import security
from catalog import settings
from catalog.errors import InputError
from models.jobs import ANONYMOUS, JobService, JobStore

ENV_AUTH = "FLUXLENS_AUTH"
AUTH_MODES = ("off", "basic", "oauth")
LOGIN_URL = "/login"
LOGOUT_URL = "/logout"
# Panel names a visitor who has not logged in "guest" when guests are allowed.
_ANONYMOUS_NAMES = {"", ANONYMOUS, "guest"}


def auth_mode() -> str:
    mode = settings.current().text(ENV_AUTH, "off").lower()
    if mode not in AUTH_MODES:
        raise InputError(f"${ENV_AUTH}={mode!r}: expected one of {', '.join(AUTH_MODES)}")
    return mode


def _require_env(name: str) -> str:
    value = settings.current().text(name)
    if not value:
        raise InputError(f"${ENV_AUTH}={auth_mode()} needs ${name}")
    return value


def serve_kwargs() -> dict:
    """Keyword arguments for ``pn.serve`` that switch login on as configured ({} when off).
    Guests may always browse (``oauth_optional``). Basic auth is served by
    :class:`app.security.BasicLogin` (``auth_provider``), built here with its rate limit from the
    environment."""
    mode = auth_mode()
    if mode == "off":
        return {}
    kwargs = {"cookie_secret": _require_env("FLUXLENS_COOKIE_SECRET"), "oauth_optional": True}
    if mode == "basic":
        credentials = Path(_require_env("FLUXLENS_BASIC_AUTH"))
        if not credentials.is_file():
            raise InputError(f"$FLUXLENS_BASIC_AUTH={credentials}: no such credentials file")
        kwargs["auth_provider"] = security.BasicLogin(credentials)
    else:
        kwargs |= {
            "oauth_provider": _require_env("FLUXLENS_OAUTH_PROVIDER"),
            "oauth_key": _require_env("FLUXLENS_OAUTH_KEY"),
            "oauth_secret": _require_env("FLUXLENS_OAUTH_SECRET"),
        }
        for option in ("redirect_uri", "encryption_key"):
            value = settings.current().text(f"FLUXLENS_OAUTH_{option.upper()}")
            if value:
                kwargs[f"oauth_{option}"] = value
    return kwargs


def apply_to_config() -> None:
    """Set ``pn.config.oauth_optional`` so guests can browse; call in the served process when
    the server is started by ``serve_kwargs()``."""
    if auth_mode() != "off":
        pn.config.oauth_optional = True


def login_enabled() -> bool:
    """Login is on by our settings or by the options the Panel server was started with."""
    return auth_mode() != "off" or bool(pn.config.basic_auth or pn.config.oauth_provider)


def current_user() -> str:
    """The logged-in user of this session, else ``anonymous``."""
    user = (pn.state.user or "").strip()
    return ANONYMOUS if user in _ANONYMOUS_NAMES else user


def is_anonymous(user: str | None) -> bool:
    return (user or "").strip() in _ANONYMOUS_NAMES


def job_service(store: JobStore | None = None) -> JobService:
    """The job service with the login rule of this deployment."""
    return JobService(store or JobStore(), require_login=login_enabled())
