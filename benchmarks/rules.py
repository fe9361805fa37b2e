"""Benchmark: rule evaluation alone at 1 million households (target < 5 s on 2 cores), and the whole daily run.

    .venv/bin/python benchmarks/rules.py --households 200000 --tile-to 1000000

Generates a drop (cached under benchmarks/work/), times the whole daily run on it stage by stage, then takes the
household facts that run assembled and tiles them (new subject ids, same figures) up to ``--tile-to`` households
to time the evaluation of every rule — the SQL pass, the traces and the three published lists — on its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
RUN_DATE = dt.date(2026, 11, 20)


def ensure_drop(households: int, seed: int) -> Path:
    folder = WORK / f"drop-{households}-{seed}-mixed"
    if not (folder / ".complete").exists():
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dibao", "synth", "--households", str(households), "--seed", str(seed),
                        "--out", str(folder), "--truth", str(folder.with_name(folder.name + "_truth"))], check=True)
        (folder / ".complete").write_text(f"{time.perf_counter() - started:.1f}\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tile-to", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from dibao.pipeline import run_daily
    from dibao.publish.store import RunStore
    from dibao.rules import load_parameters, load_rules
    from dibao.rules.decisions import exit_candidates, flags, inclusion_candidates
    from dibao.rules.evaluate import evaluate_rules

    drop = ensure_drop(args.households, args.seed)
    store = WORK / f"store-{args.households}"
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    result = run_daily(drop, RUN_DATE, RunStore(store))
    wall = time.perf_counter() - started
    timings = result.manifest["timings_seconds"]
    print(f"whole daily run, {args.households:,} households: {wall:.1f} s "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())})")

    parameters = load_parameters()
    rules = load_rules(parameters)
    facts = pl.read_parquet(result.folder / "household_facts.parquet")
    copies = max(1, -(-args.tile_to // facts.height))
    tiled = pl.concat([facts.with_columns(pl.col("subject_id") + f"-{i}") for i in range(copies)]).head(args.tile_to)
    params = parameters.resolve(RUN_DATE, tiled["county_code"].unique().to_list())
    seconds = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        decisions = evaluate_rules(tiled, params, rules, parameters)
        exit_candidates(decisions, rules, params, RUN_DATE)
        inclusion_candidates(decisions, rules, RUN_DATE)
        flags(decisions, RUN_DATE)
        seconds.append(time.perf_counter() - t0)
    print(f"rule evaluation alone: {tiled.height:,} households x {len(rules.rules)} rules -> {decisions.height:,} "
          f"decisions; median {statistics.median(seconds):.2f} s (runs: {', '.join(f'{s:.2f}' for s in seconds)})")


if __name__ == "__main__":
    main()
