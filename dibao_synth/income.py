"""Household incomes, drawn backwards from the answer the engine should reach.

For each household we first choose where its true per-capita monthly income sits relative to its 低保 standard
(well below, exactly at it, just above in 渐退 territory, in the 1–1.5× edge band …), then split that income into
the figures the registers carry so that the sample province's formula (民发〔2021〕57号 第十三条,
``dibao/policy/parameters.yaml``) gives it back:

    counted = wages × (1 − share) + 其他纯收入 − the parts that do not count − deductions
    per-capita monthly = counted / 12 / (members − members out of the family)

其他纯收入 carries its parts (其中): the family's own 低保金/特困供养金 (never counted), 基础养老金 (counted from
2026), 高龄津贴 (counted for 低保, not for 特困), 优待抚恤金, 计划生育奖扶金, 奖学金, 见义勇为奖励 (not counted).
Most exports give the parts; some leave them blank, and then 其他纯收入 still holds the family's own benefit (the
engine takes 12 × 月保障金额 out) and no part that would not count. The employment-cost share is 0.2, or the
average of 0.2 and 0.3 over the working members when one of them is disabled or seriously ill; wages are drawn as
a multiple of 10 × workers so that the counted wage is a whole number of yuan.

The roll's 家庭月人均收入 is the figure at the last review, so for households whose income has since risen it is
stale (below the standard) — that is what the daily comparison must catch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao_synth.params import (
    COMPONENTS_BLANK_SHARE,
    COUNTIES,
    DESTITUTE_FACTOR,
    INCOME_BANDS_DESTITUTE,
    INCOME_BANDS_MONITORED_ONLY,
    INCOME_BANDS_OFF_ROLL,
    INCOME_BANDS_ROLL,
    INCOME_BANDS_SINGLE,
    MIN_CASES,
    RISK_ELIMINATED_BELOW_LINE_SHARE,
    RISK_ELIMINATED_SHARE,
    RISK_ELIMINATED_TOO_SOON_SHARE,
)

BAND_NAMES = ("eligible", "boundary", "just_above", "edge", "well_above")
# Deductions of the sample province (yuan per household and year): medical, education, rehabilitation.
MEDICAL_CAP, EDUCATION_CAP, REHABILITATION_CAP = 30_000, 20_000, 20_000
# The parts of 其他纯收入 (其中) the generator draws; whether each counts is decided in ``_component_parts``.
COMPONENTS = ("dibao_benefit_income", "destitute_benefit_income", "pension_base_income", "old_age_allowance",
              "special_care_income", "family_planning_income", "scholarship_income", "heroism_reward")
LOW_SHARE_UNITS = 10  # shares are tenths: 0.2 → 2, 0.3 → 3


def standards(households: pl.DataFrame) -> np.ndarray:
    """Monthly 低保 standard of each household's county and area (城市/农村)."""
    county_idx = households["county_idx"].to_numpy()
    rural = np.array([c.rural_standard for c in COUNTIES])[county_idx]
    urban = np.array([c.urban_standard for c in COUNTIES])[county_idx]
    return np.where(households["area"].to_numpy() == "城市", urban, rural).astype(np.int64)


def _draw_band(rng: np.random.Generator, mask: np.ndarray,
               bands: tuple[tuple[str, float, float, float], ...], band: np.ndarray, ratio: np.ndarray,
               min_pool: int = 0) -> None:
    """A band and a ratio to the standard for each household of ``mask``; at least MIN_CASES of each band when
    the pool has more than ``min_pool`` households (default: 20 per band)."""
    idx = np.flatnonzero(mask)
    w = np.array([b[1] for b in bands])
    pick = rng.choice(len(bands), size=len(idx), p=w / w.sum())
    # At least MIN_CASES of each band where there are enough households (a boundary case in every drop).
    for bi in range(len(bands)):
        short = MIN_CASES - int((pick == bi).sum())
        if short > 0 and len(idx) > (min_pool or 20 * len(bands)):
            donors = np.flatnonzero(pick == int(np.argmax(w)))
            pick[rng.choice(donors, size=min(short, len(donors)), replace=False)] = bi
    lo = np.array([b[2] for b in bands])[pick]
    hi = np.array([b[3] for b in bands])[pick]
    ratio[idx] = lo + rng.random(len(idx)) * (hi - lo)
    band[idx] = np.array([BAND_NAMES.index(b[0]) for b in bands])[pick]


