"""Other departments' facts (部门核对数据): deaths, vehicles, homes, businesses, wages, public payroll, disability,
members out of the family, serious illness.

Each fact is one row (person, department, item, value, 类型, date). Vehicles and homes carry the class the
generator meant (``asset_class``: car, motorcycle, 危房 …) and homes their units, and businesses their revenue, in
hidden columns: the truth sums them over each family (``truth_policy.py``), so it is derived from the very same
rows the engine reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import polars as pl

from dibao_synth.conditions import Conditions, condition_rows
from dibao_synth.params import (
    BUSINESS_HIGH_REVENUE_SHARE,
    BUSINESS_REVENUE_SHARE,
    CLOSED_BUSINESS_SHARE,
    COUNTIES,
    HOME_FACT_SHARE,
    HOME_SITUATION_WEIGHTS,
    MIN_CASES,
    OFF_ROLL_BUSINESS_SHARE,
    OFF_ROLL_VEHICLE_SHARE,
    PUBLIC_PAYROLL_SHARE,
    ROLL_BUSINESS_SHARE,
    ROLL_VEHICLE_SHARE,
    VEHICLE_CLASS_WEIGHTS,
    WAGE_FACT_SHARE,
)
from dibao_synth.population import DISABILITY_TYPES, GRADE_LABELS

EXEMPT_VEHICLE = "残疾人机动轮椅车"
DEPARTMENTS = {"死亡": "公安局", "机动车": "交通运输局", "不动产": "自然资源局", "工商登记": "市场监管局",
               "工资收入": "人社局", "财政供养": "财政局", "残疾等级": "残联", "经营收入": "税务局"}
# 车辆类型 words per class, as 交通运输/公安交管 exports write them (classes of eligibility.yaml asset_kinds).
VEHICLE_KINDS: dict[str, tuple[str, ...]] = {
    "car": ("小型轿车", "小型普通客车", "轻型普通货车", "小型越野客车"),
    "operating": ("出租客运轿车", "营运货车"),
    "disability": (EXEMPT_VEHICLE, "残疾人专用小型自动挡载客汽车"),
    "motorcycle": ("普通二轮摩托车", "轻便二轮摩托车"),
    "tricycle": ("电动三轮车", "三轮汽车"),
    "farm": ("拖拉机", "低速货车", "农用运输车"),
    "untyped": ("",),
}
HOME_KINDS = ("住宅", "自建房", "商品房")
_PLATE_CHARS = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", dtype=np.uint8)
_ROW_SCHEMA = {"person_uid": pl.Int64, "department": pl.String, "item": pl.String, "value": pl.String,
               "kind": pl.String, "as_of": pl.Date, "asset_class": pl.String, "units": pl.Int64,
               "revenue": pl.Int64}


def _choose_households(rng: np.random.Generator, on_roll: np.ndarray, roll_share: float,
                       off_share: float, minimum: int = MIN_CASES) -> np.ndarray:
    """Households given a fact: shares differ on and off the roll; at least ``minimum`` on the roll."""
    chosen = rng.random(len(on_roll)) < np.where(on_roll, roll_share, off_share)
    roll_idx = np.flatnonzero(on_roll & ~chosen)
    short = minimum - int((chosen & on_roll).sum())
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


def _frame(item: str, person: np.ndarray, value: pl.Series, date: np.ndarray, kind: pl.Series | None = None,
           asset_class: pl.Series | None = None, units: np.ndarray | None = None,
           revenue: np.ndarray | None = None) -> pl.DataFrame:
    k = len(person)

    def blank(dtype: type[pl.DataType]) -> pl.Series:
        return pl.repeat(None, k, dtype=dtype, eager=True)

    return pl.DataFrame({
        "person_uid": person.astype(np.int64),
        "department": _strings([DEPARTMENTS[item]], np.zeros(k, dtype=np.int64)),
        "item": _strings([item], np.zeros(k, dtype=np.int64)),
        "value": value,
        "kind": kind if kind is not None else blank(pl.String),
        "as_of": pl.Series(np.asarray(date, dtype="datetime64[D]")),
        "asset_class": asset_class if asset_class is not None else blank(pl.String),
        "units": pl.Series(units, dtype=pl.Int64) if units is not None else blank(pl.Int64),
        "revenue": pl.Series(revenue, dtype=pl.Int64) if revenue is not None else blank(pl.Int64),
    }, schema=_ROW_SCHEMA)


def _forced_first(rng: np.random.Generator, on_roll: np.ndarray, weights: dict[str, float],
                  extra: dict[str, int] | None = None) -> np.ndarray:
    """A class index per chosen household: MIN_CASES roll households of each class (plus ``extra`` of some)
    first, then by weight."""
    w = np.array(list(weights.values()))
    pick = rng.choice(len(w), size=len(on_roll), p=w / w.sum())
    roll_idx = np.flatnonzero(on_roll)
    counts = [MIN_CASES + (extra or {}).get(name, 0) for name in weights]
    forced = np.repeat(np.arange(len(w)), counts)[:len(roll_idx)]
    pick[roll_idx[:len(forced)]] = forced
    return pick


def _plates(rng: np.random.Generator, county: np.ndarray) -> pl.Series:
    """机动车号牌 of the prefecture: 皖D + a letter or digit + four digits."""
    k = len(county)
    prefixes = [c.plate_prefix for c in COUNTIES]
    codes = _PLATE_CHARS[rng.integers(0, len(_PLATE_CHARS), (k, 5))]
    codes[:, 1:] = _PLATE_CHARS[rng.integers(0, 10, (k, 4))]  # mostly digits after the first
    tail = pl.Series(codes.reshape(-1).view("S5") if k else np.array([], dtype="S5")).cast(pl.String)
    return pl.DataFrame({"p": _strings(prefixes, county), "t": tail}).select(pl.concat_str(["p", "t"])).to_series()


def _vehicles(rng: np.random.Generator, owners: np.ndarray, classes: np.ndarray, county: np.ndarray,
              dates: np.ndarray) -> pl.DataFrame:
    """机动车 rows: 类型 by class (a plate alone for ``untyped``); half the disability vehicles in an older export's
    way, 残疾人机动轮椅车 in the 数值 and no plate."""
    names = list(VEHICLE_CLASS_WEIGHTS)
    k = len(owners)
    word_idx = rng.integers(0, 1 << 30, k)
    kinds = pl.Series([VEHICLE_KINDS[names[c]][w % len(VEHICLE_KINDS[names[c]])] for c, w in zip(classes, word_idx,
                                                                                                strict=True)],
                      dtype=pl.String)
    old_style = (classes == names.index("disability")) & (rng.random(k) < 0.5)
    plates = _plates(rng, county)
    frame = pl.DataFrame({"kind": kinds, "plate": plates, "old": old_style}).select(
        pl.when("old").then(pl.lit(EXEMPT_VEHICLE)).otherwise(pl.col("plate")).alias("value"),
        pl.when(pl.col("old") | (pl.col("kind") == "")).then(None).otherwise(pl.col("kind")).alias("kind"))
    return _frame("机动车", owners, frame["value"], dates, frame["kind"], _strings(names, classes),
                  np.ones(k, dtype=np.int64))


def _homes(rng: np.random.Generator, households: pl.DataFrame, dates: Callable[[int], np.ndarray]) -> pl.DataFrame:
    """不动产 rows by situation: one home; a count of two in the value; two members with one each; a 危房 beside
    a new house; a relocated family's old house beside its 安置房."""
    n = households.height
    on_roll = households["on_roll"].to_numpy()
    first = households["first_person"].to_numpy()
    size = households["size"].to_numpy()
    hh = np.flatnonzero(rng.random(n) < HOME_FACT_SHARE)
    names = list(HOME_SITUATION_WEIGHTS)
    situation = _forced_first(rng, on_roll[hh], {k: v for k, v in HOME_SITUATION_WEIGHTS.items() if k != "one"}) + 1
    w = np.array(list(HOME_SITUATION_WEIGHTS.values()))
    drawn = rng.choice(len(w), size=len(hh), p=w / w.sum())
    roll_idx = np.flatnonzero(on_roll[hh])
    forced = np.zeros(len(hh), dtype=bool)
    forced[roll_idx[:MIN_CASES * (len(names) - 1)]] = True
    situation = np.where(forced, situation, drawn)
    situation = np.where((situation == names.index("two_members")) & (size[hh] < 2), names.index("counted_two"),
                         situation)
    head = first[hh]
    frames = []

    def add(sel: np.ndarray, who: np.ndarray, value: str, kind: str | None, cls: str) -> None:
        k = int(sel.sum())
        kinds = pl.repeat(kind, k, dtype=pl.String, eager=True)
        frames.append(_frame("不动产", who[sel], pl.repeat(value, k, eager=True), dates(k), kinds,
                             pl.repeat(cls, k, eager=True), np.full(k, int(value))))

    one = situation == names.index("one")
    kind_pick = rng.integers(0, len(HOME_KINDS) + 1, len(hh))  # the last: no 类型 (an ordinary home)
    for i, kind in enumerate((*HOME_KINDS, None)):  # loop over the four spellings
        add(one & (kind_pick == i), head, "1", kind, "home")
    two = situation == names.index("counted_two")
    three = rng.random(len(hh)) < 0.15
    add(two & ~three, head, "2", None, "home")
    add(two & three, head, "3", None, "home")
    members = situation == names.index("two_members")
    add(members, head, "1", "住宅", "home")
    add(members, head + 1, "1", "商品房", "home")
    dilapidated = situation == names.index("dilapidated_and_new")
    add(dilapidated, head, "1", "危房", "dilapidated")
    add(dilapidated, head, "1", "自建房", "home")
    relocated = situation == names.index("relocated")
    add(relocated, head, "1", "易地扶贫搬迁安置房", "home")
    add(relocated, head, "1", "搬迁旧房", "relocation_old")
    return pl.concat(frames)


