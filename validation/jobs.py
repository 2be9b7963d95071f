"""The ``scoreboard`` and ``scorecard`` job kinds: the dashboard's scoreboard and the ILAMB scorecard
are computed by the job worker.

Importing this module registers the kinds with :func:`models.jobs.register_kind` (models imports no
validation code). ``fluxlens/cli.py`` imports it for every command, so ``fluxlens worker`` runs
scoreboard and scorecard jobs; the dashboard imports it through its scoreboard view, which submits them.

Scoreboard request: ``product``, ``variable``, ``network``, ``site_ids`` (None: every site) and ``options``
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


# --------------------------------------------------------------------------------------------------
# The ``scorecard`` job kind: the ILAMB scorecard of :mod:`validation.scorecard`, computed by the worker.
#
# Request: ``products`` (catalog product names), ``variables`` (one or more of le, h, rn, g, ssm),
# ``reference`` (a station network or a gridded product of the catalog) and ``options``
# (:class:`validation.scorecard.ScorecardOptions` as a dict). Each variable is scored with the products
# that hold it. The output is JSON: ``{"cards": {variable: cache key}, "skipped": {variable: why}}``
# (:func:`validation.scorecard.cached_scorecard`, :func:`scorecard_set_of`).

SCORECARD_KIND = "scorecard"
SCORECARD_KEYS = ("products", "variables", "reference", "options")


def scorecard_request(products, variables, reference: str, *, options) -> dict:
    """The request of a scorecard job (``options``: a :class:`validation.scorecard.ScorecardOptions`)."""
    products = [products] if isinstance(products, str) else list(products)
    variables = [variables] if isinstance(variables, str) else list(variables)
    return {
        "products": products,
        "variables": variables,
        "reference": reference,
        "options": options.as_dict(),
    }


def check_scorecard_request(request: dict, limits: JobLimits) -> dict:
    """The request normalised; ``InputError`` for unknown settings, products, reference or variables,
    bad options, and when no variable can be scored with the products holding it (a reference with no
    overlap in time or space); no data are read."""
    from validation import scorecard

    where = "scorecard"
    unknown = set(request) - set(SCORECARD_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown settings {sorted(unknown)}")
    missing = [k for k in SCORECARD_KEYS[:3] if not request.get(k)]
    if missing:
        raise InputError(f"{where}: {', '.join(missing)} required")
    products = request["products"]
    products = [products] if isinstance(products, str) else [str(p) for p in products]
    variables = request["variables"]
    variables = [variables] if isinstance(variables, str) else list(dict.fromkeys(str(v) for v in variables))
    options = dict(request.get("options") or {})
    opts = scorecard.ScorecardOptions.from_config(base=options.pop("base", None), **options)
    reasons = []
    for variable in variables:
        holding = scorecard.products_with(products, variable)
        if not holding:
            reasons.append(f"{variable}: none of {', '.join(products)} holds it")
            continue
        try:
            scorecard.scorecard_key(holding, variable, str(request["reference"]), opts)
        except InputError as err:
            reasons.append(f"{variable}: {str(err).removeprefix('scorecard: ')}")
            continue
        break
    else:
        raise InputError(f"{where}: no variable can be scored ({'; '.join(reasons)})")
    return scorecard_request(products, variables, str(request["reference"]), options=opts)


def run_scorecard(ctx) -> str:
    """Compute (or find cached) the requested scorecards; progress in thousandths of each variable's
    run; a cancel stops it and caches nothing more."""
    import json

    from models.predict import Cancelled
    from validation import scorecard

    req = ctx.job.request

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        if ctx.should_cancel():
            raise Cancelled(f"job {ctx.job.id} cancelled")

    options = dict(req["options"])
    opts = scorecard.ScorecardOptions.from_config(base=options.pop("base", None), **options)
    cards = scorecard.compute_scorecards(
        req["products"], req["variables"], req["reference"], options=opts, progress=progress
    )
    for variable, card in cards.cards.items():
        if card.cached:
            ctx.store.log(ctx.job.id, f"scorecard of {variable} ({card.key}) was cached already")
    return json.dumps({"cards": {v: c.key for v, c in cards.cards.items()}, "skipped": cards.skipped})


def scorecard_set_of(output: str):
    """The :class:`validation.scorecard.ScorecardSet` of a finished scorecard job's output, or None
    when a scorecard is no longer cached."""
    import json

    from validation import scorecard

    done = json.loads(output)
    cards = {v: scorecard.cached_scorecard(k) for v, k in done["cards"].items()}
    if any(c is None for c in cards.values()):
        return None
    return scorecard.ScorecardSet(cards, dict(done.get("skipped") or {}))


register_kind(JobKind(SCORECARD_KIND, check_scorecard_request, run_scorecard))


# --------------------------------------------------------------------------------------------------
# The ``analysis`` job kind: the Giovanni-style analyses of :mod:`validation.gridded` (Hovmöller
# diagrams, climatology / seasonal / anomaly maps, correlation maps, area-averaged series of a named
# region or an uploaded polygon). Request: :class:`validation.gridded.AnalysisRequest` as a dict; the
# output is the result's cache key (:func:`validation.gridded.cached_analysis`).

ANALYSIS_KIND = "analysis"


def check_analysis_request(request: dict, limits: JobLimits) -> dict:
    """The request normalised (box clipped to the product, period to its record); ``InputError`` for
    unknown settings, products, variables or regions, data outside the box or period and a request
    too large to compute (no data are read)."""
    from validation import gridded

    return gridded.AnalysisRequest.from_dict(request).as_dict()


def run_analysis(ctx) -> str:
    """Compute (or find cached) the requested analysis; a cancel caches nothing."""
    from models.predict import Cancelled
    from validation import gridded

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total)
        if ctx.should_cancel():
            raise Cancelled(f"job {ctx.job.id} cancelled")

    key, _ = gridded.compute_analysis(ctx.job.request, progress=progress)
    return key


register_kind(JobKind(ANALYSIS_KIND, check_analysis_request, run_analysis))
