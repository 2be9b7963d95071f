"""Small helpers shared by the views: error reporting into the page, loading indicators, messages
shown as plain text."""

from __future__ import annotations

import functools
import html
import logging
import re

import panel as pn
from panel.io.resources import CDN_DIST

from catalog.errors import FluxLensError, InputError

log = logging.getLogger("app")

MAX_MESSAGE_CHARS = 600
# Widest fixed part of a tab's page: a 1280 px window leaves ~900 px beside the 300 px sidebar.
CONTENT_WIDTH = 880
# Absolute file system paths (two or more components): the server's layout is not the user's business.
_PATH = re.compile(r"(?<![\w:/.])(?:/[^\s/'\"<>(),;]+){2,}/?")


def redact_paths(text: str, prefix: str = "…/") -> str:
    """``text`` with absolute paths replaced by ``prefix`` and their last component."""
    return _PATH.sub(lambda m: prefix + m.group(0).rstrip("/").rsplit("/", 1)[-1], str(text))


def user_message(text: str) -> str:
    """A message fit for the page: paths redacted, cut to a sane length (still plain text)."""
    text = redact_paths(text)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "…"
    return text


def as_html(text: str) -> str:
    """Plain text as HTML: every character escaped, line breaks kept."""
    return "<br>".join(html.escape(line) for line in str(text).split("\n"))


def markdown_plain(text: str) -> str:
    """Plain text for a Markdown pane: HTML escaped and Markdown's emphasis and code marks taken
    literally (provenance notes and file names may hold them)."""
    return html.escape(str(text)).replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


def alert(alert_type: str = "danger", *, name: str | None = None, **params) -> pn.pane.HTML:
    """An alert box (Panel's alert look) that shows its text literally: set it with
    :func:`show_alert`, never through Markdown or HTML."""
    params.setdefault("margin", (5, 10))
    params.setdefault("sizing_mode", "stretch_width")
    return pn.pane.HTML(
        "",
        css_classes=["alert", f"alert-{alert_type}", "fluxlens-message"],
        stylesheets=[f"{CDN_DIST}css/alerts.css"],
        visible=False,
        name=name,
        **params,
    )


def show_alert(pane, text: str | list[str]) -> None:
    """Show ``text`` (lines) in an :func:`alert` pane, escaped; hide the pane when empty."""
    lines = [text] if isinstance(text, str) else list(text)
    lines = [user_message(t) for t in lines if t]
    pane.param.update(object=as_html("\n".join(lines)), visible=bool(lines))


def guarded(state, what: str, *, loading=None):
    """Decorator: run a view callback; a failure becomes ``state.message`` (shown in the page as
    plain text with server paths redacted), never a traceback in the browser. ``loading`` is a
    viewable (or a callable returning a list of them) whose loading indicator is on while the
    callback runs."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            targets = loading() if callable(loading) else ([loading] if loading is not None else [])
            for t in targets:
                t.loading = True
            try:
                result = fn(*args, **kwargs)
            except FluxLensError as exc:
                state.message = user_message(f"{what}: {exc}")
                return None
            except Exception as exc:  # shown as a message; the traceback goes to the server log
                log.exception("%s failed", what)
                state.message = user_message(f"{what} failed: {type(exc).__name__}: {exc}")
                return None
            finally:
                for t in targets:
                    t.loading = False
            return result

        return run

    return wrap


def session_poller(current, callback, period_ms: int):
    """The periodic callback polling background work: ``current`` when there is one, else a new
    one of ``callback`` in this session (None outside a served session: tests call the poll
    themselves)."""
    if current is None and pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        return pn.state.add_periodic_callback(callback, period=period_ms)
    return current


def lazy_tabs(sections: list[tuple[str, object]], *, name: str) -> pn.Tabs:
    """Tabs of ``(title, build)`` whose content ``build()`` is made the first time the tab is opened
    (the first at once): opening a tab renders the plots of one section, not of all. Not dynamic,
    for the reason given in :class:`app.dashboard.LazyTabs`."""
    tabs = pn.Tabs(dynamic=False, name=name, sizing_mode="stretch_width")
    pending = {}
    for i, (title, build) in enumerate(sections):
        if i == 0:
            tabs.append((title, build()))
        else:
            holder = pn.Column(sizing_mode="stretch_width")
            pending[i] = (build, holder)
            tabs.append((title, holder))

    def on_active(event):
        if event.new in pending:
            build, holder = pending.pop(event.new)
            holder[:] = [build()]

    tabs.param.watch(on_active, "active")
    return tabs



MAX_UPLOAD_BYTES = 2_000_000


def uploaded_geojson(widget: pn.widgets.FileInput) -> tuple[str, str] | None:
    """(file name without suffix, text) of a GeoJSON file uploaded in ``widget``, or None when nothing
    is uploaded; ``InputError`` for a file over :data:`MAX_UPLOAD_BYTES` or not UTF-8 text. (Whether
    the text is GeoJSON is checked where it is used.)"""
    from pathlib import PurePath

    if not widget.value:
        return None
    if len(widget.value) > MAX_UPLOAD_BYTES:
        raise InputError(f"the polygon file is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
    try:
        text = bytes(widget.value).decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError("the polygon file is not UTF-8 text (GeoJSON)") from err
    return PurePath(widget.filename or "polygon").stem, text
