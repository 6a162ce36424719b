"""Whether a process id is alive: shared by the embedded Redis's owner and the CLI's deployment lookup."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True while `pid` exists (owned by another user counts: signal 0 was refused, not unanswered)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
