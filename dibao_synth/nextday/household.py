"""The newly monitored household of day 2: 2–4 persons identified today after a sudden hardship (突发严重困难户),
in a real village of the drop, well below the standard and not covered, with new valid IDs far from every ID
already in the drop."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao.ingest import Drop
from dibao.normalise.ids import check_chars_for
from dibao.schema import MONITORING_CATEGORIES
from dibao_synth import names as nm
from dibao_synth.nextday.choose import pick, standard_of
from dibao_synth.params import COUNTIES, EMPLOYMENT_COST_SHARE

NEW_HOUSEHOLD_RANGE = (0.30, 0.60)  # the new monitored household's per-capita income, × the standard
NEW_RISKS = ("因病", "因意外事故", "因灾", "因残")
NEW_RISK_WEIGHTS = (0.5, 0.25, 0.15, 0.10)
SUDDEN_HARDSHIP = MONITORING_CATEGORIES[2]  # 突发严重困难户
MIN_ID_DISTANCE = 3  # a new ID differs from every ID in the drop in at least this many characters


def _existing_ids(drop: Drop, recs: pl.DataFrame) -> np.ndarray:
    """Every 18-character ID-like value in the drop (usable or not) as an (n, 18) byte matrix."""
    found = [recs.get_column("id_any")]
    relatives = drop.frame("relatives")
    if relatives is not None:
        found += [relatives.get_column("staff_id_norm"), relatives.get_column("relative_id_norm")]
    ids = pl.concat(found).drop_nulls().unique().sort()
    ids = ids.filter(ids.str.contains(r"^[0-9]{17}[0-9X]$"))
    if ids.is_empty():
        return np.zeros((0, 18), dtype=np.uint8)
    return np.frombuffer(ids.str.join("").item().encode("ascii"), dtype=np.uint8).reshape(-1, 18)


def _new_ids(rng: np.random.Generator, region: str, births: list[dt.date], male: list[bool],
             existing: np.ndarray) -> list[str]:
    """Valid IDs (GB 11643 check character) that are unique and far from every ID already in the drop."""
    out: list[str] = []
    taken = existing
    for birth, is_male in zip(births, male, strict=True):  # 2–4 persons
        for _ in range(1000):  # redraw the sequence number until the ID is far from all others
            seq = int(rng.integers(0, 500)) * 2 + int(is_male)
            first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
            check = str(check_chars_for(np.array([[int(c) for c in first17]]))[0])
            candidate = first17 + check
            row = np.frombuffer(candidate.encode("ascii"), dtype=np.uint8)
            if len(taken) == 0 or int((taken != row).sum(axis=1).min()) >= MIN_ID_DISTANCE:
                out.append(candidate)
                taken = np.vstack([taken, row[None, :]])
                break
        else:  # pragma: no cover - 500 sequence numbers per day; a drop never fills them
            raise RuntimeError("could not draw a new unique ID")
    return out


@dataclass
class NewHousehold:
    """The drawn family: its monitoring rows by canonical field, its persons and figures for the truth."""

    household_id: str
    county_code: str
    town: str
    village: str
    rows: list[dict[str, str | None]]
    persons: list[dict[str, object]]
    figures: dict[str, int]
    standard: int
    risk_type: str


def new_household(rng: np.random.Generator, drop: Drop, recs: pl.DataFrame, day2: dt.date) -> NewHousehold | None:
    """2–4 persons of a household identified today after a sudden hardship, in a real village."""
    monitoring = drop.frame("monitoring")
    if monitoring is None:
        return None
    places = monitoring.filter(
        pl.col("household_id").str.contains(r"^[0-9]{16}$") & pl.col("village").str.ends_with("村")
        & pl.col("county_code").is_in([c.code for c in COUNTIES]) & pl.col("town").is_not_null()
    ).select("county_code", "town", "village", pl.col("household_id").str.slice(0, 12).alias("prefix")).unique(
        "prefix").sort("prefix")
    if places.is_empty():
        return None
    place = pick(rng, places)
    prefix = str(place["prefix"])
    numbers = recs.filter(pl.col("source").is_in(["registry", "monitoring"]))["household"].drop_nulls()
    ranks = numbers.filter(numbers.str.starts_with(prefix) & numbers.str.contains(r"^[0-9]{16}$")).str.slice(12)
    household_id = f"{prefix}{int(ranks.cast(pl.Int64).max() or 0) + 1:04d}"  # type: ignore[arg-type]

    size = int(rng.integers(2, 5))
    roles = ["户主", "配偶", "child", "child" if rng.random() < 0.5 else "parent"][:size]
    head_age = int(rng.integers(28, 56))
    head_male = bool(rng.random() < 0.85)
    ages, male = [head_age], [head_male]
    for role in roles[1:]:  # the other 1–3 members
        if role == "配偶":
            ages.append(int(np.clip(head_age + rng.integers(-6, 4), 20, 99)))
            male.append(not head_male)
        elif role == "child":
            ages.append(max(head_age - int(rng.integers(22, 36)), 1))
            male.append(bool(rng.random() < 0.52))
        else:
            ages.append(min(head_age + int(rng.integers(22, 33)), 92))
            male.append(bool(rng.random() < 0.4))
    surnames, weights = nm.surname_table()
    head_s, spouse_s, mother_s = (int(s) for s in rng.choice(len(surnames), size=3, p=weights))
    family_s = head_s if head_male else spouse_s
    surname_idx = [head_s, spouse_s] + [family_s if r == "child" else head_s if m else mother_s
                                        for r, m in zip(roles[2:], male[2:], strict=True)]
    names, _ = nm.draw_han_names(rng, np.array(surname_idx), np.array(male))
    relation = [r if r in ("户主", "配偶") else ("之子" if m else "之女") if r == "child" else ("之父" if m else "之母")
                for r, m in zip(roles, male, strict=True)]
    births = [day2 - dt.timedelta(days=round(a * 365.2425) + int(rng.integers(1, 365))) for a in ages]
    ids = _new_ids(rng, str(place["county_code"]), births, male, _existing_ids(drop, recs))

    standard = standard_of(str(place["county_code"]), "农村")
    ratio = float(rng.uniform(*NEW_HOUSEHOLD_RANGE))
    net = round(ratio * standard * 12 * size)
    risk = str(rng.choice(NEW_RISKS, p=np.array(NEW_RISK_WEIGHTS)))
    medical = int(round(float(rng.uniform(6000, 25000)), -1)) if risk != "因灾" else 0
    students = sum(6 <= a <= 22 for a in ages)
    education = int(round(float(rng.uniform(800, 6000)) * min(students, 3), -1)) if students else 0
    gross = net + medical + education
    workers = sum(18 <= a < 60 for a in ages)
    keep = 1 - EMPLOYMENT_COST_SHARE
    wages = int(math.floor(gross * float(rng.uniform(0.45, 0.9)) / keep / 5) * 5) if workers else 0
    other = gross - round(wages * keep)
    figures = {"wage_income": wages, "other_net_income": other, "medical_out_of_pocket": medical,
               "education_spending": education}
    where = {"county_code": str(place["county_code"]), "town": str(place["town"]), "village": str(place["village"])}
    rows: list[dict[str, str | None]] = [
        {**where, "household_id": household_id, "name": str(name), "id_number": id_number, "relation": rel,
         **{k: str(v) for k, v in figures.items()}, "monitoring_category": SUDDEN_HARDSHIP,
         "identified_date": day2.isoformat(), "risk_type": risk, "risk_eliminated": "否"}
        for name, id_number, rel in zip(names.to_list(), ids, relation, strict=True)]
    persons = [{"name": str(name), "id_number": id_number, "relation": rel, "age": age, "male": m, "birth_date": b}
               for name, id_number, rel, age, m, b in zip(names.to_list(), ids, relation, ages, male, births,
                                                          strict=True)]
    return NewHousehold(household_id, str(place["county_code"]), str(place["town"]), str(place["village"]), rows,
                         persons, figures, standard, risk)
