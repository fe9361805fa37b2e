"""Which programme knows each household, and under which number.

A household can be in the escaped-poverty registry (脱贫人口), the 防返贫 monitoring list and the 低保/特困 roll;
each system numbers it its own way (户编号 like ``3404020010001234``, 低保家庭编号 like ``DB340402000123``),
which is why the engine links people by ID number rather than by household number.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from dibao.schema import MONITORING_CATEGORIES
from dibao_synth.params import SEGMENTS
from dibao_synth.places import Places

RISK_TYPES = ("因病", "因残", "因学", "因灾", "因意外事故", "缺劳动力", "务工就业不稳定", "产业项目失败",
              "住房出现安全问题")
RISK_WEIGHTS = np.array([0.33, 0.12, 0.08, 0.05, 0.07, 0.13, 0.14, 0.04, 0.04])
HOUSEHOLD_TYPES = ("一般脱贫户", "低保脱贫户", "特困脱贫户")


def assign_segments(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(in_registry, in_monitoring, on_roll) per household; every household is in at least one."""
    shares = np.array([s[3] for s in SEGMENTS])
    seg = rng.choice(len(SEGMENTS), size=n, p=shares / shares.sum())
    table = np.array([s[:3] for s in SEGMENTS], dtype=bool)
    in_registry, in_monitoring, on_roll = table[seg, 0], table[seg, 1], table[seg, 2]
    # The registry and the roll are required files: even a tiny drop has a row in each.
    if not on_roll.any():
        on_roll[0] = True
    if not in_registry.any():
        in_registry[-1] = True
    return in_registry, in_monitoring, on_roll


def assign_programmes(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                      places: Places, as_of: dt.date) -> pl.DataFrame:
    """Add household numbers, 救助类型, 户类型/脱贫年度, monitoring attributes and 纳入时间 to ``households``."""
    n = households.height
    first = households["first_person"].to_numpy()
    size = households["size"].to_numpy()
    p_age = persons["age"].to_numpy()
    p_grade = persons["disability_grade"].to_numpy()
    head_age = p_age[first]
    head_severe = (p_grade[first] >= 1) & (p_grade[first] <= 2)
    second_age = np.where(size >= 2, p_age[np.minimum(first + 1, len(p_age) - 1)], -1)
    on_roll = households["on_roll"].to_numpy()
    in_registry = households["in_registry"].to_numpy()
    in_monitoring = households["in_monitoring"].to_numpy()

    # 特困供养: mostly people alone who are 60+, under 16 or severely disabled; a few elderly couples.
    alone_unable = (size == 1) & ((head_age >= 60) | (head_age < 16) | head_severe)
    old_couple = (size == 2) & (head_age >= 60) & (second_age >= 60)
    u = rng.random(n)
    # A child alone is always 特困 (供养至18周岁, 民发〔2021〕43号 第二十四条).
    destitute = on_roll & ((alone_unable & (u < 0.55)) | (old_couple & (u < 0.12)) | ((size == 1) & (head_age < 18)))
    assistance = pl.when(pl.Series(destitute)).then(pl.lit("特困供养")).when(pl.Series(on_roll)).then(
        pl.lit("低保")).otherwise(None)

    villages = places.villages.join(
        places.towns.select("county_idx", "town_idx", "town", "town_code"), on=["county_idx", "town_idx"],
        how="left", maintain_order="left",
    ).with_row_index("village_row")
    hh = households.join(
        villages.select(pl.col("village_row").cast(pl.Int64), "town", "town_code", "village", "village_code"),
        on="village_row", how="left", maintain_order="left",
    )

    same_mon_id = rng.random(n) < 0.85
    own_mon = in_monitoring & ~(in_registry & same_mon_id)
    # Shuffled rank within county for 低保家庭编号 (numbers were issued over years, not by village).
    shuffle = rng.permutation(n)
    exit_year = rng.choice(np.arange(2014, 2021), size=n, p=[0.06, 0.12, 0.16, 0.18, 0.2, 0.2, 0.08])
    stale_type = rng.random(n) < 0.08
    htype_idx = np.where(destitute, 2, np.where(on_roll, 1, 0))
    htype_idx = np.where(stale_type, rng.integers(0, 3, n), htype_idx)

    reg_cat = np.where(rng.random(n) < 0.9, 0, 2)
    other_cat = np.where(rng.random(n) < 0.7, 1, 2)
    mon_cat = np.where(in_registry, reg_cat, other_cat)
    risk = rng.choice(len(RISK_TYPES), size=n, p=RISK_WEIGHTS)
    risk = np.where(head_severe, 1, risk)
    first_day = np.datetime64("2021-03-01", "D")
    last_day = np.datetime64(as_of, "D") - np.timedelta64(60, "D")
    identified = first_day + rng.integers(0, int((last_day - first_day).astype(int)), n).astype("timedelta64[D]")
    enrol_first = np.datetime64("2012-01-01", "D")
    enrolled = enrol_first + rng.integers(0, int((last_day - enrol_first).astype(int)), n).astype("timedelta64[D]")

    hh = hh.with_columns(
        assistance.alias("assistance_type"),
        pl.Series("destitute", destitute),
        pl.Series("__shuffle", shuffle),
        pl.Series("__own_mon", own_mon),
        pl.Series("exit_year", exit_year).cast(pl.Int16),
        pl.Series(list(HOUSEHOLD_TYPES)).gather(htype_idx).alias("household_type"),
        pl.Series(list(MONITORING_CATEGORIES)).gather(mon_cat).alias("monitoring_category"),
        pl.Series(list(RISK_TYPES)).gather(risk).alias("risk_type"),
        pl.Series("identified_date", identified),
        pl.Series("enrolled_date", enrolled),
    )
    prefix = pl.concat_str(["county_code", "town_code", "village_code"])
    rank_in_village = pl.int_range(1, pl.len() + 1).over("village_row")
    village_count = pl.len().over("village_row")
    own_rank = pl.col("__own_mon").cast(pl.Int64).cum_sum().over("village_row")
    roll_rank = pl.col("__shuffle").rank("ordinal").over(pl.col("county_code"), pl.col("on_roll"))
    hh = hh.with_columns(
        pl.when("in_registry").then(prefix + rank_in_village.cast(pl.String).str.zfill(4))
        .alias("registry_household_id"),
        pl.when(pl.col("in_monitoring") & ~pl.col("__own_mon"))
        .then(prefix + rank_in_village.cast(pl.String).str.zfill(4))
        .when("__own_mon").then(prefix + (village_count + own_rank).cast(pl.String).str.zfill(4))
        .alias("monitoring_household_id"),
        pl.when("on_roll").then(pl.lit("DB") + pl.col("county_code") + roll_rank.cast(pl.String).str.zfill(6))
        .alias("dibao_household_id"),
    ).drop("__shuffle", "__own_mon")
    return hh
