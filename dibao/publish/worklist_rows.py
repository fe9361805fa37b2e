"""What each work-list sheet holds: its printed columns (Chinese headers, widths for paper, how each is written)
and its rows, built from the published lists and sorted for a caseworker (``dibao.publish.worklists`` writes them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import polars as pl

from dibao.publish.contract import (
    CHANGE_LABELS,
    DIFF,
    DIFF_SCHEMA,
    FLAG_SUBJECT_LABELS,
    HOUSEHOLD_SOURCE_LABELS,
    LIST_FILES,
    LIST_LABELS,
    LISTS,
)

PROVINCE_FILE = "全省汇总.xlsx"
PROVINCE_SHEET = "全省汇总"
UNKNOWN_TOWN = "未知乡镇"
UNKNOWN_COUNTY_CODE = "未知"
UNKNOWN_COUNTY_NAME = "未知县区"
EMPTY_TEXT = "今日无"  # the one row of an empty list
EXCEL_EPOCH = dt.date(1899, 12, 30)  # day 0 of Excel's serial dates (1900 system)
FIXED_CREATED = dt.datetime(2000, 1, 1)  # a county/township workbook's 'created' property: never the run date
PRINT_DATE = "&D"  # header/footer field: the date the sheet is printed

# One sheet per list, named by its label, then the day's changes.
SHEET_EXIT, SHEET_INCLUSION, SHEET_FLAGS = (LIST_LABELS[name] for name in LISTS)
SHEET_DIFF = DIFF.title
SHEETS = (SHEET_EXIT, SHEET_INCLUSION, SHEET_FLAGS, SHEET_DIFF)

LIST_ORDER = {name: i for i, name in enumerate(LISTS)}

Kind = Literal["int", "text", "id", "wrap", "date", "fill"]


@dataclass(frozen=True)
class Column:
    """One printed column: Chinese header, width in column units (the width of "0"; a Chinese character takes
    about 2), and how its cells are written."""

    header: str
    width: float
    kind: Kind  # id: 证件号码/编号, always text; wrap: multi-line text; fill: left empty for the caseworker


# Widths for paper (A4 landscape, one page wide): the narrower the sheet, the larger it prints. A column holds its
# usual content on one line (an 18-character ID, a yyyy-mm-dd date, a 序号 up to 999999); longer text wraps and the
# row grows (dibao/publish/print_layout.py). The two fill columns leave room for a pen.
_FILL = (Column("核查结果(填写)", 16, "fill"), Column("备注", 10, "fill"))
_PLACE = (Column("序号", 6, "int"), Column("乡镇", 10, "text"), Column("行政村", 10, "text"))
_HEAD = (Column("户主姓名", 8, "text"), Column("户主证件号码", 19, "id"))
_DETAIL = Column("核查依据与数据", 50, "wrap")
_FIRST_SEEN = Column("首次发现日期", 11, "date")
_REASON = 16  # 退出原因, 纳入原因, 核查事项

COLUMNS: dict[str, tuple[Column, ...]] = {
    SHEET_EXIT: (*_PLACE, Column("低保家庭编号", 16, "id"), *_HEAD, Column("退出原因", _REASON, "wrap"), _DETAIL,
                 _FIRST_SEEN, Column("渐退期至", 11, "date"), *_FILL),
    SHEET_INCLUSION: (*_PLACE, Column("户编号", 16, "id"), Column("来源", 6, "text"), *_HEAD,
                      Column("纳入原因", _REASON, "wrap"), _DETAIL, _FIRST_SEEN, *_FILL),
    SHEET_FLAGS: (*_PLACE, Column("对象编号", 19, "id"), Column("对象类型", 6, "text"), Column("来源", 6, "text"),
                  *_HEAD, Column("核查事项", _REASON, "wrap"), _DETAIL, _FIRST_SEEN, Column("办理期限", 11, "date"),
                  *_FILL),
    SHEET_DIFF: (Column("序号", 6, "int"), Column("乡镇", 10, "text"), Column("清单", 8, "text"),
                 Column("编号", 19, "id"), Column("核查事项", _REASON, "wrap"), Column("变化", 6, "text"),
                 Column("说明", 50, "wrap"), Column("变化日期", 11, "date")),
}
TEXT_KINDS = frozenset({"text", "id", "wrap"})  # wrapped, and measured for the row's height
SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("县级区划代码", 14, "id"), Column("县名", 14, "text"), Column("应退尽退户数", 13, "int"),
    Column("其中渐退期户数", 15, "int"), Column("应保尽保户数", 13, "int"), Column("其他核查条数", 13, "int"),
    Column("今日新增", 10, "int"), Column("今日解决", 10, "int"),
)

KEYS = ("__county", "__town")  # partition keys carried beside the printed columns


# ---------------------------------------------------------------------------------------------- building rows


# The columns each list must have (other columns, e.g. ``figures`` or ``grace_start``, are not printed).
_NEEDED = {
    "exit": ("dibao_household_id", "county_code", "town", "village", "head_name", "head_id", "reason_labels",
             "detail", "first_seen", "grace_until"),
    "inclusion": ("household_id", "source", "county_code", "town", "village", "head_name", "head_id",
                  "reason_labels", "detail", "first_seen"),
    "flag": ("subject_type", "subject_id", "source", "county_code", "town", "village", "head_name", "head_id",
             "code", "label", "detail", "first_seen", "due_date"),
    "diff": tuple(DIFF_SCHEMA),
    "counties": ("county_code", "county_name"),
}
# Types as published (dibao.publish.contract); the counties file's two columns are text.
_TYPES: dict[str, dict[str, pl.DataType]] = {
    **{name: LIST_FILES[name].schema for name in LISTS}, "diff": DIFF_SCHEMA,
    "counties": dict.fromkeys(_NEEDED["counties"], pl.String()),
}


def conform(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The printed columns, cast to the published types: an empty frame of Null columns still takes list and date
    expressions, and a county code read as a number becomes text again."""
    return frame.select([pl.col(name).cast(_TYPES[kind][name]) for name in _NEEDED[kind]])


