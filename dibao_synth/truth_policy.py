"""What the engine should conclude, computed from the generator's own true data as the sample province's policy
reads (docs/POLICY.md; parameter values from ``policy.py``) — never by calling the engine.

Roll entries (应退尽退 and the roll's checks) are judged on their family (共同生活家庭成员, 民发〔2021〕57号 第七条):
the persons the roll lists for the entry (covered, listed not covered, and persons planted in it from elsewhere);
a 单人保 entry listing only its covered member takes the registry 户 as its family. Members out of the family
(服刑 / 强制隔离戒毒 / 失踪) are left out everywhere, and out of the income divisor. Registry and monitored families
(应保尽保) are judged on their members.

Money is compared as the published figures are: each per-capita figure is the exact total divided once and rounded
half-up to the fen, in integers here (fen, and hundredths of shares) so that a family exactly at the standard is
at it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from dibao_synth.income import COMPONENTS, severe_or_unable
from dibao_synth.policy import Policy
from dibao_synth.rollforms import severe

VEHICLE_EXEMPTION = {"disability": "vehicle_exempt_disability", "farm": "vehicle_exempt_farm",
                     "motorcycle": "vehicle_exempt_motorcycle", "tricycle": "vehicle_exempt_tricycle",
                     "operating": "vehicle_exempt_operating"}
HOME_EXEMPTION = {"dilapidated": "home_exempt_dilapidated", "relocation_old": "home_exempt_relocation_old"}
# Parts of 其他纯收入 and the parameter saying whether each counts (a 特困 person's own where it differs).
COUNTED_PARAMETER = {c: f"{c}_counted" for c in COMPONENTS}
DESTITUTE_PARAMETER = {**COUNTED_PARAMETER, "old_age_allowance": "old_age_allowance_counted_destitute"}

EXIT_REASONS = ("income_above_standard", "single_person_family_above_edge", "destitute_income_above_standard",
                "assets_above_limit", "vehicle_owned", "business_revenue_above_limit", "multiple_homes",
                "member_deceased", "duplicate_enrolment", "dibao_and_destitute")
INCLUSION_REASONS = ("income_below_standard", "no_work_capacity_uncovered", "destitute_eligible_uncovered")
FLAGS = ("member_deceased_recheck", "member_deceased_overdue", "family_members_mismatch", "vehicle_use_check",
         "business_registered", "single_person_condition_unmet", "destitute_minor_turning_adult", "review_overdue",
         "risk_eliminated_below_line", "risk_eliminated_too_soon")
# ID noise the engine reads through (cleaned or upgraded): the person's ID, hence their age, is known.
READABLE_ID_NOISE = ("clean", "full_width", "spaces", "lower_x", "old_15")
INCOME_REASONS = ("income_above_standard", "single_person_family_above_edge", "destitute_income_above_standard")


def half_up_div(numerator: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    """numerator / divisor rounded half-up (ties away from zero), in integers."""
    n = numerator.astype(np.int64)
    d = divisor.astype(np.int64)
    return np.sign(n) * ((2 * np.abs(n) + d) // (2 * d))


def _fen(x: np.ndarray | pl.Series) -> np.ndarray:
    return np.round(np.asarray(x, dtype=np.float64) * 100).astype(np.int64)


@dataclass(frozen=True)
class Inputs:
    """What the truth reads: the generator's households, persons, roll listing, department rows and accounts."""

    households: pl.DataFrame
    persons: pl.DataFrame
    extra: pl.DataFrame
    facts: pl.DataFrame
    accounts: pl.DataFrame
    records: pl.DataFrame
    policy: Policy


