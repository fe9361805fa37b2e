"""Child processes of a run (the linkage of a large drop, the work-list writers): started with ``spawn`` (a fresh
interpreter given only what it needs, never a fork of a process holding the run's frames), ended with the run."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def end_with_parent(parent: int) -> None:
    """A child's first step: end when the run that started it ends. A run killed outright (kill -9, the kernel's
    out-of-memory killer) left its children waiting on their pipe for ever, each holding its interpreter and
    part of a province's rows."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run was gone before the line above took effect
        os._exit(1)
