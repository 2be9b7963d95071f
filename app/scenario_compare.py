"""What-if products in Compare: a scenario re-prediction (provenance ``scenario``) and its baseline,
the re-prediction of the same model version, box, period and inputs without the scenario
(:func:`models.scenarios.difference` states the same pairing)."""

from __future__ import annotations

PAIRED_ON = ("model_version", "bbox", "period", "inputs")
PUSHED = "scenario_pushed_outside"  # per pixel-day: features the scenario pushed outside training range
OUTSIDE = "scenario_outside_range"  # per pixel-day: features outside the training range under the scenario
MASKS = {
    "show all pixels": "",
    "hide pixels the scenario pushed outside the training range": PUSHED,
    "hide pixels outside the training range under the scenario": OUTSIDE,
}


def scenario_text(info) -> str | None:
    """The scenario of a what-if product (e.g. ``ta+2K, precip*0.8``), None for any other product."""
    scenario = (info.provenance or {}).get("scenario")
    return scenario.get("text") if isinstance(scenario, dict) else None


def is_baseline_of(scenario_info, other_info) -> bool:
    """Whether ``other_info`` is the baseline of the scenario product ``scenario_info``."""
    if scenario_text(scenario_info) is None or scenario_text(other_info) is not None:
        return False
    s, o = scenario_info.provenance or {}, other_info.provenance or {}
    if "explained" in o or s.get("model_version") is None:  # an explanation map is no re-prediction
        return False
    return all(s.get(k) == o.get(k) for k in PAIRED_ON)


def baseline_of(name: str, candidates: list[str], info) -> str | None:
    """The first of ``candidates`` that is the baseline of scenario product ``name`` (``info`` maps a
    product name to its catalog entry), or None."""
    own = info(name)
    if scenario_text(own) is None:
        return None
    return next((c for c in candidates if c != name and is_baseline_of(own, info(c))), None)


def counts_text(info) -> str:
    """The scenario's out-of-range counts its provenance records, in words ('' when absent)."""
    counts = (info.provenance or {}).get("scenario_counts")
    if not counts:
        return ""
    n = counts.get("pixel_days_predicted", 0)
    out, pushed = counts.get("pixel_days_outside_range", 0), counts.get("pixel_days_pushed_outside", 0)
    share = f" ({100 * pushed / n:.1f} %)" if n else ""
    return (
        f"Of {n:,} pixel-days predicted, {out:,} have an input outside the model's training range under "
        f"the scenario and {pushed:,}{share} were pushed outside it by the scenario (inside with the "
        f"baseline inputs): the emulator extrapolates there (`{PUSHED}` in the product)."
    )