def _keys() -> list[pl.Expr]:
    return [pl.col("county_code").fill_null(UNKNOWN_COUNTY_CODE).alias("__county"),
            pl.col("town").fill_null(UNKNOWN_TOWN).alias("__town")]


def _place(id_column: str, id_header: str) -> list[pl.Expr]:
    return [pl.col("__town").alias("乡镇"), pl.col("village").alias("行政村"), pl.col(id_column).alias(id_header)]


def _head() -> list[pl.Expr]:
    return [pl.col("head_name").alias("户主姓名"), pl.col("head_id").alias("户主证件号码")]


def _tail() -> list[pl.Expr]:
    return [pl.col("detail").alias(_DETAIL.header), pl.col("first_seen").alias(_FIRST_SEEN.header)]


def _sorted(frame: pl.DataFrame, id_header: str) -> pl.DataFrame:
    """Sort by 乡镇 (未知乡镇 last), 行政村, then id (nulls last): the walking order of a township."""
    return frame.sort([pl.col("__county"), _unknown_last(), "乡镇", "行政村", id_header], nulls_last=True,
                      maintain_order=True)


def _unknown_last() -> pl.Expr:
    return pl.col("__town") == UNKNOWN_TOWN


def exit_rows(exit_candidates: pl.DataFrame) -> pl.DataFrame:
    """应退尽退 rows, province-wide."""
    frame = conform(exit_candidates, "exit").with_columns(_keys()).select(
        *KEYS, *_place("dibao_household_id", "低保家庭编号"), *_head(),
        pl.col("reason_labels").list.join("、").alias("退出原因"), *_tail(),
        pl.col("grace_until").alias("渐退期至"),
    )
    return _sorted(frame, "低保家庭编号")


def inclusion_rows(inclusion_candidates: pl.DataFrame) -> pl.DataFrame:
    """应保尽保 rows, province-wide; 来源 as 脱贫户/监测户."""
    frame = conform(inclusion_candidates, "inclusion").with_columns(_keys()).select(
        *KEYS, *_place("household_id", "户编号"), pl.col("source").replace(HOUSEHOLD_SOURCE_LABELS).alias("来源"),
        *_head(), pl.col("reason_labels").list.join("、").alias("纳入原因"), *_tail(),
    )
    return _sorted(frame, "户编号")


def flag_rows(flags: pl.DataFrame) -> pl.DataFrame:
    """其他核查 rows, province-wide; 核查事项 is the flag's Chinese label."""
    frame = conform(flags, "flag").with_columns(_keys()).select(
        *KEYS, *_place("subject_id", "对象编号"),
        pl.col("subject_type").replace(FLAG_SUBJECT_LABELS).alias("对象类型"),
        pl.col("source").replace(HOUSEHOLD_SOURCE_LABELS).alias("来源"), *_head(),
        pl.col("label").fill_null(pl.col("code")).alias("核查事项"), *_tail(),
        pl.col("due_date").alias("办理期限"),
    )
    return frame.sort([pl.col("__county"), _unknown_last(), "乡镇", "行政村", "对象编号", "核查事项"],
                      nulls_last=True, maintain_order=True)


