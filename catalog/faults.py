"""Named kill points of a catalog commit, for fault-injection tests only.

With ``FLUXLENS_FAULT_STEP=<step>`` in its environment, a process kills itself with SIGKILL when
it reaches that step of a commit (see :data:`catalog.commit.STEPS`), as ``kill -9`` would. Unset —
always, outside the tests — :func:`point` does nothing.
"""

from __future__ import annotations

import os
import signal

from catalog import settings

ENV_FAULT_STEP = "FLUXLENS_FAULT_STEP"


def point(step: str) -> None:
    """SIGKILL this process if the environment names ``step``."""
    if settings.current().text(ENV_FAULT_STEP) == step:
        os.kill(os.getpid(), signal.SIGKILL)
