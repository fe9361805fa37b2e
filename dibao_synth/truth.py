"""Ground truth of a synthetic drop: who each record really is, and what the engine should conclude.

Written as Parquet next to the drop (never inside it) so tests and benchmarks can score linkage (records →
persons) and decisions. ``households.parquet`` has one row per household with one boolean column per exit reason,
inclusion reason and planted check (named as the engine's codes, ``truth_policy.py``), the figures they rest on,
and the older descriptive columns (vehicle, business, extra_home, deceased_member, eligible, edge …).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from dibao_synth.params import COUNTIES
from dibao_synth.truth_policy import EXIT_REASONS, FLAGS, INCLUSION_REASONS, Inputs, person_table, roll_truth
from dibao_synth.truth_policy import household_truth as family_truth

RECORD_SCHEMA = {
    "source": pl.String, "row": pl.Int64, "person_uid": pl.Int64, "household_uid": pl.Int64,
    "id_noise": pl.String, "name_noise": pl.String, "expected_reject_field": pl.String,
    "extra_enrolment": pl.Boolean,
}
# Roll-entry figures kept in the truth beside the reasons.
_ROLL_FIGURES = ("members", "income_visible", "income_basis", "vehicles", "untyped_vehicles", "homes", "revenue",
                 "deceased_covered", "living_covered", "covered_death_date", "minor_adult_date")


def household_truth(inp: Inputs, pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per household with its true figures and the conclusions the engine should reach: roll entries by
    their family, registry and monitored families by their members."""
    people = person_table(inp)
    roll = roll_truth(inp, people)
    family = family_truth(inp, people)
    h = inp.households
    unfiled = pairs.filter(pl.col("relative_on_roll") & (pl.col("status") != "filed"))
    payroll = inp.facts.filter(pl.col("item") == "财政供养").join(
        inp.persons.select("person_uid", "household_uid"), on="person_uid")["household_uid"]
    on_roll = pl.col("on_roll")

    def pick(roll_col: str, family_col: str) -> pl.Expr:
        return pl.when(on_roll).then(pl.col(f"r_{roll_col}")).otherwise(pl.col(f"h_{family_col}"))

    t = (h.join(roll.select("household_uid", pl.all().exclude("household_uid").name.prefix("r_")),
                on="household_uid", how="left")
         .join(family.select("household_uid", pl.all().exclude("household_uid").name.prefix("h_")),
               on="household_uid", how="left"))
    std = pl.col("standard_policy") * 100
    pc = pick("pc_fen", "pc_fen")
    assets = pick("per_capita_assets_fen", "per_capita_assets_fen")
    assets_ok = ((assets < std * 24) & (pick("vehicles", "vehicles") == 0) & (pick("homes", "homes") <= 1)
                 & (pick("revenue", "revenue") <= 100_000))
    t = t.with_columns(
        (pc / 100).alias("per_capita_monthly_income"),
        (assets / 100).alias("per_capita_assets"),
        (pick("vehicles", "vehicles") > 0).alias("vehicle"),
        (pick("active_businesses", "active_businesses") > 0).alias("business"),
        (pick("homes", "homes") > 1).alias("extra_home"),
        pl.when(on_roll).then(pl.col("r_deceased_covered") > 0).otherwise(False).alias("deceased_member"),
        ((pc < std) & assets_ok).alias("eligible"),
        ((pc >= std) & (pc < std * 1.5) & assets_ok).alias("edge"),
        pl.col("household_uid").is_in(unfiled["relative_household_uid"].implode()).alias("relative_not_filed"),
        pl.col("household_uid").is_in(payroll.implode()).alias("public_payroll"),
        (pl.col("h_no_capacity_members").fill_null(0) > 0).alias("member_without_work_capacity"),
        *[(on_roll & pl.col(f"r_{c}").fill_null(False)).alias(c) for c in EXIT_REASONS],
        *[(~on_roll & pl.col(f"h_{c}").fill_null(False)).alias(c) for c in INCLUSION_REASONS],
        *[pl.col(f"r_{c}").fill_null(False).alias(c) for c in FLAGS if not c.startswith("risk_")],
        *[pl.col(f"h_{c}").fill_null(False).alias(c) for c in FLAGS if c.startswith("risk_")],
        *[pl.col(f"r_{c}").alias(c) for c in _ROLL_FIGURES],
        pl.col("h_covered").fill_null(False).alias("covered"),
        pick("evidence_clear", "evidence_clear").fill_null(True).alias("evidence_clear"),
    ).with_columns(pl.col("income_below_standard").alias("missed_eligible"))
    return t.select(
        "household_uid", "county_code", "area", "registry_household_id", "monitoring_household_id",
        "dibao_household_id", "assistance_type", "coverage_mode", "support_mode", "roll_form", "size",
        "per_capita_monthly_income", "standard", "per_capita_assets", "vehicle", "business", "extra_home",
        "deceased_member", "eligible", "edge", "relative_not_filed",
        *EXIT_REASONS, *INCLUSION_REASONS, *FLAGS,
        # beyond the reasons: programme membership, the figures and the other planted cases
        "in_registry", "in_monitoring", "on_roll", "covered", "income_band", "net_annual_income",
        "assessed_monthly_income", "monthly_benefit", "components_blank", "public_payroll", "missed_eligible",
        "risk_eliminated", "member_without_work_capacity", "town", "village", *_ROLL_FIGURES, "evidence_clear",
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
        pl.col("disability_type").cast(pl.Int64), "serious_illness", "death_date", "excluded",
        pl.col("listed").alias("on_roll_list"), pl.col("covered").alias("roll_covered"),
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
    flags = ("vehicle", "business", "extra_home", "deceased_member", "eligible", "edge", "relative_not_filed",
             "public_payroll", "missed_eligible", *EXIT_REASONS, *INCLUSION_REASONS, *FLAGS)
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
        "roll_form": counts("roll_form", h),
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
