"""The append-only audit log: who read which household or work list, when, and what they got.

One JSON object per line in ``AUDIT_DIR/audit.jsonl``. Each entry carries ``seq`` (1, 2, 3…) and ``prev``, the
SHA-256 of the previous line's exact bytes (64 zeros for the first), so editing or deleting an entry breaks the
chain at that point and ``verify_chain`` names the line. The file is opened with ``O_APPEND`` and written one
whole line per ``write``; an exclusive ``flock`` serialises writers, also across server worker processes. The API
has no endpoint that changes the log.

Removing entries from the end leaves a shorter but intact chain; to detect that, note the head (``verify_chain``
reports it) somewhere else from time to time — e.g. in the daily batch's own log.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _last_line(path: Path) -> bytes | None:
    """The last complete line of ``path`` (without its newline), read backwards from the end."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        if end == 0:
            return None
        block = 4096
        buf = b""
        pos = end
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            stripped = buf.rstrip(b"\n")
            cut = stripped.rfind(b"\n")
            if cut >= 0:
                return stripped[cut + 1:]
        return buf.rstrip(b"\n") or None


class AuditLog:
    """Appends hash-chained entries to ``audit_dir/audit.jsonl``; safe across threads and processes."""

    def __init__(self, audit_dir: Path, *, fsync: bool = False) -> None:
        self.audit_dir = audit_dir
        self.path = audit_dir / AUDIT_FILE
        self.fsync = fsync
        audit_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._size = -1  # file size after our last write; another process appending changes it
        self._prev = GENESIS
        self._seq = 0

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _sync_tail(self) -> None:
        """Re-read the head of the chain when the file changed under us (another worker, or first use)."""
        size = os.fstat(self._fd).st_size
        if size == self._size:
            return
        last = _last_line(self.path)
        if last is None:
            self._prev, self._seq = GENESIS, 0
        else:
            self._prev = _line_hash(last)
            try:
                self._seq = int(json.loads(last)["seq"])
            except (ValueError, KeyError, TypeError):
                self._seq = sum(1 for _ in self.path.open("rb"))

    def append(self, *, user: str | None, role: str | None, action: str, path: str, query: str, status: int,
               count: int | None = None, **extra: Any) -> dict[str, Any]:
        """Write one entry; returns it as written (with seq, time and prev)."""
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self._sync_tail()
                entry: dict[str, Any] = {
                    "seq": self._seq + 1,
                    "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                    "user": user, "role": role, "action": action, "path": path, "query": query,
                    "status": status, "count": count, **extra, "prev": self._prev,
                }
                line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                os.write(self._fd, line + b"\n")
                if self.fsync:
                    os.fsync(self._fd)
                self._prev = _line_hash(line)
                self._seq += 1
                self._size = os.fstat(self._fd).st_size
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return entry


def _lines(audit_dir: Path) -> Iterator[tuple[int, bytes]]:
    path = audit_dir / AUDIT_FILE
    if not path.exists():
        return
    with path.open("rb") as fh:
        yield from enumerate(fh, start=1)


def verify_chain(audit_dir: Path) -> tuple[bool, str]:
    """Check every entry's ``seq`` and ``prev``; (True, summary with the head hash) or (False, the first fault)."""
    prev = GENESIS
    count = 0
    for number, raw in _lines(audit_dir):
        if not raw.endswith(b"\n"):
            return False, f"line {number}: incomplete last line (the file was cut or is being written)"
        line = raw[:-1]
        try:
            entry = json.loads(line)
        except ValueError:
            return False, f"line {number}: not a JSON object (edited)"
        if not isinstance(entry, dict):
            return False, f"line {number}: not a JSON object (edited)"
        if entry.get("seq") != number:
            return False, f"line {number}: sequence number is {entry.get('seq')!r}, expected {number} " \
                          f"(an entry was removed or inserted before it)"
        if entry.get("prev") != prev:
            return False, f"line {number}: does not chain to line {number - 1} " \
                          f"(line {number - 1} was edited, or entries were removed)"
        prev = _line_hash(line)
        count = number
    if count == 0:
        return True, "audit log is empty"
    return True, f"{count} entries, chain intact; head sha256 {prev}"


def _as_time(value: dt.datetime | dt.date | str | None, *, end: bool) -> dt.datetime | None:
    """A bound for ``query_audit``: a date covers the whole day; naive times are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time.max if end else dt.time.min)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def query_audit(audit_dir: Path, user: str | None = None, since: dt.datetime | dt.date | str | None = None,
                until: dt.datetime | dt.date | str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """Entries of ``user`` / ``action`` between ``since`` and ``until`` (inclusive), oldest first."""
    lower, upper = _as_time(since, end=False), _as_time(until, end=True)
    found = []
    for _, raw in _lines(audit_dir):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if user is not None and entry.get("user") != user:
            continue
        if action is not None and entry.get("action") != action:
            continue
        if lower is not None or upper is not None:
            try:
                when = dt.datetime.fromisoformat(entry["time"])
            except (KeyError, TypeError, ValueError):
                continue
            if (lower is not None and when < lower) or (upper is not None and when > upper):
                continue
        found.append(entry)
    return found
