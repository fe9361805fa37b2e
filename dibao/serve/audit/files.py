"""The audit folder's files: the active ``audit.jsonl``, rotated ``audit.000001.jsonl``… (oldest first), and
``audit.lock``, the lock every writer and reader of the folder takes (a separate file, because the log files
themselves are renamed and replaced)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

ACTIVE = "audit.jsonl"
LOCK = "audit.lock"
_ROTATED = re.compile(r"audit\.([0-9]{6,})\.jsonl\Z")


def rotated_name(index: int) -> str:
    return f"audit.{index:06d}.jsonl"


def rotated_files(audit_dir: Path) -> list[tuple[int, Path]]:
    """(index, path) of the rotated files, oldest first."""
    try:
        names = os.listdir(audit_dir)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = _ROTATED.match(name)
        if match:
            found.append((int(match.group(1)), audit_dir / name))
    return sorted(found)


def log_files(audit_dir: Path) -> list[Path]:
    """Every file of the log in order: the rotated ones, oldest first, then ``audit.jsonl`` if it exists."""
    files = [path for _, path in rotated_files(audit_dir)]
    active = audit_dir / ACTIVE
    if active.exists():
        files.append(active)
    return files


def last_line(path: Path, *, end: int | None = None) -> bytes | None:
    """The last newline-terminated line of ``path`` before ``end`` (default: the end), without its newline;
    None when there is none. A cut line after it is ignored."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return None
    with fh:
        stop = fh.seek(0, os.SEEK_END) if end is None else end
        buf = b""
        pos = stop
        while pos > 0:
            step = min(8192, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            last_newline = buf.rfind(b"\n")
            if last_newline < 0:
                continue
            before = buf.rfind(b"\n", 0, last_newline)
            if before >= 0:
                return buf[before + 1:last_newline]
            if pos == 0:
                return buf[:last_newline]
        return None


def first_line(path: Path) -> bytes | None:
    """The first newline-terminated line of ``path`` without its newline (None when there is none)."""
    try:
        with path.open("rb") as fh:
            line = fh.readline(1 << 20)
    except FileNotFoundError:
        return None
    return line[:-1] if line.endswith(b"\n") else None


class FolderLock:
    """``flock`` on ``audit_dir/audit.lock``, shared by the threads of a process and by server worker processes.

    If the lock file (or the folder) is removed and made anew, a holder of the old one would lock nothing that
    others see: after locking, the path is checked to still be the locked file, else it is opened again.
    """

    def __init__(self, audit_dir: Path) -> None:
        self.path = audit_dir / LOCK
        self._fd = -1

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def held(self, *, shared: bool = False) -> Iterator[None]:
        while True:
            if self._fd < 0:
                self._open()
            fcntl.flock(self._fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                same = identity(os.stat(self.path)) == identity(os.fstat(self._fd))
            except FileNotFoundError:
                same = False
            if same:
                break
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def identity(stat: os.stat_result) -> tuple[int, int]:
    """(device, inode): what tells a file apart from another one put at the same path."""
    return stat.st_dev, stat.st_ino
