"""The seven files of a drop as typed frames, one row per record, in the order they are written.

Each frame carries the canonical fields plus hidden ``_``-prefixed columns (the true person, the household whose
entry the row belongs to, the true ID and name) that noise and the truth tables need; ``to_text`` then renders the
canonical fields as the strings a county export would contain.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dibao.schema import FILE_SPECS, FieldType
from dibao_synth.params import COUNTIES, DATE_COMPACT_RATE, DATE_SLASH_RATE

_PERSON_COLS = ["person_uid", "household_uid", "member_pos", "name", "id_number", "relation"]


def _members(persons: pl.DataFrame, households: pl.DataFrame, flag: str, cols: list[str]) -> pl.DataFrame:
    """Every member of the households with ``flag`` set, with household columns ``cols``."""
    hh = households.filter(flag).select("household_uid", *cols)
    return persons.select(_PERSON_COLS).join(hh, on="household_uid", how="inner", maintain_order="left")


def _hidden(frame: pl.DataFrame, extra: pl.Expr | bool = False) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("person_uid").alias("_person"),
        pl.col("household_uid").alias("_household"),
        (extra if isinstance(extra, pl.Expr) else pl.lit(extra)).alias("_extra"),
    )


# Parts of 其他纯收入 (其中) and 转移性收入: left blank by an export that does not give them.
_PARTS = ("transfer_income", "dibao_benefit_income", "destitute_benefit_income", "pension_base_income",
          "old_age_allowance", "special_care_income", "family_planning_income", "scholarship_income",
          "heroism_reward")
_INCOME = ("wage_income", "other_net_income", "medical_out_of_pocket", "education_spending",
           "rehabilitation_spending", "other_rigid_spending", *_PARTS, "income_assessed_date")


def _with_parts(frame: pl.DataFrame) -> pl.DataFrame:
    """Blank the parts where the household's export leaves them out."""
    return frame.with_columns(
        pl.when(~pl.col("components_blank")).then(pl.col(c)).otherwise(None).alias(c) for c in _PARTS
    ).drop("components_blank")


def build_registry(persons: pl.DataFrame, households: pl.DataFrame) -> pl.DataFrame:
    f = _members(persons, households, "in_registry", [
        "county_code", "town", "village", "registry_household_id", "household_type", "exit_year",
        "per_capita_net_income", "size", *_INCOME, "components_blank"])
    f = _with_parts(f.rename({"registry_household_id": "household_id", "size": "household_size"}))
    return _hidden(f.sort("household_id", "member_pos", maintain_order=True))


def build_monitoring(persons: pl.DataFrame, households: pl.DataFrame) -> pl.DataFrame:
    f = _members(persons, households, "in_monitoring", [
        "county_code", "town", "village", "monitoring_household_id", *_INCOME, "components_blank",
        "monitoring_category", "identified_date", "risk_type", "risk_eliminated", "risk_eliminated_date"])
    f = _with_parts(f.rename({"monitoring_household_id": "household_id"}))
    return _hidden(f.sort("household_id", "member_pos", maintain_order=True))


_ROLL_COLS = ["county_code", "town", "village", "dibao_household_id", "area", "assistance_type",
              "monthly_benefit", "enrolled_date", "assessed_monthly_income", "covered_persons", "coverage_mode",
              "support_mode", "last_review_date", "writes_covered"]


def build_roll(persons: pl.DataFrame, households: pl.DataFrame, extra: pl.DataFrame) -> pl.DataFrame:
    """The persons each roll entry lists (``rollforms.py``) plus the planted extra rows (a person listed in
    another household's entry); 是否保障对象 as the entry writes it (blank: 是)."""
    listed = persons.filter("listed").select(*_PERSON_COLS, "covered").join(
        households.filter("on_roll").select("household_uid", *_ROLL_COLS), on="household_uid", how="inner",
        maintain_order="left").with_columns(pl.lit(False).alias("_is_extra"))
    extra_rows = (
        extra.join(persons.select("person_uid", "name", "id_number"), on="person_uid", how="left",
                   maintain_order="left")
        .join(households.select("household_uid", *_ROLL_COLS), on="household_uid", how="left", maintain_order="left")
        .with_columns((90 + pl.int_range(pl.len()).over("household_uid")).cast(pl.Int16).alias("member_pos"),
                      pl.lit(True).alias("covered"), pl.lit(True).alias("_is_extra"))
        .select(listed.columns)
    )
    f = pl.concat([listed, extra_rows]).with_columns(
        pl.when(pl.col("writes_covered")).then(pl.col("covered")).otherwise(None).alias("member_covered"))
    f = f.sort("dibao_household_id", "member_pos", maintain_order=True)
    return _hidden(f, pl.col("_is_extra")).drop("_is_extra")


