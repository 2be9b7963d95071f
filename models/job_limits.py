"""Limits and timings for on-demand jobs, read from the environment.

| variable | default | meaning |
|---|---|---|
| ``FLUXLENS_JOBS_DB`` | ``<data_dir>/jobs.sqlite`` | job database: a path or ``sqlite:///<path>`` |
| ``FLUXLENS_JOB_MAX_PIXEL_DAYS`` | 100 000 000 | largest re-prediction (lat × lon × days) |
| ``FLUXLENS_JOB_MAX_ACTIVE`` | 3 | queued + running jobs one user may have |
| ``FLUXLENS_JOB_MAX_ATTEMPTS`` | 2 | runs of a job before a dead worker's job is failed |
| ``FLUXLENS_JOB_HEARTBEAT_S`` | 5 | seconds between a worker's heartbeats |
| ``FLUXLENS_JOB_STALE_S`` | 60 | heartbeat age after which a running job's worker is dead |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from catalog.errors import InputError


def _env_number(name: str, default: float, kind: type = int) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise InputError(f"${name}={raw!r} is not a valid {kind.__name__}") from None
    if value <= 0:
        raise InputError(f"${name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class JobLimits:
    """What one job and one user may ask for, and how workers detect each other's death."""

    max_pixel_days: int = 100_000_000
    max_active_per_user: int = 3
    max_attempts: int = 2
    heartbeat_s: float = 5.0
    stale_s: float = 60.0

    @classmethod
    def from_env(cls) -> JobLimits:
        return cls(
            max_pixel_days=int(_env_number("FLUXLENS_JOB_MAX_PIXEL_DAYS", cls.max_pixel_days)),
            max_active_per_user=int(_env_number("FLUXLENS_JOB_MAX_ACTIVE", cls.max_active_per_user)),
            max_attempts=int(_env_number("FLUXLENS_JOB_MAX_ATTEMPTS", cls.max_attempts)),
            heartbeat_s=float(_env_number("FLUXLENS_JOB_HEARTBEAT_S", cls.heartbeat_s, float)),
            stale_s=float(_env_number("FLUXLENS_JOB_STALE_S", cls.stale_s, float)),
        )
