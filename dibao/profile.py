"""Stage timing and peak memory for the daily run (``dibao run --profile``).

Each stage of the run is timed; with ``memory=True`` its peak resident memory is measured too. On Linux the
kernel's high-water mark (``VmHWM``) is reset at the start of each stage (``/proc/self/clear_refs`` ← 5), so the
peak read at its end is that stage's own, exactly, at no cost while it runs; elsewhere the process's peak so far is
reported. The figures go to the manifest (``timings_seconds``; ``profile`` with ``--profile``) and to the
progress display.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def peak_rss_mib() -> float:
    """Peak resident memory of this process since the last reset (MiB)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024 / 1024


def reset_peak() -> bool:
    """Start a new high-water mark (Linux); False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


@dataclass
class StageRecord:
    seconds: float
    peak_rss_mib: float | None = None
    rows: int | None = None

    def as_json(self) -> dict[str, float | int | None]:
        rate = round(self.rows / self.seconds) if self.rows and self.seconds > 0 else None
        return {"seconds": round(self.seconds, 3), "peak_rss_mib": self.peak_rss_mib, "rows": self.rows,
                "rows_per_second": rate}


StageDone = Callable[[str, StageRecord], None]


@dataclass
class StageClock:
    """Times the stages of one run (and measures their peak memory when ``memory``)."""

    memory: bool = False
    on_start: Callable[[str], None] = lambda _name: None
    on_done: StageDone = lambda _name, _record: None
    records: dict[str, StageRecord] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        """Time the block; the caller may set ``record.rows`` inside it."""
        if self.memory:
            reset_peak()
        self.on_start(name)
        record = StageRecord(0.0)
        started = time.perf_counter()
        try:
            yield record
        finally:
            record.seconds = time.perf_counter() - started
            if self.memory:
                record.peak_rss_mib = round(peak_rss_mib(), 1)
            self.records[name] = record
            self.on_done(name, record)

    @property
    def timings(self) -> dict[str, float]:
        return {name: round(r.seconds, 3) for name, r in self.records.items()}

    @property
    def profile(self) -> dict[str, dict[str, float | int | None]]:
        return {name: r.as_json() for name, r in self.records.items()}
