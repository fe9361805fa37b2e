"""Durable by path: a file's bytes, or a folder's entries (a file created, renamed or removed in it), synced to
disk. The one open–fsync–close that the run store, the work lists and the audit log each need before they may
say something is written."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Sync ``path`` (a file or a folder) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
