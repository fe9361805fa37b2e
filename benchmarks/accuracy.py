"""Decision accuracy: precision and recall of 应退尽退 and 应保尽保 candidates against a synthetic drop's truth.

    .venv/bin/python benchmarks/accuracy.py --households 20000 --seed 11

Generates a drop with ground truth (`dibao synth`), runs the daily job on it, and compares the published
exit/inclusion candidates with the households that truly should leave or join, counting only what the data can
reveal: a roll household's current income is known only when the family is also in the registry or monitoring
files (the roll's own figure is from the last review), and the asset test needs bank results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import polars as pl

# truth column → our reason code, with the condition under which the data reveals it
EXIT_REASONS = {
    "income_above_standard": ("income_above_standard|destitute_income_above_standard",
                              pl.col("in_registry") | pl.col("in_monitoring")),
    "assets_above_limit": ("assets_above_limit", pl.lit(True)),
    "vehicle": ("vehicle_owned", pl.lit(True)),
    "business": ("business_registered", pl.lit(True)),
    "extra_home": ("multiple_homes", pl.lit(True)),
    "deceased_member": ("member_deceased", pl.lit(True)),
    "duplicate_enrolment": ("duplicate_enrolment", pl.lit(True)),
    "dibao_and_destitute": ("dibao_and_destitute", pl.lit(True)),
}
INCLUSION_REASONS = {
    "missed_eligible": "income_below_standard",
    "no_work_capacity_uncovered": "no_work_capacity_uncovered",
}


def _pr(predicted: set[str], truth: set[str]) -> dict[str, float | int]:
    hit = len(predicted & truth)
    return {
        "predicted": len(predicted), "true": len(truth), "correct": hit,
        "precision": hit / len(predicted) if predicted else 1.0,
        "recall": hit / len(truth) if truth else 1.0,
    }


def score(run: Path, truth_dir: Path) -> dict[str, dict[str, float | int]]:
    truth = pl.read_parquet(truth_dir / "households.parquet")
    exits = pl.read_parquet(run / "exit_candidates.parquet")
    inclusions = pl.read_parquet(run / "inclusion_candidates.parquet")
    roll = truth.filter(pl.col("on_roll"))
    results: dict[str, dict[str, float | int]] = {}

    # What the data reveals: the reasons' own conditions, plus any true reason the engine found some other way
    # (e.g. 人社 payroll records revealing the income of a family that is in no registry).
    truly = pl.any_horizontal([pl.col(t).fill_null(False) for t in EXIT_REASONS])
    revealed = pl.any_horizontal([pl.col(t).fill_null(False) & cond for t, (_, cond) in EXIT_REASONS.items()])
    predicted = set(exits["dibao_household_id"])
    found = predicted & set(roll.filter(truly)["dibao_household_id"].drop_nulls())
    results["exit (应退尽退)"] = _pr(predicted, set(roll.filter(revealed)["dibao_household_id"].drop_nulls()) | found)
    by_reason = exits.explode("reasons")
    for t, (code, cond) in EXIT_REASONS.items():
        got = set(by_reason.filter(pl.col("reasons").is_in(code.split("|")))["dibao_household_id"])
        true_all = set(roll.filter(pl.col(t).fill_null(False))["dibao_household_id"].drop_nulls())
        results[f"  exit: {code}"] = _pr(
            got, set(roll.filter(pl.col(t).fill_null(False) & cond)["dibao_household_id"].drop_nulls())
            | (got & true_all))

    # docs/POLICY.md#multiple_homes: at most one home. The generator's `eligible` leaves homes out, so a family
    # with a second home is not one that should join (it would fail the asset test).
    off_roll = truth.filter(~pl.col("on_roll")).with_columns(
        (pl.col("missed_eligible") & ~pl.col("extra_home").fill_null(False)).alias("missed_eligible"))
    ids = pl.coalesce("registry_household_id", "monitoring_household_id")
    should_join = off_roll.filter(pl.any_horizontal([pl.col(t).fill_null(False) for t in INCLUSION_REASONS]))
    predicted = set(inclusions["household_id"])
    # A family known to both registry and monitoring may be reported under either number.
    both = {r: m for r, m in should_join.select("registry_household_id", "monitoring_household_id").iter_rows()
            if r and m}
    predicted_canonical = {next((r for r, m in both.items() if m == p), p) for p in predicted}
    results["inclusion (应保尽保)"] = _pr(predicted_canonical, set(should_join.select(ids).to_series().drop_nulls()))
    by_reason = inclusions.explode("reasons")
    for t, code in INCLUSION_REASONS.items():
        got = {next((r for r, m in both.items() if m == p), p)
               for p in by_reason.filter(pl.col("reasons") == code)["household_id"]}
        results[f"  inclusion: {code}"] = _pr(
            got, set(off_roll.filter(pl.col(t).fill_null(False)).select(ids).to_series().drop_nulls()))
    return results


def truth_dir_of(drop: Path) -> Path:
    return drop.with_name(drop.name + "_truth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--drop", type=Path, help="an existing synthetic drop (its truth in DROP_truth)")
    args = parser.parse_args()

    from dibao.pipeline import run_daily
    from dibao.publish.store import RunStore
    from dibao_synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        drop = args.drop or Path(tmp) / "drop"
        truth = truth_dir_of(drop)
        if args.drop is None:
            generate(households=args.households, seed=args.seed, out=drop, truth_out=truth)
        started = time.perf_counter()
        result = run_daily(drop, dt.date(2026, 11, 20), RunStore(Path(tmp) / "store"))
        seconds = time.perf_counter() - started
        results = score(result.folder, truth)
    households = (pl.read_parquet(truth_dir_of(args.drop) / "households.parquet").height if args.drop
                  else args.households)
    print(f"households {households:,}: daily run {seconds:.1f} s")
    print("| list | predicted | true | correct | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['predicted']:,} | {r['true']:,} | {r['correct']:,} | {r['precision']:.4f} | "
              f"{r['recall']:.4f} |")
    print(json.dumps({k: {m: round(float(v), 4) for m, v in r.items()} for k, r in results.items()},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