@dataclass(frozen=True)
class Workers:
    """Per household: members counted in the per-capita divisor, working members, and disabled/ill ones."""

    divisor: np.ndarray
    workers: np.ndarray
    disabled: np.ndarray


def _in_households(persons: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mask of persons in a household, their household, age, disability grade): staff outside households left out."""
    hh_of = persons["household_uid"].to_numpy()
    inside = hh_of >= 0
    return inside, hh_of[inside], persons["age"].to_numpy()[inside], persons["disability_grade"].to_numpy()[inside]


def count_workers(households: pl.DataFrame, persons: pl.DataFrame, as_of: dt.date) -> Workers:
    """Working members (16–59, alive, in the family, able) and those disabled or seriously ill among them."""
    n = households.height
    inside, hh_of, age, grade = _in_households(persons)
    unable = severe_or_unable(grade, persons["disability_type"].to_numpy()[inside])
    alive = np.isnat(persons["death_date"].to_numpy()[inside])
    excluded = persons["excluded"].to_numpy()[inside]
    worker = alive & ~excluded & (age >= 16) & (age < 60) & ~unable
    disabled = worker & ((grade > 0) | persons["serious_illness"].to_numpy()[inside])
    return Workers(
        divisor=np.maximum(households["size"].to_numpy() - np.bincount(hh_of, weights=excluded, minlength=n), 1)
        .astype(np.int64),
        workers=np.bincount(hh_of, weights=worker, minlength=n).astype(np.int64),
        disabled=np.bincount(hh_of, weights=disabled, minlength=n).astype(np.int64),
    )


def severe_or_unable(grade: np.ndarray, dtype: np.ndarray) -> np.ndarray:
    """无劳动能力 by disability (民发〔2021〕43号 第五条(三), sample province): intellectual/mental grade ≤ 3,
    physical ≤ 2, visual 1, hearing/speech/multiple ≤ 2."""
    intellectual, visual = np.isin(dtype, [4, 5]), dtype == 1
    limit = np.where(intellectual, 3, np.where(visual, 1, 2))
    return (grade >= 1) & (grade <= limit)


def wage_split(rest: np.ndarray, wage_share: np.ndarray, workers: np.ndarray,
               disabled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(wages, counted wages): wages × (1 − share) is a whole number of yuan about ``wage_share`` of ``rest``.

    share = (0.2 × ordinary + 0.3 × disabled workers) / workers when one is disabled, else 0.2.
    """
    w = np.maximum(workers, 1)
    mixed = disabled > 0
    keep_num = np.where(mixed, (LOW_SHARE_UNITS - 2) * w - disabled, LOW_SHARE_UNITS - 2)  # over 10 w (or 10)
    keep_den = np.where(mixed, LOW_SHARE_UNITS * w, LOW_SHARE_UNITS)
    unit = np.where(mixed, LOW_SHARE_UNITS * w, 5)
    wages = (np.floor(rest * wage_share * keep_den / keep_num / unit) * unit).astype(np.int64)
    return wages, wages * keep_num // keep_den


