"""``next_day``: read day 1 through ingestion, make the night's changes, write day 2 (and its truth)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np

from dibao.headers import load_header_table
from dibao.ingest import Drop, ingest_drop
from dibao.ingest.read import SUPPORTED_SUFFIXES
from dibao.schema import FILE_SPECS
from dibao_synth.nextday.choose import day_one_records, roll_households
from dibao_synth.nextday.edits import (
    Night,
    add_death,
    add_department_rows,
    add_monitored_household,
    raise_income,
    sell_vehicle,
)
from dibao_synth.nextday.files import read_as_written, write_as_written
from dibao_synth.nextday.summary import NextDaySummary
from dibao_synth.nextday.truth import write_truth

# The files a change may rewrite; every other file of the drop is copied byte for byte.
EDITED_STEMS = ("registry", "monitoring", "dept_facts")


def _day_one(drop: Drop, truth: Path | None) -> dt.date:
    """The drop's own date: the truth's ``as_of``, else the day after its latest bank query or department record."""
    if truth is not None and (truth / "summary.json").is_file():
        as_of = json.loads((truth / "summary.json").read_text(encoding="utf-8")).get("as_of")
        if as_of:
            return dt.date.fromisoformat(as_of)
    latest = [d for d in (drop.frame_or_empty("bank_assets")["query_date"].max(),
                          drop.frame_or_empty("dept_facts")["as_of"].max()) if isinstance(d, dt.date)]
    if not latest:
        raise ValueError("cannot tell the drop's date: give date= (the day-2 date) or truth=")
    return max(latest) + dt.timedelta(days=1)


def next_day(drop: Path, out: Path, *, seed: int = 1, truth: Path | None = None,
             date: dt.date | None = None) -> NextDaySummary:
    """Write into ``out`` the drop of the day after ``drop``, with a death, an income rise, a newly monitored
    household and (when one qualifies) a vehicle sold; update a copy of ``truth`` as ``<out>_truth``.

    ``date`` is the day-2 date; by default the day after the truth's ``as_of`` or, without truth, after the day
    the drop was made (the day after its latest bank query or department record: exact for a generated drop; pass
    ``date`` for a drop that ``next_day`` itself wrote).
    """
    drop, out = Path(drop), Path(out)
    if out.resolve() == drop.resolve():
        raise ValueError("out must be another folder than the day-1 drop")
    day1_drop = ingest_drop(drop, headers=load_header_table(), keep_raw=True)  # its text is rewritten
    day2 = date or _day_one(day1_drop, truth) + dt.timedelta(days=1)
    day1 = day2 - dt.timedelta(days=1)
    recs = day_one_records(day1_drop, day2)
    tables = {stem: read_as_written(f) for stem, f in day1_drop.files.items() if stem in EDITED_STEMS}
    night = Night(day1_drop, recs, roll_households(day1_drop, recs), day2, tables,
                  {stem: t.frame for stem, t in tables.items()})

    def rng(step: int) -> np.random.Generator:
        return np.random.default_rng([seed, step, day2.toordinal()])  # another day, other changes

    add_death(night, rng(1))
    raise_income(night, rng(2))
    add_monitored_household(night, rng(3))
    sell_vehicle(night, rng(4))
    add_department_rows(night)

    changed, copied = _write_day_two(night, drop, out)
    truth_out = None
    if truth is not None:
        truth_out = out.with_name(out.name + "_truth")
        write_truth(Path(truth), truth_out, day1_drop, night.frames, night.truth, seed=seed, day1=day1, day2=day2,
                    changes=night.changes)
    return NextDaySummary(drop, out, truth_out, seed, day1, day2, tuple(night.changes), changed, tuple(copied),
                          tuple(night.skipped))


def _write_day_two(night: Night, drop: Path, out: Path) -> tuple[dict[str, Path], list[str]]:
    """Changed files rewritten in their own format, everything else copied byte for byte."""
    out.mkdir(parents=True, exist_ok=True)
    for stem in FILE_SPECS:  # remove a previous day's files of another format (two files for one stem)
        for suffix in SUPPORTED_SUFFIXES:
            (out / f"{stem}{suffix}").unlink(missing_ok=True)
    changed_stems = {s for c in night.changes for s in c.files}
    changed: dict[str, Path] = {}
    copied: list[str] = []
    for path in sorted(drop.iterdir()):  # the files of the drop
        if not path.is_file() or path.name.startswith((".", "~$")):
            continue
        stem = path.stem.lower()
        if stem in changed_stems and stem in night.tables and night.tables[stem].path == path:
            changed[stem] = write_as_written(night.tables[stem], night.frames[stem], out)
        else:
            shutil.copy2(path, out / path.name)
            copied.append(path.name)
    return changed, copied
