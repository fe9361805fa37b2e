"""Benchmark: ingest and validate a whole synthetic daily drop (target: 2 million households in < 30 s on 2 cores).

    .venv/bin/python benchmarks/ingest.py --households 2000000 --repeat 3
    .venv/bin/python benchmarks/ingest.py --drop benchmarks/work/drop-200000 --repeat 5
    git worktree add /tmp/before HEAD~3 && .venv/bin/python benchmarks/ingest.py --compare-with /tmp/before

The drop is generated once with `dibao synth` (cached under benchmarks/work/), then each repetition ingests it in
a fresh Python process as the daily run does (``ingest_drop`` with the header table and a run date, no cache), so
the wall time includes imports; the peak RSS is that child's alone (``wait4``), as is its CPU time (all threads).
Prints one Markdown table row per run, the median and the minimum, ready for benchmarks/README.md. With
``--compare-with``, runs of this checkout and of the other one alternate on the same drop, and the minimum of each
and their ratio are printed (the machine is shared: compare minima measured side by side, not figures from another
day). At 2 million households, run it under ``flock /tmp/dibao-2m.lock`` (other 16 GiB jobs take that lock).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"

CHILD = r"""
import datetime as dt, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
started = time.perf_counter()
from dibao.headers import load_header_table
from dibao.ingest import ingest_drop
loaded = time.perf_counter()
headers = load_header_table()
cache = None
if len(sys.argv) > 3:  # a fresh cache, written as the daily run writes it on a first day
    from dibao.publish.cache import RunCache
    cache = RunCache.for_store(Path(sys.argv[3]), headers)
drop = ingest_drop(Path(sys.argv[1]), headers=headers, run_date=dt.date(2026, 12, 1), cache=cache)
done = time.perf_counter()
print(json.dumps({
    "seconds": done - loaded,
    "files": {s: {"format": f.raw.format, "encoding": f.raw.encoding, "rows": f.rows_read,
                  "accepted": f.accepted.height, "rejected_rows": f.rows_read - f.accepted.height}
              for s, f in drop.files.items()},
}))
"""


def ensure_drop(households: int, seed: int, formats: str) -> Path:
    folder = WORK / f"drop-{households}-{seed}-{formats}"
    if (folder / ".complete").exists():
        return folder
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dibao", "synth", "--households", str(households), "--seed", str(seed),
         "--out", str(folder), "--truth", str(folder.with_name(folder.name + "_truth")), "--formats", formats],
        check=True,
    )
    (folder / ".complete").write_text(f"{time.perf_counter() - started:.1f}\n")
    return folder


def ingest_once(folder: Path, root: Path = ROOT, cache: bool = False) -> dict[str, object]:
    """One fresh child process ingesting ``folder`` with the code of ``root``: its figures and the child's own wall
    seconds, peak RSS and CPU seconds (user + system, every thread). ``cache``: each file is also saved to a fresh
    cache, as the daily run does on a day whose files it has not seen."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as store:
        command = [sys.executable, "-c", CHILD, str(folder), str(root), *([store] if cache else [])]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        assert child.stdout is not None
        out = child.stdout.read()
        child.stdout.close()
        _, status, usage = os.wait4(child.pid, 0)  # reaped here, so that its own usage can be read
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"the ingest child failed:\n{err.read().decode('utf-8', 'replace')[-2000:]}")
    result: dict[str, object] = json.loads(out)
    result["wall_seconds"] = wall
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--formats", default="mixed", choices=["mixed", "csv", "parquet"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop", type=Path, help="Ingest this drop folder instead of a generated one.")
    parser.add_argument("--cache", action="store_true", help="Save each file to a fresh cache as it is read, as "
                                                              "the daily run does on a first day.")
    parser.add_argument("--compare-with", type=Path, help="Another checkout (e.g. a git worktree of an earlier "
                                                          "commit) to time alternately on the same drop.")
    args = parser.parse_args()

    folder = args.drop or ensure_drop(args.households, args.seed, args.formats)
    if args.compare_with:
        compare(folder, args.compare_with, args.repeat, args.cache)
        return
    size_mib = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20
    made = folder / ".complete"
    print(f"drop: {folder} ({size_mib:,.0f} MiB; generated in {made.read_text().strip() if made.exists() else '?'} s)")
    runs = [ingest_once(folder, cache=args.cache) for _ in range(args.repeat)]
    files = runs[0]["files"]
    assert isinstance(files, dict)
    rows = sum(int(f["rows"]) for f in files.values())
    for stem, f in files.items():
        print(f"  {stem:12s} {f['format']:8s} {f['encoding'] or '-':10s} {f['rows']:>12,} rows "
              f"({f['rejected_rows']:,} rejected)")
    print("| households | formats | input rows | wall s | ingest s | CPU s | rows/s | peak RSS MiB | cores |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    label = f"{args.households:,}" if not args.drop else folder.name
    for run in runs:
        _row(label, args.formats, rows, run)
    for name, pick in (("**median**", statistics.median), ("**minimum**", min)):
        _row(name, args.formats, rows, {key: pick(float(str(r[key])) for r in runs)
                                        for key in ("wall_seconds", "seconds", "cpu_seconds", "peak_rss_mib")})


def _row(label: str, formats: str, rows: int, run: dict[str, object]) -> None:
    ingest = float(str(run["seconds"]))
    print(f"| {label} | {formats} | {rows:,} | {float(str(run['wall_seconds'])):.1f} | {ingest:.1f} | "
          f"{float(str(run['cpu_seconds'])):.1f} | {rows / ingest:,.0f} | {float(str(run['peak_rss_mib'])):,.0f} | "
          f"{os.cpu_count()} |")


def compare(folder: Path, other: Path, repeat: int, cache: bool = False) -> None:
    """Alternate runs of this checkout and ``other``; print each run, then per side the minimum ingest seconds,
    the minimum CPU seconds and the highest peak RSS, and the ratios."""
    runs: dict[str, list[dict[str, object]]] = {"other": [], "this": []}
    for _ in range(repeat):
        for label, root in (("other", other), ("this", ROOT)):
            run = ingest_once(folder, root, cache)
            runs[label].append(run)
            print(f"  {label:5s} ingest {run['seconds']:.2f} s, wall {run['wall_seconds']:.2f} s, "
                  f"CPU {run['cpu_seconds']:.2f} s, peak {run['peak_rss_mib']:,.0f} MiB", flush=True)

    def pick(label: str, key: str, how: Callable[[list[float]], float]) -> float:
        return how([float(str(r[key])) for r in runs[label]])

    print(f"| drop | side | ingest s (min of {repeat}) | CPU s (min) | peak RSS MiB (max) |")
    print("|---|---|---:|---:|---:|")
    for label, name in (("other", str(other)), ("this", "this checkout")):
        print(f"| {folder.name} | {name} | {pick(label, 'seconds', min):.2f} | {pick(label, 'cpu_seconds', min):.2f} | "
              f"{pick(label, 'peak_rss_mib', max):,.0f} |")
    print(f"| | ratio | {pick('this', 'seconds', min) / pick('other', 'seconds', min):.3f} | "
          f"{pick('this', 'cpu_seconds', min) / pick('other', 'cpu_seconds', min):.3f} | "
          f"{pick('this', 'peak_rss_mib', max) / pick('other', 'peak_rss_mib', max):.3f} |")


if __name__ == "__main__":
    main()
