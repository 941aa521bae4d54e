"""Child processes that die with their parent, so that a killed harness leaves no
worker, profiled process or py-spy running.

On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, asked for by
the child itself as it starts (a ``preexec_fn`` would make subprocess fork a
parent that runs BLAS threads), makes its parent's death kill it; py-spy ends
with the process it samples. Elsewhere, and for the loops a child spins in
while it waits for its parent, ``parent_gone`` says whether the parent that
started it is still there.
"""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_parent = os.getppid()


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies; called first
    thing in a child. If the parent died before the request took effect, die now."""
    global _parent
    _parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: parent_gone() remains
    if parent_gone():
        os._exit(1)


def parent_gone() -> bool:
    """Whether the parent this process started under has died (it is then re-parented)."""
    return os.getppid() != _parent
