"""Benchmark: a service worker's snapshot of a published run — seconds until it is ready, and the memory it holds.

    flock /tmp/dibao-2m.lock .venv/bin/python benchmarks/snapshot_load.py --store benchmarks/work/store-2000000

Each case is a fresh process doing what a service worker does (``POLARS_MAX_THREADS=1``, ``load_snapshot`` as the
watcher calls it), then 2,000 lookups of random household members' ID numbers (as benchmarks/api_load.py asks).
Reported: seconds to ready, with the CPU seconds of the whole worker process (imports, load, lookups) and its
builder child beside them (the machine is shared: another engineer's load stretches wall time more than CPU time);
after the lookups, resident memory split
into private (anonymous) pages and file pages (the mapped index: page cache shared by every worker, dropped by the
kernel under pressure), PSS (each shared page divided among the processes mapping it), the worker's peak RSS
(VmHWM) and its builder child's (``getrusage``); lookup p50/p99 in-process.

Cases (``--cases``):
- ``before``: the code of another commit (``--before-code``, a folder holding its ``dibao`` package), e.g.
  ``git archive aec0f06 dibao | tar -x -C /tmp/before`` — every frame of the index in the worker's own memory;
- ``memory``: this code with the index built in the worker's memory (what a worker does on a read-only store);
- ``cold``: the index files removed first: the worker's builder child writes them (its peak is shown apart);
- ``warm``: the index files exist (every later start, and every other worker);
- ``pair``: two workers started together on a cold store: one builds, the other waits and maps the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = ("before", "memory", "cold", "warm", "pair")


def _memory() -> dict[str, int]:
    """kB figures of this process: RssAnon, RssFile, VmHWM (status) and Pss (smaps_rollup)."""
    figures: dict[str, int] = {}
    for name in ("status", "smaps_rollup"):
        for line in Path(f"/proc/self/{name}").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "VmHWM", "Pss") and value.strip().endswith("kB"):
                figures[key] = int(value.split()[0])
    return figures


def child(args: argparse.Namespace) -> None:
    """One worker: load the snapshot, look the IDs up, print JSON."""
    import datetime as dt

    from dibao.publish.store import RunStore
    from dibao.serve import snapshot as snapshot_module

    if args.mode == "memory":
        from collections.abc import Sequence

        from dibao.publish.family_files import IndexNotWritable, RunId
        from dibao.publish.household import FamilyIndex

        def refuse(store: RunStore, runs: Sequence[RunId]) -> FamilyIndex:
            raise IndexNotWritable("benchmark: index in memory")

        snapshot_module.open_index = refuse
    files = snapshot_module.RunFiles(RunStore(args.store))
    assert Path(snapshot_module.__file__).is_relative_to(Path(os.environ["PYTHONPATH"])), snapshot_module.__file__
    started = time.perf_counter()
    snap = snapshot_module.load_snapshot(files, dt.date.fromisoformat(args.date))
    ready = time.perf_counter() - started
    loaded = _memory()
    ids = json.loads(Path(args.ids).read_text())
    seconds = []
    for person in ids:
        begun = time.perf_counter()
        found = snap.index.lookup(person)
        seconds.append(time.perf_counter() - begun)
        assert found is not None, person
    seconds.sort()
    builder_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"ready_s": ready, "loaded": loaded, "after": _memory(), "builder_peak_kb": builder_peak,
                      "lookup_p50_ms": 1000 * seconds[len(seconds) // 2],
                      "lookup_p99_ms": 1000 * seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]}))


def _start(args: argparse.Namespace, mode: str, ids: Path, code: Path | None) -> subprocess.Popen[str]:
    env = dict(os.environ, POLARS_MAX_THREADS="1", PYTHONPATH=str(code or ROOT))
    return subprocess.Popen([sys.executable, __file__, "--child", "--mode", mode, "--store", str(args.store),
                             "--date", args.date, "--ids", str(ids)], env=env, stdout=subprocess.PIPE, text=True,
                            cwd=code or ROOT)


def _finish(process: subprocess.Popen[str], started: float) -> dict[str, Any]:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"worker failed (exit {process.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    result["peak_with_children_kb"] = usage.ru_maxrss  # the worker or its builder child, whichever is larger
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # the worker's and its builder's: steadier than wall time
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / "benchmarks" / "work" / "store-2000000")
    parser.add_argument("--cases", default="memory,cold,warm,pair")
    parser.add_argument("--before-code", type=Path, help="folder holding the dibao package of the 'before' commit")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="mapped", help=argparse.SUPPRESS)
    parser.add_argument("--date", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sys.path.insert(0, str(ROOT))
    import polars as pl

    from dibao.publish.family_files import index_home
    from dibao.publish.store import RunStore

    store = RunStore(args.store.resolve())
    args.store = store.root
    date = store.published_dates()[-1]
    args.date = date.isoformat()
    links = pl.read_parquet(store.run_dir(date) / "person_links.parquet", columns=["person_key", "household"])
    ids = links.filter((pl.col("person_key").str.len_chars() == 18) & pl.col("household").is_not_null())[
        "person_key"].unique().sort().sample(2000, seed=1).to_list()  # the IDs benchmarks/api_load.py asks for
    del links
    ids_file = store.root / "snapshot-load-ids.json"
    ids_file.write_text(json.dumps(ids))
    rows = []
    try:
        for case in args.cases.split(","):
            if case not in CASES:
                raise SystemExit(f"unknown case {case!r} (one of {', '.join(CASES)})")
            if case == "before" and args.before_code is None:
                raise SystemExit("--before-code is needed for the 'before' case")
            if case in ("cold", "pair"):
                shutil.rmtree(index_home(store) / args.date, ignore_errors=True)
            workers = 2 if case == "pair" else 1
            mode = case if case in ("before", "memory") else "mapped"
            started = time.perf_counter()
            processes = [_start(args, mode, ids_file, args.before_code if case == "before" else None)
                         for _ in range(workers)]
            for number, process in enumerate(processes, 1):
                rows.append((case if workers == 1 else f"{case}, worker {number}", _finish(process, started)))
    finally:
        ids_file.unlink(missing_ok=True)

    def mib(kb: int) -> str:
        return f"{kb / 1024:,.0f}"

    print(f"store {store.root} (run {args.date}), {len(ids):,} lookups per worker, {os.cpu_count()} cores")
    print("| case | ready s | CPU s | private MiB | file MiB | PSS MiB | peak RSS MiB | builder peak MiB "
          "| lookup p50 / p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        after = r["after"]
        builder = mib(r["builder_peak_kb"]) if r["builder_peak_kb"] else ""
        print(f"| {name} | {r['ready_s']:.1f} | {r['cpu_s']:.1f} | {mib(after['RssAnon'])} | {mib(after['RssFile'])} | "
              f"{mib(after['Pss'])} | {mib(after['VmHWM'])} | {builder} | "
              f"{r['lookup_p50_ms']:.2f} / {r['lookup_p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
