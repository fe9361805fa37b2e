"""What each roll entry lists: the whole 户, one member alone (单人保), all but a child who lives apart, or one 特困
member in an institution — the families the registry's 户 would measure wrongly (民发〔2021〕57号 第七条、第八条).

A roll entry's *form* decides who it lists and covers:

- ``whole``: every member, all covered (整户保);
- ``single_only``: 单人保, only the covered member is listed (the family is the registry 户);
- ``single_listed``: 单人保, the other members are listed with 是否保障对象=否;
- ``child_apart``: 整户保 without an adult child who still belongs to the registry 户 but lives apart;
- ``institution``: one member of a better-off registry 户 is 特困 集中供养 (in an institution), listed alone.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from dibao_synth.params import (
    CENTRALISED_SHARE,
    CHILD_APART_SHARE,
    INSTITUTION_SHARE,
    MIN_CASES,
    ROLL_MEMBER_COVERED_WRITTEN,
    ROLL_REVIEW_OVERDUE_SHARE,
    SINGLE_LISTED_SHARE,
    SINGLE_ONLY_SHARE,
)
from dibao_synth.population import CHILD

FORMS = ("whole", "single_only", "single_listed", "child_apart", "institution")
_INTELLECTUAL, _MENTAL = 4, 5


def severe(grade: np.ndarray, dtype: np.ndarray) -> np.ndarray:
    """重度残疾 as the sample province reads it: grade 1–2, or grade 3 intellectual/mental."""
    return ((grade >= 1) & (grade <= 2)) | ((grade == 3) & np.isin(dtype, [_INTELLECTUAL, _MENTAL]))


def _pick_share(rng: np.random.Generator, pool: np.ndarray, share: float) -> np.ndarray:
    """About ``share`` of the pool (at least MIN_CASES when the pool is large enough), as a mask."""
    idx = np.flatnonzero(pool)
    k = int(rng.binomial(len(idx), share)) if len(idx) else 0
    if len(idx) >= 2 * MIN_CASES:  # a few in any drop of a few hundred households
        k = max(k, MIN_CASES)
    out = np.zeros(len(pool), dtype=bool)
    if k:
        out[rng.choice(idx, size=min(k, len(idx)), replace=False)] = True
    return out


def _one_member(rng: np.random.Generator, persons: pl.DataFrame, households: np.ndarray,
                score: np.ndarray) -> np.ndarray:
    """For each household of ``households`` (uids), the member with the highest score (ties: random); -1 none."""
    out = np.full(len(persons), -1, dtype=np.int64)  # indexed by household uid (fewer households than persons)
    if len(households) == 0:
        return out
    hh_of = persons["household_uid"].to_numpy()
    mine = np.isin(hh_of, households) & (score > -np.inf)
    frame = pl.DataFrame({"person": np.flatnonzero(mine), "household": hh_of[mine],
                          "score": score[mine] + rng.random(int(mine.sum()))})
    best = frame.sort("score", descending=True).group_by("household", maintain_order=True).first()
    out[best["household"].to_numpy()] = best["person"].to_numpy()
    return out


def assign_roll_forms(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                      as_of: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add roll_form, coverage_mode, support_mode, last_review_date to households; listed/covered to persons.

    Changes 救助类型 of the ``institution`` entries to 特困供养 (they are drawn from 低保 households of the
    registry with an old or severely disabled member).
    """
    n = households.height
    size = households["size"].to_numpy()
    on_roll = households["on_roll"].to_numpy()
    destitute = households["destitute"].to_numpy()
    known = (households["in_registry"] | households["in_monitoring"]).to_numpy()
    age = persons["age"].to_numpy().astype(np.int64)
    hh_of = persons["household_uid"].to_numpy()
    in_hh = hh_of >= 0
    is_severe = severe(persons["disability_grade"].to_numpy(), persons["disability_type"].to_numpy())
    adult_child = in_hh & (persons["role"].to_numpy() == CHILD) & (age >= 18) & (persons["member_pos"].to_numpy() > 0)
    has_adult_child = np.zeros(n, dtype=bool)
    has_adult_child[hh_of[adult_child]] = True
    frail = in_hh & ((age >= 60) | is_severe)
    has_frail = np.zeros(n, dtype=bool)
    has_frail[hh_of[frail]] = True

    dibao = on_roll & ~destitute
    form = np.zeros(n, dtype=np.int64)
    institution = _pick_share(rng, dibao & households["in_registry"].to_numpy() & (size >= 2) & has_frail,
                              INSTITUTION_SHARE)
    form[institution] = FORMS.index("institution")
    free = dibao & ~institution & known & (size >= 2)
    apart = _pick_share(rng, free & (size >= 3) & has_adult_child, CHILD_APART_SHARE)  # the rarest pool first
    form[apart] = FORMS.index("child_apart")
    single_only = _pick_share(rng, free & ~apart, SINGLE_ONLY_SHARE)
    form[single_only] = FORMS.index("single_only")
    single_listed = _pick_share(rng, free & ~apart & ~single_only, SINGLE_LISTED_SHARE)
    form[single_listed] = FORMS.index("single_listed")

    # The covered member of 单人保 (a severely disabled member where there is one) and of an institution entry.
    single = single_only | single_listed
    covered_single = _one_member(rng, persons, np.flatnonzero(single), np.where(is_severe, 1.0, 0.0))
    covered_inst = _one_member(rng, persons, np.flatnonzero(institution), np.where(frail, 1.0, -np.inf))
    apart_child = _one_member(rng, persons, np.flatnonzero(apart), np.where(adult_child, 0.0, -np.inf))
    alone = np.maximum(covered_single, covered_inst)

    person_form = np.zeros(len(hh_of), dtype=np.int64)
    person_form[in_hh] = form[hh_of[in_hh]]
    uid = np.arange(len(hh_of))
    person_roll = np.zeros(len(hh_of), dtype=bool)
    person_roll[in_hh] = on_roll[hh_of[in_hh]]
    own_alone = np.zeros(len(hh_of), dtype=np.int64) - 1
    own_alone[in_hh] = alone[hh_of[in_hh]]
    own_apart = np.zeros(len(hh_of), dtype=np.int64) - 1
    own_apart[in_hh] = apart_child[hh_of[in_hh]]
    only_one = np.isin(person_form, [FORMS.index("single_only"), FORMS.index("institution")])
    listed = person_roll & (~only_one | (uid == own_alone)) & (uid != own_apart)
    covered = listed & ((person_form != FORMS.index("single_listed")) | (uid == own_alone))

    destitute = destitute | institution
    centralised = (destitute & (size == 1) & (rng.random(n) < CENTRALISED_SHARE)) | institution
    assistance = pl.when(pl.Series(destitute)).then(pl.lit("特困供养")).when(pl.Series(on_roll)).then(
        pl.lit("低保")).otherwise(None)
    households = households.with_columns(
        assistance.alias("assistance_type"),
        pl.Series("destitute", destitute),
        pl.Series("roll_form", list(FORMS)).gather(form).alias("roll_form"),
        pl.when(pl.Series(on_roll)).then(
            pl.when(pl.Series(single)).then(pl.lit("单人保")).otherwise(pl.lit("整户保"))).alias("coverage_mode"),
        pl.when(pl.Series(destitute)).then(
            pl.when(pl.Series(centralised)).then(pl.lit("集中供养")).otherwise(pl.lit("分散供养")))
        .alias("support_mode"),
        pl.when(pl.Series(on_roll)).then(pl.Series("d", _review_dates(rng, households, as_of)))
        .alias("last_review_date"),
        # 是否保障对象: written 是/否 by 单人保 entries listing others and by some exports, else left blank (是).
        pl.Series("writes_covered", single_listed | (rng.random(n) < ROLL_MEMBER_COVERED_WRITTEN)),
    )
    persons = persons.with_columns(pl.Series("listed", listed), pl.Series("covered", covered))
    return households, persons


def _review_dates(rng: np.random.Generator, households: pl.DataFrame, as_of: dt.date) -> np.ndarray:
    """最近核查日期: within the last half year for most (inside every cycle), over a year ago for a few."""
    n = households.height
    on_roll = households["on_roll"].to_numpy()
    overdue = _pick_share(rng, on_roll, ROLL_REVIEW_OVERDUE_SHARE)
    days = np.where(overdue, rng.integers(400, 700, n), rng.integers(10, 170, n))
    review = np.datetime64(as_of, "D") - days.astype("timedelta64[D]")
    enrolled = households["enrolled_date"].to_numpy().astype("datetime64[D]")
    return np.maximum(review, enrolled)
