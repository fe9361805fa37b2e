"""Ground truth of a synthetic drop: who each record really is, and what the engine should conclude.

Written as Parquet next to the drop (never inside it) so tests and benchmarks can score linkage (records →
persons) and decisions (households eligible, edge, duplicate enrolment, unfiled relatives …).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from dibao_synth.params import ASSET_MONTHS, COUNTIES, EDGE_MULTIPLIER

RECORD_SCHEMA = {
    "source": pl.String, "row": pl.Int64, "person_uid": pl.Int64, "household_uid": pl.Int64,
    "id_noise": pl.String, "name_noise": pl.String, "expected_reject_field": pl.String,
    "extra_enrolment": pl.Boolean,
}
# Disability that means no work capacity (丧失劳动能力): grade 1–2, or grade 3 intellectual/mental.
_TYPE_INTELLECTUAL, _TYPE_MENTAL = 4, 5


def household_truth(households: pl.DataFrame, persons: pl.DataFrame, per_capita_assets: np.ndarray,
                    fact_flags: pl.DataFrame, extra: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per household with its true figures and the conclusions the engine should reach."""
    n = households.height

    def mark(uids: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        out[uids[uids >= 0]] = True
        return out

    ex_person_hh = persons["household_uid"].to_numpy()[extra["person_uid"].to_numpy()]
    ex_target = extra["household_uid"].to_numpy()
    kinds = extra["kind"].to_numpy()
    dup = kinds == "duplicate_enrolment"
    both = kinds == "dibao_and_destitute"
    unfiled = pairs.filter(pl.col("relative_on_roll") & (pl.col("status") != "filed"))

    grade = persons["disability_grade"].to_numpy()
    dtype = persons["disability_type"].to_numpy()
    hh_of = persons["household_uid"].to_numpy()
    unable = ((grade >= 1) & (grade <= 2)) | ((grade == 3) & np.isin(dtype, [_TYPE_INTELLECTUAL, _TYPE_MENTAL]))
    unable_hh = mark(hh_of[unable & (hh_of >= 0)])

    h = households.join(fact_flags, on="household_uid", how="left", maintain_order="left").with_columns(
        pl.Series("per_capita_assets", per_capita_assets),
        pl.Series("duplicate_enrolment", mark(np.concatenate([ex_person_hh[dup], ex_target[dup]]))),
        pl.Series("dibao_and_destitute", mark(np.concatenate([ex_person_hh[both], ex_target[both]]))),
        pl.Series("relative_not_filed", mark(unfiled["relative_household_uid"].to_numpy())),
        pl.Series("member_without_work_capacity", unable_hh),
    )
    limit = pl.col("standard") * ASSET_MONTHS
    assets_ok = (pl.col("per_capita_assets") < limit) & ~pl.col("vehicle") & ~pl.col("business")
    pcm = pl.col("per_capita_monthly_income")
    h = h.with_columns(
        ((pcm < pl.col("standard")) & assets_ok).alias("eligible"),
        ((pcm >= pl.col("standard")) & (pcm < pl.col("standard") * EDGE_MULTIPLIER) & assets_ok).alias("edge"),
    ).with_columns(
        (pl.col("eligible") & ~pl.col("on_roll") & (pl.col("in_registry") | pl.col("in_monitoring")))
        .alias("missed_eligible"),
        (pl.col("on_roll") & (pcm >= pl.col("standard"))).alias("income_above_standard"),
        (pl.col("on_roll") & (pl.col("per_capita_assets") >= limit)).alias("assets_above_limit"),
        (pl.col("in_monitoring") & ~pl.col("on_roll") & pl.col("member_without_work_capacity"))
        .alias("no_work_capacity_uncovered"),
    )
    return h.select(
        "household_uid", "county_code", "area", "registry_household_id", "monitoring_household_id",
        "dibao_household_id", "assistance_type", "size", "per_capita_monthly_income", "standard",
        "per_capita_assets", "vehicle", "business", "extra_home", "deceased_member", "duplicate_enrolment",
        "dibao_and_destitute", "eligible", "edge", "relative_not_filed",
        # beyond the brief's list: programme membership and the other planted cases
        "in_registry", "in_monitoring", "on_roll", "income_band", "net_annual_income",
        "assessed_monthly_income", "public_payroll", "missed_eligible", "income_above_standard",
        "assets_above_limit", "risk_eliminated", "risk_eliminated_below_line", "risk_eliminated_too_soon",
        "member_without_work_capacity", "no_work_capacity_uncovered", "town", "village",
    ).with_columns(
        pl.when(pl.col("in_monitoring")).then(pl.col(c)).otherwise(None).alias(c)
        for c in ("risk_eliminated", "risk_eliminated_below_line", "risk_eliminated_too_soon")
    )


def person_truth(persons: pl.DataFrame) -> pl.DataFrame:
    codes = pl.Series([c.code for c in COUNTIES])
    return persons.select(
        "person_uid", "id_number", "name", "birth_date", "sex",
        pl.when(pl.col("household_uid") >= 0).then(pl.col("household_uid")).otherwise(None).alias("household_uid"),
        pl.col("county_idx").cast(pl.Int64).map_batches(lambda s: codes.gather(s), return_dtype=pl.String)
        .alias("county_code"),
        "relation", "age", "minority", "twin", "disability_grade",
    )


def write_truth(truth_out: Path, tables: dict[str, pl.DataFrame], summary: dict[str, object]) -> None:
    truth_out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.write_parquet(truth_out / f"{name}.parquet", compression="zstd", statistics=False)
    (truth_out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_summary(households: pl.DataFrame, records: pl.DataFrame, pairs: pl.DataFrame,
                  persons: pl.DataFrame, rows: dict[str, int]) -> dict[str, object]:
    """Counts of everything planted: memberships, noise kinds, problem cases (no timings: stays deterministic)."""
    h = households
    flags = ("vehicle", "business", "extra_home", "deceased_member", "duplicate_enrolment", "dibao_and_destitute",
             "eligible", "edge", "relative_not_filed", "public_payroll", "missed_eligible",
             "income_above_standard", "assets_above_limit", "no_work_capacity_uncovered")
    on_roll = h.filter("on_roll")
    off_roll = h.filter(~pl.col("on_roll"))

    def counts(col: str, frame: pl.DataFrame) -> dict[str, int]:
        c = frame.group_by(col).len().drop_nulls(col).sort(col)
        return {str(k): int(v) for k, v in c.iter_rows()}

    return {
        "households": h.height,
        "persons": int((persons["household_uid"] >= 0).sum()),
        "staff_outside_households": int((persons["household_uid"] < 0).sum()),
        "twins": int(persons["twin"].sum()),
        "minority_persons": int(persons["minority"].sum()),
        "rows": rows,
        "memberships": {
            "registry": int(h["in_registry"].sum()),
            "monitoring": int(h["in_monitoring"].sum()),
            "dibao_roll": int(h["on_roll"].sum()),
            "registry_and_roll": int((h["in_registry"] & h["on_roll"]).sum()),
            "monitoring_and_roll": int((h["in_monitoring"] & h["on_roll"]).sum()),
            "registry_and_monitoring": int((h["in_registry"] & h["in_monitoring"]).sum()),
            "assistance_type": counts("assistance_type", h),
            "area": counts("area", h),
        },
        "income_band": counts("income_band", h),
        "flags_all": {f: int(h[f].sum()) for f in flags},
        "flags_on_roll": {f: int(on_roll[f].sum()) for f in flags},
        "flags_off_roll": {f: int(off_roll[f].sum()) for f in flags},
        "monitoring": {
            "risk_eliminated": int(h["risk_eliminated"].sum()),
            "risk_eliminated_below_line": int(h["risk_eliminated_below_line"].sum()),
            "risk_eliminated_too_soon": int(h["risk_eliminated_too_soon"].sum()),
        },
        "edge_off_roll": int((off_roll["edge"]).sum()),
        "relatives": counts("status", pairs),
        "id_noise": {src: counts("id_noise", g) for (src,), g in records.group_by("source", maintain_order=True)},
        "name_noise": {src: counts("name_noise", g)
                       for (src,), g in records.group_by("source", maintain_order=True)},
        "expected_rejections": {src: counts("expected_reject_field", g)
                                for (src,), g in records.group_by("source", maintain_order=True)},
    }
