"""Benchmark: ingest and validate a whole synthetic daily drop (target: 2 million households in < 30 s on 2 cores).

    .venv/bin/python benchmarks/ingest.py --households 2000000 --repeat 3
    git worktree add /tmp/before HEAD~3 && .venv/bin/python benchmarks/ingest.py --compare-with /tmp/before

The drop is generated once with `dibao synth` (cached under benchmarks/work/), then each repetition ingests it in
a fresh Python process, so the wall time includes imports and the peak RSS is that process's alone.
Prints one Markdown table row per run and the median, ready for benchmarks/README.md. With ``--compare-with``,
runs of this checkout and of the other one alternate on the same drop, and the minimum of each and their ratio
are printed (the machine is shared: compare minima measured side by side, not figures from another day).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"

CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
started = time.perf_counter()
from dibao.ingest import ingest_drop
drop = ingest_drop(Path(sys.argv[1]))
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
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


def ingest_once(folder: Path, root: Path = ROOT) -> dict[str, object]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(root)], check=True, capture_output=True,
                         text=True)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result: dict[str, object] = json.loads(out.stdout)
    result["wall_seconds"] = wall
    result["peak_rss_mib"] = max(peak_kib, before) / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--formats", default="mixed", choices=["mixed", "csv", "parquet"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop", type=Path, help="Ingest this drop folder instead of a generated one.")
    parser.add_argument("--compare-with", type=Path, help="Another checkout (e.g. a git worktree of an earlier "
                                                          "commit) to time alternately on the same drop.")
    args = parser.parse_args()

    folder = args.drop or ensure_drop(args.households, args.seed, args.formats)
    if args.compare_with:
        compare(folder, args.compare_with, args.repeat)
        return
    size_mib = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20
    made = folder / ".complete"
    print(f"drop: {folder} ({size_mib:,.0f} MiB; generated in {made.read_text().strip() if made.exists() else '?'} s)")
    runs = [ingest_once(folder) for _ in range(args.repeat)]
    files = runs[0]["files"]
    assert isinstance(files, dict)
    rows = sum(int(f["rows"]) for f in files.values())
    for stem, f in files.items():
        print(f"  {stem:12s} {f['format']:8s} {f['encoding'] or '-':10s} {f['rows']:>12,} rows "
              f"({f['rejected_rows']:,} rejected)")
    print("| households | formats | input rows | wall s | ingest s | rows/s | peak RSS MiB | cores |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for run in [*runs, {"median": True}]:
        if "median" in run:
            wall = statistics.median(float(str(r["wall_seconds"])) for r in runs)
            ingest = statistics.median(float(str(r["seconds"])) for r in runs)
            peak = max(float(str(r["peak_rss_mib"])) for r in runs)
            label = "**median**"
        else:
            wall, ingest, peak = (float(str(run["wall_seconds"])), float(str(run["seconds"])),
                                  float(str(run["peak_rss_mib"])))
            label = f"{args.households:,}"
        print(f"| {label} | {args.formats} | {rows:,} | {wall:.1f} | {ingest:.1f} | {rows / ingest:,.0f} | "
              f"{peak:,.0f} | {os.cpu_count()} |")


def compare(folder: Path, other: Path, repeat: int) -> None:
    """Alternate runs of this checkout and ``other``; print each run, the minima and their ratio."""
    times: dict[str, list[float]] = {"this": [], "other": []}
    for _ in range(repeat):
        for label, root in (("other", other), ("this", ROOT)):
            run = ingest_once(folder, root)
            times[label].append(float(str(run["seconds"])))
            print(f"  {label:5s} ingest {run['seconds']:.2f} s, wall {run['wall_seconds']:.2f} s, "
                  f"peak {run['peak_rss_mib']:,.0f} MiB", flush=True)
    this, before = min(times["this"]), min(times["other"])
    print(f"| drop | {other} (min of {repeat}) | this checkout (min of {repeat}) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| {folder.name} | {before:.2f} s | {this:.2f} s | {this / before:.3f} |")


if __name__ == "__main__":
    main()
