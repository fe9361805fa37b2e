"""Problem cases planted in the roll: the same person enrolled twice (重复享受), 低保 and 特困 at once, and
monitored members without work capacity left uncovered.

A duplicate enrolment is an extra roll row: person P of roll household A also listed inside roll household B
(same county mostly, sometimes another county). For 低保+特困 the person is a 特困 single and B a 低保 household.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dibao_synth.params import (
    COUNTIES,
    DIBAO_AND_DESTITUTE_SHARE,
    DUPLICATE_ENROLMENT_SHARE,
    DUPLICATE_OTHER_COUNTY_SHARE,
    MIN_CASES,
    MONITORED_NO_WORK_CAPACITY_SHARE,
)

EXTRA_SCHEMA = {"person_uid": pl.Int64, "household_uid": pl.Int64, "relation": pl.String, "kind": pl.String}


def _count(rng: np.random.Generator, base: int, share: float) -> int:
    return max(MIN_CASES, int(rng.binomial(base, share))) if base else 0


def plant_extra_roll_rows(rng: np.random.Generator, households: pl.DataFrame,
                          persons: pl.DataFrame) -> pl.DataFrame:
    """Extra roll rows (person_uid listed, covered, in the roll entry of another household_uid) and their kind.

    The person is a covered member of their own entry; the other entry is a 整户保 household of two or more that
    the registry or monitoring also knows, so its income household stays its own.
    """
    county = households["county_idx"].to_numpy()
    dibao = (households["assistance_type"] == "低保").fill_null(False).to_numpy()
    destitute = households["destitute"].to_numpy()
    size = households["size"].to_numpy()
    first = households["first_person"].to_numpy()
    whole = (households["roll_form"] == "whole").fill_null(False).to_numpy()
    known = (households["in_registry"] | households["in_monitoring"]).to_numpy()
    target_pool = dibao & whole & known & (size >= 2)
    n_roll = int(households["on_roll"].sum())

    frames = []
    # Duplicate enrolment: a covered member of a 低保 household, listed again in another 低保 household.
    covered = persons["covered"].to_numpy()
    hh_of = persons["household_uid"].to_numpy()
    candidates = np.flatnonzero(covered & (hh_of >= 0))
    candidates = candidates[dibao[hh_of[candidates]]]
    member = _sample(rng, candidates, _count(rng, n_roll, DUPLICATE_ENROLMENT_SHARE))
    src_hh = hh_of[member]
    other_county = rng.random(len(src_hh)) < DUPLICATE_OTHER_COUNTY_SHARE
    target_county = np.where(other_county, (county[src_hh] + rng.integers(1, len(COUNTIES), len(src_hh)))
                             % len(COUNTIES), county[src_hh])
    targets = _targets(rng, target_pool, county, target_county, src_hh)
    frames.append(_extra_frame(persons, member, targets, first, "duplicate_enrolment"))
    # 低保 and 特困 at once: a 特困 single also listed in a 低保 household of the same county.
    d_hh = _sample(rng, np.flatnonzero(destitute & (size == 1)), _count(rng, n_roll, DIBAO_AND_DESTITUTE_SHARE))
    targets = _targets(rng, target_pool, county, county[d_hh], d_hh)
    frames.append(_extra_frame(persons, first[d_hh], targets, first, "dibao_and_destitute"))
    extra = pl.concat(frames)
    # One extra row per person (a person drawn twice would be listed twice in one entry).
    return extra.filter(pl.col("household_uid") >= 0).unique("person_uid", keep="first", maintain_order=True)


def _sample(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    return np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False)) if len(pool) else pool


def _targets(rng: np.random.Generator, eligible: np.ndarray, county: np.ndarray, target_county: np.ndarray,
             src: np.ndarray) -> np.ndarray:
    """A random eligible household in the target county, other than the source (-1 if none)."""
    out = np.full(len(src), -1, dtype=np.int64)
    for ci in range(len(COUNTIES)):  # loop over counties
        want = np.flatnonzero(target_county == ci)
        pool = np.flatnonzero(eligible & (county == ci))
        if len(want) == 0 or len(pool) < 2:
            continue
        pick = pool[rng.integers(0, len(pool), len(want))]
        clash = pick == src[want]
        pick[clash] = pool[(np.searchsorted(pool, pick[clash]) + 1) % len(pool)]
        out[want] = pick
    return out


def _extra_frame(persons: pl.DataFrame, person: np.ndarray, target: np.ndarray, first: np.ndarray,
                 kind: str) -> pl.DataFrame:
    """Relation of the extra person to the target household's head, guessed from ages as a clerk would."""
    age = persons["age"].to_numpy()
    male = persons["male"].to_numpy()
    head_age = age[first[np.maximum(target, 0)]]
    diff = age[person] - head_age
    rel = np.select([diff <= -18, diff >= 18], [np.where(male[person], 0, 1), np.where(male[person], 2, 3)], 4)
    labels = pl.Series(["之子", "之女", "之父", "之母", "其他"])
    return pl.DataFrame({
        "person_uid": person.astype(np.int64),
        "household_uid": target,
        "relation": labels.gather(rel),
        "kind": pl.Series([kind]).gather(np.zeros(len(person), dtype=np.int64)),
    }, schema=EXTRA_SCHEMA)


def plant_no_work_capacity(rng: np.random.Generator, households: pl.DataFrame,
                           persons: pl.DataFrame) -> pl.DataFrame:
    """Give a member of some monitored off-roll households a grade 1–2 disability (丧失劳动能力, must be covered)."""
    mask = (households["in_monitoring"] & ~households["on_roll"]).to_numpy()
    idx = np.flatnonzero(mask)
    k = min(len(idx), max(MIN_CASES, int(rng.binomial(len(idx), MONITORED_NO_WORK_CAPACITY_SHARE))))
    chosen = rng.choice(idx, size=k, replace=False)
    first = households["first_person"].to_numpy()
    size = households["size"].to_numpy()
    who = first[chosen] + np.floor(rng.random(k) * size[chosen]).astype(np.int64)
    grade = persons["disability_grade"].to_numpy().copy()
    dtype = persons["disability_type"].to_numpy().copy()
    grade[who] = rng.integers(1, 3, k)
    dtype[who] = np.where(dtype[who] >= 0, dtype[who], 0)
    return persons.with_columns(pl.Series("disability_grade", grade), pl.Series("disability_type", dtype))
