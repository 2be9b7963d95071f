"""The ``scoreboard`` job kind: the dashboard's scoreboard is computed by the job worker.

Importing this module registers the kind with :func:`models.jobs.register_kind` (models imports no
validation code). ``fluxlens/cli.py`` imports it for every command, so ``fluxlens worker`` runs
scoreboard jobs; the dashboard imports it through its scoreboard view, which submits them.

Request: ``product``, ``variable``, ``network``, ``site_ids`` (None: every site) and ``options``
(:class:`validation.config.ValidationOptions` as a dict). The job's output is the scoreboard's
cache key: the page reads the result where :mod:`validation.scoreboard` caches it
(:func:`validation.scoreboard.cached_scoreboard`).
"""

from __future__ import annotations

from catalog.errors import InputError
from models.job_limits import JobLimits
from models.jobs import JobKind, register_kind

# The validation modules are imported when a job is checked or run: every ``fluxlens`` command
# imports this module, and most never need them.

KIND = "scoreboard"
REQUEST_KEYS = ("product", "variable", "network", "site_ids", "options")


def scoreboard_request(
    product: str, variable: str, network: str, *, site_ids: list[str] | None = None, options
) -> dict:
    """The request of a scoreboard job (``options``: a :class:`validation.config.ValidationOptions`)."""
    return {
        "product": product,
        "variable": variable,
        "network": network,
        "site_ids": site_ids,
        "options": options.as_dict(),
    }


def check_request(request: dict, limits: JobLimits) -> dict:
    """The request normalised (``InputError`` for an unknown product, variable, network, site or
    option); no job limit applies to a scoreboard."""
    from catalog import api
    from validation import scoreboard
    from validation.config import ValidationOptions, variable_spec

    where = "scoreboard"
    unknown = set(request) - set(REQUEST_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown settings {sorted(unknown)}")
    missing = [k for k in ("product", "variable", "network") if not request.get(k)]
    if missing:
        raise InputError(f"{where}: {', '.join(missing)} required")
    product, variable, network = (str(request[k]) for k in ("product", "variable", "network"))
    variable_spec(variable)  # InputError for a variable no station network observes
    info = api.product_info(product)
    if variable not in info.variables:
        raise InputError(f"{where}: product {product!r} has no variable {variable!r}")
    site_ids = [str(s) for s in request["site_ids"]] if request.get("site_ids") else None
    scoreboard.select_sites(network, site_ids)  # InputError for an unknown network or site
    options = ValidationOptions.from_config(**(request.get("options") or {}))
    return scoreboard_request(product, variable, network, site_ids=site_ids, options=options)


def run(ctx) -> str:
    """Compute (or find cached) the requested scoreboard; ``ctx``: ``models.worker.JobContext``.
    Progress is the number of sites done; a cancel stops the sites not started yet and caches
    nothing."""
    from models.predict import Cancelled
    from validation import scoreboard
    from validation.config import ValidationOptions

    req = ctx.job.request

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        if ctx.should_cancel():
            raise Cancelled(f"job {ctx.job.id} cancelled")

    board = scoreboard.compute_scoreboard(
        req["product"],
        req["variable"],
        req["network"],
        site_ids=req["site_ids"],
        options=ValidationOptions.from_config(**req["options"]),
        progress=progress,
    )
    if board.cached:
        ctx.store.log(ctx.job.id, f"scoreboard {board.key} was cached already")
    return board.key


register_kind(JobKind(KIND, check_request, run))
