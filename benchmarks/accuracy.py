"""Decision accuracy: precision and recall of 应退尽退 and 应保尽保 candidates against a synthetic drop's truth.

    .venv/bin/python benchmarks/accuracy.py --households 20000 --seed 11

Generates a drop with ground truth (`dibao synth`), runs the daily job on it, and compares the published
exit/inclusion candidates with the households that truly should leave or join — per reason and overall — counting
only what the data can reveal: a roll household's current income is known only when the family is also in the
registry or monitoring files, or is judged on the roll's own assessment (a 特困 person in an institution or living
with others; the truth's `income_visible`); and a family's records must be linkable as written (the truth's
`evidence_clear`: every record of its members accepted, with an ID that is clean or only needs cleaning — not blank,
mistyped or with a wrong check digit, which linkage may or may not repair; linkage itself is scored by
benchmarks/linkage.py). A reason the data does not reveal but the engine found anyway (a 人社 payroll record showing
a roll-only family's wages, a mistyped ID repaired) counts as found; a candidate the truth does not hold whose
records are not linkable as written (a roll row rejected, so the family looks uncovered; a blank ID) is left
unscored and counted apart (`unscored`): neither the rules nor the truth can be blamed for what the data hides.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import polars as pl

# Reason codes (the truth's column names) with the condition under which the data reveals them.
_LINKABLE = pl.col("evidence_clear").fill_null(True)
_INCOME_SHOWN = pl.col("income_visible").fill_null(False) & _LINKABLE
EXIT_REASONS: dict[str, pl.Expr] = {
    "income_above_standard": _INCOME_SHOWN,
    "single_person_family_above_edge": _INCOME_SHOWN,
    "destitute_income_above_standard": _INCOME_SHOWN,
    "assets_above_limit": _LINKABLE,
    "vehicle_owned": _LINKABLE,
    "business_revenue_above_limit": _LINKABLE,
    "multiple_homes": _LINKABLE,
    "member_deceased": _LINKABLE,
    "duplicate_enrolment": _LINKABLE,
    "dibao_and_destitute": _LINKABLE,
}
INCLUSION_REASONS = ("income_below_standard", "no_work_capacity_uncovered", "destitute_eligible_uncovered")


def _pr(predicted: set[str], truth: set[str], unclear: set[str] = frozenset()) -> dict[str, float | int]:  # type: ignore[assignment]
    """Precision and recall; candidates on ``unclear`` households the truth does not hold are left unscored."""
    unscored = (predicted & unclear) - truth
    scored = predicted - unscored
    hit = len(scored & truth)
    return {
        "predicted": len(scored), "true": len(truth), "correct": hit,
        "precision": hit / len(scored) if scored else 1.0,
        "recall": hit / len(truth) if truth else 1.0,
        "unscored": len(unscored),
    }


def _ids(frame: pl.DataFrame, column: str) -> set[str]:
    return set(frame[column].drop_nulls().to_list())


def score(run: Path, truth_dir: Path) -> dict[str, dict[str, float | int]]:
    """Precision and recall overall and per reason, for the exit and inclusion lists of one published run."""
    truth = pl.read_parquet(truth_dir / "households.parquet")
    results: dict[str, dict[str, float | int]] = {}
    results.update(_score_exits(pl.read_parquet(run / "exit_candidates.parquet"), truth.filter(pl.col("on_roll"))))
    results.update(_score_inclusions(pl.read_parquet(run / "inclusion_candidates.parquet"), truth))
    return results


def _score_exits(exits: pl.DataFrame, roll: pl.DataFrame) -> dict[str, dict[str, float | int]]:
    """What the data reveals: each reason's own condition, plus any true reason the engine found some other way."""
    out: dict[str, dict[str, float | int]] = {}
    truly = pl.any_horizontal([pl.col(r).fill_null(False) for r in EXIT_REASONS])
    revealed = pl.any_horizontal([pl.col(r).fill_null(False) & shown for r, shown in EXIT_REASONS.items()])
    predicted = _ids(exits, "dibao_household_id")
    unclear = _ids(roll.filter(~_LINKABLE), "dibao_household_id")
    found = predicted & _ids(roll.filter(truly), "dibao_household_id")
    out["exit (应退尽退)"] = _pr(predicted, _ids(roll.filter(revealed), "dibao_household_id") | found, unclear)
    by_reason = exits.explode("reasons")
    for reason, shown in EXIT_REASONS.items():
        got = _ids(by_reason.filter(pl.col("reasons") == reason), "dibao_household_id")
        true_all = _ids(roll.filter(pl.col(reason).fill_null(False)), "dibao_household_id")
        shown_true = _ids(roll.filter(pl.col(reason).fill_null(False) & shown), "dibao_household_id")
        out[f"  exit: {reason}"] = _pr(got, shown_true | (got & true_all), unclear)
    return out


def _score_inclusions(inclusions: pl.DataFrame, truth: pl.DataFrame) -> dict[str, dict[str, float | int]]:
    """A family known to both registry and monitoring may be reported under either number: the registry's counts."""
    out: dict[str, dict[str, float | int]] = {}
    families = truth.filter(pl.col("in_registry") | pl.col("in_monitoring"))
    ids = pl.coalesce("registry_household_id", "monitoring_household_id")
    both = {m: r for r, m in families.select("registry_household_id", "monitoring_household_id").iter_rows()
            if r and m}
    unclear = set(families.filter(~_LINKABLE).select(ids).to_series().drop_nulls()) | {
        m for m in families.filter(~_LINKABLE)["monitoring_household_id"].drop_nulls()}

    def canonical(frame: pl.DataFrame) -> set[str]:
        return {both.get(p, p) for p in frame["household_id"].to_list()}

    def truly(condition: pl.Expr, got: set[str]) -> set[str]:
        shown = set(families.filter(condition & _LINKABLE).select(ids).to_series().drop_nulls())
        return shown | (got & set(families.filter(condition).select(ids).to_series().drop_nulls()))

    predicted = canonical(inclusions)
    any_reason = pl.any_horizontal([pl.col(r).fill_null(False) for r in INCLUSION_REASONS])
    out["inclusion (应保尽保)"] = _pr(predicted, truly(any_reason, predicted), unclear)
    by_reason = inclusions.explode("reasons")
    for reason in INCLUSION_REASONS:
        got = canonical(by_reason.filter(pl.col("reasons") == reason))
        out[f"  inclusion: {reason}"] = _pr(got, truly(pl.col(reason).fill_null(False), got), unclear)
    return out


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
    print("| list | predicted | true | correct | precision | recall | unscored |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['predicted']:,} | {r['true']:,} | {r['correct']:,} | {r['precision']:.4f} | "
              f"{r['recall']:.4f} | {r['unscored']:,} |")
    print(json.dumps({k: {m: round(float(v), 4) for m, v in r.items()} for k, r in results.items()},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
