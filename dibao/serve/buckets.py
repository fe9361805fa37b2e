"""Token buckets kept in one SQLite file (WAL), so that every worker process of a server draws on the same ones.

With ``dibao serve --workers 4`` a client meets the configured limits, not four times them, and a lockout of an
address holds whichever worker its next connection lands on; the state also survives a restart. Each admission is
one short write transaction (``BEGIN IMMEDIATE``) with ``synchronous=OFF``: no fsync at all, not even when the
WAL is checkpointed, so an admission never waits for the disk (with ``NORMAL`` every few hundred requests paid a
checkpoint's fsync, on the event loop). A process crash loses nothing; a power cut may lose the last seconds of
counts or damage the file, and a damaged file is set aside and started afresh (the buckets simply refill).

A row is ``key, tokens, updated, full_at, locked_until``. Keys name a client address or a token's name (``addr:``,
``auth:``, ``token:``, ``lookup:``, ``miss:``); no ID number or token is ever stored. A row whose bucket has
refilled and whose lockout has ended says nothing a missing row would not, and is deleted (at most once a minute).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """CREATE TABLE IF NOT EXISTS buckets (
    key TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL, full_at REAL NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0) WITHOUT ROWID"""
PRUNE_EVERY_SECONDS = 60.0
# Wall-clock seconds near 1.8e9 carry about 2e-7 s of rounding: a bucket that has just refilled a token must count.
_SLACK = 1e-6
log = logging.getLogger("dibao.api.throttle")


@dataclass(frozen=True)
class Draw:
    """What a request takes from one bucket: ``cost`` tokens, passing only when the bucket holds ``need``."""

    key: str
    rate: float  # tokens per second
    burst: float
    cost: float = 1.0
    need: float = 1.0


@dataclass(frozen=True)
class Refused:
    key: str
    wait_seconds: float

    @property
    def retry_after(self) -> int:
        """Whole seconds for a ``Retry-After`` header (at least 1)."""
        return max(1, math.ceil(self.wait_seconds))


@dataclass
class _Row:
    tokens: float
    updated: float
    locked_until: float


class Buckets:
    """Token buckets in ``path`` (``None``: in memory, one process only); safe across threads and processes."""

    def __init__(self, path: Path | None, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock  # wall-clock seconds: worker processes must agree on it
        try:
            self._db = self._open(path)
        except sqlite3.DatabaseError as exc:  # damaged (a power cut with synchronous=OFF): start afresh
            assert path is not None
            log.warning("throttle state %s is damaged (%s); setting it aside and starting with full buckets",
                        path, exc)
            for damaged in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                if damaged.exists():
                    damaged.replace(damaged.with_name(damaged.name + ".damaged"))
            self._db = self._open(path)
        self._lock = threading.Lock()
        self._pruned = 0.0

    @staticmethod
    def _open(path: Path | None) -> sqlite3.Connection:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # client addresses: readable by the service only
        db = sqlite3.connect(str(path) if path is not None else ":memory:", timeout=30,
                             isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(_SCHEMA)
            db.execute("SELECT count(*) FROM buckets").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, keys: Sequence[str]) -> dict[str, _Row]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        cursor = self._db.execute(f"SELECT key, tokens, updated, locked_until FROM buckets WHERE key IN ({marks})",
                                  list(keys))
        return {key: _Row(tokens, updated, locked) for key, tokens, updated, locked in cursor}

    @staticmethod
    def _level(row: _Row | None, draw: Draw, now: float) -> float:
        if row is None:
            return draw.burst
        return min(draw.burst, row.tokens + max(0.0, now - row.updated) * draw.rate)

    _UPSERT = ("INSERT INTO buckets (key, tokens, updated, full_at, locked_until) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT(key) DO UPDATE SET tokens=excluded.tokens, updated=excluded.updated, "
               "full_at=excluded.full_at, locked_until=max(buckets.locked_until, excluded.locked_until)")

    @staticmethod
    def _row(draw: Draw, tokens: float, now: float,
             locked_until: float = 0.0) -> tuple[str, float, float, float, float]:
        return draw.key, tokens, now, now + max(0.0, draw.burst - tokens) / draw.rate, locked_until

    def _write(self, draw: Draw, tokens: float, now: float, locked_until: float = 0.0) -> None:
        self._db.execute(self._UPSERT, self._row(draw, tokens, now, locked_until))

    def _transaction(self, work: Callable[[float], Refused | bool | None]) -> Refused | bool | None:
        with self._lock:
            now = self.clock()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(now)
                if now - self._pruned >= PRUNE_EVERY_SECONDS:
                    self._db.execute("DELETE FROM buckets WHERE full_at <= ? AND locked_until <= ?", (now, now))
                    self._pruned = now
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return result

    def admit(self, draws: Sequence[Draw], locks: Sequence[str] = ()) -> Refused | None:
        """All or nothing: ``None`` when no key of ``locks`` is locked and every bucket holds what its draw needs
        (then each is charged); else the first refusal, and nothing is charged."""

        def work(now: float) -> Refused | None:
            rows = self._rows([*locks, *(d.key for d in draws)])
            for key in locks:
                row = rows.get(key)
                if row is not None and row.locked_until > now:
                    return Refused(key, row.locked_until - now)
            levels = [self._level(rows.get(d.key), d, now) for d in draws]
            for draw, level in zip(draws, levels, strict=True):
                if level + _SLACK < draw.need:
                    return Refused(draw.key, (draw.need - level) / draw.rate)
            self._db.executemany(self._UPSERT, [self._row(draw, max(0.0, level - draw.cost), now)
                                                for draw, level in zip(draws, levels, strict=True)])
            return None

        result = self._transaction(work)
        assert result is None or isinstance(result, Refused)
        return result

    def spend(self, draw: Draw) -> None:
        """Charge ``draw.cost`` after the fact (an outcome known only once answered); never below zero."""
        self._transaction(lambda now: self._write(draw, max(0.0, self._level(
            self._rows([draw.key]).get(draw.key), draw, now) - draw.cost), now))

    def fail(self, draw: Draw, lockout_seconds: float) -> bool:
        """One failed attempt: take a token; with none left, lock ``draw.key`` for ``lockout_seconds``.
        True when this failure started a lockout."""

        def work(now: float) -> bool:
            level = self._level(self._rows([draw.key]).get(draw.key), draw, now)
            if level + _SLACK >= draw.cost:
                self._write(draw, max(0.0, level - draw.cost), now)
                return False
            self._write(draw, 0.0, now, locked_until=now + lockout_seconds)
            return True

        return bool(self._transaction(work))

    def locked_until(self, key: str) -> float:
        """When the lockout of ``key`` ends (0: not locked)."""
        with self._lock:
            row = self._rows([key]).get(key)
        return row.locked_until if row is not None and row.locked_until > self.clock() else 0.0
