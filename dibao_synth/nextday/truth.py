"""The truth folder of day 2: a copy of day 1's ground truth with the changes written in, so a run on the new
drop can be scored like a run on the old one (``benchmarks/accuracy.py``)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from dibao.ingest import Drop
from dibao_synth.nextday.household import NewHousehold
from dibao_synth.nextday.summary import Change
from dibao_synth.params import ASSET_MONTHS, EDGE_MULTIPLIER, EMPLOYMENT_COST_SHARE, MONITORING_LINE_YEAR
from dibao_synth.truth import build_summary


@dataclass
class TruthEdits:
    """What changed, in the terms of the truth tables."""

    deaths: list[str] = field(default_factory=list)  # dibao_household_id
    death_person: str | None = None  # ID number
    rises: dict[str, tuple[int, float]] = field(default_factory=dict)  # dibao_household_id → (net, pcm)
    vehicles_sold: list[str] = field(default_factory=list)  # dibao_household_id
    removed_dept_rows: list[int] = field(default_factory=list)
    appended: dict[str, list[str | None]] = field(default_factory=dict)  # stem → ID per appended row
    new_household: NewHousehold | None = None


def _blank_row(schema: pl.Schema, values: dict[str, object]) -> pl.DataFrame:
    row: dict[str, object] = {c: (False if t == pl.Boolean else None) for c, t in schema.items()}
    row.update({k: v for k, v in values.items() if k in schema})
    return pl.DataFrame([row], schema=schema)


def _update_truth(truth: Path, truth_out: Path, edits: TruthEdits, rows: dict[str, int],
                  files: dict[str, dict[str, object]], day2: dt.date, info: dict[str, object]) -> None:
    hh = pl.read_parquet(truth / "households.parquet")
    persons = pl.read_parquet(truth / "persons.parquet")
    records = pl.read_parquet(truth / "records.parquet")
    relatives = pl.read_parquet(truth / "relatives.parquet")
    summary = json.loads((truth / "summary.json").read_text(encoding="utf-8"))

    on = pl.col("dibao_household_id")
    hh = hh.with_columns(
        pl.when(on.is_in(edits.deaths)).then(True).otherwise(pl.col(c)).alias(c)
        for c in ("deceased_member", "member_deceased"))
    hh = hh.with_columns(pl.when(on.is_in(edits.vehicles_sold)).then(False).otherwise(pl.col(c)).alias(c)
                         for c in ("vehicle", "vehicle_owned"))
    for household, (net, pcm) in edits.rises.items():  # one raised household
        hit = on == household
        hh = hh.with_columns(
            pl.when(hit).then(pl.lit(net)).otherwise(pl.col("net_annual_income")).alias("net_annual_income"),
            pl.when(hit).then(pl.lit(round(pcm, 2))).otherwise(pl.col("per_capita_monthly_income"))
            .alias("per_capita_monthly_income"),
            pl.when(hit).then(pl.lit("just_above")).otherwise(pl.col("income_band")).alias("income_band"),
        )

    # New monitored household and its persons.
    new = edits.new_household
    changed = pl.col("dibao_household_id").is_in(edits.deaths + list(edits.rises) + edits.vehicles_sold)
    if new is not None:
        uid = int(hh["household_uid"].max() or 0) + 1  # type: ignore[arg-type]
        size = len(new.persons)
        new_net = new.figures["wage_income"] * (1 - EMPLOYMENT_COST_SHARE) + new.figures["other_net_income"] \
            - new.figures["medical_out_of_pocket"] - new.figures["education_spending"]
        hh = pl.concat([hh, _blank_row(hh.schema, {
            "household_uid": uid, "county_code": new.county_code, "area": "农村",
            "monitoring_household_id": new.household_id, "size": size,
            "per_capita_monthly_income": round(new_net / 12 / size, 2), "standard": new.standard,
            "per_capita_assets": 0.0, "in_monitoring": True, "income_band": "eligible",
            "net_annual_income": round(new_net), "risk_eliminated": False, "risk_eliminated_below_line": False,
            "risk_eliminated_too_soon": False, "town": new.town, "village": new.village, "evidence_clear": True,
            "roll_form": "whole",
        })])
        first = int(persons["person_uid"].max() or 0) + 1  # type: ignore[arg-type]
        for i, p in enumerate(new.persons):  # 2–4 persons
            persons = pl.concat([persons, _blank_row(persons.schema, {
                "person_uid": first + i, "id_number": p["id_number"], "name": p["name"],
                "birth_date": p["birth_date"], "sex": "男" if p["male"] else "女", "household_uid": uid,
                "county_code": new.county_code, "relation": p["relation"], "age": p["age"], "minority": False,
                "twin": False, "disability_grade": 0,
            })])
        changed = changed | (pl.col("household_uid") == uid)
    # Derived conclusions of the changed households, as truth_policy.py reaches them.
    limit = pl.col("standard") * ASSET_MONTHS
    assets_ok = (pl.col("per_capita_assets") < limit) & ~pl.col("vehicle") & ~pl.col("extra_home")
    income = pl.col("per_capita_monthly_income")
    low = (pl.col("assistance_type") == "低保") & (pl.col("coverage_mode") == "整户保")
    derived = {
        "eligible": (income < pl.col("standard")) & assets_ok,
        "edge": (income >= pl.col("standard")) & (income < pl.col("standard") * EDGE_MULTIPLIER) & assets_ok,
        "income_above_standard": pl.col("on_roll") & low & (income >= pl.col("standard")),
    }
    hh = hh.with_columns(pl.when(changed).then(e).otherwise(pl.col(c)).alias(c) for c, e in derived.items())
    below_line = pl.col("net_annual_income") / pl.col("size") < MONITORING_LINE_YEAR
    joins = pl.col("eligible") & ~pl.col("on_roll") & (pl.col("in_registry") | pl.col("in_monitoring"))
    hh = hh.with_columns(
        pl.when(changed).then(joins).otherwise(pl.col(c)).alias(c)
        for c in ("missed_eligible", "income_below_standard"))
    hh = hh.with_columns(
        pl.when(changed & pl.col("in_monitoring")).then(pl.col("risk_eliminated") & below_line)
        .otherwise(pl.col("risk_eliminated_below_line")).alias("risk_eliminated_below_line"),
    )

    # Records: removed department rows renumbered, appended rows numbered after the last.
    dept = pl.col("source") == "dept_facts"
    for row in sorted(edits.removed_dept_rows, reverse=True):  # one or two removed rows
        records = records.filter(~(dept & (pl.col("row") == row))).with_columns(
            pl.when(dept & (pl.col("row") > row)).then(pl.col("row") - 1).otherwise(pl.col("row")).alias("row"))
    uid_of = dict(zip(persons["id_number"].to_list(), persons["person_uid"].to_list(), strict=True))
    hh_of = dict(zip(persons["person_uid"].to_list(), persons["household_uid"].to_list(), strict=True))
    pieces = []
    for stem, ids in edits.appended.items():  # at most two files get rows
        last = int(records.filter(pl.col("source") == stem)["row"].max() or 0)  # type: ignore[arg-type]
        person = [uid_of.get(i) for i in ids]
        pieces.append(pl.DataFrame({
            "source": [stem] * len(ids), "row": list(range(last + 1, last + 1 + len(ids))), "person_uid": person,
            "household_uid": [hh_of.get(p) if p is not None else None for p in person],
            "id_noise": [None] * len(ids), "name_noise": [None] * len(ids),
            "expected_reject_field": [None] * len(ids), "extra_enrolment": [False] * len(ids),
        }, schema=records.schema))
    if pieces:
        order = {s: i for i, s in enumerate(dict.fromkeys(records["source"].to_list() + list(edits.appended)))}
        records = pl.concat([records, *pieces]).with_columns(
            pl.col("source").replace_strict(order, return_dtype=pl.Int64).alias("__o")
        ).sort("__o", "row", maintain_order=True).drop("__o")

    new_summary = build_summary(hh, records, relatives,
                                persons.with_columns(pl.col("household_uid").fill_null(-1)), rows)
    new_summary["files"] = files
    new_summary["as_of"] = day2.isoformat()
    new_summary["seed"] = summary.get("seed")
    new_summary["next_day"] = info
    truth_out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("households", hh), ("persons", persons), ("records", records)):
        frame.write_parquet(truth_out / f"{name}.parquet", compression="zstd", statistics=False)
    shutil.copy2(truth / "relatives.parquet", truth_out / "relatives.parquet")  # unchanged
    (truth_out / "summary.json").write_text(
        json.dumps(new_summary, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")



def write_truth(truth: Path, truth_out: Path, day1_drop: Drop, frames: dict[str, pl.DataFrame], edits: TruthEdits,
                *, seed: int, day1: dt.date, day2: dt.date, changes: list[Change]) -> None:
    """Write into ``truth_out`` day 1's truth with ``edits`` applied; ``frames`` are the day-2 tables changed."""
    counts = {stem: (frames[stem].height if stem in frames else f.rows_read) for stem, f in day1_drop.files.items()}
    files: dict[str, dict[str, object]] = {
        stem: {"name": f.raw.path.name, "format": f.raw.format, "encoding": f.raw.encoding,
               "xlsx_fallback": False} for stem, f in day1_drop.files.items()}
    old = json.loads((truth / "summary.json").read_text(encoding="utf-8")).get("files", {})
    for stem, entry in files.items():  # keep the generator's note of a planned XLSX written as CSV
        entry["xlsx_fallback"] = bool(old.get(stem, {}).get("xlsx_fallback", False))
    info = {"seed": seed, "day1": day1.isoformat(), "day2": day2.isoformat(),
            "changes": [{"kind": c.kind, "household_id": c.household_id, "persons": [list(p) for p in c.persons],
                         "files": list(c.files), "expected": c.expected, "detail": c.detail} for c in changes]}
    _update_truth(truth, truth_out, edits, counts, files, day2, info)
