"""Households and the people in them: place, composition, ages, names, identity numbers.

Everything is drawn for all households at once (numpy arrays, then one Polars frame), so two million
households take seconds. A household is built from a composition template (户主 + 配偶 + 之子 …) chosen by its
size; ages follow from the head's age so that a grandchild is never older than its parent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao.normalise.ids import CHECK_CHARS, check_chars_for
from dibao_synth import names as nm
from dibao_synth.params import (
    COUNTIES,
    MILD_DISABILITY_RATE,
    MIN_CASES,
    MINOR_TURNING_ADULT,
    OTHER_REGIONS,
    SEVERE_DISABILITY_RATE,
    SIZE_WEIGHTS,
    TWIN_SHARE,
    county_weights,
)
from dibao_synth.places import Places

# Roles inside a composition template.
HEAD, SPOUSE, CHILD, IN_LAW, GRANDCHILD, PARENT = range(6)

# (roles, weight within its size, head age low, head age high)
TEMPLATES: tuple[tuple[tuple[int, ...], float, int, int], ...] = (
    ((HEAD,), 1.0, 18, 95),  # ages of single people are drawn separately (mostly elderly)
    ((HEAD, SPOUSE), 0.55, 30, 88),
    ((HEAD, CHILD), 0.35, 38, 85),
    ((HEAD, PARENT), 0.10, 25, 55),
    ((HEAD, SPOUSE, CHILD), 0.65, 25, 60),
    ((HEAD, CHILD, GRANDCHILD), 0.10, 58, 85),
    ((HEAD, IN_LAW, GRANDCHILD), 0.08, 58, 82),
    ((HEAD, SPOUSE, PARENT), 0.17, 25, 55),
    ((HEAD, SPOUSE, CHILD, CHILD), 0.60, 28, 55),
    ((HEAD, SPOUSE, CHILD, PARENT), 0.20, 28, 52),
    ((HEAD, CHILD, IN_LAW, GRANDCHILD), 0.20, 58, 82),
    ((HEAD, SPOUSE, CHILD, IN_LAW, GRANDCHILD), 0.50, 58, 80),
    ((HEAD, SPOUSE, CHILD, CHILD, CHILD), 0.25, 32, 55),
    ((HEAD, SPOUSE, CHILD, CHILD, PARENT), 0.25, 30, 52),
    ((HEAD, SPOUSE, CHILD, IN_LAW, GRANDCHILD, GRANDCHILD), 0.60, 58, 80),
    ((HEAD, SPOUSE, CHILD, CHILD, PARENT, PARENT), 0.40, 30, 50),
)
DISABILITY_TYPES = ("肢体", "视力", "听力", "言语", "智力", "精神", "多重")
DISABILITY_TYPE_WEIGHTS = np.array([0.45, 0.12, 0.12, 0.03, 0.12, 0.11, 0.05])
GRADE_LABELS = ("", "一级", "二级", "三级", "四级")


@dataclass(frozen=True)
class Population:
    """Households (one row each, household_uid = row index) and persons (person_uid = row index)."""

    households: pl.DataFrame
    persons: pl.DataFrame


def _template_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sizes = np.array([len(t[0]) for t in TEMPLATES])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate([np.array(t[0]) for t in TEMPLATES])
    lo = np.array([t[2] for t in TEMPLATES])
    hi = np.array([t[3] for t in TEMPLATES])
    # First position of two adjacent children (or grandchildren): where twins can be.
    twin = np.full(len(TEMPLATES), -1)
    for i, (roles, *_rest) in enumerate(TEMPLATES):
        for j in range(len(roles) - 1):
            if roles[j] == roles[j + 1] and roles[j] in (CHILD, GRANDCHILD):
                twin[i] = j
                break
    return sizes, starts, flat, lo, hi, twin


def build_population(rng: np.random.Generator, n_households: int, places: Places,
                     in_registry: np.ndarray, in_monitoring: np.ndarray, on_roll: np.ndarray,
                     n_outsiders: int, as_of: dt.date) -> Population:
    """Draw households and persons; ``n_outsiders`` extra adults (staff not in any household) get IDs too."""
    n = n_households
    county_idx = rng.choice(len(COUNTIES), size=n, p=county_weights()).astype(np.int16)
    # Escaped-poverty and monitored households are rural (the engine tests their families against the rural
    # standard); roll-only households are often urban.
    urban_p = np.where(in_registry | in_monitoring, 0.0, 0.6)
    urban = rng.random(n) < urban_p
    village_row = _place_households(rng, places, county_idx, urban)

    sizes_t, starts_t, flat_t, lo_t, hi_t, twin_t = _template_arrays()
    size = rng.choice(np.arange(1, 7), size=n, p=SIZE_WEIGHTS).astype(np.int16)
    template = np.zeros(n, dtype=np.int16)
    for s in range(1, 7):  # loop over the six sizes
        ids = np.flatnonzero(sizes_t == s)
        w = np.array([TEMPLATES[i][1] for i in ids])
        sel = size == s
        template[sel] = rng.choice(ids, size=int(sel.sum()), p=w / w.sum())

    head_age = lo_t[template] + np.floor(rng.random(n) * (hi_t[template] - lo_t[template] + 1)).astype(np.int64)
    single = size == 1
    r = rng.random(n)
    single_age = np.where(r < 0.65, rng.integers(60, 96, n), np.where(r < 0.985, rng.integers(18, 60, n),
                                                                       rng.integers(8, 16, n)))
    head_age = np.where(single, single_age, head_age)
    turning = _minors_turning_adult(rng, single & on_roll)
    head_age = np.where(turning, 17, head_age)
    has_spouse = _templates_with(SPOUSE)[template]
    head_male = np.where(single, rng.random(n) < 0.5,
                         np.where(has_spouse, rng.random(n) < 0.85, rng.random(n) < 0.55))
    first_child_age = _child_age(rng, head_age)
    # A child living with an in-law is usually a son (之子 + 之儿媳).
    first_child_male = np.where(_templates_with(IN_LAW)[template], rng.random(n) < 0.85, rng.random(n) < 0.52)
    can_twin = twin_t[template] >= 0
    twin_hh = can_twin & (rng.random(n) < TWIN_SHARE)
    short = MIN_CASES - int(twin_hh.sum())
    if short > 0 and can_twin.sum() > 10 * MIN_CASES:  # a few twins in any drop of some size
        twin_hh[rng.choice(np.flatnonzero(can_twin & ~twin_hh), size=short, replace=False)] = True
    minority = rng.random(n) < 0.01

    # Surnames per household: head, spouse, the family line (father's), in-law, mother of head.
    _, sp = nm.surname_table()
    n_s = len(sp)
    head_s = rng.choice(n_s, size=n, p=sp)
    spouse_s = rng.choice(n_s, size=n, p=sp)
    inlaw_s = rng.choice(n_s, size=n, p=sp)
    mother_s = rng.choice(n_s, size=n, p=sp)
    family_s = np.where(head_male | ~has_spouse, head_s, spouse_s)

    # Explode households into persons.
    hh = np.repeat(np.arange(n, dtype=np.int64), size)
    m = len(hh)
    offsets = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    pos = np.arange(m, dtype=np.int64) - np.repeat(offsets, size)
    tpl = template[hh]
    role = flat_t[starts_t[tpl] + pos]
    h_age, h_male = head_age[hh], head_male[hh]
    fc_age = first_child_age[hh]

    u = rng.random(m)
    age = np.select(
        [role == HEAD, role == SPOUSE, role == CHILD, role == IN_LAW, role == GRANDCHILD, role == PARENT],
        [
            h_age,
            np.clip(h_age + rng.integers(-6, 4, m), 18, 99),
            _child_age(rng, h_age),
            np.maximum(fc_age + rng.integers(-4, 5, m), 18),
            np.maximum(fc_age - 20 - np.floor(u * np.clip(fc_age - 19, 1, 15)), 0).astype(np.int64),
            np.minimum(h_age + 22 + rng.integers(0, 15, m), 100),
        ],
    ).astype(np.int64)
    first_child_pos = _first_pos(tpl, CHILD)
    is_first_child = (role == CHILD) & (pos == first_child_pos)
    age = np.where(is_first_child, fc_age, age)

    parent_rank = pos - _first_pos(tpl, PARENT)  # 0 = first parent
    two_parents = np.array([t[0].count(PARENT) == 2 for t in TEMPLATES])
    male = np.select(
        [role == HEAD, role == SPOUSE, is_first_child, role == CHILD, role == IN_LAW, role == PARENT],
        [h_male, ~h_male, first_child_male[hh], rng.random(m) < 0.52, ~first_child_male[hh],
         np.where(two_parents[tpl], parent_rank == 0, rng.random(m) < 0.4)],
        default=rng.random(m) < 0.52,
    )
    surname_idx = np.select(
        [role == HEAD, role == SPOUSE, role == IN_LAW, (role == PARENT) & ~male],
        [head_s[hh], spouse_s[hh], inlaw_s[hh], mother_s[hh]],
        default=family_s[hh],
    )

    # Twins: the second of the adjacent pair copies the first's sex, age and (below) birth date and name.
    twin_second = twin_hh[hh] & (pos == twin_t[tpl] + 1)
    twin_src = np.where(twin_second, np.arange(m) - 1, np.arange(m))
    male = male[twin_src]
    age = age[twin_src]
    surname_idx = surname_idx[twin_src]

    as_of_np = np.datetime64(as_of, "D")
    days = np.round(age * 365.2425).astype(np.int64) + rng.integers(1, 365, m)
    birth = as_of_np - days.astype("timedelta64[D]")
    birth = birth[twin_src]
    birth = _born_to_turn_adult_soon(rng, birth, turning[hh] & (pos == 0), as_of)

    name, surname_len = nm.draw_han_names(rng, surname_idx, male)
    minority_p = minority[hh]
    if minority_p.any():
        mi = np.flatnonzero(minority_p)
        name = name.scatter(mi, nm.draw_minority_names(rng, male[mi]))
        surname_len = surname_len.scatter(mi, pl.Series(np.zeros(len(mi), dtype=np.uint32)))
    name = name.gather(twin_src)
    surname_len = surname_len.gather(twin_src)

    grade, dtype_idx = _disability(rng, m, age, single[hh], on_roll[hh])
    relation = _relation_labels(role, male)

    # Outsiders (staff not in any household): adults 25–58, a county each.
    o_county = rng.choice(len(COUNTIES), size=n_outsiders, p=county_weights()).astype(np.int16)
    o_age = rng.integers(25, 59, n_outsiders)
    o_male = rng.random(n_outsiders) < 0.6
    o_birth = as_of_np - (np.round(o_age * 365.2425).astype(np.int64)
                          + rng.integers(1, 365, n_outsiders)).astype("timedelta64[D]")
    o_name, o_slen = nm.draw_han_names(rng, rng.choice(n_s, size=n_outsiders, p=sp), o_male)

    all_county = np.concatenate([county_idx[hh], o_county])
    all_birth = np.concatenate([birth, o_birth])
    all_male = np.concatenate([male, o_male])
    total = m + n_outsiders
    spouse_like = np.concatenate([(role == SPOUSE) | (role == IN_LAW), np.zeros(n_outsiders, dtype=bool)])
    region_src = np.concatenate([twin_src, np.arange(m, total)])
    id_numbers, id17 = assign_ids(rng, all_county, all_birth, all_male, spouse_like, region_src)

    persons = pl.DataFrame({
        "person_uid": np.arange(total, dtype=np.int64),
        "household_uid": np.concatenate([hh, np.full(n_outsiders, -1)]),  # -1: not in any household
        "member_pos": np.concatenate([pos, np.zeros(n_outsiders, dtype=np.int64)]).astype(np.int16),
        "role": np.concatenate([role, np.full(n_outsiders, -1)]).astype(np.int8),
        "relation": pl.concat([relation, pl.Series([None] * n_outsiders, dtype=pl.String)]),
        "male": all_male,
        "sex": _choose(all_male, "男", "女"),
        "birth_date": all_birth,
        "age": np.concatenate([age, o_age]).astype(np.int16),
        "name": pl.concat([name, o_name]),
        "surname_len": pl.concat([surname_len, o_slen]).cast(pl.Int16),
        "minority": np.concatenate([minority_p, np.zeros(n_outsiders, dtype=bool)]),
        "county_idx": all_county,
        "id_number": id_numbers,
        "id17": id17,
        "disability_grade": np.concatenate([grade, np.zeros(n_outsiders, dtype=np.int8)]),
        "disability_type": pl.Series(np.concatenate([dtype_idx, np.full(n_outsiders, -1)])).cast(pl.Int8),
        "twin": np.concatenate([twin_second | np.isin(np.arange(m), twin_src[twin_second]),
                                np.zeros(n_outsiders, dtype=bool)]),
    })

    households = pl.DataFrame({
        "household_uid": np.arange(n, dtype=np.int64),
        "county_idx": county_idx,
        "county_code": pl.Series([c.code for c in COUNTIES]).gather(county_idx),
        "village_row": village_row,
        "area": _choose(urban, "城市", "农村"),
        "size": size,
        "template": template,
        "minority": minority,
        "in_registry": in_registry,
        "in_monitoring": in_monitoring,
        "on_roll": on_roll,
        "first_person": offsets,
    })
    return Population(households, persons)


def _minors_turning_adult(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    """A few people alone on the roll made 17 (特困 minors turning 18 soon: a re-assessment is due)."""
    out = np.zeros(len(pool), dtype=bool)
    idx = np.flatnonzero(pool)
    if len(idx) > 10 * MINOR_TURNING_ADULT:
        out[rng.choice(idx, size=MINOR_TURNING_ADULT, replace=False)] = True
    return out


def _born_to_turn_adult_soon(rng: np.random.Generator, birth: np.ndarray, chosen: np.ndarray,
                             as_of: dt.date) -> np.ndarray:
    """Birth dates whose 18th birthday falls 1–29 days after ``as_of`` for the ``chosen`` persons."""
    if not chosen.any():
        return birth
    try:
        eighteen_ago = as_of.replace(year=as_of.year - 18)
    except ValueError:  # 29 February
        eighteen_ago = as_of.replace(year=as_of.year - 18, day=28)
    days = rng.integers(1, 30, int(chosen.sum())).astype("timedelta64[D]")
    out = birth.copy()
    out[chosen] = np.datetime64(eighteen_ago, "D") + days
    return out


def _choose(mask: np.ndarray, yes: str, no: str) -> pl.Series:
    """A string Series from a boolean array without building numpy strings (slow to hand to Polars)."""
    return pl.Series([no, yes]).gather(mask.astype(np.int64))


def _child_age(rng: np.random.Generator, head_age: np.ndarray) -> np.ndarray:
    """A child is 20–37 years younger than the head, never negative."""
    span = np.clip(head_age - 19, 1, 18)
    return np.maximum(head_age - 20 - np.floor(rng.random(len(head_age)) * span), 0).astype(np.int64)


def _templates_with(role: int) -> np.ndarray:
    return np.array([role in t[0] for t in TEMPLATES])


def _first_pos(tpl: np.ndarray, role: int) -> np.ndarray:
    first = np.array([t[0].index(role) if role in t[0] else -1 for t in TEMPLATES])
    return first[tpl]


def _relation_labels(role: np.ndarray, male: np.ndarray) -> pl.Series:
    """与户主关系 labels as they appear in the registers."""
    labels = np.array(["户主", "配偶", "之子", "之女", "之女婿", "之儿媳", "之孙子", "之孙女", "之父", "之母"])
    code = np.select(
        [role == HEAD, role == SPOUSE, role == CHILD, role == IN_LAW, role == GRANDCHILD, role == PARENT],
        [0, 1, np.where(male, 2, 3), np.where(male, 4, 5), np.where(male, 6, 7), np.where(male, 8, 9)],
    )
    return pl.Series("relation", labels).gather(code)


def _disability(rng: np.random.Generator, m: int, age: np.ndarray, single: np.ndarray,
                on_roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grade 1–4 (0 = none) and type index.

    Severe disability is commoner among the old and people alone, and much commoner on the roll (重残 are
    usually covered already); off-roll cases without work capacity are planted separately (problems.py).
    """
    severe_p = (SEVERE_DISABILITY_RATE * np.where(single, 4.0, 1.0) * np.where(age >= 70, 1.8, 1.0)
                * np.where(on_roll, 1.5, 0.3))
    u = rng.random(m)
    grade = np.where(u < severe_p, rng.integers(1, 3, m),
                     np.where(u < severe_p + MILD_DISABILITY_RATE, rng.integers(3, 5, m), 0)).astype(np.int8)
    dtype_idx = np.where(grade > 0, rng.choice(len(DISABILITY_TYPES), size=m, p=DISABILITY_TYPE_WEIGHTS), -1)
    return grade, dtype_idx.astype(np.int8)


