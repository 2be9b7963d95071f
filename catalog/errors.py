"""Errors that FluxLens reports to its users as one clear message."""


class FluxLensError(Exception):
    """Base class: the message names the file or request and the problem."""


class InputError(FluxLensError):
    """Bad input: corrupt or truncated file, wrong variable or units, unknown format or product,
    grids that do not match, a request outside the data or too large."""


class StoreConflictError(FluxLensError):
    """A write would clash with an existing store (e.g. overlapping dates on append)."""
