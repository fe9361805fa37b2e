"""Does a token's run of household lookups look like someone trying candidates for a masked ID number?

A caseworker looks up the households in front of them; someone recovering ``3404**********3623`` tries dates one
after another and almost all of them find nothing. Within a sliding window (``enumeration`` in the limits) this
counts per token the lookups that found nothing (404/422) and the different IDs or numbers asked for, and says so
once per window when either reaches its threshold. Counted per worker process, in memory; what is remembered of an
ID is a keyed 8-byte digest (the key is random per process and never written), kept for the window only.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from dibao.serve.limits import Enumeration


@dataclass(frozen=True)
class Suspicion:
    lookups: int
    not_found: int
    distinct: int
    window_seconds: float


@dataclass
class _Trail:
    """One token's lookups in the window, with running counts (constant work per lookup)."""

    seen: deque[tuple[float, bytes, bool]] = field(default_factory=deque)
    subjects: Counter[bytes] = field(default_factory=Counter)
    not_found: int = 0
    alerted_at: float = float("-inf")

    def add(self, when: float, digest: bytes, missed: bool) -> None:
        self.seen.append((when, digest, missed))
        self.subjects[digest] += 1
        self.not_found += missed

    def drop_until(self, horizon: float) -> None:
        while self.seen and self.seen[0][0] <= horizon:
            _, digest, missed = self.seen.popleft()
            self.subjects[digest] -= 1
            if not self.subjects[digest]:
                del self.subjects[digest]
            self.not_found -= missed


class EnumerationWatch:
    """Per-token sliding windows of lookups; ``observe`` returns a Suspicion at most once per window."""

    def __init__(self, rule: Enumeration) -> None:
        self.rule = rule
        self._key = os.urandom(16)
        self._trails: dict[str, _Trail] = {}
        self._lock = threading.Lock()
        self._pruned_at = float("-inf")

    def _digest(self, subject: str) -> bytes:
        return hashlib.blake2b(subject.strip().upper().encode("utf-8"), key=self._key, digest_size=8).digest()

    def observe(self, token_name: str, subject: str | None, missed: bool, now: float) -> Suspicion | None:
        with self._lock:
            trail = self._trails.setdefault(token_name, _Trail())
            trail.add(now, self._digest(subject or ""), missed)
            horizon = now - self.rule.window_seconds
            trail.drop_until(horizon)
            if now - self._pruned_at >= self.rule.window_seconds:  # tokens quiet for a whole window: forget them
                for name in [n for n, t in self._trails.items() if t.seen[-1][0] <= horizon]:
                    del self._trails[name]
                self._pruned_at = now
            not_found, distinct = trail.not_found, len(trail.subjects)
            if now - trail.alerted_at < self.rule.window_seconds:
                return None
            if not_found < self.rule.not_found and distinct < self.rule.distinct_ids:
                return None
            trail.alerted_at = now
            return Suspicion(len(trail.seen), not_found, distinct, self.rule.window_seconds)
