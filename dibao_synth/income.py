"""Household incomes, drawn backwards from the answer the engine should reach.

For each household we first choose where its true per-capita monthly income sits relative to its 低保 standard
(well below, exactly at it, just above in 渐退 territory, in the 1–1.5× edge band …), then split that income into
the figures the registers carry (wages, other net income, medical and education spending) so that the §4 formula
gives it back exactly:  per-capita monthly = (wages × 0.8 + other − medical − education) / 12 / size.
The roll's 家庭月人均收入 is the figure at the last review, so for households whose income has since risen it is
stale (below the standard) — that is what the daily comparison must catch.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from dibao_synth.params import (
    COUNTIES,
    DESTITUTE_FACTOR,
    EMPLOYMENT_COST_SHARE,
    INCOME_BANDS_DESTITUTE,
    INCOME_BANDS_MONITORED_ONLY,
    INCOME_BANDS_OFF_ROLL,
    INCOME_BANDS_ROLL,
    MIN_CASES,
    MONITORING_LINE_YEAR,
    RISK_ELIMINATED_BELOW_LINE_SHARE,
    RISK_ELIMINATED_SHARE,
    RISK_ELIMINATED_TOO_SOON_SHARE,
)

BAND_NAMES = ("eligible", "boundary", "just_above", "edge", "well_above")


def standards(households: pl.DataFrame) -> np.ndarray:
    """Monthly 低保 standard of each household's county and area (城市/农村)."""
    county_idx = households["county_idx"].to_numpy()
    rural = np.array([c.rural_standard for c in COUNTIES])[county_idx]
    urban = np.array([c.urban_standard for c in COUNTIES])[county_idx]
    return np.where(households["area"].to_numpy() == "城市", urban, rural).astype(np.int64)


def _draw_band(rng: np.random.Generator, mask: np.ndarray,
               bands: tuple[tuple[str, float, float, float], ...], band: np.ndarray, ratio: np.ndarray) -> None:
    idx = np.flatnonzero(mask)
    w = np.array([b[1] for b in bands])
    pick = rng.choice(len(bands), size=len(idx), p=w / w.sum())
    # At least MIN_CASES of each band where there are enough households (a boundary case in every drop).
    for bi in range(len(bands)):
        short = MIN_CASES - int((pick == bi).sum())
        if short > 0 and len(idx) > 20 * len(bands):
            donors = np.flatnonzero(pick == int(np.argmax(w)))
            pick[rng.choice(donors, size=min(short, len(donors)), replace=False)] = bi
    lo = np.array([b[2] for b in bands])[pick]
    hi = np.array([b[3] for b in bands])[pick]
    ratio[idx] = lo + rng.random(len(idx)) * (hi - lo)
    band[idx] = np.array([BAND_NAMES.index(b[0]) for b in bands])[pick]


