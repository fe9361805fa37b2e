"""Other departments' facts (部门核对数据): deaths, vehicles, homes, businesses, wages, public payroll, disability.

Each fact is one row (person, department, item, value, date). The household-level truth the tests score against
(has a vehicle, an active business, a second home, a deceased member) is derived from the very same rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao_synth.params import (
    CLOSED_BUSINESS_SHARE,
    COUNTIES,
    EXEMPT_VEHICLE_SHARE,
    EXTRA_HOME_SHARE,
    HOME_FACT_SHARE,
    MIN_CASES,
    OFF_ROLL_BUSINESS_SHARE,
    OFF_ROLL_DEATH_SHARE,
    OFF_ROLL_VEHICLE_SHARE,
    PUBLIC_PAYROLL_SHARE,
    ROLL_BUSINESS_SHARE,
    ROLL_DEATH_SHARE,
    ROLL_VEHICLE_SHARE,
    WAGE_FACT_SHARE,
)
from dibao_synth.population import DISABILITY_TYPES, GRADE_LABELS

EXEMPT_VEHICLE = "残疾人机动轮椅车"
DEPARTMENTS = {"死亡": "公安局", "机动车": "交通运输局", "不动产": "自然资源局", "工商登记": "市场监管局",
               "工资收入": "人社局", "财政供养": "财政局", "残疾等级": "残联"}
_PLATE_CHARS = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", dtype=np.uint8)


@dataclass(frozen=True)
class Facts:
    """The department rows and the household-level truth derived from them."""

    rows: pl.DataFrame  # person_uid, department, item, value, as_of (Date)
    household_flags: pl.DataFrame  # household_uid, vehicle, business, extra_home, deceased_member, public_payroll


def _choose_households(rng: np.random.Generator, on_roll: np.ndarray, roll_share: float,
                       off_share: float) -> np.ndarray:
    """Households given a fact: shares differ on and off the roll; at least MIN_CASES on the roll."""
    chosen = rng.random(len(on_roll)) < np.where(on_roll, roll_share, off_share)
    roll_idx = np.flatnonzero(on_roll)
    short = MIN_CASES - int((chosen & on_roll).sum())
    if short > 0 and len(roll_idx):
        chosen[rng.choice(roll_idx, size=min(short, len(roll_idx)), replace=False)] = True
    return np.flatnonzero(chosen)


def _member(rng: np.random.Generator, hh: np.ndarray, first: np.ndarray, size: np.ndarray,
            head_share: float) -> np.ndarray:
    """The head (with probability ``head_share``) or a random member of each household."""
    rand = first[hh] + np.floor(rng.random(len(hh)) * size[hh]).astype(np.int64)
    return np.where(rng.random(len(hh)) < head_share, first[hh], rand)


def _strings(values: list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(idx.astype(np.int64))


def _frame(item: str, person: np.ndarray, value: pl.Series, date: np.ndarray) -> pl.DataFrame:
    k = len(person)
    return pl.DataFrame({
        "person_uid": person.astype(np.int64),
        "department": _strings([DEPARTMENTS[item]], np.zeros(k, dtype=np.int64)),
        "item": _strings([item], np.zeros(k, dtype=np.int64)),
        "value": value,
        "as_of": date,
    })


def build_facts(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                as_of: dt.date) -> Facts:
    n = households.height
    on_roll = households["on_roll"].to_numpy()
    first = households["first_person"].to_numpy()
    size = households["size"].to_numpy()
    county = households["county_idx"].to_numpy()
    day = np.datetime64(as_of, "D")

    def fact_dates(k: int) -> np.ndarray:
        return day - rng.integers(1, 41, k).astype("timedelta64[D]")

    frames: list[pl.DataFrame] = []
    flags = {name: np.zeros(n, dtype=bool)
             for name in ("vehicle", "business", "extra_home", "deceased_member", "public_payroll")}

    # 死亡: a member (usually the head, often the oldest) died 1–11 months ago and is still listed.
    hh = _choose_households(rng, on_roll, ROLL_DEATH_SHARE, OFF_ROLL_DEATH_SHARE)
    who = _member(rng, hh, first, size, 0.7)
    died = day - rng.integers(5, 330, len(hh)).astype("timedelta64[D]")
    frames.append(_frame("死亡", who, pl.Series(died).dt.strftime("%Y-%m-%d"),
                         np.maximum(died, fact_dates(len(hh)))))
    flags["deceased_member"][hh] = True

    # 机动车: a plate of the prefecture, or an exempt disability vehicle.
    hh = _choose_households(rng, on_roll, ROLL_VEHICLE_SHARE, OFF_ROLL_VEHICLE_SHARE)
    who = _member(rng, hh, first, size, 0.6)
    exempt = rng.random(len(hh)) < EXEMPT_VEHICLE_SHARE
    exempt[np.flatnonzero(on_roll[hh])[:MIN_CASES]] = False  # some countable vehicles on the roll in any drop
    if len(hh) > 2 * MIN_CASES and not exempt.any():
        exempt[-1] = True
    prefixes = [c.plate_prefix for c in COUNTIES]
    codes = _PLATE_CHARS[rng.integers(0, len(_PLATE_CHARS), (len(hh), 5))]
    codes[:, 1:] = _PLATE_CHARS[rng.integers(0, 10, (len(hh), 4))]  # mostly digits after the first
    tail = pl.Series(codes.reshape(-1).view("S5") if len(hh) else np.array([], dtype="S5")).cast(pl.String)
    plate = pl.DataFrame({"p": _strings(prefixes, county[hh]), "t": tail, "e": exempt}).select(
        pl.when("e").then(pl.lit(EXEMPT_VEHICLE)).otherwise(pl.concat_str(["p", "t"]))).to_series()
    frames.append(_frame("机动车", who, plate, fact_dates(len(hh))))
    flags["vehicle"][hh[~exempt]] = True

    # 不动产: number of homes registered to the head; some own two or more.
    hh = np.flatnonzero(rng.random(n) < HOME_FACT_SHARE)
    extra = rng.random(len(hh)) < EXTRA_HOME_SHARE
    roll_hh = np.flatnonzero(on_roll[hh] & ~extra)
    short = MIN_CASES - int((extra & on_roll[hh]).sum())
    if short > 0 and len(roll_hh):
        extra[rng.choice(roll_hh, size=min(short, len(roll_hh)), replace=False)] = True
    homes = np.where(extra, rng.choice([2, 3], size=len(hh), p=[0.85, 0.15]), 1)
    frames.append(_frame("不动产", first[hh], pl.Series(homes).cast(pl.String), fact_dates(len(hh))))
    flags["extra_home"][hh[extra]] = True

    # 工商登记: 存续 (active, fails the asset test) or 注销 (closed).
    hh = _choose_households(rng, on_roll, ROLL_BUSINESS_SHARE, OFF_ROLL_BUSINESS_SHARE)
    who = _member(rng, hh, first, size, 0.7)
    closed = rng.random(len(hh)) < CLOSED_BUSINESS_SHARE
    closed[np.flatnonzero(on_roll[hh])[:MIN_CASES]] = False  # some active businesses on the roll in any drop
    frames.append(_frame("工商登记", who, _strings(["存续", "注销"], closed.astype(np.int64)),
                         fact_dates(len(hh))))
    flags["business"][hh[~closed]] = True

    # 工资收入: a 人社局 payroll record (yuan/month) for one worker of some households with wages.
    wages = households["wage_income"].to_numpy()
    hh = np.flatnonzero((wages > 0) & (rng.random(n) < WAGE_FACT_SHARE))
    who = _member(rng, hh, first, size, 0.5)
    monthly = np.round(wages[hh] / 12 * rng.uniform(0.4, 1.0, len(hh)))
    frames.append(_frame("工资收入", who, pl.Series(monthly.astype(np.int64)).cast(pl.String),
                         fact_dates(len(hh))))

    # 财政供养: someone on the public payroll.
    hh = _choose_households(rng, on_roll, PUBLIC_PAYROLL_SHARE, PUBLIC_PAYROLL_SHARE)
    who = _member(rng, hh, first, size, 0.5)
    frames.append(_frame("财政供养", who, _strings(["是"], np.zeros(len(hh), dtype=np.int64)),
                         fact_dates(len(hh))))
    flags["public_payroll"][hh] = True

    # 残疾等级: every certified disability, sometimes with its type (三级智力); grade 3 智力/精神 always typed.
    grade = persons["disability_grade"].to_numpy()
    dtype = persons["disability_type"].to_numpy()
    in_hh = persons["household_uid"].to_numpy() >= 0
    who = np.flatnonzero((grade > 0) & in_hh)
    typed = (rng.random(len(who)) < 0.55) | ((grade[who] == 3) & np.isin(dtype[who], [4, 5]))
    label = pl.DataFrame({
        "g": _strings(list(GRADE_LABELS), grade[who]),
        "t": _strings(list(DISABILITY_TYPES), np.maximum(dtype[who], 0)),
        "typed": typed,
    }).select(pl.concat_str(["g", pl.when("typed").then("t").otherwise(pl.lit(""))])).to_series()
    frames.append(_frame("残疾等级", who, label, fact_dates(len(who))))

    rows = pl.concat(frames)
    household_flags = pl.DataFrame({"household_uid": np.arange(n, dtype=np.int64), **flags})
    return Facts(rows, household_flags)