def build_bank(persons: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """Sorted as a verification batch comes back: by query date, then ID number (integer key: fast)."""
    f = accounts.join(persons.select("person_uid", "household_uid", "name", "id_number", "id17"), on="person_uid",
                      how="left", maintain_order="left")
    return _hidden(f.sort("query_date", "id17", "institution", "balance", maintain_order=True).drop("id17"))


def build_dept(persons: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    order = {item: i for i, item in enumerate(FILE_SPECS["dept_facts"].field("item").choices)}
    f = facts.join(persons.select("person_uid", "household_uid", "name", "id_number", "id17"), on="person_uid",
                   how="left", maintain_order="left")
    f = f.with_columns(pl.col("item").replace_strict(order, return_dtype=pl.Int64).alias("_item_order"))
    return _hidden(f.sort("_item_order", "as_of", "id17", maintain_order=True).drop("_item_order", "id17"))


def build_counties(rural_population: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({
        "county_code": [c.code for c in COUNTIES],
        "county_name": [c.name for c in COUNTIES],
        "rural_population": rural_population.astype(np.int64),
    })


def build_relatives_file(persons: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    ids = persons.select("person_uid", "id_number")
    return (
        pairs.filter(pl.col("row").is_not_null())
        .join(ids.rename({"person_uid": "staff_person_uid", "id_number": "staff_id_number"}),
              on="staff_person_uid", how="left", maintain_order="left")
        .join(ids.rename({"person_uid": "relative_person_uid", "id_number": "relative_id_number"}),
              on="relative_person_uid", how="left", maintain_order="left")
        .with_columns(pl.when(pl.col("status") == "filed").then(pl.lit("是")).otherwise(pl.lit("否")).alias("filed"))
        .sort("row")
    )


def _money(col: pl.Expr) -> pl.Expr:
    """1234 for whole yuan, 1234.5 / 1234.56 otherwise."""
    as_float = col.cast(pl.Float64)
    rounded = as_float.round(2)
    return pl.when(rounded == rounded.round(0)).then(rounded.cast(pl.Int64).cast(pl.String)).otherwise(
        rounded.cast(pl.String))


def to_text(frame: pl.DataFrame, stem: str, rng: np.random.Generator) -> pl.DataFrame:
    """Render the canonical fields as export text (dates mostly YYYY-MM-DD, some YYYY/MM/DD or YYYYMMDD)."""
    spec = FILE_SPECS[stem]
    exprs = []
    n = frame.height
    for f in spec.fields:  # loop over the file's fields
        col = pl.col(f.name)
        if f.type is FieldType.DATE and frame.schema[f.name] == pl.Date:
            u = pl.Series(rng.random(n))
            expr = (pl.when(u < DATE_SLASH_RATE).then(col.dt.strftime("%Y/%m/%d"))
                    .when(u < DATE_SLASH_RATE + DATE_COMPACT_RATE).then(col.dt.strftime("%Y%m%d"))
                    .otherwise(col.dt.strftime("%Y-%m-%d")))
        elif f.type is FieldType.MONEY:
            expr = _money(col)
        elif f.type is FieldType.YES_NO and frame.schema[f.name] == pl.Boolean:
            expr = pl.when(col).then(pl.lit("是")).when(~col).then(pl.lit("否"))  # blank stays blank
        else:
            expr = col.cast(pl.String)
        exprs.append(expr.alias(f.name))
    return frame.with_columns(exprs)
