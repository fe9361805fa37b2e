"""Web page sessions kept on the server, in one SQLite file that every worker process shares
(``STORE/api/ui-sessions.sqlite3``, created ``0600`` in a ``0700`` folder).

The browser holds only a random session id (``secrets.token_urlsafe(32)``) in an HttpOnly, SameSite=Strict
cookie. The file holds, per session: the SHA-256 of that id (so a copy of the file opens no session), the SHA-256
of the bearer token it was made with (the tokens file holds the same; never the token), the CSRF token of its
forms, and its times. Every page checks the token again (``TokenBook.identify_digest``): revoking or expiring a
token ends its sessions at once. A session ends when unused for ``idle`` seconds, ``lifetime`` seconds after
log-in, or at log-out (its row is deleted); ended rows are purged at most once a minute.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SESSIONS_FILE = "ui-sessions.sqlite3"  # in STORE/api/
_SCHEMA = """CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL,
    seen REAL NOT NULL, ends REAL NOT NULL) WITHOUT ROWID"""
TOUCH_EVERY_SECONDS = 30.0  # 'last seen' is written at most this often per session (one write, not one per page)
PURGE_EVERY_SECONDS = 60.0


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: whose token (its SHA-256), the CSRF token of its forms, and when it ends at the latest."""

    token_sha256: str
    csrf: str
    ends: float  # wall-clock seconds: the absolute end (idle end may come sooner)


class SessionStore:
    """Sessions in ``path`` (``None``: in memory, one process only); safe across threads and processes."""

    def __init__(self, path: Path | None, *, idle_seconds: float, lifetime_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.idle = idle_seconds
        self.lifetime = lifetime_seconds
        self.clock = clock
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # who is logged in: the service's eyes only
            os.chmod(path, 0o600)
        self._db = sqlite3.connect(str(path) if path is not None else ":memory:", timeout=30,
                                   isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._purged = 0.0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, token_sha256: str) -> tuple[str, Session]:
        """A new session for the holder of that token: (the id for the cookie, the session)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(token_sha256, secrets.token_urlsafe(32), now + self.lifetime)
        with self._lock:
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                             (_sha256(session_id), token_sha256, session.csrf, now, now, session.ends))
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id (None: unknown, idle too long, or past its end); marks it used."""
        if not session_id or len(session_id) > 128:
            return None
        key = _sha256(session_id)
        now = self.clock()
        with self._lock:
            row = self._db.execute("SELECT token_sha256, csrf, seen, ends FROM sessions WHERE id_sha256 = ?",
                                   (key,)).fetchone()
            if row is None:
                return None
            token_sha256, csrf, seen, ends = row
            if now >= ends or now - seen >= self.idle:
                self._db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (key,))
                return None
            if now - seen >= TOUCH_EVERY_SECONDS:
                self._db.execute("UPDATE sessions SET seen = ? WHERE id_sha256 = ?", (now, key))
            if now - self._purged >= PURGE_EVERY_SECONDS:
                self._db.execute("DELETE FROM sessions WHERE ends <= ? OR seen <= ?", (now, now - self.idle))
                self._purged = now
        return Session(token_sha256, csrf, ends)

    def end(self, session_id: str | None) -> None:
        """Log-out: the session is gone for every worker."""
        if session_id:
            with self._lock:
                self._db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_sha256(session_id),))

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM sessions").fetchone()[0])