def assign_income(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                  extra: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Add the income figures, the designed per-capita income, the roll's stale assessment and benefit."""
    n = households.height
    std = standards(households)
    on_roll = households["on_roll"].to_numpy()
    destitute = households["destitute"].to_numpy()
    monitored = households["in_monitoring"].to_numpy()
    form = households["roll_form"].fill_null("").to_numpy()
    centralised = (households["support_mode"] == "集中供养").fill_null(False).to_numpy()
    single = np.isin(form, ["single_only", "single_listed"])
    institution = form == "institution"
    work = count_workers(households, persons, as_of)

    band = np.zeros(n, dtype=np.int64)
    ratio = np.zeros(n)
    _draw_band(rng, on_roll & ~destitute & ~single, INCOME_BANDS_ROLL, band, ratio)
    _draw_band(rng, single, INCOME_BANDS_SINGLE, band, ratio, min_pool=2 * MIN_CASES)
    _draw_band(rng, destitute & ~institution, INCOME_BANDS_DESTITUTE, band, ratio)
    _draw_band(rng, ~on_roll & ~monitored, INCOME_BANDS_OFF_ROLL, band, ratio)
    _draw_band(rng, ~on_roll & monitored, INCOME_BANDS_MONITORED_ONLY, band, ratio)
    # A person in an institution lives on their own (low) income; the 户 they left is well off.
    band = np.where(institution, BAND_NAMES.index("well_above"), band)
    ratio = np.where(institution, rng.uniform(1.6, 3.0, n), ratio)
    calm = centralised & ~institution
    band = np.where(calm, BAND_NAMES.index("eligible"), band)
    ratio = np.where(calm, rng.uniform(0.05, 0.6, n), ratio)
    # Exactly at the standard only where the share is plain 0.2 (no disabled worker).
    boundary = (band == BAND_NAMES.index("boundary")) & (work.disabled == 0)
    band = np.where((band == BAND_NAMES.index("boundary")) & ~boundary, BAND_NAMES.index("eligible"), band)
    ratio = np.where((band == BAND_NAMES.index("eligible")) & (ratio >= 1.0), 0.9, ratio)
    net = np.where(boundary, std * 12 * work.divisor, np.round(ratio * std * 12 * work.divisor)).astype(np.int64)

    spending = _spending(rng, households, persons)
    deductions = (np.minimum(spending["medical_out_of_pocket"], MEDICAL_CAP)
                  + np.minimum(spending["education_spending"], EDUCATION_CAP)
                  + np.minimum(spending["rehabilitation_spending"], REHABILITATION_CAP))
    blank = rng.random(n) < COMPONENTS_BLANK_SHARE
    blank[_at_least_on_roll(rng, on_roll & ~blank)] = True
    parts = _components(rng, households, persons, blank, net + deductions)
    counted_parts = parts["pension_base_income"] + np.where(destitute, 0, parts["old_age_allowance"])
    rest = net + deductions - counted_parts
    wage_share = np.where(work.workers > 0, rng.uniform(0.45, 0.95, n), np.where(rng.random(n) < 0.1, 0.2, 0.0))
    wages, counted_wages = wage_split(rest, wage_share, work.workers, work.disabled)
    base_other = rest - counted_wages
    pcm = net / 12.0 / work.divisor

    # The roll: the assessment at the last review (stale for households whose income has since risen) and the
    # benefit per covered person; 月保障金额 = per person × 保障人数 (extra rows included).
    above = pcm >= std
    assessed = np.where(above, std * rng.uniform(0.45, 0.95, n), pcm * rng.uniform(0.92, 1.0, n))
    assessed = np.where(institution, std * rng.uniform(0.05, 0.5, n), assessed)
    assessed = np.round(assessed, 2)
    per_person = np.where(destitute, np.round(std * DESTITUTE_FACTOR),
                          np.where(single, np.round(std * rng.uniform(0.3, 0.6, n)),
                                   np.maximum(np.round(std - assessed), np.round(std * 0.1)))).astype(np.int64)
    covered = _covered_counts(households, persons, extra)
    monthly_benefit = np.where(on_roll, per_person * covered, 0).astype(np.int64)
    own_benefit = 12 * monthly_benefit
    parts["dibao_benefit_income"] = np.where(on_roll & ~destitute, own_benefit, 0)
    parts["destitute_benefit_income"] = np.where(destitute, own_benefit, 0)
    other = base_other + sum(parts[c] for c in COMPONENTS)
    transfer = sum(parts[c] for c in COMPONENTS if c != "scholarship_income")

    return households.with_columns(
        pl.Series("standard", std),
        pl.Series("income_band", pl.Series(list(BAND_NAMES)).gather(band)),
        pl.Series("wage_income", wages),
        pl.Series("other_net_income", other.astype(np.int64)),
        *[pl.Series(k, v.astype(np.int64)) for k, v in spending.items()],
        *[pl.Series(c, parts[c].astype(np.int64)) for c in COMPONENTS],
        pl.Series("transfer_income", np.asarray(transfer, dtype=np.int64)),
        pl.Series("components_blank", blank),
        pl.Series("income_divisor", work.divisor),
        pl.Series("net_annual_income", net),
        pl.Series("per_capita_monthly_income", pcm),
        pl.Series("per_capita_net_income", np.round(net / work.divisor, 2)),
        pl.Series("assessed_monthly_income", assessed),
        pl.Series("benefit_per_person", per_person),
        pl.Series("covered_persons", covered),
        pl.Series("monthly_benefit", monthly_benefit),
        pl.Series("income_assessed_date",
                  np.datetime64(as_of, "D") - rng.integers(20, 330, n).astype("timedelta64[D]")),
    )


def _at_least_on_roll(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    """MIN_CASES roll households more with blank components (the 差额 case is in every drop)."""
    idx = np.flatnonzero(pool)
    return rng.choice(idx, size=min(MIN_CASES, len(idx)), replace=False) if len(idx) else idx


def _covered_counts(households: pl.DataFrame, persons: pl.DataFrame, extra: pl.DataFrame) -> np.ndarray:
    """保障人数 per roll entry: its covered members plus the extra rows listed in it."""
    n = households.height
    hh_of = persons["household_uid"].to_numpy()
    covered = persons["covered"].to_numpy() & (hh_of >= 0)
    own = np.bincount(hh_of[covered], minlength=n)
    return own + np.bincount(extra["household_uid"].to_numpy(), minlength=n)


def _spending(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame) -> dict[str, np.ndarray]:
    """Medical, education, rehabilitation and other rigid spending (yuan/year), some above their caps."""
    n = households.height
    _, hh_of, age, grade = _in_households(persons)
    students = np.bincount(hh_of, weights=((age >= 6) & (age <= 22)), minlength=n)
    frail = np.bincount(hh_of, weights=((age >= 65) | (grade > 0)), minlength=n)
    disabled = np.bincount(hh_of, weights=(grade > 0), minlength=n)
    medical = np.where(rng.random(n) < np.where(frail > 0, 0.6, 0.2),
                       np.clip(np.round(rng.lognormal(7.8, 0.9, n) / 10) * 10, 200, 60_000), 0)
    education = np.where((students > 0) & (rng.random(n) < 0.7),
                         np.round(rng.uniform(800, 9000, n) * np.minimum(students, 3) / 10) * 10, 0)
    rehabilitation = np.where((disabled > 0) & (rng.random(n) < 0.3), np.round(rng.uniform(500, 26_000, n), -1), 0)
    other_rigid = np.where(rng.random(n) < 0.2, np.round(rng.uniform(200, 5000, n), -1), 0)
    return {"medical_out_of_pocket": medical.astype(np.int64), "education_spending": education.astype(np.int64),
            "rehabilitation_spending": rehabilitation.astype(np.int64),
            "other_rigid_spending": other_rigid.astype(np.int64)}


def _components(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame, blank: np.ndarray,
                room: np.ndarray) -> dict[str, np.ndarray]:
    """The parts of 其他纯收入 besides the family's own benefit (filled in later), yuan/year.

    Counted parts (基础养老金, and 高龄津贴 of a 低保 family) never exceed ``room`` (the income plus deductions
    they are part of). Where the export leaves the parts blank, a part that would not count is not drawn: it
    would be hidden in 其他纯收入 and counted.
    """
    n = households.height
    hh_of = persons["household_uid"].to_numpy()
    inside = hh_of >= 0
    hh_of = hh_of[inside]
    age = persons["age"].to_numpy()[inside]
    elderly = np.bincount(hh_of, weights=(age >= 60), minlength=n)
    very_old = np.bincount(hh_of, weights=(age >= 80), minlength=n)
    students = np.bincount(hh_of, weights=((age >= 16) & (age <= 22)), minlength=n)
    destitute = households["destitute"].to_numpy()

    pension = np.round(elderly * rng.uniform(1500, 2400, n) * (rng.random(n) < 0.8), -1)
    allowance = np.round(very_old * rng.uniform(600, 1200, n), -1)
    allowance = np.where(destitute & blank, 0, allowance)  # not counted for 特困: only where given
    allowance = np.where(destitute | (allowance <= room), allowance, 0)
    pension = np.minimum(pension, np.maximum(room - np.where(destitute, 0, allowance), 0))
    given = ~blank
    parts = {
        "dibao_benefit_income": np.zeros(n), "destitute_benefit_income": np.zeros(n),
        "pension_base_income": pension, "old_age_allowance": allowance,
        "special_care_income": np.where(given & (rng.random(n) < 0.01), np.round(rng.uniform(2000, 12000, n), -1), 0),
        "family_planning_income": np.where(given & (elderly > 0) & (rng.random(n) < 0.08),
                                           np.round(rng.uniform(960, 1800, n), -1), 0),
        "scholarship_income": np.where(given & (students > 0) & (rng.random(n) < 0.05),
                                       np.round(rng.uniform(1000, 5000, n), -1), 0),
        "heroism_reward": np.where(given & (rng.random(n) < 0.002), np.round(rng.uniform(2000, 10000, n), -1), 0),
    }
    return {k: np.asarray(v, dtype=np.int64) for k, v in parts.items()}


def monitoring_status(rng: np.random.Generator, households: pl.DataFrame, as_of: dt.date,
                      monitoring_line: float) -> pl.DataFrame:
    """防返贫 monitoring: risk marked eliminated (风险消除时间 given) — wrongly for some households still below
    the income line, and within a month of identification for a few."""
    n = households.height
    monitored = households["in_monitoring"].to_numpy()
    recorded = (households["wage_income"] + households["other_net_income"]).to_numpy() / households[
        "income_divisor"].to_numpy()  # the line is drawn on the figures as recorded
    below_line = recorded < monitoring_line
    u = rng.random(n)
    eliminated = monitored & np.where(below_line, u < RISK_ELIMINATED_BELOW_LINE_SHARE, u < RISK_ELIMINATED_SHARE)
    too_soon = _pick_at_least(rng, monitored, RISK_ELIMINATED_TOO_SOON_SHARE)
    eliminated |= too_soon
    day = np.datetime64(as_of, "D")
    identified = households["identified_date"].to_numpy().astype("datetime64[D]")
    identified = np.where(too_soon, day - rng.integers(1, 26, n).astype("timedelta64[D]"), identified)
    since = (day - identified).astype(np.int64)
    after = np.where(too_soon, rng.integers(0, 1 << 30, n) % np.maximum(since, 1),
                     31 + rng.integers(0, 1 << 30, n) % np.maximum(since - 31, 1))
    eliminated_on = np.minimum(identified + after.astype("timedelta64[D]"), day)
    return households.with_columns(
        pl.Series("risk_eliminated", eliminated),
        pl.Series("risk_eliminated_too_soon", too_soon),
        pl.Series("identified_date", identified),
        pl.when(pl.Series(eliminated)).then(pl.Series(eliminated_on)).otherwise(None).alias("risk_eliminated_date"),
    )


def _pick_at_least(rng: np.random.Generator, mask: np.ndarray, share: float) -> np.ndarray:
    """A random subset of ``mask`` of about ``share``, with at least MIN_CASES members when possible."""
    idx = np.flatnonzero(mask)
    k = min(len(idx), max(MIN_CASES, int(rng.binomial(len(idx), share))))
    out = np.zeros(len(mask), dtype=bool)
    out[rng.choice(idx, size=k, replace=False)] = True
    return out
