"""Bank-asset verification results (银行资产核对): 0–3 accounts for a subset of adults.

Balances are log-normal; roll households are kept under the per-capita limit (24 × standard) except for a planted
share whose per-capita assets are above it, which the asset test must catch.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from dibao_synth.params import ASSET_MONTHS, BANK_PERSON_SHARE, COUNTIES, MIN_CASES, ROLL_RICH_SHARE

NATIONAL_BANKS = ("中国农业银行", "中国邮政储蓄银行", "中国工商银行", "中国建设银行", "中国银行")
NATIONAL_WEIGHTS = (0.30, 0.22, 0.12, 0.10, 0.06)
LOCAL_BANKS = {"34": ("农村信用合作联社", "淮南农村商业银行", "徽商银行"),
               "42": ("农村信用合作联社", "湖北农村商业银行", "湖北银行")}
LOCAL_WEIGHTS = (0.10, 0.06, 0.04)


def build_bank_accounts(rng: np.random.Generator, households: pl.DataFrame, persons: pl.DataFrame,
                        as_of: dt.date) -> tuple[pl.DataFrame, np.ndarray]:
    """Accounts (person_uid, institution, balance, query_date) and each household's per-capita assets (all its
    members' balances; the truth counts the family's, ``truth_policy.py``)."""
    n = households.height
    hh_of = persons["household_uid"].to_numpy()
    age = persons["age"].to_numpy()
    holder = (hh_of >= 0) & (age >= 16) & (rng.random(len(hh_of)) < BANK_PERSON_SHARE)
    who = np.flatnonzero(holder)
    k = rng.choice([1, 2, 3], size=len(who), p=[0.6, 0.3, 0.1])
    person = np.repeat(who, k)
    balance = np.round(rng.lognormal(7.6, 1.5, len(person)), 2)

    limit = households["standard"].to_numpy() * ASSET_MONTHS
    size = households["size"].to_numpy()
    on_roll = households["on_roll"].to_numpy()
    acc_hh = hh_of[person]
    total = np.bincount(acc_hh, weights=balance, minlength=n)
    # Roll households keep their assets below the limit (scaled down), except the planted rich ones.
    roll_idx = np.flatnonzero(on_roll)
    n_rich = min(len(roll_idx), max(MIN_CASES, int(rng.binomial(len(roll_idx), ROLL_RICH_SHARE))))
    rich = np.zeros(n, dtype=bool)
    rich[rng.choice(roll_idx, size=n_rich, replace=False)] = True
    cap = limit * size * rng.uniform(0.2, 0.85, n)
    scale = np.where(on_roll & ~rich & (total > cap), cap / np.maximum(total, 1), 1.0)
    balance = np.round(balance * scale[acc_hh], 2)
    # Rich households: one more account for the head, large enough to pass the limit.
    rich_idx = np.flatnonzero(rich)
    heads = households["first_person"].to_numpy()[rich_idx]
    total = np.bincount(acc_hh, weights=balance, minlength=n)
    target = limit[rich_idx] * size[rich_idx] * rng.uniform(1.1, 3.0, len(rich_idx))
    big = np.round(np.maximum(target - total[rich_idx], 0) + rng.uniform(100, 5000, len(rich_idx)), 2)
    person = np.concatenate([person, heads])
    balance = np.concatenate([balance, big])
    # Half the members out of the family (服刑 …) hold a large balance: it is not the family's.
    out = np.flatnonzero(persons["excluded"].to_numpy())
    out = out[rng.random(len(out)) < 0.5]
    out_hh = hh_of[out]
    person = np.concatenate([person, out])
    balance = np.concatenate([balance, np.round(limit[out_hh] * size[out_hh] * rng.uniform(1.5, 3.0, len(out)), 2)])

    hubei = np.array([c.code.startswith("42") for c in COUNTIES])[households["county_idx"].to_numpy()]
    inst = _institutions(rng, hubei[hh_of[person]])
    query = np.datetime64(as_of, "D") - rng.integers(1, 21, len(person)).astype("timedelta64[D]")
    accounts = pl.DataFrame({
        "person_uid": person.astype(np.int64),
        "institution": inst,
        "balance": balance,
        "query_date": query,
    })
    per_capita = np.bincount(hh_of[person], weights=balance, minlength=n) / size
    return accounts, np.round(per_capita, 2)


def _institutions(rng: np.random.Generator, hubei: np.ndarray) -> pl.Series:
    names = list(NATIONAL_BANKS) + list(LOCAL_BANKS["34"]) + list(LOCAL_BANKS["42"])
    w = np.array(NATIONAL_WEIGHTS + LOCAL_WEIGHTS)
    pick = rng.choice(len(w), size=len(hubei), p=w / w.sum())
    local = pick >= len(NATIONAL_BANKS)
    pick = np.where(local & hubei, pick + len(LOCAL_BANKS["34"]), pick)
    return pl.Series(names).gather(pick)
