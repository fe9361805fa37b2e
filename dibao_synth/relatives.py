"""Caseworkers and village cadres with near relatives on the roll (近亲属备案).

Most relatives are filed (是), some are listed but not filed (否), and some are missing from the file altogether:
the last two are 人情保/关系保 suspects the engine must flag.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dibao_synth.params import (
    COUNTIES,
    MIN_CASES,
    RELATIVE_FILED_NO_SHARE,
    RELATIVE_FILED_SHARE,
    RELATIVE_OFF_ROLL_SHARE,
    STAFF_FROM_POPULATION_SHARE,
)

STATUS = ("filed", "not_filed", "absent")  # 是 / 否 / not in the file


def split_staff(total: int) -> tuple[int, int]:
    """(staff drawn from the population, outsiders) for ``total`` staff."""
    from_pop = round(total * STAFF_FROM_POPULATION_SHARE)
    return from_pop, total - from_pop


def build_relatives(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                    n_from_population: int) -> pl.DataFrame:
    """One row per true (staff, relative) pair with its filing status; ``row`` is null for absent pairs."""
    hh_of = persons["household_uid"].to_numpy()
    age = persons["age"].to_numpy().astype(np.int64)
    male = persons["male"].to_numpy()
    county = persons["county_idx"].to_numpy()
    in_hh = hh_of >= 0
    # On the roll: listed in a roll entry and in its family (a person out of the family is never one).
    person_on_roll = persons["listed"].to_numpy() & ~persons["excluded"].to_numpy()

    outsiders = np.flatnonzero(~in_hh)
    candidates = np.flatnonzero(in_hh & ~person_on_roll & (age >= 25) & (age <= 60))
    pop_staff = np.sort(rng.choice(candidates, size=min(n_from_population, len(candidates)), replace=False))
    staff = np.concatenate([pop_staff, outsiders])
    cadre_p = np.where(np.arange(len(staff)) < len(pop_staff), 0.85, 0.3)
    role = np.where(rng.random(len(staff)) < cadre_p, "村干部", "经办人员")

    k = rng.choice([1, 2, 3, 4], size=len(staff), p=[0.35, 0.35, 0.2, 0.1])
    s_idx = np.repeat(np.arange(len(staff)), k)
    s_person = staff[s_idx]
    off_roll = rng.random(len(s_idx)) < RELATIVE_OFF_ROLL_SHARE
    rel = np.full(len(s_idx), -1, dtype=np.int64)
    for ci in range(len(COUNTIES)):  # loop over counties and the two pools
        for want_off in (False, True):
            sel = np.flatnonzero((county[s_person] == ci) & (off_roll == want_off))
            pool = np.flatnonzero(in_hh & (county == ci) & (person_on_roll != want_off))
            if len(sel) and len(pool):
                rel[sel] = pool[rng.integers(0, len(pool), len(sel))]
    pairs = pl.DataFrame({
        "staff_person_uid": s_person.astype(np.int64),
        "staff_role": role[s_idx],
        "relative_person_uid": rel,
    }).with_row_index("__i").filter(
        (pl.col("relative_person_uid") >= 0) & (pl.col("relative_person_uid") != pl.col("staff_person_uid"))
    ).unique(["staff_person_uid", "relative_person_uid"], keep="first", maintain_order=True)

    sp = pairs["staff_person_uid"].to_numpy()
    rp = pairs["relative_person_uid"].to_numpy()
    diff = age[rp] - age[sp]
    m = male[rp]
    labels = ["配偶", "父亲", "母亲", "儿子", "女儿", "兄弟", "姐妹", "祖父", "祖母", "孙子", "孙女"]
    code = np.select(
        [diff >= 40, diff >= 17, diff <= -40, diff <= -17, (np.abs(diff) <= 8) & (m != male[sp])
         & (rng.random(len(rp)) < 0.5)],
        [np.where(m, 7, 8), np.where(m, 1, 2), np.where(m, 9, 10), np.where(m, 3, 4), 0],
        default=np.where(m, 5, 6),
    )
    roll_rel = person_on_roll[rp]
    u = rng.random(len(rp))
    status = np.where(~roll_rel | (u < RELATIVE_FILED_SHARE), 0,
                      np.where(u < RELATIVE_FILED_SHARE + RELATIVE_FILED_NO_SHARE, 1, 2))
    for s in (1, 2):  # at least a few unfiled and absent pairs in any drop
        short = MIN_CASES - int((status == s).sum())
        spare = np.flatnonzero(roll_rel & (status == 0))
        if short > 0 and len(spare) > 2 * MIN_CASES:
            status[rng.choice(spare, size=short, replace=False)] = s
    pairs = pairs.with_columns(
        pl.Series("relation", labels).gather(code),
        pl.Series("status", list(STATUS)).gather(status),
        pl.Series("relative_on_roll", roll_rel),
        pl.Series("relative_household_uid", hh_of[rp]),
    ).drop("__i")
    in_file = pairs["status"] != "absent"
    rows = in_file.cast(pl.Int64).cum_sum()
    return pairs.with_columns(pl.when(in_file).then(rows).otherwise(None).alias("row"))