def _businesses(rng: np.random.Generator, households: pl.DataFrame,
                dates: Callable[[int], np.ndarray]) -> pl.DataFrame:
    """工商登记 存续 or 注销; for some active ones a 经营收入 report, above the limit for some (an exit), and
    MIN_CASES roll households of each: revenue above the limit, registration without revenue."""
    on_roll = households["on_roll"].to_numpy()
    first = households["first_person"].to_numpy()
    size = households["size"].to_numpy()
    hh = _choose_households(rng, on_roll, ROLL_BUSINESS_SHARE, OFF_ROLL_BUSINESS_SHARE, 2 * MIN_CASES)
    who = _member(rng, hh, first, size, 0.7)
    k = len(hh)
    closed = rng.random(k) < CLOSED_BUSINESS_SHARE
    reported = ~closed & (rng.random(k) < BUSINESS_REVENUE_SHARE)
    high = reported & (rng.random(k) < BUSINESS_HIGH_REVENUE_SHARE)
    roll_idx = np.flatnonzero(on_roll[hh])
    closed[roll_idx[:2 * MIN_CASES]] = False
    reported[roll_idx[:MIN_CASES]], high[roll_idx[:MIN_CASES]] = True, True
    reported[roll_idx[MIN_CASES:2 * MIN_CASES]] = False
    high &= reported
    revenue = np.where(high, np.round(rng.uniform(120_000, 600_000, k), -2), np.round(rng.uniform(8000, 90_000, k), -2))
    registration = _frame("工商登记", who, _strings(["存续", "注销"], closed.astype(np.int64)), dates(k))
    reports = _frame("经营收入", who[reported], pl.Series(revenue[reported].astype(np.int64)).cast(pl.String),
                     dates(int(reported.sum())), revenue=revenue[reported].astype(np.int64))
    return pl.concat([registration, reports])


