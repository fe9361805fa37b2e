"""Benchmark: how the linkage stage scales (2-million-household daily run on 2 cores / 24 GiB).

    .venv/bin/python benchmarks/linkage_scale.py prepare 200000          # ingest once, cache person_records
    .venv/bin/python benchmarks/linkage_scale.py link 200000 --repeat 2 --out /tmp/links-after.parquet
    .venv/bin/python benchmarks/linkage_scale.py link 200000 --tree /tmp/dibao-head --out /tmp/links-before.parquet
    .venv/bin/python benchmarks/linkage_scale.py compare /tmp/links-before.parquet /tmp/links-after.parquet

``prepare`` ingests ``benchmarks/work/drop-N`` (timed, once) and writes its ``person_records`` to
``benchmarks/work/records-N.parquet``, so that ``link`` measures ``link_persons`` alone. ``link`` runs in this
process with ``--tree`` (a folder holding a ``dibao`` package, e.g. an export of an older commit) first on
``sys.path``; it prints the best wall time of ``--repeat`` runs, seconds per stage of the last run, and the peak
resident memory of the process (``ru_maxrss``) and of the linking alone (sampled every 5 ms from ``/proc``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"

STAGES = {"_stage_exact": "exact + profiles", "_stage_repair": "repaired_id",
          "group_roots": "household cross-walk", "_stage_household": "name_match",
          "_internal_keys": "internal keys"}


def records_path(size: int) -> Path:
    return WORK / f"records-{size}.parquet"


def prepare(size: int) -> None:
    from dibao.ingest import ingest_drop
    from dibao.link import person_records

    started = time.perf_counter()
    drop = ingest_drop(WORK / f"drop-{size}")
    ingested = time.perf_counter() - started
    started = time.perf_counter()
    records = person_records(drop)
    built = time.perf_counter() - started
    records.write_parquet(records_path(size))
    print(f"ingest {ingested:.1f} s, person_records {built:.1f} s, {records.height} records "
          f"-> {records_path(size)}")


def rss() -> int:
    """Resident memory of this process in bytes (Linux ``/proc``; psutil is not a dependency)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


class PeakRss:
    """Peak resident memory of this process while the block runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self.stage = "rest (assembly)"
        self.stage_peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = rss()
            self.peak = max(self.peak, now)
            self.stage_peaks[self.stage] = max(self.stage_peaks.get(self.stage, 0), now)
            self._stop.wait(0.005)

    def __enter__(self) -> PeakRss:
        self.peak = rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def link(size: int, repeat: int, out: Path | None) -> None:
    import polars as pl

    from dibao.link import persons as module

    print(f"dibao from {Path(module.__file__).resolve().parent.parent}")
    records = pl.read_parquet(records_path(size))
    base = rss()
    times: dict[str, float] = {}
    originals = {attr: getattr(module, attr) for attr in STAGES if hasattr(module, attr)}

    sampler: PeakRss | None = None

    def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if sampler is not None:
                sampler.stage = label
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[label] = times.get(label, 0.0) + time.perf_counter() - started
                if sampler is not None:
                    sampler.stage = "rest (assembly)"
        return wrapper

    walls = []
    result = None
    for attr, fn in originals.items():
        setattr(module, attr, timed(STAGES[attr], fn))
    peak = 0
    for _ in range(repeat):
        times.clear()
        result = None
        sampler = PeakRss()
        with sampler:
            started = time.perf_counter()
            result = module.link_persons(records)
            walls.append(time.perf_counter() - started)
        peak = max(peak, sampler.peak)
    assert result is not None
    print(f"{records.height} records; link_persons: " + ", ".join(f"{w:.1f}" for w in walls)
          + f" s (min {min(walls):.1f} s)")
    assert sampler is not None
    times["rest (assembly)"] = walls[-1] - sum(times.values())
    for label, seconds in times.items():
        print(f"  {label:24s} {seconds:6.1f} s   peak RSS {sampler.stage_peaks.get(label, 0) / 2**20:6.0f} MiB")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS with records loaded {base / 2**20:.0f} MiB; peak while linking {peak / 2**20:.0f} MiB "
          f"(+{(peak - base) / 2**20:.0f}); ru_maxrss {maxrss:.0f} MiB")
    if out is not None:
        result.links.write_parquet(out)
        result.review.write_parquet(out.with_suffix(".review.parquet"))
        result.households.write_parquet(out.with_suffix(".households.parquet"))


def compare(before: Path, after: Path) -> None:
    import polars as pl

    ok = True
    for suffix in ("", ".review", ".households"):
        a = pl.read_parquet(before.with_suffix(suffix + ".parquet") if suffix else before)
        b = pl.read_parquet(after.with_suffix(suffix + ".parquet") if suffix else after)
        same = a.equals(b)
        ok &= same
        print(f"{suffix or '.links'}: {a.height} vs {b.height} rows, identical: {same}")
    sys.exit(0 if ok else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("size", type=int)
    p = sub.add_parser("link")
    p.add_argument("size", type=int)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--tree", type=Path, help="folder holding the dibao package to measure (default: this one)")
    p.add_argument("--out", type=Path)
    p = sub.add_parser("compare")
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.size)
    elif args.command == "link":
        sys.path.insert(0, str((args.tree or ROOT).resolve()))
        link(args.size, args.repeat, args.out)
    else:
        compare(args.before, args.after)


if __name__ == "__main__":
    main()
