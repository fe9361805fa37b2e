"""The four changes of one night, each made on the day-2 tables and noted for the summary and the truth:

1. **a death** (死亡): 公安局 reports that the one member of a one-person roll household died (one ``dept_facts``
   row; the benefit stops: member_deceased);
2. **an income rise** (渐退): a wage rise lifts a roll household's per-capita income just above its standard
   (``wage_income`` in the registry and/or monitoring rows of that family);
3. **a newly monitored household**: 2–4 persons identified today as 突发严重困难户, well below the standard and not
   covered (rows appended to ``monitoring``);
4. **a vehicle sold** (optional): the only 机动车 record of a roll household whose vehicle is its only exit reason
   is gone from ``dept_facts``.

Each change draws from its own random stream and never touches a household an earlier change chose.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from dibao.ingest import Drop
from dibao_synth.facts import DEPARTMENTS
from dibao_synth.nextday.choose import (
    CLEAR_INCOME_SHARE,
    age_on,
    income_known_first,
    name_of,
    pick,
    rows_of,
)
from dibao_synth.nextday.files import AsWritten, append_rows, money, set_values
from dibao_synth.nextday.household import SUDDEN_HARDSHIP, new_household
from dibao_synth.nextday.summary import Change
from dibao_synth.nextday.truth import TruthEdits
from dibao_synth.params import EMPLOYMENT_COST_SHARE

RISE_RANGE = (1.02, 1.10)  # the raised household's per-capita income lands this far above its standard
MAX_RAISE = 1.5  # prefer households where a wage rise of at most 50 % does it
ELDERLY_AGE = 60


@dataclass
class Night:
    """Day 1 as read, the day-2 tables being edited, and what has been changed so far."""

    day1: Drop
    recs: pl.DataFrame  # day_one_records
    roll: pl.DataFrame  # roll_households
    day2: dt.date
    tables: dict[str, AsWritten]  # registry, monitoring, dept_facts as written on day 1
    frames: dict[str, pl.DataFrame]  # the same tables as they will be written on day 2
    changes: list[Change] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    truth: TruthEdits = field(default_factory=TruthEdits)
    used: set[str] = field(default_factory=set)  # roll households already changed
    new_dept_rows: list[dict[str, str | None]] = field(default_factory=list)

    def clearly_eligible(self) -> pl.Expr:
        return pl.col("clean") & (pl.col("pcm") < pl.col("standard") * CLEAR_INCOME_SHARE)


def add_death(night: Night, rng: np.random.Generator) -> None:
    """1. A death: the one member (an elderly one where there is one) of a one-person roll household with no exit
    reason — every covered member dead stops the benefit (member_deceased). In a larger family a death is a
    re-check flag (member_deceased_recheck), not a change of the lists."""
    if "dept_facts" not in night.tables:
        night.skipped.append("death: the drop has no dept_facts file")
        return
    day2, recs = night.day2, night.recs
    pool = income_known_first(night.roll.filter(night.clearly_eligible() & (pl.col("vehicles") == 0)
                                                & (pl.col("size") == 1))).select(
        "dibao_household_id", "ids").explode("ids").rename({"ids": "id"})
    pool = pool.with_columns(pl.col("id").map_elements(lambda i: age_on(i, day2), return_dtype=pl.Int64)
                             .alias("age"))
    if pool.filter(pl.col("age") >= ELDERLY_AGE).height:
        pool = pool.filter(pl.col("age") >= ELDERLY_AGE)
    if not pool.height:
        night.skipped.append("death: no roll household qualifies")
        return
    chosen = pick(rng, pool)
    household, id_number = str(chosen["dibao_household_id"]), str(chosen["id"])
    name = name_of(recs, id_number)
    night.new_dept_rows.append({"id_number": id_number, "name": name, "department": DEPARTMENTS["死亡"],
                                "item": "死亡", "value": day2.isoformat(), "as_of": day2.isoformat()})
    night.used.add(household)
    night.truth.deaths.append(household)
    night.truth.death_person = id_number
    night.changes.append(Change("death", household, ((name, id_number),), ("dept_facts",),
                                f"{name} ({chosen['age']}岁) died on {day2}; 公安局 死亡 record added",
                                "exit_candidates: member_deceased (added)"))


def raise_income(night: Night, rng: np.random.Generator) -> None:
    """2. An income rise: a 低保 household clearly inside every test gets a raise that lifts it 2–10 % above."""
    recs, tables, frames = night.recs, night.tables, night.frames
    pool = night.roll.filter(pl.col("clean") & (pl.col("vehicles") == 0) & (pl.col("assistance_type") == "低保")
                             & (pl.col("share_items").fill_null(0) == 0)
                             & pl.col("income_households").is_not_null()
                             & (pl.col("pcm") < pl.col("standard") - 0.01)
                             & ~pl.col("dibao_household_id").is_in(list(night.used)))
    # A wage rise needs someone earning wages, and a plausible one: the smallest raises that do it.
    keep = 1 - EMPLOYMENT_COST_SHARE
    needed = (pl.col("standard") * sum(RISE_RANGE) / 2 * 12 * pl.col("size") - pl.col("rest")) / keep / pl.col("wage")
    earning = pool.filter(pl.col("wage") > 0).with_columns(needed.alias("raise")).sort("raise", "dibao_household_id")
    if earning.height:
        modest = earning.filter(pl.col("raise") <= MAX_RAISE)
        pool = modest if modest.height else earning.head(3)
    if not pool.height:
        night.skipped.append("income rise: no 低保 household in the registry or monitoring qualifies")
        return
    chosen = pick(rng, pool)
    household, size, standard = str(chosen["dibao_household_id"]), int(chosen["size"]), int(chosen["standard"])
    wage, rest = float(chosen["wage"]), float(chosen["rest"])
    target = float(rng.uniform(RISE_RANGE[0], RISE_RANGE[1] - 0.01)) * standard * 12 * size
    new_wage = math.ceil((target - rest) / keep / 5) * 5
    net = new_wage * keep + rest
    pcm = net / 12 / size
    assert RISE_RANGE[0] <= pcm / standard <= RISE_RANGE[1] and new_wage > wage
    keys = [str(k) for k in chosen["income_households"]]
    for key in keys:  # the registry and/or monitoring entry of the family
        stem = key.split(":", 1)[0]
        rows = rows_of(recs, key)
        frames[stem] = set_values(frames[stem], str(tables[stem].header("wage_income")), rows, money(new_wage))
        per_capita_header = tables[stem].header("per_capita_net_income")
        if stem == "registry" and per_capita_header:
            frames[stem] = set_values(frames[stem], per_capita_header, rows, money(round(net / size, 2)))
    night.used.add(household)
    night.truth.rises[household] = (round(net), pcm)
    ids = [str(i) for i in chosen["ids"]]
    night.changes.append(Change(
        "income_rise", household, tuple((name_of(recs, i), i) for i in ids),
        tuple(sorted({k.split(":", 1)[0] for k in keys})),
        f"工资性收入 {money(wage)} → {money(new_wage)} yuan/yr: per-capita monthly income "
        f"{chosen['pcm']:.2f} → {pcm:.2f} against a standard of {standard} ({pcm / standard - 1:+.1%})",
        "exit_candidates: income_above_standard with grace_until (added)", tuple(keys),
        {"wage_before": wage, "wage_after": float(new_wage), "pcm_before": round(float(chosen["pcm"]), 2),
         "pcm_after": round(pcm, 2), "standard": float(standard)}))


def add_monitored_household(night: Night, rng: np.random.Generator) -> None:
    """3. A newly monitored household, identified today, well below the standard and not covered."""
    if "monitoring" not in night.tables:
        night.skipped.append("new monitored household: the drop has no monitoring file")
        return
    new = new_household(rng, night.day1, night.recs, night.day2)
    if new is None:
        night.skipped.append("new monitored household: no village to place it in")
        return
    night.frames["monitoring"] = append_rows(night.tables["monitoring"], night.frames["monitoring"], new.rows)
    night.truth.new_household = new
    night.truth.appended["monitoring"] = [str(p["id_number"]) for p in new.persons]
    size = len(new.persons)
    net = (new.figures["wage_income"] * (1 - EMPLOYMENT_COST_SHARE) + new.figures["other_net_income"]
           - new.figures["medical_out_of_pocket"] - new.figures["education_spending"])
    night.changes.append(Change(
        "new_monitored", new.household_id, tuple((str(p["name"]), str(p["id_number"])) for p in new.persons),
        ("monitoring",),
        f"{SUDDEN_HARDSHIP} ({new.risk_type}) in {new.town}{new.village}, {size} persons, identified {night.day2}: "
        f"per-capita monthly income {net / 12 / size:.2f} against a standard of {new.standard}",
        "inclusion_candidates: income_below_standard (added)", (),
        {"pcm": round(net / 12 / size, 2), "standard": float(new.standard)}))


def sell_vehicle(night: Night, rng: np.random.Generator) -> None:
    """4. A vehicle sold: a household whose single countable vehicle is its only exit reason."""
    if "dept_facts" not in night.tables:
        return
    recs, frames = night.recs, night.frames
    pool = income_known_first(night.roll.filter(night.clearly_eligible() & (pl.col("vehicles") == 1)
                                                & ~pl.col("dibao_household_id").is_in(list(night.used))))
    if not pool.height:
        night.skipped.append("vehicle sold: no roll household whose only exit reason is one vehicle")
        return
    chosen = pick(rng, pool)
    household = str(chosen["dibao_household_id"])
    rows = [int(x) for x in chosen["vehicle_rows"]]
    sold = recs.filter((pl.col("source") == "dept_facts") & pl.col("row").is_in(rows))
    id_number = str(sold["id"][0])
    plate = frames["dept_facts"].row(rows[0] - 1, named=True)[str(night.tables["dept_facts"].header("value"))]
    frames["dept_facts"] = frames["dept_facts"].with_row_index("__r", offset=1).filter(
        ~pl.col("__r").is_in(rows)).drop("__r")
    night.truth.vehicles_sold.append(household)
    night.truth.removed_dept_rows.extend(rows)
    night.changes.append(Change("vehicle_sold", household, ((name_of(recs, id_number), id_number),),
                                ("dept_facts",), f"机动车 {str(plate).strip()} no longer registered (sold)" + (
                                    "" if chosen["income_households"] is not None
                                    else "; income known only from the roll's last assessment"),
                                "exit_candidates: vehicle_owned resolved (resolved)"))


def add_department_rows(night: Night) -> None:
    """The department rows the changes added (the death), after the ones removed (the vehicle)."""
    if night.new_dept_rows:
        night.frames["dept_facts"] = append_rows(night.tables["dept_facts"], night.frames["dept_facts"],
                                                 night.new_dept_rows)
        night.truth.appended["dept_facts"] = [r["id_number"] for r in night.new_dept_rows]
