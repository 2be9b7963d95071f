"""Geometry of a normalised Taylor (2001) diagram, drawn with lines (no polar axes needed).

A model point sits at radius sigma_p / sigma_o and angle arccos(R) from the x axis; the
observation is (1, 0); the distance from it is the normalised centred RMS difference E' / sigma_o.
"""

from __future__ import annotations

import numpy as np

CORRELATION_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)


def xy(sigma_norm, r) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian position of points with normalised std ``sigma_norm`` and correlation ``r``."""
    s = np.asarray(sigma_norm, dtype="float64")
    theta = np.arccos(np.clip(np.asarray(r, dtype="float64"), -1.0, 1.0))
    return s * np.cos(theta), s * np.sin(theta)


def radius_limit(sigma_norm) -> float:
    """Outer radius: at least 1.5, else 1.1 times the largest finite normalised std."""
    s = np.asarray(sigma_norm, dtype="float64")
    s = s[np.isfinite(s)]
    return float(max(1.5, 1.1 * s.max())) if s.size else 1.5


def grid(rmax: float, *, negative: bool = False, n: int = 91) -> dict[str, list]:
    """Line work of the diagram as lists of (x, y) arrays.

    ``std_arcs``: arcs of constant normalised std (0.5 steps, the outer one at ``rmax``);
    ``ref_arc``: the std = 1 arc; ``r_rays``: rays of constant correlation with ``r_labels``
    (x, y, text) beyond the outer arc; ``crmsd_arcs``: arcs of constant E'/sigma_o (0.5 steps)
    centred on (1, 0), clipped to the diagram. ``negative`` extends to R < 0 (a half circle).
    """
    top = np.pi if negative else np.pi / 2
    theta = np.linspace(0.0, top, n)
    radii = sorted({*np.arange(0.5, rmax, 0.5).round(6), rmax})
    std_arcs = [np.column_stack([r * np.cos(theta), r * np.sin(theta)]) for r in radii]
    ref_arc = np.column_stack([np.cos(theta), np.sin(theta)])
    ticks = list(CORRELATION_TICKS) + ([-t for t in CORRELATION_TICKS if t > 0] if negative else [])
    rays, labels = [], []
    for t in ticks:
        a = np.arccos(t)
        rays.append(np.array([[0.0, 0.0], [rmax * np.cos(a), rmax * np.sin(a)]]))
        labels.append((1.06 * rmax * np.cos(a), 1.06 * rmax * np.sin(a), f"{t:g}"))
    crmsd_arcs = []
    for e in np.arange(0.5, rmax + 1.0, 0.5):
        phi = np.linspace(0.0, np.pi, 181)
        x, y = 1.0 + e * np.cos(phi), e * np.sin(phi)
        keep = (np.hypot(x, y) <= rmax) & (y >= 0) & (negative | (x >= 0))
        if keep.sum() >= 2:
            crmsd_arcs.append(np.column_stack([x[keep], y[keep]]))
    return {
        "std_arcs": std_arcs,
        "ref_arc": ref_arc,
        "r_rays": rays,
        "r_labels": labels,
        "crmsd_arcs": crmsd_arcs,
    }
