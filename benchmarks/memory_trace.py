"""Where a daily run's memory goes: run it under a sampler that notes the main thread's stack at each new RSS high.

    flock /tmp/dibao-2m.lock .venv/bin/python benchmarks/memory_trace.py benchmarks/work/drop-2000000 \
        --store /tmp/trace-store --step 300

Prints, at the end, one line per new high (``--step`` MiB above the last one): seconds since the run started, RSS
(the run's and its child processes' together) and the innermost dibao frames of the main thread at that moment;
and the RSS as each stage starts (what the stages before it left held). The run is a fresh day 1 (no cache), so
every stage runs. ``--profile``'s per-stage peaks say which stage; this says which line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path

from dibao.pipeline import run_daily
from dibao.publish.store import RunStore


def _rss_pages(pid: int | str) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):  # a child that just ended
        return 0


def _children(pid: int | str) -> list[str]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [child for task in tasks for child in (task / "children").read_text().split()]
    except OSError:
        return []


def rss_mib() -> float:
    """The run's RSS with its child processes' (the linkage of a large drop, the work-list writers): what the
    machine holds for the run at this moment."""
    pages, pending = 0, ["self"]
    while pending:
        pid = pending.pop()
        pages += _rss_pages(pid)
        pending += _children(pid)
    return pages * 4096 / 2**20


class Sampler(threading.Thread):
    """Every 10 ms: the RSS; at each new high, the main thread's dibao frames."""

    def __init__(self, step_mib: float) -> None:
        super().__init__(daemon=True)
        self.step_mib = step_mib
        self.main = threading.get_ident()
        self.highs: list[tuple[float, float, list[str]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        high = 0.0
        while not self.stopped.wait(0.01):
            rss = rss_mib()
            if rss > high + self.step_mib:
                high = rss
                frame = sys._current_frames().get(self.main)
                stack = [f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in traceback.extract_stack(frame)
                         if "/dibao/" in f.filename]
                self.highs.append((time.perf_counter(), rss, stack[-4:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drop", type=Path)
    parser.add_argument("--store", type=Path, required=True, help="a fresh store (removed first)")
    parser.add_argument("--step", type=float, default=100.0, help="MiB between two reported highs")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 20))
    args = parser.parse_args()
    shutil.rmtree(args.store, ignore_errors=True)
    sampler = Sampler(args.step)
    sampler.start()
    started = time.perf_counter()
    stages: list[tuple[float, float, list[str]]] = []  # RSS as each stage starts: what the stage before left held

    def stage_started(name: str) -> None:
        stages.append((time.perf_counter(), rss_mib(), [f"── {name} starts"]))

    try:
        run_daily(args.drop, args.date, RunStore(args.store), cache=False, progress=stage_started)
    finally:
        sampler.stopped.set()
        for at, rss, stack in sorted(sampler.highs + stages):
            print(f"{at - started:7.1f} s {rss:8.0f} MiB  {' > '.join(stack)}")


if __name__ == "__main__":  # the work-list workers are spawned processes: they import this module
    main()
