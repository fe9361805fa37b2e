"""``python -m dibao_synth.nextday DROP OUT``: the command line, and the summary as the operator reads it."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from dibao_synth.nextday.drop import next_day
from dibao_synth.nextday.summary import KINDS, NextDaySummary


def describe(summary: NextDaySummary) -> list[str]:
    """The summary as printed: the two days, each change with its persons, files and expected effect."""
    out = [f"{summary.drop} ({summary.day1}) → {summary.out} ({summary.day2}), seed {summary.seed}"]
    for c in summary.changes:  # at most four changes
        people = "、".join(f"{name} {id_number}" for name, id_number in c.persons)
        out.append(f"- {KINDS[c.kind]}: {c.household_id} — {c.detail}")
        if people:
            out.append(f"    persons: {people}")
        out.append(f"    files: {', '.join(c.files)}; expected: {c.expected}")
    out.extend(f"- skipped: {why}" for why in summary.skipped)
    out.append(f"changed files: {', '.join(p.name for p in summary.changed_files.values()) or 'none'}; "
               f"copied unchanged: {', '.join(summary.copied_files) or 'none'}")
    if summary.truth_out is not None:
        out.append(f"truth: {summary.truth_out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dibao_synth.nextday",
                                     description="Write the next day's drop of a generated drop.")
    parser.add_argument("drop", type=Path, help="day-1 drop folder (written by dibao synth)")
    parser.add_argument("out", type=Path, help="folder for the day-2 drop")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--truth", type=Path, default=None, help="day-1 truth folder; its update goes to OUT_truth")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None, help="day-2 date (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    summary = next_day(args.drop, args.out, seed=args.seed, truth=args.truth, date=args.date)
    print("\n".join(describe(summary)))
    return 0