def _place_households(rng: np.random.Generator, places: Places, county_idx: np.ndarray,
                      urban: np.ndarray) -> np.ndarray:
    """Row index into ``places.villages`` for each household: urban ones live in 社区, rural ones in 村."""
    v = places.villages
    v_county = v["county_idx"].to_numpy()
    v_comm = v["community"].to_numpy()
    out = np.zeros(len(county_idx), dtype=np.int64)
    for ci in range(len(COUNTIES)):  # loop over counties and the two area kinds
        for is_urban in (False, True):
            sel = (county_idx == ci) & (urban == is_urban)
            rows = np.flatnonzero((v_county == ci) & (v_comm == is_urban))
            # Villages differ in size: weights from a gamma draw.
            w = rng.gamma(2.0, 1.0, len(rows))
            out[sel] = rng.choice(rows, size=int(sel.sum()), p=w / w.sum())
    return out


def assign_ids(rng: np.random.Generator, county_idx: np.ndarray, birth: np.ndarray, male: np.ndarray,
               spouse_like: np.ndarray, region_src: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """Unique 18-character IDs: region + birth date + sequence (odd = 男) + check character.

    Most people carry their own county's code; some were born elsewhere (spouses and in-laws more often).
    ``region_src[i]`` is the person whose region person i shares (twins were born in one place).
    Collisions on the first 17 digits are redrawn in rounds until none is left.
    """
    n = len(county_idx)
    codes = np.array([int(c.code) for c in COUNTIES], dtype=np.int64)
    others = np.array([int(c) for c in OTHER_REGIONS], dtype=np.int64)
    elsewhere = rng.random(n) < np.where(spouse_like, 0.18, 0.05)
    region = np.where(elsewhere, others[rng.integers(0, len(others), n)], codes[county_idx])[region_src]
    b = birth.astype("datetime64[D]")
    years = b.astype("datetime64[Y]").astype(np.int64) + 1970
    months = b.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (b - b.astype("datetime64[M]")).astype(np.int64) + 1
    stem = region * 10**11 + (years * 10000 + months * 100 + days) * 1000
    parity = np.where(male, 1, 0)
    seq = rng.integers(0, 500, n) * 2 + parity
    id17 = stem + seq
    for _ in range(50):  # rounds, not persons: each round redraws only the colliding IDs
        dup = np.flatnonzero(~pl.Series(id17).is_first_distinct().to_numpy())
        if len(dup) == 0:
            break
        id17[dup] = stem[dup] + rng.integers(0, 500, len(dup)) * 2 + parity[dup]
    else:  # pragma: no cover - 500 sequence numbers per region, day and sex are never exhausted here
        raise RuntimeError("could not draw unique ID numbers")
    return id17_to_ids(id17), id17


def id17_to_ids(id17: np.ndarray) -> pl.Series:
    """The full 18-character IDs for 17-digit integers (check character per GB 11643)."""
    n = len(id17)
    check_idx = np.empty(n, dtype=np.int64)
    step = 1_000_000
    powers = 10 ** np.arange(16, -1, -1, dtype=np.int64)
    # Code points of the check characters → their position in CHECK_CHARS (numpy strings are slow in Polars).
    lookup = np.zeros(128, dtype=np.int64)
    for i, ch in enumerate(CHECK_CHARS):
        lookup[ord(ch)] = i
    for lo in range(0, n, step):  # memory-bounded chunks of a vectorised computation
        digits = (id17[lo:lo + step, None] // powers) % 10
        check_idx[lo:lo + step] = lookup[check_chars_for(digits).view(np.uint32)]
    return pl.DataFrame({"a": id17, "c": pl.Series(list(CHECK_CHARS)).gather(check_idx)}).select(
        pl.concat_str([pl.col("a").cast(pl.String), pl.col("c")]).alias("id_number")).to_series()
