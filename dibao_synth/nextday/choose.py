"""Which households the changes may touch: what day 1 says, read from the drop alone.

A household is changed only when every record of its members is clear — usable ID, row accepted, no noisy record
elsewhere that could be one of them — and the figures leave no doubt about its day-1 status (no exit reason,
income and assets clearly inside the limits). So the engine's reading of day 1 is certain, and each change has
exactly the effect named in the summary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import polars.selectors as cs

from dibao.ingest import Drop
from dibao.normalise.ids import USABLE_STATUSES, normalise_ids
from dibao.normalise.names import normalise_names
from dibao_synth.facts import VEHICLE_KINDS
from dibao_synth.income import EDUCATION_CAP, MEDICAL_CAP, REHABILITATION_CAP
from dibao_synth.params import ASSET_MONTHS, COUNTIES, EMPLOYMENT_COST_SHARE

# Parts of 其他纯收入 that never count for a 低保 family (its own benefit and the exempt transfers).
NOT_COUNTED_PARTS = ("dibao_benefit_income", "destitute_benefit_income", "special_care_income",
                     "family_planning_income", "scholarship_income", "heroism_reward")

PERSON_STEMS = ("registry", "monitoring", "dibao_roll", "bank_assets", "dept_facts")
HOUSEHOLD_FIELD = {"registry": "household_id", "monitoring": "household_id", "dibao_roll": "dibao_household_id"}
INCOME_FIELDS = ("wage_income", "other_net_income", "medical_out_of_pocket", "education_spending",
                 "rehabilitation_spending", *NOT_COUNTED_PARTS)
# Where a person's name is taken from when the sources disagree (the registry is the cleanest).
_NAME_PRIORITY = {"registry": 0, "monitoring": 1, "dibao_roll": 2, "bank_assets": 3, "dept_facts": 4}

# 车辆类型 words of the classes that count (a car, an operating vehicle); a plate with no 类型 is to be checked.
COUNTED_VEHICLE_KINDS = (*VEHICLE_KINDS["car"], *VEHICLE_KINDS["operating"])
EXEMPT_HOME_KINDS = ("危房", "搬迁旧房")
# Department items that make a household's day-1 reading uncertain or add a reason or check: a death, a business,
# public pay, a member out of the family. A disability or illness may raise the employment-cost share: it only
# lowers the income, but a wage rise aimed just above the standard must leave such households alone.
BLOCKING_ITEMS = ("死亡", "工商登记", "经营收入", "财政供养", "服刑", "强制隔离戒毒", "失踪")
SHARE_ITEMS = ("重病", "残疾等级")

CLEAR_INCOME_SHARE = 0.9  # a household "clearly" eligible: income below this share of the standard
CLEAR_ASSET_SHARE = 0.8  # …and per-capita assets below this share of the limit


def _text(drop: Drop, stem: str, name: str) -> pl.Series:
    """One field of a file as text (trimmed, blank → null), or all nulls when the file lacks it."""
    f = drop.files[stem]
    header = f.column_map.get(name)
    if header is None:
        return pl.repeat(None, f.raw.frame.height, dtype=pl.String, eager=True)
    return f.raw.frame.get_column(header)


def day_one_records(drop: Drop, today: dt.date) -> pl.DataFrame:
    """One row per record of every person-level file: ``clear`` when accepted with a usable ID."""
    frames = []
    usable = [s.value for s in USABLE_STATUSES]
    for stem in PERSON_STEMS:  # loop over the five person-level files
        f = drop.files.get(stem)
        if f is None:
            continue
        base = pl.DataFrame({
            "row": pl.int_range(1, f.raw.frame.height + 1, eager=True, dtype=pl.UInt32),
            "household": _text(drop, stem, HOUSEHOLD_FIELD.get(stem, "__none__")),
            "id_text": _text(drop, stem, "id_number"),
            "name": _text(drop, stem, "name"),
        })
        base = normalise_ids(base, "id_text", prefix="id_", today=today)
        base = base.hstack(normalise_names(base.get_column("name")))
        accepted = f.accepted.select("row", pl.lit(True).alias("accepted"))
        frames.append(base.join(accepted, on="row", how="left").select(
            pl.lit(stem).alias("source"), "row", "household", "name",
            pl.when(pl.col("id_status").is_in(usable)).then(pl.col("id_norm")).alias("id"),
            (pl.col("accepted").fill_null(False) & pl.col("id_status").is_in(usable)).alias("clear"),
            pl.col("id_norm").alias("id_any"), "name_pinyin", "id_region", "id_birth_date",
        ))
    return pl.concat(frames)


def tainted_ids(recs: pl.DataFrame) -> pl.DataFrame:
    """IDs that an unclear record (rejected, or without a usable ID) might also belong to: same name sound, or
    same birth place and date. Their households are left alone."""
    unclear = recs.filter(~pl.col("clear"))
    clear = recs.filter("clear")
    by_name = clear.join(unclear.select("name_pinyin").drop_nulls().unique(), on="name_pinyin", how="semi")
    by_birth = clear.join(unclear.select("id_region", "id_birth_date").drop_nulls().unique(),
                          on=["id_region", "id_birth_date"], how="semi")
    return pl.concat([by_name.select("id"), by_birth.select("id")]).unique()


def standard_of(county_code: str, area: str) -> int:
    county = next(c for c in COUNTIES if c.code == county_code)
    return county.urban_standard if area == "城市" else county.rural_standard


def standards() -> pl.DataFrame:
    """The monthly 低保 standard per county and area, as the generator draws incomes against
    (docs/POLICY.md#sample-province)."""
    return pl.DataFrame([(c.code, area, standard_of(c.code, area)) for c in COUNTIES for area in ("城市", "农村")],
                        schema={"county_code": pl.String, "area": pl.String, "standard": pl.Int64}, orient="row")


def roll_households(drop: Drop, recs: pl.DataFrame) -> pl.DataFrame:
    """Roll households whose day-1 reading is certain, with income, assets and department facts per household.

    Columns: dibao_household_id, county_code, area, assistance_type, ids (sorted), size, standard, pcm (per-capita
    monthly income as the engine computes it), income_households (null: a family in no registry or monitoring
    file, whose income is the roll's assessment), wage, other, medical, education, rest (counted income but the
    wages), assets_pc,
    vehicles (countable 机动车 records), vehicle_rows, share_items (disability and illness records: the
    employment-cost share may be higher), clean (no exit reason or check apart from a vehicle).
    """
    tainted = tainted_ids(recs)
    roll_typed = drop.frame_or_empty("dibao_roll").select(
        "row", "county_code", "area", "assistance_type", "assessed_monthly_income", "covered_persons",
        "monthly_benefit", "coverage_mode", "member_covered")
    roll = recs.filter(pl.col("source") == "dibao_roll").join(roll_typed, on="row", how="left")
    in_many = roll.filter("clear").group_by("id").agg(pl.col("household").n_unique().alias("n")).filter(
        pl.col("n") > 1).select("id")
    roll = roll.with_columns(
        (pl.col("id").is_in(tainted["id"].implode()) | pl.col("id").is_in(in_many["id"].implode())).alias("doubt"))
    hh = roll.filter(pl.col("household").is_not_null()).group_by("household").agg(
        pl.len().alias("size"),
        pl.col("clear").all().alias("all_clear"),
        pl.col("doubt").any().alias("doubt"),
        pl.col("id").n_unique().alias("n_ids"),
        pl.col("id").sort().alias("ids"),
        pl.col("county_code").n_unique().alias("n_county"),
        pl.col("area").n_unique().alias("n_area"),
        pl.col("assistance_type").n_unique().alias("n_type"),
        pl.col("county_code").first(), pl.col("area").first(), pl.col("assistance_type").first(),
        pl.col("assessed_monthly_income").max().alias("assessed"), pl.col("covered_persons").max().alias("covered"),
        pl.col("monthly_benefit").max().alias("benefit"),
        # 整户保 with every listed member covered: the family is the roll's list, as the registry's
        (pl.col("coverage_mode").fill_null("整户保") == "整户保").all().alias("whole"),
        pl.col("member_covered").fill_null(True).all().alias("all_covered"),
    ).filter(
        pl.col("all_clear") & ~pl.col("doubt") & (pl.col("n_ids") == pl.col("size")) & pl.col("whole")
        & pl.col("all_covered")
        & (pl.col("n_county") == 1) & (pl.col("n_area") == 1) & (pl.col("n_type") == 1)
        & pl.col("county_code").is_in([c.code for c in COUNTIES])
    ).rename({"household": "dibao_household_id"}).drop("all_clear", "doubt", "n_ids", "n_county", "n_area", "n_type",
                                                       "whole", "all_covered")

    income = income_households(drop, recs)
    members = hh.select("dibao_household_id", pl.col("ids").alias("id")).explode("id")
    # Every registry/monitoring household holding one of the members must hold exactly these members.
    linked = members.join(income.select("key", "ids_i", "id_list"), left_on="id", right_on="id_list", how="inner")
    per_hh = linked.group_by("dibao_household_id").agg(
        pl.col("key").unique().sort().alias("income_households"),
        pl.col("ids_i").unique().alias("_sets"),
    )
    figures = (linked.select("dibao_household_id", "key").unique()
               .join(income.drop("ids_i", "id_list").unique("key"), on="key", how="left")
               .group_by("dibao_household_id").agg(
                   *[pl.col(c).n_unique().alias(f"_n_{c}") for c in (*INCOME_FIELDS, "size_i", "benefit_blank")],
                   *[pl.col(c).first() for c in (*INCOME_FIELDS, "size_i", "benefit_blank")],
                   pl.col("ok").all().alias("_ok"),
               ))
    # A family in no registry or monitoring file: the engine reads the roll's own assessed income.
    hh = hh.join(per_hh, on="dibao_household_id", how="left").join(figures, on="dibao_household_id", how="left")
    roll_only = pl.col("income_households").is_null()
    hh = hh.filter(
        (roll_only & (pl.col("covered").fill_null(pl.col("size")) == pl.col("size")) & pl.col("assessed").is_not_null())
        | (pl.col("_ok") & (pl.col("_sets").list.len() == 1) & (pl.col("_sets").list.first() == pl.col("ids"))
           & (pl.col("size_i") == pl.col("size"))
           & pl.all_horizontal(pl.col(f"_n_{c}") == 1 for c in (*INCOME_FIELDS, "size_i", "benefit_blank")))
    ).drop(cs.starts_with("_"), "covered", "size_i")

    hh = hh.rename({"wage_income": "wage", "other_net_income": "other", "medical_out_of_pocket": "medical",
                    "education_spending": "education", "rehabilitation_spending": "rehabilitation"}).with_columns(
        pl.when(pl.col("income_households").is_null()).then(pl.col("assessed"))
        .otherwise(counted_income() / 12 / pl.col("size")).alias("pcm"),
        (counted_income() - pl.col("wage") * (1 - EMPLOYMENT_COST_SHARE)).alias("rest"),  # all but the wages
    ).join(standards(), on=["county_code", "area"], how="inner")

    # Assets and department facts of the members (clear records only: anything unclear tainted the household).
    bank = drop.frame_or_empty("bank_assets").select("row", "balance").join(
        recs.filter((pl.col("source") == "bank_assets") & pl.col("clear")).select("row", "id"), on="row")
    dept = drop.frame_or_empty("dept_facts").select("row", "item", "value", "kind").join(
        recs.filter((pl.col("source") == "dept_facts") & pl.col("clear")).select("row", "id"), on="row")
    value = pl.col("value").str.strip_chars()
    kind = pl.col("kind").str.strip_chars().fill_null("")
    vehicle = pl.col("item") == "机动车"
    countable = vehicle & kind.is_in(COUNTED_VEHICLE_KINDS)
    untyped = vehicle & (kind == "") & ~value.str.contains("残疾人").fill_null(False)
    home = (pl.col("item") == "不动产") & ~kind.is_in(EXEMPT_HOME_KINDS)
    member_facts = members.join(bank.group_by("id").agg(pl.col("balance").sum()), on="id", how="left").join(
        dept.group_by("id").agg(
            countable.sum().alias("vehicles"),
            pl.col("row").filter(countable).alias("vehicle_rows"),
            (pl.col("item").is_in(BLOCKING_ITEMS) | untyped).sum().alias("blocking"),
            pl.col("item").is_in(SHARE_ITEMS).sum().alias("share_items"),
            (pl.col("item") == "工资收入").sum().alias("wage_facts"),
            value.cast(pl.Int64, strict=False).fill_null(1).filter(home).sum().alias("homes"),
        ), on="id", how="left",
    ).group_by("dibao_household_id").agg(
        pl.col("balance").sum().alias("assets"),
        pl.col("vehicles").sum(),
        pl.col("vehicle_rows").explode().drop_nulls().sort().alias("vehicle_rows"),
        pl.col("blocking").sum(),
        pl.col("share_items").sum(),
        pl.col("wage_facts").sum(),
        pl.col("homes").sum(),
    )
    hh = hh.join(member_facts, on="dibao_household_id", how="left").with_columns(
        (pl.col("assets").fill_null(0) / pl.col("size")).alias("assets_pc"))
    limit = pl.col("standard") * ASSET_MONTHS * CLEAR_ASSET_SHARE
    # Without a registry entry, a 人社局 wage record could become the income the engine reads: leave those alone.
    wages_known = pl.col("income_households").is_not_null() | (pl.col("wage_facts").fill_null(0) == 0)
    clean = ((pl.col("blocking").fill_null(0) == 0) & (pl.col("homes").fill_null(0) <= 1) & wages_known
             & (pl.col("assets_pc") < limit))
    return hh.with_columns(clean.alias("clean"), pl.col("vehicles").fill_null(0)).sort("dibao_household_id")


def counted_income() -> pl.Expr:
    """A 低保 family's counted yearly income as the sample province reads it: wages less the employment-cost share
    (no disabled worker: households with a disability record are left alone), 其他纯收入 less the parts that do
    not count — or, where the export leaves the benefit cells blank, less the family's own benefit (12 × 月保障金额)
    — less the capped deductions."""
    parts = pl.sum_horizontal(pl.col(c) for c in NOT_COUNTED_PARTS)
    own = pl.when(pl.col("benefit_blank")).then(12 * pl.col("benefit").fill_null(0)).otherwise(0)
    deductions = (pl.min_horizontal("medical", pl.lit(MEDICAL_CAP))
                  + pl.min_horizontal("education", pl.lit(EDUCATION_CAP))
                  + pl.min_horizontal("rehabilitation", pl.lit(REHABILITATION_CAP)))
    return pl.col("wage") * (1 - EMPLOYMENT_COST_SHARE) + pl.col("other") - parts - own - deductions


def income_households(drop: Drop, recs: pl.DataFrame) -> pl.DataFrame:
    """Registry and monitoring households: ``key`` (source:household), their IDs, figures and size as the engine
    reads them, ``ok`` when every row is clear and the figures agree."""
    frames = []
    for stem in ("registry", "monitoring"):  # the two files that carry household income
        typed = drop.frame_or_empty(stem)
        size = pl.col("household_size") if stem == "registry" else pl.lit(None, dtype=pl.Int64)
        rows = recs.filter(pl.col("source") == stem).join(
            typed.select("row", *INCOME_FIELDS, size.alias("household_size")), on="row", how="left")
        frames.append(rows.filter(pl.col("household").is_not_null()).group_by("household").agg(
            pl.col("clear").all().alias("ok"),
            (pl.col("dibao_benefit_income").is_null() & pl.col("destitute_benefit_income").is_null()).all()
            .alias("benefit_blank"),
            pl.col("id").sort().alias("ids_i"),
            pl.len().alias("_rows"),
            *[pl.col(c).fill_null(0).n_unique().alias(f"_n_{c}") for c in INCOME_FIELDS],
            *[pl.col(c).fill_null(0).first() for c in INCOME_FIELDS],
            pl.col("household_size").max().alias("_size"),
            pl.col("household_size").n_unique().alias("_n_size"),
        ).with_columns(
            (pl.lit(f"{stem}:") + pl.col("household")).alias("key"),
            pl.coalesce("_size", "_rows").alias("size_i"),
            (pl.col("ok") & pl.all_horizontal(pl.col(f"_n_{c}") == 1 for c in (*INCOME_FIELDS, "size"))).alias("ok"),
        ).select("key", "ok", "benefit_blank", "ids_i", *INCOME_FIELDS, "size_i"))
    income = pl.concat(frames)
    return income.with_columns(pl.col("ids_i").alias("id_list")).explode("id_list")


def age_on(id_number: str, day: dt.date) -> int:
    born = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def income_known_first(pool: pl.DataFrame) -> pl.DataFrame:
    """Households whose current income the registry or monitoring shows, if any; else roll-only families, whose
    income only the roll's last assessment shows (the engine cannot see a rise since, so the truth may still
    hold an income reason for them)."""
    known = pool.filter(pl.col("income_households").is_not_null())
    return known if known.height else pool


def pick(rng: np.random.Generator, frame: pl.DataFrame) -> dict[str, Any]:
    return frame.row(int(rng.integers(0, frame.height)), named=True)


def name_of(recs: pl.DataFrame, id_number: str) -> str:
    """The name most records give for an ID (the registry's spelling on a tie)."""
    names = recs.filter((pl.col("id") == id_number) & pl.col("clear") & pl.col("name").is_not_null())
    best = names.with_columns(pl.col("source").replace_strict(_NAME_PRIORITY, return_dtype=pl.Int64).alias("p")) \
        .group_by("name").agg(pl.len().alias("n"), pl.col("p").min()).sort(["n", "p", "name"],
                                                                            descending=[True, False, False])
    return str(best["name"][0])


def rows_of(recs: pl.DataFrame, key: str) -> list[int]:
    source, household = key.split(":", 1)
    return recs.filter((pl.col("source") == source) & (pl.col("household") == household))["row"].to_list()