def person_table(inp: Inputs) -> pl.DataFrame:
    """Per person: age (exact, on the run date) and whether the data shows it, alive, out of the family, work
    capacity, severe condition, and their balances, vehicles, homes, businesses and payroll wages."""
    pol, as_of = inp.policy, inp.policy.as_of
    p = inp.persons
    birth = p["birth_date"]
    before_birthday = (birth.dt.month() > as_of.month) | ((birth.dt.month() == as_of.month)
                                                          & (birth.dt.day() > as_of.day))
    age = (as_of.year - birth.dt.year()).cast(pl.Int64) - before_birthday.cast(pl.Int64)
    # The engine knows a person's age from a usable ID: a person none of whose records gives one (blank, or
    # mistyped with no clean record to repair it against) has none, and counts as of working age.
    # A person is "clear" when every record of theirs is accepted with an ID the engine reads through: what the
    # data says of them can be linked without a repair.
    readable = pl.col("id_noise").fill_null("clean").is_in(READABLE_ID_NOISE)
    shown = inp.records.group_by("person_uid").agg(
        readable.any().alias("age_known"),
        (readable & pl.col("expected_reject_field").is_null()).all().alias("clear"))
    grade = p["disability_grade"].to_numpy()
    dtype = p["disability_type"].to_numpy()
    minor, elderly = pol.value("minor_age"), pol.value("elderly_age")
    base = pl.DataFrame({
        "person_uid": p["person_uid"], "household_uid": p["household_uid"], "age": age,
        "birth_date": birth, "death_date": p["death_date"], "excluded": p["excluded"],
        "no_capacity": severe_or_unable(grade, dtype),
        "severe": severe(grade, dtype) | p["serious_illness"].to_numpy(),
        "disabled_or_ill": (grade > 0) | p["serious_illness"].to_numpy(),
        "listed": p["listed"], "covered_own": p["covered"],
    }).join(shown, on="person_uid", how="left").with_columns(
        pl.col("age_known").fill_null(True),
        pl.col("clear").fill_null(True),
        pl.col("death_date").is_null().alias("alive"),
    ).with_columns(
        (~pl.col("age_known") | ((pl.col("age") >= minor) & (pl.col("age") < elderly))).alias("working_age"),
    ).with_columns(
        (pl.col("alive") & ~pl.col("excluded") & pl.col("working_age") & ~pl.col("no_capacity")).alias("worker"),
    )
    return base.join(_person_assets(inp), on="person_uid", how="left").with_columns(
        pl.col(c).fill_null(0) for c in ("balance_fen", "vehicles", "untyped_vehicles", "homes",
                                         "active_businesses", "revenue", "wage_monthly"))


def _person_assets(inp: Inputs) -> pl.DataFrame:
    """Per person: balances (fen), counted and untyped vehicles, counted homes, active businesses, latest revenue,
    latest payroll wage (yuan/month)."""
    pol = inp.policy
    exempt_vehicle = [c for c, name in VEHICLE_EXEMPTION.items() if pol.value(name) == 1]
    exempt_home = [c for c, name in HOME_EXEMPTION.items() if pol.value(name) == 1]
    f = inp.facts
    bank = inp.accounts.group_by("person_uid").agg(pl.col("balance").mul(100).round(0).cast(pl.Int64).sum()
                                                   .alias("balance_fen"))
    vehicle = pl.col("item") == "机动车"
    home = pl.col("item") == "不动产"
    latest = pl.col("as_of").rank("ordinal", descending=True).over("person_uid", "item") == 1
    dept = f.group_by("person_uid").agg(
        (vehicle & (pl.col("asset_class") != "untyped") & ~pl.col("asset_class").is_in(exempt_vehicle)).sum()
        .alias("vehicles"),
        (vehicle & (pl.col("asset_class") == "untyped")).sum().alias("untyped_vehicles"),
        pl.col("units").filter(home & ~pl.col("asset_class").is_in(exempt_home)).sum().alias("homes"),
        ((pl.col("item") == "工商登记") & (pl.col("value") == "存续")).sum().alias("active_businesses"),
    )
    revenue = f.filter(pl.col("item") == "经营收入").with_columns(latest.alias("l")).filter("l").select(
        "person_uid", pl.col("revenue"))
    wage = f.filter(pl.col("item") == "工资收入").with_columns(latest.alias("l")).filter("l").select(
        "person_uid", pl.col("value").cast(pl.Int64).alias("wage_monthly"))
    return (bank.join(dept, on="person_uid", how="full", coalesce=True)
            .join(revenue, on="person_uid", how="full", coalesce=True)
            .join(wage, on="person_uid", how="full", coalesce=True))


