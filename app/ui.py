"""Small helpers shared by the views: error reporting into the page, loading indicators."""

from __future__ import annotations

import functools
import logging

from catalog.errors import FluxLensError

log = logging.getLogger("app")


def guarded(state, what: str, *, loading=None):
    """Decorator: run a view callback; a failure becomes ``state.message`` (shown in the page),
    never a traceback in the browser. ``loading`` is a viewable (or a callable returning a list
    of them) whose loading indicator is on while the callback runs."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            targets = loading() if callable(loading) else ([loading] if loading is not None else [])
            for t in targets:
                t.loading = True
            try:
                result = fn(*args, **kwargs)
            except FluxLensError as exc:
                state.message = f"{what}: {exc}"
                return None
            except Exception as exc:  # shown as a message; the traceback goes to the server log
                log.exception("%s failed", what)
                state.message = f"{what} failed: {type(exc).__name__}: {exc}"
                return None
            finally:
                for t in targets:
                    t.loading = False
            return result

        return run

    return wrap
