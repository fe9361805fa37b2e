"""Serving the latest published run: a background thread checks ``RunStore.published_dates()`` every few seconds,
builds the snapshot of a newer run off the request path and swaps the reference in one assignment, so the API
switches runs without a restart and without a failed request; a request keeps the snapshot it started with."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
import time

from dibao.publish.household import HistorySpans
from dibao.publish.store import RunStore
from dibao.serve.snapshot import RunFiles, RunSnapshot, Stamp, load_snapshot

log = logging.getLogger("dibao.api")


def _exempt_from_gc() -> None:
    """Keep the collector away from the snapshot's millions of long-lived index objects.

    A full collection walks every tracked object; with a 200,000-household snapshot that is a pause of tens of
    milliseconds in the middle of requests (the p99). After a swap the previous snapshot is released, collected
    once, and everything still alive is frozen (moved out of the collector's generations).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class SnapshotHolder:
    """The snapshot of the latest published run, refreshed in a background thread.

    ``current`` never blocks on a load once the first snapshot is in; a failed load (a damaged run) is logged,
    the previous snapshot stays served, and the load is retried after ``retry_seconds``.
    """

    def __init__(self, store: RunStore, refresh_seconds: float = 2.0, retry_seconds: float = 60.0) -> None:
        self.files = RunFiles(store)
        self.spans = HistorySpans()
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self._snapshot: RunSnapshot | None = None
        self._start_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._started = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[tuple[dt.date, Stamp], float] = {}
        self.swaps = 0

    @property
    def snapshot(self) -> RunSnapshot | None:
        if not self._started:
            self.start()
        return self._snapshot

    def start(self) -> None:
        """Load the latest run now (the server is ready when this returns), then watch for newer runs."""
        with self._start_lock:
            if self._started:
                return
            self.refresh()
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="dibao-run-watcher", daemon=True)
            self._thread.start()
            self._started = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._started = False
        gc.unfreeze()  # hand frozen objects back to the collector, so they are freed normally at shutdown

    def _watch(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # never let the watcher die; the next round retries
                log.exception("checking for a newer run failed")

    def refresh(self) -> bool:
        """Load and swap in the latest published run if it is not the one served; True when swapped."""
        with self._load_lock:
            dates = self.files.dates()
            if not dates:
                return False
            latest = dates[-1]
            stamp = self.files.stamp(latest)
            current = self._snapshot
            if stamp is None or (current is not None and current.date == latest and current.stamp == stamp):
                return False
            failed_at = self._failed.get((latest, stamp))
            if failed_at is not None and time.monotonic() - failed_at < self.retry_seconds:
                return False
            try:
                snapshot = load_snapshot(self.files, latest, self.spans)
            except Exception:
                self._failed[(latest, stamp)] = time.monotonic()
                log.exception("could not load run %s; still serving %s", latest,
                              current.date if current else "nothing")
                return False
            self._snapshot = snapshot  # one reference assignment: requests see the old or the new run
            self.swaps += 1
            _exempt_from_gc()
            return True