def source_income(inp: Inputs, people: pl.DataFrame, destitute_view: np.ndarray) -> pl.DataFrame:
    """Per household, its true figures as the formula counts them: per-capita monthly income (fen), per-capita
    yearly (fen), and the divisor. ``destitute_view``: count the parts as for a 特困 person's own income."""
    pol, h = inp.policy, inp.households
    n = h.height
    hh = people.filter(pl.col("household_uid") >= 0)
    uid = hh["household_uid"].to_numpy()
    workers = np.bincount(uid, weights=hh["worker"].to_numpy(), minlength=n).astype(np.int64)
    disabled = np.bincount(uid, weights=(hh["worker"] & hh["disabled_or_ill"]).to_numpy(), minlength=n).astype(
        np.int64)
    excluded = np.bincount(uid, weights=hh["excluded"].to_numpy(), minlength=n).astype(np.int64)
    size = np.maximum(h["size"].to_numpy() - excluded, 1)

    not_counted = np.zeros(n, dtype=np.int64)
    for c in COMPONENTS:  # loop over the eight parts of 其他纯收入
        counted_low = pol.value(COUNTED_PARAMETER[c])
        counted_destitute = pol.value(DESTITUTE_PARAMETER[c])
        counted = np.where(destitute_view, counted_destitute, counted_low)
        not_counted += _fen(h[c]) * (1 - counted.astype(np.int64))
    deductions = np.zeros(n, dtype=np.int64)
    for field, kind in (("medical_out_of_pocket", "medical"), ("education_spending", "education"),
                        ("rehabilitation_spending", "rehabilitation")):  # the three deductions, each capped
        share = pol.value(f"{kind}_deduction_share")
        cap = round(pol.value(f"{kind}_deduction_cap") * 100)
        deductions += np.minimum(np.round(_fen(h[field]) * share).astype(np.int64), cap)
    low = round(pol.value("employment_cost_share") * 100)
    high = round(pol.value("employment_cost_share_disabled") * 100)
    mixed = disabled > 0
    wd = np.where(mixed, workers, 1)
    share100 = np.where(mixed, low * (workers - disabled) + high * disabled, low)
    rest = _fen(h["other_net_income"]) - not_counted - deductions
    net100 = _fen(h["wage_income"]) * (100 * wd - share100) + 100 * wd * rest
    return pl.DataFrame({
        "household_uid": h["household_uid"],
        "pc_fen": half_up_div(net100, 100 * 12 * size * wd),
        "pc_year_fen": half_up_div(net100, 100 * size * wd),
        # The monitoring line is drawn on the figures as recorded: wages plus other net income, nothing deducted.
        "recorded_year_fen": half_up_div(_fen(h["wage_income"]) + _fen(h["other_net_income"]), size),
        "income_divisor": size,
    })


def _roll_listing(inp: Inputs) -> pl.DataFrame:
    """(entry, person_uid, covered) for every roll row: own members listed, and the planted extra rows."""
    p = inp.persons.filter(pl.col("listed"))
    own = p.select(pl.col("household_uid").alias("entry"), "person_uid", pl.col("covered"))
    extra = inp.extra.select(pl.col("household_uid").alias("entry"), "person_uid", pl.lit(True).alias("covered"))
    return pl.concat([own, extra])


