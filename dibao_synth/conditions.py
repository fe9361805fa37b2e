"""What happened to people, drawn before incomes because incomes depend on it: deaths (死亡), members out of the
family (服刑 / 强制隔离戒毒 / 失踪, 民发〔2021〕57号 第七条) and serious illness (重病).

A death is in the family's figures until the roll removes the person (the family size stays; the dead are not
workers); a member out of the family leaves its size, its per-capita divisor and its property; a serious illness
lets a member be covered alone (单人保) and raises a worker's employment-cost share. The planted cases make every
drop show a death of a one-person household (exit), of a member of a larger family, recent (a re-check flag) and
overdue, and of a listed member the roll does not cover (nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao_synth.params import (
    EXCLUSION_ENDED_SHARE,
    MIN_CASES,
    OFF_ROLL_DEATH_SHARE,
    OFF_ROLL_EXCLUDED_SHARE,
    ROLL_DEATH_SHARE,
    ROLL_EXCLUDED_SHARE,
    SERIOUS_ILLNESS_SHARE,
    SINGLE_SEVERE_SHARE,
)
from dibao_synth.rollforms import severe

EXCLUDING_ITEMS = ("服刑", "强制隔离戒毒", "失踪")
EXCLUDING_WEIGHTS = np.array([0.6, 0.2, 0.2])
ILLNESSES = ("恶性肿瘤", "尿毒症", "白血病", "器官移植", "重性精神病", "耐多药肺结核")
RECHECK_DAYS = (5, 80)  # died this many days ago: inside the three-month re-check period
OVERDUE_DAYS = (100, 330)  # …and past it


@dataclass(frozen=True)
class Conditions:
    """Per person: death date, family-excluding item and its end, serious illness (null/False: none)."""

    death_date: np.ndarray  # datetime64[D], NaT: alive
    excluded_item: np.ndarray  # index into EXCLUDING_ITEMS, -1: none
    excluded_until: np.ndarray  # datetime64[D], NaT: no end given
    serious_illness: np.ndarray  # bool
    illness: np.ndarray  # index into ILLNESSES, -1: none

    def excluded(self, as_of: dt.date) -> np.ndarray:
        """Out of the family on ``as_of``: a record without an end date, or one ending after it."""
        until = self.excluded_until
        return (self.excluded_item >= 0) & (np.isnat(until) | (until > np.datetime64(as_of, "D")))


def _pick(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    idx = np.flatnonzero(pool)
    return np.sort(rng.choice(idx, size=min(k, len(idx)), replace=False)) if len(idx) else idx


def _at_least(rng: np.random.Generator, pool: np.ndarray, share: float) -> int:
    n = int(pool.sum())
    return min(n, max(MIN_CASES, int(rng.binomial(n, share)))) if n else 0


def draw_conditions(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                    as_of: dt.date) -> tuple[Conditions, pl.DataFrame]:
    """The conditions, and the persons frame with ``dead``, ``excluded`` and ``serious_illness`` columns."""
    m = persons.height
    hh_of = persons["household_uid"].to_numpy()
    in_hh = hh_of >= 0
    size = np.zeros(m, dtype=np.int64)
    size[in_hh] = households["size"].to_numpy()[hh_of[in_hh]]
    form = pl.Series(households["roll_form"].fill_null("")).to_numpy()
    p_form = np.full(m, "", dtype=object)
    p_form[in_hh] = form[hh_of[in_hh]]
    listed, covered = persons["listed"].to_numpy(), persons["covered"].to_numpy()
    on_roll = np.zeros(m, dtype=bool)
    on_roll[in_hh] = households["on_roll"].to_numpy()[hh_of[in_hh]]
    age = persons["age"].to_numpy().astype(np.int64)
    head = in_hh & (persons["member_pos"].to_numpy() == 0)
    day = np.datetime64(as_of, "D")

    death = np.full(m, np.datetime64("NaT"), dtype="datetime64[D]")
    taken = np.zeros(int(hh_of.max()) + 1 if m else 0, dtype=bool)  # one event per household

    def die(who: np.ndarray, lo: int, hi: int) -> None:
        who = who[~taken[hh_of[who]]]
        death[who] = day - rng.integers(lo, hi, len(who)).astype("timedelta64[D]")
        taken[hh_of[who]] = True

    whole_form = (p_form == "whole") | (p_form == "child_apart")
    # Planted: a one-person roll household (exit), a covered member of a larger one recently and long ago (flags),
    # a listed member the roll does not cover (nothing).
    die(_pick(rng, covered & (size == 1), MIN_CASES), *OVERDUE_DAYS)
    die(_pick(rng, covered & head & whole_form & (size >= 3), MIN_CASES), *RECHECK_DAYS)
    die(_pick(rng, covered & head & whole_form & (size >= 2), MIN_CASES), *OVERDUE_DAYS)
    die(_pick(rng, listed & ~covered, MIN_CASES), *OVERDUE_DAYS)
    # Others: mostly the head (often the oldest), on and off the roll.
    roll_pool = covered & ((head & (rng.random(m) < 0.7)) | ~head)
    die(_pick(rng, roll_pool, _at_least(rng, covered & head, ROLL_DEATH_SHARE)), RECHECK_DAYS[0], OVERDUE_DAYS[1])
    off = in_hh & ~on_roll & head
    die(_pick(rng, off, int(rng.binomial(int(off.sum()), OFF_ROLL_DEATH_SHARE))), RECHECK_DAYS[0], OVERDUE_DAYS[1])

    # Out of the family: an adult member other than the head of a 整户保 household (never its only covered member).
    item = np.full(m, -1, dtype=np.int64)
    until = np.full(m, np.datetime64("NaT"), dtype="datetime64[D]")
    adult = in_hh & ~head & (age >= 18) & (age < 70) & np.isnat(death) & ~taken_of(taken, hh_of)
    roll_out = _pick(rng, adult & covered & (p_form == "whole"), _at_least(rng, covered & head, ROLL_EXCLUDED_SHARE))
    off_pool = adult & ~on_roll
    off_out = _pick(rng, off_pool, int(rng.binomial(int(off_pool.sum()), OFF_ROLL_EXCLUDED_SHARE)))
    out = np.concatenate([roll_out, off_out])
    item[out] = rng.choice(len(EXCLUDING_ITEMS), size=len(out), p=EXCLUDING_WEIGHTS)
    ended = rng.random(len(out)) < EXCLUSION_ENDED_SHARE
    ends = np.where(ended, -rng.integers(10, 300, len(out)), rng.integers(60, 2000, len(out)))
    until[out] = day + ends.astype("timedelta64[D]")
    missing = item[out] == EXCLUDING_ITEMS.index("失踪")
    until[out[missing & ~ended]] = np.datetime64("NaT")  # 失踪: no end date

    # 重病: most 单人保 members without a severe disability, and a few people anywhere.
    is_severe = severe(persons["disability_grade"].to_numpy(), persons["disability_type"].to_numpy())
    single = covered & np.isin(p_form, ["single_only", "single_listed"])
    ill = np.zeros(m, dtype=bool)
    ill[_pick(rng, single & ~is_severe, _ill_singles(single, is_severe))] = True
    ill |= in_hh & np.isnat(death) & (item < 0) & (rng.random(m) < SERIOUS_ILLNESS_SHARE)
    illness = np.where(ill, rng.integers(0, len(ILLNESSES), m), -1)

    conditions = Conditions(death, item, until, ill, illness)
    persons = persons.with_columns(
        pl.Series("death_date", death),
        pl.Series("excluded", conditions.excluded(as_of)),
        pl.Series("serious_illness", ill),
    )
    return conditions, persons


def taken_of(taken: np.ndarray, hh_of: np.ndarray) -> np.ndarray:
    """Per person: whether their household already has an event."""
    out = np.zeros(len(hh_of), dtype=bool)
    inside = hh_of >= 0
    out[inside] = taken[hh_of[inside]]
    return out


def _ill_singles(single: np.ndarray, is_severe: np.ndarray) -> int:
    """How many 单人保 members without a severe disability get a 重病 record: about SINGLE_SEVERE_SHARE of all
    单人保 members qualify, and at least one never does (a check in every drop that has one)."""
    n = int(single.sum())
    without = int((single & ~is_severe).sum())
    wanted = round(SINGLE_SEVERE_SHARE * n) - (n - without)
    return int(np.clip(wanted, 0, max(without - 1, 0)))


def condition_rows(conditions: Conditions, as_of: dt.date, rng: np.random.Generator) -> pl.DataFrame:
    """The department rows: 死亡 (公安局), 服刑 (司法局) / 强制隔离戒毒 / 失踪 (公安局), 重病 (医保局)."""
    day = np.datetime64(as_of, "D")
    dead = np.flatnonzero(~np.isnat(conditions.death_date))
    died = conditions.death_date[dead]
    reported = np.minimum(died + rng.integers(1, 40, len(dead)).astype("timedelta64[D]"), day - 1)
    out = np.flatnonzero(conditions.excluded_item >= 0)
    ill = np.flatnonzero(conditions.illness >= 0)
    items = pl.Series(list(EXCLUDING_ITEMS)).gather(conditions.excluded_item[out])
    department = pl.Series(["司法局", "公安局", "公安局"]).gather(conditions.excluded_item[out])
    frames = [
        _rows(dead, "公安局", pl.repeat("死亡", len(dead), eager=True), pl.Series(died).dt.strftime("%Y-%m-%d"),
              reported),
        _rows(out, department, items, pl.Series(conditions.excluded_until[out]).dt.strftime("%Y-%m-%d"),
              day - rng.integers(1, 60, len(out)).astype("timedelta64[D]")),
        _rows(ill, "医保局", pl.repeat("重病", len(ill), eager=True),
              pl.Series(list(ILLNESSES)).gather(conditions.illness[ill]),
              day - rng.integers(1, 40, len(ill)).astype("timedelta64[D]")),
    ]
    return pl.concat(frames)


def _rows(person: np.ndarray, department: str | pl.Series, item: pl.Series, value: pl.Series,
          date: np.ndarray) -> pl.DataFrame:
    k = len(person)
    dept = department if isinstance(department, pl.Series) else pl.repeat(department, k, eager=True)
    return pl.DataFrame({
        "person_uid": person.astype(np.int64),
        "department": dept.cast(pl.String),
        "item": item.cast(pl.String),
        "value": value.cast(pl.String),
        "kind": pl.repeat(None, k, dtype=pl.String, eager=True),
        "as_of": pl.Series(date.astype("datetime64[D]")),
    })
