"""What the service writes to the audit log for a request: bounded, with numbers hashed, and a budget for
requests without a valid token, so nobody can fill the disk by calling without one.

- Fields: ``user``, ``role``, ``action``, ``path``, ``query`` (numbers hashed, ``ids``), ``status``, ``count``;
  text fields cut to ``field_chars`` characters, so an entry stays under ~2 KB whatever was sent.
- Requests without a valid token (401, and 404/414/422/431… before any token was checked) and throttled ones
  (429) are written at most ``anonymous_per_second`` a second after a burst of ``anonymous_burst`` (per server
  process); the rest are counted and written as one ``suppressed`` entry (``count`` = how many, ``since`` = the
  first one's time) with the next entry written. Every other request with a valid token is written.
- ``fsync``: ``served`` syncs the entry of a request that is about to return personal data before it is sent.
  A request served on the event loop (the household lookup) writes its entries inside ``deferring()`` and then
  ``await durable(...)``: the same guarantee, with the disk flush shared and the loop never blocked by it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from dibao.serve.audit.ids import IdHasher, cut
from dibao.serve.audit.log import AuditLog
from dibao.serve.audit.settings import AuditSettings

# Tickets of entries written inside ``AuditRecorder.deferring()`` that must be on disk before the answer is sent.
_DEFERRED: ContextVar[list[int] | None] = ContextVar("dibao_audit_deferred", default=None)


class TokenBucket:
    """``rate`` a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, float(burst), clock
        self._tokens, self._at = float(burst), clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class AuditRecorder:
    """The service's side of the audit log (``record``), over one ``AuditLog``."""

    def __init__(self, settings: AuditSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.log = AuditLog(settings.audit_dir, max_file_bytes=settings.max_file_bytes,
                            keep_files=settings.keep_files, fsync=settings.fsync == "all")
        self.ids = IdHasher.from_file(settings.hmac_key_file)
        self._lock = threading.Lock()
        self._anonymous = TokenBucket(settings.anonymous_per_second, settings.anonymous_burst, clock)
        self._suppressed = 0
        self._suppressed_since: str | None = None

    def record(self, *, user: str | None, role: str | None, action: str, path: str, query: str,
               status: int | None, count: int | None = None, served: bool = False) -> bool:
        """Write one entry (False: an anonymous one over budget, counted instead). ``served``: the request is
        about to return personal data. Raises ``AuditWriteError`` when the entry cannot be written."""
        limit = self.settings.field_chars
        with self._lock:
            if (user is None or status == 429) and not self._anonymous.take():
                if not self._suppressed:
                    self._suppressed_since = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
                self._suppressed += 1
                return False
            self._flush_suppressed()
        self.log.append(user=None if user is None else cut(user, limit), role=role and cut(role, 32),
                        action=cut(action, 64), path=self.ids.scrub_path(path, limit),
                        query=self.ids.scrub_query(query, limit), status=status, count=count,
                        sync=served and self.settings.fsync == "served", defer_to=_DEFERRED.get())
        return True

    @contextlib.contextmanager
    def deferring(self) -> Iterator[list[int]]:
        """Entries recorded inside are written at once but not flushed: their tickets are collected in the list
        yielded, for ``durable`` before the answer leaves. For code running on the event loop."""
        tickets: list[int] = []
        token = _DEFERRED.set(tickets)
        try:
            yield tickets
        finally:
            _DEFERRED.reset(token)

    async def durable(self, tickets: list[int]) -> None:
        """Wait until every entry of ``tickets`` is on disk (``AuditWriteError`` when it cannot be)."""
        if tickets:
            await self.log.durable(max(tickets))

    def append(self, *, user: str | None, role: str | None, action: str, path: str, query: str, status: int,
               count: int | None = None) -> None:
        """``record`` as ``AuditLog.append`` is called by the endpoints that read personal data
        (``dibao.serve.auth``): an answer of 200 returns personal data."""
        self.record(user=user, role=role, action=action, path=path, query=query, status=status, count=count,
                    served=status == 200)

    def _flush_suppressed(self) -> None:
        """The ``suppressed`` entry for the anonymous requests not written since the last one (lock held)."""
        if not self._suppressed:
            return
        self.log.append(user=None, role=None, action="suppressed", path="", query="", status=None,
                        count=self._suppressed, since=self._suppressed_since)
        self._suppressed, self._suppressed_since = 0, None

    def close(self) -> None:
        with self._lock:
            try:
                self._flush_suppressed()
            finally:
                self.log.close()