def roll_truth(inp: Inputs, people: pl.DataFrame) -> pl.DataFrame:
    """Per roll entry: the figures its family shows and every exit reason and roll check."""
    pol, as_of, h = inp.policy, inp.policy.as_of, inp.households
    listing = _roll_listing(inp)
    assistance = listing.join(h.select(pl.col("household_uid").alias("entry"), "assistance_type"), on="entry")
    per_person = assistance.filter("covered").group_by("person_uid").agg(
        pl.col("entry").n_unique().alias("roll_entries"),
        ((pl.col("assistance_type") == "低保").any() & (pl.col("assistance_type") == "特困供养").any())
        .alias("both_types"))
    entries = h.filter("on_roll").select(
        pl.col("household_uid").alias("entry"), "roll_form", "assistance_type", "coverage_mode", "support_mode",
        "standard_policy", "assessed_monthly_income", "monthly_benefit", "in_registry", "in_monitoring",
        "last_review_date", "enrolled_date")
    # The family: the listing, or the registry 户 of a 单人保 entry listing its member alone.
    single_only = entries.filter(pl.col("roll_form") == "single_only")["entry"]
    household_members = people.filter(pl.col("household_uid").is_in(single_only.implode())).select(
        pl.col("household_uid").alias("entry"), "person_uid", pl.col("covered_own").alias("covered"))
    family = pl.concat([listing.filter(~pl.col("entry").is_in(single_only.implode())), household_members])
    family = family.join(people, on="person_uid", how="left").join(per_person, on="person_uid", how="left")

    in_family = ~pl.col("excluded")
    living = in_family & pl.col("alive")
    minor_until = pol.value("destitute_minor_until_age")
    adult_on = pl.col("birth_date").dt.offset_by(f"{int(minor_until)}y")
    agg = family.group_by("entry").agg(
        in_family.sum().alias("members"),
        pl.col("balance_fen").filter(in_family).sum().alias("assets_fen"),
        pl.col("vehicles").filter(in_family).sum().alias("vehicles"),
        pl.col("untyped_vehicles").filter(in_family).sum().alias("untyped_vehicles"),
        pl.col("homes").filter(in_family).sum().alias("homes"),
        pl.col("active_businesses").filter(in_family).sum().alias("active_businesses"),
        pl.col("revenue").filter(in_family).sum().alias("revenue"),
        pl.col("wage_monthly").filter(in_family).sum().alias("dept_wage_monthly"),
        (pl.col("covered") & ~pl.col("alive")).sum().alias("deceased_covered"),
        (pl.col("covered") & living).sum().alias("living_covered"),
        pl.col("death_date").filter(pl.col("covered")).min().alias("covered_death_date"),
        (pl.col("covered") & living & pl.col("severe")).sum().alias("covered_severe"),
        (living & pl.col("working_age") & ~pl.col("no_capacity")).sum().alias("able_members"),
        # the 18th birthday: due_notice_days before it until a year after it (age 18), while still on the roll
        adult_on.filter(pl.col("covered") & living & (pl.col("age") <= minor_until)).min().alias("minor_adult_date"),
        (in_family & pl.col("covered") & (pl.col("roll_entries") > 1)).sum().alias("duplicate_members"),
        (in_family & pl.col("both_types").fill_null(False)).sum().alias("both_types_members"),
        pl.col("clear").all().alias("evidence_clear"),
    )
    overlap = _overlap(listing, people, entries)
    t = entries.join(agg, on="entry", how="left").join(overlap, on="entry", how="left").rename(
        {"entry": "household_uid"})
    income = _roll_income(inp, people, t)
    t = t.join(income, on="household_uid", how="left")
    return _roll_reasons(pol, t, as_of)


def _overlap(listing: pl.DataFrame, people: pl.DataFrame, entries: pl.DataFrame) -> pl.DataFrame:
    """Per entry with a registry/monitoring 户: its members the entry does not list (not out of the family), and
    those of them alive (家庭成员认定不一致)."""
    known = entries.filter(pl.col("in_registry") | pl.col("in_monitoring"))["entry"]
    members = people.filter(pl.col("household_uid").is_in(known.implode())).select(
        pl.col("household_uid").alias("entry"), "person_uid", "excluded", "alive")
    unlisted = members.join(listing.select("entry", "person_uid"), on=["entry", "person_uid"], how="anti")
    return unlisted.group_by("entry").agg(
        (~pl.col("excluded")).sum().alias("income_only"),
        (~pl.col("excluded") & pl.col("alive")).sum().alias("unlisted_alive"))