def build_facts(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                conditions: Conditions, as_of: dt.date) -> pl.DataFrame:
    """Every department row, with the hidden truth columns asset_class, units and revenue."""
    n = households.height
    on_roll = households["on_roll"].to_numpy()
    first = households["first_person"].to_numpy()
    size = households["size"].to_numpy()
    day = np.datetime64(as_of, "D")
    p_hh = persons["household_uid"].to_numpy()
    in_household = p_hh >= 0

    def fact_dates(k: int) -> np.ndarray:
        return day - rng.integers(1, 41, k).astype("timedelta64[D]")

    frames: list[pl.DataFrame] = [condition_rows(conditions, as_of, rng)]

    # 机动车: a plate of the prefecture, of every class on the roll in any drop; the car of an adult child who lives
    # apart; a car for half the members out of the family (neither counts for the family).
    names = list(VEHICLE_CLASS_WEIGHTS)
    hh = _choose_households(rng, on_roll, ROLL_VEHICLE_SHARE, OFF_ROLL_VEHICLE_SHARE, MIN_CASES * (len(names) + 2))
    owners = _member(rng, hh, first, size, 0.6)
    # Cars twice over: a few of them are a family's only exit reason (a sale the next day resolves it).
    classes = _forced_first(rng, on_roll[hh], VEHICLE_CLASS_WEIGHTS, {"car": 2 * MIN_CASES})
    apart = np.flatnonzero(in_household & ~persons["listed"].to_numpy()
                           & (households["roll_form"].fill_null("").to_numpy()[np.maximum(p_hh, 0)] == "child_apart"))
    out = np.flatnonzero(persons["excluded"].to_numpy())
    out = out[rng.random(len(out)) < 0.5]
    extra_owners = np.concatenate([apart, out])
    owners = np.concatenate([owners, extra_owners])
    classes = np.concatenate([classes, np.full(len(extra_owners), names.index("car"))])
    frames.append(_vehicles(rng, owners, classes, persons["county_idx"].to_numpy()[owners], fact_dates(len(owners))))

    frames.append(_homes(rng, households, fact_dates))
    frames.append(_businesses(rng, households, fact_dates))

    # 工资收入: a 人社局 payroll record (yuan/month) for one worker of some households with wages, never more than
    # the household's whole counted income would allow (a record never shows more than the truth); none for 特困.
    wages = households["wage_income"].to_numpy()
    net = households["net_annual_income"].to_numpy()
    destitute = households["destitute"].to_numpy()
    hh = np.flatnonzero((wages > 0) & ~destitute & (rng.random(n) < WAGE_FACT_SHARE))
    who = _member(rng, hh, first, size, 0.5)
    monthly = np.minimum(np.round(wages[hh] / 12 * rng.uniform(0.4, 1.0, len(hh))),
                         np.floor(np.maximum(net[hh], 0) / 12 / 0.8))
    keep = monthly > 0
    frames.append(_frame("工资收入", who[keep], pl.Series(monthly[keep].astype(np.int64)).cast(pl.String),
                         fact_dates(int(keep.sum()))))

    # 财政供养: someone on the public payroll.
    hh = _choose_households(rng, on_roll, PUBLIC_PAYROLL_SHARE, PUBLIC_PAYROLL_SHARE)
    who = _member(rng, hh, first, size, 0.5)
    frames.append(_frame("财政供养", who, _strings(["是"], np.zeros(len(hh), dtype=np.int64)), fact_dates(len(hh))))

    # 残疾等级: every certified disability, always with its type (一级肢体, 三级智力 …).
    grade = persons["disability_grade"].to_numpy()
    dtype = persons["disability_type"].to_numpy()
    who = np.flatnonzero((grade > 0) & in_household)
    label = pl.DataFrame({
        "g": _strings(list(GRADE_LABELS), grade[who]),
        "t": _strings(list(DISABILITY_TYPES), np.maximum(dtype[who], 0)),
    }).select(pl.concat_str(["g", "t"])).to_series()
    frames.append(_frame("残疾等级", who, label, fact_dates(len(who))))
    return pl.concat(frames, how="diagonal_relaxed").select(list(_ROW_SCHEMA)).cast(_ROW_SCHEMA)  # type: ignore[arg-type]