def assign_income(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                  as_of: dt.date) -> pl.DataFrame:
    """Add the income figures, the true per-capita income, the roll's stale assessment and benefit."""
    n = households.height
    size = households["size"].to_numpy().astype(np.int64)
    std = standards(households)
    on_roll = households["on_roll"].to_numpy()
    destitute = households["destitute"].to_numpy()
    monitored = households["in_monitoring"].to_numpy()

    band = np.zeros(n, dtype=np.int64)
    ratio = np.zeros(n)
    _draw_band(rng, on_roll & ~destitute, INCOME_BANDS_ROLL, band, ratio)
    _draw_band(rng, destitute, INCOME_BANDS_DESTITUTE, band, ratio)
    _draw_band(rng, ~on_roll & ~monitored, INCOME_BANDS_OFF_ROLL, band, ratio)
    _draw_band(rng, ~on_roll & monitored, INCOME_BANDS_MONITORED_ONLY, band, ratio)
    boundary = band == BAND_NAMES.index("boundary")
    # Net annual household income (yuan, whole): exactly standard × 12 × size at the boundary.
    net = np.where(boundary, std * 12 * size, np.round(ratio * std * 12 * size)).astype(np.int64)

    hh_of = persons["household_uid"].to_numpy()
    in_hh = hh_of >= 0
    hh_of = hh_of[in_hh]
    age = persons["age"].to_numpy()[in_hh]
    grade = persons["disability_grade"].to_numpy()[in_hh]
    workers = np.bincount(hh_of, weights=((age >= 18) & (age < 60) & ~np.isin(grade, [1, 2])), minlength=n)
    students = np.bincount(hh_of, weights=((age >= 6) & (age <= 22)), minlength=n)
    frail = np.bincount(hh_of, weights=((age >= 65) | (grade > 0)), minlength=n)

    medical = np.where(rng.random(n) < np.where(frail > 0, 0.6, 0.2),
                       np.clip(np.round(rng.lognormal(7.8, 0.9, n) / 10) * 10, 200, 60_000), 0).astype(np.int64)
    education = np.where((students > 0) & (rng.random(n) < 0.7),
                         np.round(rng.uniform(800, 9000, n) * np.minimum(students, 3) / 10) * 10, 0).astype(np.int64)
    gross = net + medical + education  # wages × 0.8 + other must come to this
    share = np.where(workers > 0, rng.uniform(0.45, 0.95, n), np.where(rng.random(n) < 0.1, 0.2, 0.0))
    keep = 1.0 - EMPLOYMENT_COST_SHARE
    wages = (np.floor(gross * share / keep / 5) * 5).astype(np.int64)  # multiple of 5: wages × 0.8 is whole
    other = gross - np.round(wages * keep).astype(np.int64)
    pcm = net / 12.0 / size

    # The roll's assessment at last review: close to the truth for eligible households, stale (below the
    # standard) for those whose income has risen since.
    above = pcm >= std
    assessed = np.where(above, std * rng.uniform(0.45, 0.95, n), pcm * rng.uniform(0.92, 1.0, n))
    assessed = np.round(assessed, 2)
    per_person = np.where(destitute, np.round(std * DESTITUTE_FACTOR),
                          np.maximum(np.round(std - assessed), np.round(std * 0.1)))

    # 防返贫 monitoring: risk marked eliminated — wrongly for some households still below the income line, and
    # for a few identified less than a month ago.
    below_line = net / size < MONITORING_LINE_YEAR
    u = rng.random(n)
    eliminated = monitored & np.where(below_line, u < RISK_ELIMINATED_BELOW_LINE_SHARE, u < RISK_ELIMINATED_SHARE)
    too_soon = _pick_at_least(rng, monitored, RISK_ELIMINATED_TOO_SOON_SHARE)
    eliminated |= too_soon
    identified = households["identified_date"].to_numpy().astype("datetime64[D]")
    recent = np.datetime64(as_of, "D") - rng.integers(1, 26, n).astype("timedelta64[D]")
    identified = np.where(too_soon, recent, identified)

    return households.with_columns(
        pl.Series("standard", std),
        pl.Series("income_band", pl.Series(list(BAND_NAMES)).gather(band)),
        pl.Series("wage_income", wages),
        pl.Series("other_net_income", other),
        pl.Series("medical_out_of_pocket", medical),
        pl.Series("education_spending", education),
        pl.Series("net_annual_income", net),
        pl.Series("per_capita_monthly_income", pcm),
        pl.Series("per_capita_net_income", np.round(net / size, 2)),
        pl.Series("assessed_monthly_income", assessed),
        pl.Series("benefit_per_person", per_person.astype(np.int64)),
        pl.Series("risk_eliminated", eliminated),
        pl.Series("risk_eliminated_below_line", eliminated & below_line),
        pl.Series("risk_eliminated_too_soon", too_soon),
        pl.Series("identified_date", identified),
    )


def _pick_at_least(rng: np.random.Generator, mask: np.ndarray, share: float) -> np.ndarray:
    """A random subset of ``mask`` of about ``share``, with at least MIN_CASES members when possible."""
    idx = np.flatnonzero(mask)
    k = min(len(idx), max(MIN_CASES, int(rng.binomial(len(idx), share))))
    out = np.zeros(len(mask), dtype=bool)
    out[rng.choice(idx, size=k, replace=False)] = True
    return out