def _roll_income(inp: Inputs, people: pl.DataFrame, t: pl.DataFrame) -> pl.DataFrame:
    """The per-capita income (fen) each entry is judged on, and whether the data shows it.

    低保: the family's true income (from its registry/monitoring 户 — shown — or, for a family in neither, its own
    figures, which only a payroll record may reveal). 特困: the person's own income — their 户's figures where
    it holds nobody else and they do not live in an institution, else the roll's assessed income (shown).
    """
    h = inp.households
    destitute = (h["assistance_type"] == "特困供养").fill_null(False).to_numpy()
    own = source_income(inp, people, destitute).rename({"pc_fen": "source_pc_fen", "pc_year_fen": "source_year_fen"}) \
        .drop("recorded_year_fen")
    t = t.join(own, on="household_uid", how="left")
    is_destitute = pl.col("assistance_type") == "特困供养"
    alone = (pl.col("income_only").fill_null(0) == 0) & (pl.col("support_mode") != "集中供养")
    by_assessment = is_destitute & ~alone
    known = pl.col("in_registry") | pl.col("in_monitoring")
    share = inp.policy.value("employment_cost_share")
    dept_pc = pl.Series(half_up_div(
        _fen(t["dept_wage_monthly"].fill_null(0)) * round((1 - share) * 100),
        np.maximum(t["members"].fill_null(1).to_numpy(), 1) * 100))
    assessed = pl.Series(_fen(t["assessed_monthly_income"].fill_null(0)))
    return t.with_columns(dept_pc.alias("dept_pc_fen"), assessed.alias("assessed_fen")).select(
        "household_uid",
        pl.when(by_assessment).then(pl.max_horizontal("assessed_fen", "dept_pc_fen"))
        .otherwise(pl.col("source_pc_fen")).alias("pc_fen"),
        (by_assessment | known).alias("income_visible"),
        pl.when(by_assessment).then(pl.lit("roll_assessment")).when(known).then(pl.lit("household"))
        .otherwise(pl.lit("hidden")).alias("income_basis"),
        "income_divisor",
    )


