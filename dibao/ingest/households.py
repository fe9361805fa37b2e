"""Household-level values repeated on every member's row: checked to agree, one chosen where they do not.

Person-level exports repeat the household's figures (家庭人均纯收入, 工资性收入, 保障人数…) on each member's row.
When two members' rows disagree the engine used to pick one silently. Now every disagreement is listed with all
the values, the one chosen and why, and every member's row carries the chosen value, so each later stage reads
the same figure. The rule, in order: the value on the 户主's row; else the value most members carry; else (a tie)
the value of the first listed row. A household with more than one 户主 is listed too (the first is the head).
Identical duplicate lines are found here as well: counted, dropped but once, and listed.
"""

from __future__ import annotations

import polars as pl

from dibao.publish.contract import NOTES_SCHEMA
from dibao.schema import FileSpec

HEAD = "户主"

NOTE_LABELS = {
    "household_value_conflict": "同户成员的户级数据不一致 (members of one household disagree on a household value)",
    "multiple_heads": "一户有多个户主 (more than one 户主 in one household)",
    "duplicate_row": "完全相同的重复行 (an exact duplicate line)",
    "total_mismatch": "合计行与明细之和不符 (the stated total differs from the sum of the rows)",
}
_WHY = {
    "head": "取户主行的值 (the value on the 户主's row)",
    "most": "取多数成员的值 (the value most members carry)",
    "first": "取最先列出的值 (a tie: the value of the first listed row)",
}


def empty_notes() -> pl.DataFrame:
    return pl.DataFrame(schema=NOTES_SCHEMA)


def _choose(rows: pl.DataFrame, key: str, field: str) -> pl.DataFrame:
    """Per household: the chosen value of ``field`` (as its own type), the reason, and every value as text."""
    counted = (
        rows.filter(pl.col(field).is_not_null())
        .group_by(key, field)
        .agg(pl.len().alias("__n"), pl.col("row").min().alias("__first"),
             (pl.col("relation") == HEAD).any().fill_null(False).alias("__head"),
             pl.col("row").alias("__rows"))
        .sort([key, "__head", "__n", "__first"], descending=[False, True, True, False])
    )
    return counted.group_by(key, maintain_order=True).agg(
        pl.col(field).first().alias("__chosen"),
        pl.when(pl.col("__head").first()).then(pl.lit(_WHY["head"]))
        .when(pl.col("__n").first() > pl.col("__n").get(1)).then(pl.lit(_WHY["most"]))
        .otherwise(pl.lit(_WHY["first"])).alias("__why"),
        pl.col(field).cast(pl.String).alias("values"),
        pl.col("__rows").explode().sort().alias("rows"),
    )


def _disagreeing(grouped: pl.DataFrame, household: pl.Series, field: str) -> pl.Series:
    """Household numbers whose members' non-blank values of ``field`` differ (members listed together).

    Neighbouring rows are compared instead of grouping: exports list a household's members together, so this is
    a few vectorised passes over one column (the household as an integer) rather than a group-by per field.
    """
    values = grouped.get_column(field)
    present = values.is_not_null()
    groups, kept = household.filter(present), values.filter(present)
    differs = ((groups == groups.shift(1)) & (kept != kept.shift(1))).fill_null(False)
    return groups.filter(differs).unique(maintain_order=True)


def _grouped_by_household(accepted: pl.DataFrame, key: str) -> tuple[pl.DataFrame, pl.Series]:
    """The rows with each household's members next to each other (already so in nearly every export), and each
    row's household as a small integer (consecutive in that order)."""
    def starts(frame: pl.DataFrame) -> pl.Series:
        column = frame.get_column(key)
        return (column != column.shift(1)).fill_null(True)

    first = starts(accepted)
    if int(first.sum()) != accepted.get_column(key).hash().n_unique():
        accepted = accepted.sort(key, "row", maintain_order=True)
        first = starts(accepted)
    return accepted, first.cast(pl.UInt32).cum_sum()


def agree_households(accepted: pl.DataFrame, spec: FileSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted rows with one value per household for household-level fields, notes of what disagreed)."""
    key = spec.household_key
    fields = [f for f in spec.fields if f.household_level and f.name in accepted.columns]
    if key is None or accepted.is_empty():
        return accepted, empty_notes()
    grouped, household = _grouped_by_household(accepted, key)
    notes: list[pl.DataFrame] = []
    for f in fields:
        numbers = _disagreeing(grouped, household, f.name)
        if numbers.is_empty():
            continue
        conflicting = grouped.filter(household.is_in(numbers.implode())).select(key).unique(maintain_order=True)
        chosen = _choose(accepted.select(key, f.name, "row", "relation").join(conflicting, on=key), key, f.name)
        # Only the key column is joined (joining the whole frame copied every column once per such field).
        per_row = accepted.select(key).join(chosen.select(key, "__chosen"), on=key, how="left",
                                            maintain_order="left").get_column("__chosen")
        accepted = accepted.with_columns(pl.coalesce(per_row, pl.col(f.name)).alias(f.name))
        notes.append(chosen.select(
            pl.lit(spec.stem).alias("source"), pl.lit("household_value_conflict").alias("code"),
            pl.col(key).alias("household"), pl.lit(f.name).alias("field"), "rows", "values",
            pl.col("__chosen").cast(pl.String).alias("chosen"),
            (pl.lit(f"{f.label}：") + pl.col("values").list.join(" / ") + pl.lit("；") + pl.col("__why"))
            .alias("detail"),
        ))
    head_rows = accepted.select(key, "row", "name", "relation").filter(pl.col("relation") == HEAD)
    several = head_rows.filter(pl.col(key).is_duplicated())
    if not several.is_empty():
        heads = several.group_by(key).agg(pl.col("row").sort().alias("rows"),
                                          pl.col("name").sort_by("row").alias("values"))
        notes.append(heads.select(
            pl.lit(spec.stem).alias("source"), pl.lit("multiple_heads").alias("code"),
            pl.col(key).alias("household"), pl.lit("relation").alias("field"), "rows", "values",
            pl.col("values").list.first().alias("chosen"),
            (pl.lit("户主：") + pl.col("values").list.join(" / ")
             + pl.lit("；取最先列出的户主 (the first listed 户主 is the head)")).alias("detail"),
        ))
    if not notes:
        return accepted, empty_notes()
    return accepted, pl.concat(notes).cast(NOTES_SCHEMA).sort("code", "household", "field")  # type: ignore[arg-type]


def duplicate_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows (1-based) that repeat an earlier line exactly, with the row they repeat: ``row``, ``same_as``.

    Whole rows are hashed in one vectorised pass; only rows whose hash recurs are compared value by value, so a
    line is a repeat only if it is the same to the letter.
    """
    empty = pl.DataFrame(schema={"row": pl.UInt32, "same_as": pl.UInt32})
    if frame.is_empty():
        return empty
    suspects = frame.hash_rows().is_duplicated().arg_true()
    if not suspects.len():
        return empty
    columns = frame.columns
    sub = frame[suspects].with_columns((suspects + 1).cast(pl.UInt32).alias("__row"))
    first = sub.with_columns(pl.col("__row").min().over(columns).alias("same_as"))
    return first.filter(pl.col("__row") != pl.col("same_as")).select(pl.col("__row").alias("row"), "same_as")