def diff_rows(diff: pl.DataFrame, flags: pl.DataFrame) -> pl.DataFrame:
    """今日变化 rows, province-wide. A flag's 核查事项 is its label where any flag of today carries it (a resolved
    flag may have no row left today; then the code is shown)."""
    labels = (conform(flags, "flag").select("code", "label").drop_nulls()
              .unique("code", keep="first", maintain_order=True))
    code_labels = dict(zip(labels["code"].to_list(), labels["label"].to_list(), strict=True))
    frame = conform(diff, "diff").with_columns(_keys()).with_columns(
        pl.col("list").replace_strict(LIST_ORDER, default=len(LIST_ORDER), return_dtype=pl.Int32).alias("__order"),
    )
    return frame.sort([pl.col("__county"), _unknown_last(), "__town", "__order", "subject_id", "code"],
                      nulls_last=True, maintain_order=True).select(
        *KEYS, pl.col("__town").alias("乡镇"), pl.col("list").replace(LIST_LABELS).alias("清单"),
        pl.col("subject_id").alias("编号"),
        pl.when(pl.col("list") == "flag").then(pl.col("code").replace(code_labels)).alias("核查事项"),
        pl.col("change").replace(CHANGE_LABELS).alias("变化"), pl.col("detail").alias("说明"),
        pl.col("date").alias("变化日期"),
    )


def province_summary(run_date: dt.date, exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame,
                     flags: pl.DataFrame, diff: pl.DataFrame, counties: pl.DataFrame) -> pl.DataFrame:
    """One row per county (every county of the drop, plus any county code found only in the lists)."""
    ex = conform(exit_candidates, "exit").with_columns(_keys())
    grace = pl.col("grace_until").is_not_null() & (pl.col("grace_until") >= run_date)
    counts = [
        ex.group_by("__county").agg(pl.len().alias("应退尽退户数"), grace.sum().alias("其中渐退期户数")),
        conform(inclusion_candidates, "inclusion").with_columns(_keys())
        .group_by("__county").agg(pl.len().alias("应保尽保户数")),
        conform(flags, "flag").with_columns(_keys()).group_by("__county").agg(pl.len().alias("其他核查条数")),
        conform(diff, "diff").with_columns(_keys()).group_by("__county").agg(
            (pl.col("change") == "added").sum().alias("今日新增"),
            (pl.col("change") == "resolved").sum().alias("今日解决")),
    ]
    out = county_names(counties, exit_candidates, inclusion_candidates, flags, diff)
    for part in counts:
        out = out.join(part, on="__county", how="left")
    return out.select(
        pl.col("__county").alias("县级区划代码"), pl.col("__name").alias("县名"),
        *[pl.col(c.header).fill_null(0).cast(pl.Int64) for c in SUMMARY_COLUMNS[2:]],
    ).sort("县级区划代码")


def county_names(counties: pl.DataFrame, *lists: pl.DataFrame) -> pl.DataFrame:
    """``__county``, ``__name`` for every county of the drop and every county code appearing in a list."""
    known = (conform(counties, "counties").select(
        pl.col("county_code").fill_null(UNKNOWN_COUNTY_CODE).alias("__county"),
        pl.col("county_name").fill_null(UNKNOWN_COUNTY_NAME).alias("__name"))
        .unique("__county", keep="first", maintain_order=True))
    codes = pl.concat([known.select("__county")] + [
        f.select(pl.col("county_code").cast(pl.String).fill_null(UNKNOWN_COUNTY_CODE).alias("__county"))
        for f in lists]).unique()
    return codes.join(known, on="__county", how="left").with_columns(
        pl.col("__name").fill_null(UNKNOWN_COUNTY_NAME)).sort("__county")


def printed_rows(rows: pl.DataFrame, sheet: str) -> pl.DataFrame:
    """The sheet's columns in order as written, after 序号 (numbered per workbook when written), with the
    partition keys in front."""
    columns = COLUMNS[sheet]
    return rows.select(*KEYS, *[_cell_values(c, rows.columns) for c in columns[1:]])


def _cell_values(column: Column, present: list[str]) -> pl.Expr:
    """The column as written: dates become Excel serial day numbers, fill columns are empty."""
    if column.header not in present:
        return pl.lit(None, dtype=pl.String).alias(column.header)
    if column.kind == "date":
        return (pl.col(column.header) - pl.lit(EXCEL_EPOCH)).dt.total_days().alias(column.header)
    return pl.col(column.header)