def _roll_reasons(pol: Policy, t: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    std = pl.col("standard_policy") * 100
    low = pl.col("assistance_type") == "低保"
    destitute = pl.col("assistance_type") == "特困供养"
    whole = pl.col("coverage_mode") == "整户保"
    per_capita_assets = pl.Series(half_up_div(t["assets_fen"].fill_null(0).to_numpy(),
                                              np.maximum(t["members"].fill_null(1).to_numpy(), 1)))
    recheck_months = int(pol.value("deceased_recheck_months"))
    due = pl.col("covered_death_date").dt.offset_by(f"{recheck_months}mo")
    cycle = (pl.when(destitute).then(pol.value("review_months_destitute"))
             .when(pl.col("able_members") > 0).then(pol.value("review_months_unstable"))
             .otherwise(pol.value("review_months_stable"))).cast(pl.Int64)
    review_from = pl.coalesce("last_review_date", "enrolled_date")
    next_review = review_from.dt.offset_by(pl.format("{}mo", cycle))
    days_to_adult = (pl.col("minor_adult_date") - pl.lit(as_of)).dt.total_days()
    run = pl.lit(as_of)
    return t.with_columns(per_capita_assets.alias("per_capita_assets_fen")).with_columns(
        (low & whole & (pl.col("pc_fen") >= std)).alias("income_above_standard"),
        (low & ~whole & (pl.col("pc_fen") >= std * pol.value("edge_multiplier"))).alias(
            "single_person_family_above_edge"),
        (destitute & (pl.col("pc_fen") >= std)).alias("destitute_income_above_standard"),
        (pl.col("per_capita_assets_fen") >= std * pol.value("asset_limit_months")).alias("assets_above_limit"),
        (pl.col("vehicles") > 0).alias("vehicle_owned"),
        (pl.col("revenue") > pol.value("business_revenue_limit")).alias("business_revenue_above_limit"),
        (pl.col("homes") > pol.value("homes_limit")).alias("multiple_homes"),
        ((pl.col("deceased_covered") > 0) & (pl.col("living_covered") == 0)).alias("member_deceased"),
        (pl.col("duplicate_members") > 0).alias("duplicate_enrolment"),
        (pl.col("both_types_members") > 0).alias("dibao_and_destitute"),
        ((pl.col("deceased_covered") > 0) & (pl.col("living_covered") > 0) & (due >= run))
        .alias("member_deceased_recheck"),
        ((pl.col("deceased_covered") > 0) & (pl.col("living_covered") > 0) & (due < run))
        .alias("member_deceased_overdue"),
        (low & (pl.col("roll_form") != "single_only") & (pl.col("unlisted_alive").fill_null(0) > 0))
        .alias("family_members_mismatch"),
        (pl.col("untyped_vehicles") > 0).alias("vehicle_use_check"),
        ((pl.col("active_businesses") > 0) & (pl.col("revenue") <= pol.value("business_revenue_limit")))
        .alias("business_registered"),
        ((pl.col("coverage_mode") == "单人保") & (pl.col("covered_severe") == 0))
        .alias("single_person_condition_unmet"),
        (destitute & (days_to_adult <= pol.value("due_notice_days")).fill_null(False))
        .alias("destitute_minor_turning_adult"),
        (next_review < run).alias("review_overdue"),
    )


def household_truth(inp: Inputs, people: pl.DataFrame) -> pl.DataFrame:
    """Per registry family, and per monitored family the registry does not hold: the 应保尽保 reasons."""
    pol, h = inp.policy, inp.households
    covered = pl.concat([
        inp.persons.filter("covered").select("person_uid"), inp.extra.select("person_uid")]).unique()
    members = people.filter(pl.col("household_uid") >= 0).with_columns(
        pl.col("person_uid").is_in(covered["person_uid"].implode()).alias("covered_anywhere"))
    in_family = ~pl.col("excluded")
    living = in_family & pl.col("alive")
    agg = members.group_by("household_uid").agg(
        in_family.sum().alias("members"),
        (in_family & pl.col("covered_anywhere")).any().alias("covered"),
        pl.col("balance_fen").filter(in_family).sum().alias("assets_fen"),
        pl.col("vehicles").filter(in_family).sum().alias("vehicles"),
        pl.col("untyped_vehicles").filter(in_family).sum().alias("untyped_vehicles"),
        pl.col("homes").filter(in_family).sum().alias("homes"),
        pl.col("active_businesses").filter(in_family).sum().alias("active_businesses"),
        pl.col("revenue").filter(in_family).sum().alias("revenue"),
        (living & pl.col("no_capacity")).sum().alias("no_capacity_members"),
        (living & pl.col("working_age") & ~pl.col("no_capacity")).sum().alias("able_members"),
        pl.col("clear").all().alias("evidence_clear"),
    )
    income = source_income(inp, people, np.zeros(h.height, dtype=bool))
    t = h.select("household_uid", "in_registry", "in_monitoring", "standard_policy", "risk_eliminated",
                 "identified_date", "risk_eliminated_date").join(agg, on="household_uid", how="left").join(
        income, on="household_uid", how="left")
    std = pl.col("standard_policy") * 100
    per_capita_assets = pl.Series(half_up_div(t["assets_fen"].fill_null(0).to_numpy(),
                                              np.maximum(t["income_divisor"].to_numpy(), 1)))
    t = t.with_columns(per_capita_assets.alias("per_capita_assets_fen"))
    assets_ok = ((pl.col("per_capita_assets_fen") < std * pol.value("asset_limit_months"))
                 & (pl.col("vehicles") == 0) & (pl.col("homes") <= pol.value("homes_limit"))
                 & (pl.col("revenue") <= pol.value("business_revenue_limit")))
    subject = pl.col("in_registry") | pl.col("in_monitoring")
    below = subject & ~pl.col("covered") & (pl.col("pc_fen") < std) & assets_ok
    elimination_days = (pl.col("risk_eliminated_date") - pl.col("identified_date")).dt.total_days()
    return t.with_columns(
        (pl.col("pc_fen") < std).alias("income_below"),
        assets_ok.alias("assets_ok"),
        below.alias("income_below_standard"),
        (pl.col("in_monitoring") & ~pl.col("covered") & (pl.col("no_capacity_members") > 0))
        .alias("no_work_capacity_uncovered"),
        (below & (pl.col("able_members") == 0)).alias("destitute_eligible_uncovered"),
        (pl.col("in_monitoring") & pl.col("risk_eliminated")
         & (pl.col("recorded_year_fen") < pol.value("monitoring_income_line") * 100))
        .alias("risk_eliminated_below_line"),
        (pl.col("in_monitoring") & pl.col("risk_eliminated")
         & (elimination_days < pol.value("monitoring_min_days_before_elimination")).fill_null(False))
        .alias("risk_eliminated_too_soon"),
    )
