"""Printable work lists (工作清单) for county data teams and township caseworkers (经办人员).

Every morning the county prints these and hands each township its own workbook, so they are built for paper:
header row frozen and repeated on every page, A4 landscape one page wide, a header/footer naming county, sheet,
run date and page, and an empty 核查结果(填写) column for the caseworker's pen. Every text cell wraps and every row
is as tall as its text (``dibao.publish.print_layout``: xlsxwriter cannot autofit heights); a text taller than
Excel's tallest row goes on in continuation rows. ID numbers and household numbers are always text cells with a
text column format: Excel silently turns an 18-digit number into ``3.40402E+17``.

Layout under ``RUN/worklists/``::

    全省汇总.xlsx                              province summary (one row per county + 合计)
    {county_code}_{county_name}.xlsx           whole county
    {county_code}_{county_name}/{town}.xlsx    one township (only towns present in today's lists)

Each county/township workbook has the sheets 应退尽退, 应保尽保, 其他核查, 今日变化, always all four, in that order.
An empty list keeps its header row and gets one merged row "今日无", so a printed empty sheet says so rather than
looking like a printing fault. Rows are built with Polars and rendered as the sheet's XML by Polars too
(``dibao.publish.sheet_rows``): xlsxwriter writes everything else of the workbook.

The work lists are off the daily run's critical path: the Parquet run is published first (its manifest says
``"worklists": {"status": "pending"}``), then ``complete`` writes the workbooks in worker processes and records
``"status": "ready"`` with every file and the hash of each workbook's rows. A county or township workbook depends
only on its rows (its header and footer print the printing date, not the run date; its document properties are
fixed), so when its rows are the same as in the previous run its workbook is carried over (hard link) instead of
written again: byte for byte what writing it would give. The province summary carries the day's date and counts and
is always written. Every file is written under a hidden temp name and renamed when complete; after a crash
``dibao worklists`` (``rewrite``) writes the run's lists from its published Parquet files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from dibao.errors import DibaoError
from dibao.processes import end_with_parent
from dibao.publish.contract import (
    CHANGE_LABELS,
    DIFF,
    DIFF_SCHEMA,
    FLAG_SUBJECT_LABELS,
    HOUSEHOLD_SOURCE_LABELS,
    LIST_FILES,
    LIST_LABELS,
    LISTS,
    MANIFEST_FILE,
    WORKLISTS_DIR,
)
from dibao.publish.formulas import neutralise, neutralised
from dibao.publish.print_layout import FONT_POINTS, MAX_LINES, line_count, row_lines, row_points, split_cell
from dibao.publish.sheet_rows import RenderedBlock, RenderedRowsWorksheet, RowsColumn, read_blocks, row_height
from dibao.publish.xlsx import new_workbook

PROVINCE_FILE = "全省汇总.xlsx"
PROVINCE_SHEET = "全省汇总"
UNKNOWN_TOWN = "未知乡镇"
UNKNOWN_COUNTY_CODE = "未知"
UNKNOWN_COUNTY_NAME = "未知县区"
EMPTY_TEXT = "今日无"  # the one row of an empty list
EXCEL_EPOCH = dt.date(1899, 12, 30)  # day 0 of Excel's serial dates (1900 system)
FIXED_CREATED = dt.datetime(2000, 1, 1)  # a county/township workbook's 'created' property: never the run date
PRINT_DATE = "&D"  # header/footer field: the date the sheet is printed

FORMAT = "6"  # bump when the same rows would be written differently: no earlier workbook is then reused
WORKERS = 2  # worker processes writing workbooks
MANIFEST_KEY = "worklists"
READY, PENDING = "ready", "pending"
TEMP_MARK = ".tmp-"  # in the name of a file still being written

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

_KEYS = ("__county", "__town")  # partition keys carried beside the printed columns
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


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


def _conform(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
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
    frame = _conform(exit_candidates, "exit").with_columns(_keys()).select(
        *_KEYS, *_place("dibao_household_id", "低保家庭编号"), *_head(),
        pl.col("reason_labels").list.join("、").alias("退出原因"), *_tail(),
        pl.col("grace_until").alias("渐退期至"),
    )
    return _sorted(frame, "低保家庭编号")


def inclusion_rows(inclusion_candidates: pl.DataFrame) -> pl.DataFrame:
    """应保尽保 rows, province-wide; 来源 as 脱贫户/监测户."""
    frame = _conform(inclusion_candidates, "inclusion").with_columns(_keys()).select(
        *_KEYS, *_place("household_id", "户编号"), pl.col("source").replace(HOUSEHOLD_SOURCE_LABELS).alias("来源"),
        *_head(), pl.col("reason_labels").list.join("、").alias("纳入原因"), *_tail(),
    )
    return _sorted(frame, "户编号")


def flag_rows(flags: pl.DataFrame) -> pl.DataFrame:
    """其他核查 rows, province-wide; 核查事项 is the flag's Chinese label."""
    frame = _conform(flags, "flag").with_columns(_keys()).select(
        *_KEYS, *_place("subject_id", "对象编号"),
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
    labels = (_conform(flags, "flag").select("code", "label").drop_nulls()
              .unique("code", keep="first", maintain_order=True))
    code_labels = dict(zip(labels["code"].to_list(), labels["label"].to_list(), strict=True))
    frame = _conform(diff, "diff").with_columns(_keys()).with_columns(
        pl.col("list").replace_strict(LIST_ORDER, default=len(LIST_ORDER), return_dtype=pl.Int32).alias("__order"),
    )
    return frame.sort([pl.col("__county"), _unknown_last(), "__town", "__order", "subject_id", "code"],
                      nulls_last=True, maintain_order=True).select(
        *_KEYS, pl.col("__town").alias("乡镇"), pl.col("list").replace(LIST_LABELS).alias("清单"),
        pl.col("subject_id").alias("编号"),
        pl.when(pl.col("list") == "flag").then(pl.col("code").replace(code_labels)).alias("核查事项"),
        pl.col("change").replace(CHANGE_LABELS).alias("变化"), pl.col("detail").alias("说明"),
        pl.col("date").alias("变化日期"),
    )


def province_summary(run_date: dt.date, exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame,
                     flags: pl.DataFrame, diff: pl.DataFrame, counties: pl.DataFrame) -> pl.DataFrame:
    """One row per county (every county of the drop, plus any county code found only in the lists)."""
    ex = _conform(exit_candidates, "exit").with_columns(_keys())
    grace = pl.col("grace_until").is_not_null() & (pl.col("grace_until") >= run_date)
    counts = [
        ex.group_by("__county").agg(pl.len().alias("应退尽退户数"), grace.sum().alias("其中渐退期户数")),
        _conform(inclusion_candidates, "inclusion").with_columns(_keys())
        .group_by("__county").agg(pl.len().alias("应保尽保户数")),
        _conform(flags, "flag").with_columns(_keys()).group_by("__county").agg(pl.len().alias("其他核查条数")),
        _conform(diff, "diff").with_columns(_keys()).group_by("__county").agg(
            (pl.col("change") == "added").sum().alias("今日新增"),
            (pl.col("change") == "resolved").sum().alias("今日解决")),
    ]
    out = _county_names(counties, exit_candidates, inclusion_candidates, flags, diff)
    for part in counts:
        out = out.join(part, on="__county", how="left")
    return out.select(
        pl.col("__county").alias("县级区划代码"), pl.col("__name").alias("县名"),
        *[pl.col(c.header).fill_null(0).cast(pl.Int64) for c in SUMMARY_COLUMNS[2:]],
    ).sort("县级区划代码")


def _county_names(counties: pl.DataFrame, *lists: pl.DataFrame) -> pl.DataFrame:
    """``__county``, ``__name`` for every county of the drop and every county code appearing in a list."""
    known = (_conform(counties, "counties").select(
        pl.col("county_code").fill_null(UNKNOWN_COUNTY_CODE).alias("__county"),
        pl.col("county_name").fill_null(UNKNOWN_COUNTY_NAME).alias("__name"))
        .unique("__county", keep="first", maintain_order=True))
    codes = pl.concat([known.select("__county")] + [
        f.select(pl.col("county_code").cast(pl.String).fill_null(UNKNOWN_COUNTY_CODE).alias("__county"))
        for f in lists]).unique()
    return codes.join(known, on="__county", how="left").with_columns(
        pl.col("__name").fill_null(UNKNOWN_COUNTY_NAME)).sort("__county")


# ---------------------------------------------------------------------------------------------- writing cells


class _Formats:
    """The workbook's cell formats; xlsxwriter formats belong to one workbook."""

    def __init__(self, workbook: Workbook) -> None:
        # The grid is printed: no cell borders needed. Every text cell wraps (nothing is cut off at the column's
        # edge or runs into the next cell); the row heights make room for its lines.
        base: dict[str, Any] = {"valign": "top", "font_size": FONT_POINTS}
        self.header = workbook.add_format({**base, "border": 1, "bold": True, "bg_color": "#D9E1F2", "align": "center",
                                           "valign": "vcenter", "text_wrap": True})
        self.cell: dict[str, Format] = {
            "int": workbook.add_format({**base, "num_format": "0"}),
            "text": workbook.add_format({**base, "num_format": "@", "text_wrap": True}),
            "id": workbook.add_format({**base, "num_format": "@", "text_wrap": True}),
            "wrap": workbook.add_format({**base, "num_format": "@", "text_wrap": True}),
            "date": workbook.add_format({**base, "num_format": "yyyy-mm-dd", "align": "left"}),
            "fill": workbook.add_format({**base, "num_format": "@"}),
        }
        # Column formats: what a caseworker types later into an empty cell keeps the column's type — text for
        # IDs (no 3.40402E+17), dates as dates.
        self.column: dict[str, Format] = {
            "int": workbook.add_format({"num_format": "0"}),
            "text": workbook.add_format({"num_format": "@", "text_wrap": True}),
            "id": workbook.add_format({"num_format": "@", "text_wrap": True}),
            "wrap": workbook.add_format({"num_format": "@", "text_wrap": True}),
            "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
            "fill": workbook.add_format({"num_format": "@", "text_wrap": True}),
        }
        self.empty = workbook.add_format({**base, "align": "center"})
        self.total_text = workbook.add_format({**base, "bold": True, "num_format": "@"})
        self.total_int = workbook.add_format({**base, "bold": True, "num_format": "0"})


def _escape(text: str) -> str:
    """Header/footer text: '&' is a control character there."""
    return text.replace("&", "&&")


def _print_setup(sheet: Worksheet, columns: Sequence[Column], formats: _Formats, last_row: int, place: str,
                 stamp: str) -> None:
    """Print-ready: A4 landscape, one page wide, header row frozen, filtered and repeated; page header/footer.

    ``stamp`` is the header/footer's right part: the run date on the province summary; on a county or township
    workbook the date it is printed (Excel's ``&D``), since that workbook is carried unchanged to the next run
    while its rows stay the same."""
    for col, column in enumerate(columns):
        sheet.set_column(col, col, column.width, formats.column[column.kind])
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(last_row, 1), len(columns) - 1)
    sheet.print_area(0, 0, max(last_row, 1), len(columns) - 1)  # empty 核查结果 columns are printed too
    sheet.hide_gridlines(0)  # print the grid: boxes for every cell, written or empty
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.set_margins(left=0.4, right=0.4, top=0.75, bottom=0.6)
    sheet.set_header(f"&L{_escape(place)}&C&A&R{stamp}", {"margin": 0.3})
    sheet.set_footer(f"&L{_escape(place)} 低保核查工作清单&C第 &P/&N 页&R{stamp}", {"margin": 0.3})


def text_widths(columns: Sequence[Column]) -> dict[str, float]:
    """The columns whose text wraps, with their widths: what a row's height is measured from."""
    return {column.header: column.width for column in columns if column.kind in TEXT_KINDS}


def measured_lines(frame: pl.DataFrame, columns: Sequence[Column]) -> list[int]:
    """Each row's lines of text as written: text a spreadsheet would run as a formula is measured with the
    apostrophe ``neutralise`` puts in front of it."""
    widths = text_widths(columns)
    as_written = frame.select([neutralised(pl.col(name)).alias(name) for name in widths])
    return row_lines(as_written, widths).tolist()


def _continued(columns: Sequence[Column], values: Sequence[Sequence[Any]], lines: Sequence[int]
               ) -> tuple[list[list[Any]], list[int]]:
    """The rows with every row taller than Excel allows (more than ``MAX_LINES`` lines) carried on in
    continuation rows below it: each over-long text is cut at line ends into pieces (``split_cell``), the first in
    the row itself, the others in the rows below, whose other cells stay empty. Returns the columns and the lines
    of each sheet row."""
    out: list[list[Any]] = [[] for _ in columns]
    out_lines: list[int] = []
    for row, count in enumerate(lines):
        if count <= MAX_LINES:
            for col, cells in enumerate(values):
                out[col].append(cells[row])
            out_lines.append(count)
            continue
        # one line to spare in each piece: a piece that begins like a formula is written with an apostrophe
        pieces = [split_cell(neutralise(cells[row]), column.width, MAX_LINES - 1)
                  if column.kind in TEXT_KINDS and cells[row] else [cells[row]]
                  for column, cells in zip(columns, values, strict=True)]
        for index in range(max(len(p) for p in pieces)):
            for col, column_pieces in enumerate(pieces):
                out[col].append(column_pieces[index] if index < len(column_pieces) else None)
            out_lines.append(max([1] + [line_count(neutralise(p[index]), column.width)
                                        for column, p in zip(columns, pieces, strict=True)
                                        if column.kind in TEXT_KINDS and index < len(p) and p[index]]))
    return out, out_lines


def _continued_rows(columns: Sequence[Column], rows: pl.DataFrame, lines: Sequence[int]
                    ) -> tuple[pl.DataFrame, list[int]]:
    """``_continued`` on a frame of the printed columns."""
    values, out_lines = _continued(columns, [series.to_list() for series in rows.iter_columns()], lines)
    return pl.DataFrame([pl.Series(name, cells, dtype=rows.schema[name])
                         for name, cells in zip(rows.columns, values, strict=True)]), out_lines


def _write_sheet(workbook: Workbook, formats: _Formats, name: str, columns: Sequence[Column],
                 rows: pl.DataFrame | RenderedBlock, lines: Sequence[int], place: str, stamp: str
                 ) -> tuple[Worksheet, int]:
    """Header in row 1, then the rows (``rows``: the printed columns in order, 序号 first; and each row's lines of
    text, ``measured_lines``); an empty list gets one merged row '今日无'. Each row is as tall as its text (xlsxwriter
    cannot autofit, and spreadsheets do not grow rows when they open a file). IDs and text are written as text,
    never as numbers (Excel would turn an 18-digit ID into 3.40402E+17); dates arrive as Excel serial day numbers
    (``_printed``) and get a yyyy-mm-dd format: real dates that sort and filter. Returns the sheet and its last
    row. ``rows`` may be the rows as an earlier run rendered them (``RenderedBlock``, never empty): then
    ``lines`` is not read."""
    sheet = workbook.add_worksheet(name, worksheet_class=RenderedRowsWorksheet)
    sheet.write_row(0, 0, [c.header for c in columns], formats.header)
    sheet.set_row(0, row_points(max(line_count(c.header, c.width) for c in columns)))
    cell_columns = [RowsColumn(c.header, c.kind in ("int", "date"), formats.cell[c.kind]) for c in columns]
    if isinstance(rows, RenderedBlock):
        last_row = sheet.put_block(rows, cell_columns, 1)
        _print_setup(sheet, columns, formats, last_row, place, stamp)
        return sheet, last_row
    if any(count > MAX_LINES for count in lines):
        rows, lines = _continued_rows(columns, rows, lines)
    heights = {count: row_height(row_points(count)) for count in set(lines)}
    sheet.put_rows(rows, [replace(column, name=name) for name, column in zip(rows.columns, cell_columns, strict=True)],
                   pl.Series([heights[count] for count in lines], dtype=pl.String), 1)
    if not lines:
        sheet.merge_range(1, 0, 1, len(columns) - 1, EMPTY_TEXT, formats.empty)
        sheet.set_row(1, row_points(1))
    last_row = max(len(lines), 1)
    _print_setup(sheet, columns, formats, last_row, place, stamp)
    return sheet, last_row


def _new_workbook(path: Path, created: dt.datetime, title: str) -> tuple[Workbook, _Formats]:
    """A workbook with fixed properties, so the same rows always give identical bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = new_workbook(str(path), {"title": title, "author": "dibao", "company": "民政", "created": created})
    return workbook, _Formats(workbook)


def _printed(rows: pl.DataFrame, sheet: str) -> pl.DataFrame:
    """The sheet's columns in order as written, after 序号 (numbered per workbook when written), with the
    partition keys in front."""
    columns = COLUMNS[sheet]
    return rows.select(*_KEYS, *[_cell_values(c, rows.columns) for c in columns[1:]])


def _cell_values(column: Column, present: list[str]) -> pl.Expr:
    """The column as written: dates become Excel serial day numbers, fill columns are empty."""
    if column.header not in present:
        return pl.lit(None, dtype=pl.String).alias(column.header)
    if column.kind == "date":
        return (pl.col(column.header) - pl.lit(EXCEL_EPOCH)).dt.total_days().alias(column.header)
    return pl.col(column.header)


def _temp(path: Path) -> Path:
    """Where a file is written before it is renamed into place: hidden, never mistaken for a finished one."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish(temp: Path, path: Path) -> None:
    """Sync a completely written temp file and rename it into place."""
    _fsync(temp)
    os.replace(temp, path)


Rows = tuple[pl.DataFrame, list[int]]  # the printed columns after 序号, and each row's lines


def _numbered(rows: pl.DataFrame) -> pl.DataFrame:
    """序号 in front: the rows numbered from 1 in each workbook."""
    return rows.select(pl.int_range(1, rows.height + 1, dtype=pl.Int64).alias(COLUMNS[SHEET_EXIT][0].header),
                       pl.all())


def _write_book(path: Path, place: str, sheets: dict[str, Rows | RenderedBlock]) -> None:
    """A county or township workbook: its four sheets, written to a temp name and renamed when complete."""
    temp = _temp(path)
    workbook, formats = _new_workbook(temp, FIXED_CREATED, f"{place} 低保核查工作清单")
    for sheet in SHEETS:
        given = sheets[sheet]
        if isinstance(given, RenderedBlock):
            _write_sheet(workbook, formats, sheet, COLUMNS[sheet], given, [], place, PRINT_DATE)
            continue
        rows, lines = given
        _write_sheet(workbook, formats, sheet, COLUMNS[sheet], _numbered(rows), lines, place, PRINT_DATE)
    workbook.close()
    _finish(temp, path)


def write_list_workbook(path: Path, name: str, items: pl.DataFrame, place: str, stamp: str) -> None:
    """One list's rows (``exit``, ``inclusion`` or ``flag``, as published, any subset) as a workbook of that one
    sheet, laid out and printed exactly as the batch work lists: the web page's download (dibao/serve/pages/).
    The caller masks what its reader may not see first; ``stamp`` is printed in the header and footer."""
    sheet = LIST_LABELS[name]
    rows = {"exit": exit_rows, "inclusion": inclusion_rows, "flag": flag_rows}[name](items)
    printed = _printed(rows, sheet).drop(_KEYS)
    workbook, formats = _new_workbook(path, FIXED_CREATED, f"{place} 低保核查工作清单")
    lines = measured_lines(printed, COLUMNS[sheet])
    _write_sheet(workbook, formats, sheet, COLUMNS[sheet], _numbered(printed), lines, place, stamp)
    workbook.close()


def _write_summary(path: Path, run_date: dt.date, summary: pl.DataFrame) -> None:
    temp = _temp(path)
    workbook, formats = _new_workbook(temp, dt.datetime.combine(run_date, dt.time()),
                                      f"低保核查全省汇总 {run_date.isoformat()}")
    lines = measured_lines(summary, SUMMARY_COLUMNS)
    sheet, last_row = _write_sheet(workbook, formats, PROVINCE_SHEET, SUMMARY_COLUMNS, summary, lines,
                                   PROVINCE_SHEET, run_date.isoformat())
    total_row = last_row + 1  # below the data (or below the row '今日无')
    sheet.set_row(total_row, row_points(1))
    sheet.write_string(total_row, 0, "合计", formats.total_text)
    sheet.write_blank(total_row, 1, None, formats.total_text)
    for col, column in enumerate(SUMMARY_COLUMNS[2:], start=2):
        sheet.write_number(total_row, col, int(summary[column.header].sum()), formats.total_int)
    sheet.autofilter(0, 0, total_row - 1, len(SUMMARY_COLUMNS) - 1)  # sorting by filter leaves 合计 last
    sheet.print_area(0, 0, total_row, len(SUMMARY_COLUMNS) - 1)
    workbook.close()
    _finish(temp, path)


def _safe_name(text: str) -> str:
    """A file name Windows and Linux both accept (county staff open these on Windows)."""
    cleaned = _UNSAFE.sub("_", text).strip().strip(".")
    return cleaned or UNKNOWN_TOWN


def _split(frame: pl.DataFrame, key: str) -> dict[str, pl.DataFrame]:
    return {str(k[0]): part for k, part in frame.partition_by(key, as_dict=True, maintain_order=True).items()}


# ---------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Book:
    """One county or township workbook: its path under ``worklists/``, the place it prints, and the hash of
    everything that goes into it (format, path, place, every sheet's rows in order)."""

    path: str
    place: str
    town: str | None  # None: the whole county
    digest: str
    sheets: tuple[str, ...]  # each sheet's hash (format, path, place, its rows in order), in SHEETS order
    sizes: tuple[int, ...]  # each sheet's rows, in SHEETS order


@dataclass(frozen=True)
class CountyJob:
    """What one worker needs for one county: the county's printed rows per sheet (with ``__town``), its
    workbooks, and which of them to write (the others are carried from the previous run)."""

    books: tuple[Book, ...]
    parts: dict[str, pl.DataFrame]
    write: frozenset[str]
    # Workbooks to write whose previous version has some sheets with the same rows: path -> (that workbook,
    # those sheets), whose rendered rows are read from it rather than measured and rendered again.
    reuse: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(part.height for part in self.parts.values())


def format_key() -> str:
    """Changes whenever the same rows could give other bytes: then no workbook of a previous run is reused."""
    return f"{FORMAT}; xlsxwriter {xlsxwriter.__version__}; polars {pl.__version__}"


def _digest(path: str, place: str, hashes: dict[str, pl.Series]) -> str:
    digest = hashlib.sha256(f"{format_key()}\n{path}\n{place}\n".encode())
    for sheet in SHEETS:
        series = hashes[sheet]
        digest.update(f"{sheet}:{series.len()}\n".encode())
        digest.update(series.to_numpy().tobytes())
    return digest.hexdigest()


def _sheet_digest(path: str, place: str, sheet: str, series: pl.Series) -> str:
    digest = hashlib.sha256(f"{format_key()}\n{path}\n{place}\n{sheet}:{series.len()}\n".encode())
    digest.update(series.to_numpy().tobytes())
    return digest.hexdigest()


def _book(path: str, place: str, town: str | None, hashes: dict[str, pl.Series]) -> Book:
    """A workbook with the hash of all it holds and of each of its sheets."""
    return Book(path, place, town, _digest(path, place, hashes),
                tuple(_sheet_digest(path, place, sheet, hashes[sheet]) for sheet in SHEETS),
                tuple(hashes[sheet].len() for sheet in SHEETS))


def _province_lists(exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame, flags: pl.DataFrame,
                    diff: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Each sheet's rows province-wide as written, with the partition keys and a per-row hash ``__h``."""
    rows = {
        SHEET_EXIT: exit_rows(exit_candidates),
        SHEET_INCLUSION: inclusion_rows(inclusion_candidates),
        SHEET_FLAGS: flag_rows(flags),
        SHEET_DIFF: diff_rows(diff, flags),
    }
    printed = {sheet: _printed(frame, sheet) for sheet, frame in rows.items()}
    return {sheet: frame.with_columns(frame.drop(_KEYS).hash_rows().alias("__h"))
            for sheet, frame in printed.items()}


def plan(exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame, flags: pl.DataFrame,
         diff: pl.DataFrame, counties: pl.DataFrame) -> list[CountyJob]:
    """Split the province-wide rows by county, then by township (only towns present in some list), and hash
    each workbook's rows. Nothing is written; ``write`` is every workbook."""
    lists = _province_lists(exit_candidates, inclusion_candidates, flags, diff)
    names = _county_names(counties, exit_candidates, inclusion_candidates, flags, diff)
    by_county = {sheet: _split(rows, "__county") for sheet, rows in lists.items()}
    jobs: list[CountyJob] = []
    for code, name in names.select("__county", "__name").iter_rows():
        county = _safe_name(f"{code}_{name}")
        parts = {sheet: by_county[sheet].get(code, lists[sheet].clear()) for sheet in SHEETS}
        books = [_book(f"{county}.xlsx", name, None, {s: p["__h"] for s, p in parts.items()})]
        by_town = {sheet: _split(part.select("__town", "__h"), "__town") for sheet, part in parts.items()}
        for town in sorted({town for split in by_town.values() for town in split}):
            path, place = f"{county}/{_safe_name(town)}.xlsx", f"{name} {town}"
            hashes = {s: by_town[s][town]["__h"] if town in by_town[s] else pl.Series("__h", [], pl.UInt64)
                      for s in SHEETS}
            books.append(_book(path, place, town, hashes))
        jobs.append(CountyJob(tuple(books), {s: p.drop("__county", "__h") for s, p in parts.items()},
                              frozenset(b.path for b in books)))
    return jobs


def _town_runs(towns: list[str]) -> dict[str, tuple[int, int]]:
    """Start and end row of each town: rows are sorted by county and town, so a town's rows are contiguous."""
    runs: dict[str, tuple[int, int]] = {}
    start = 0
    for i in range(1, len(towns) + 1):
        if i == len(towns) or towns[i] != towns[start]:
            if towns[start] in runs:
                raise AssertionError(f"rows of {towns[start]} are not contiguous")
            runs[towns[start]] = (start, i)
            start = i
    return runs


def _previous_blocks(path: str, sheets: frozenset[str]) -> dict[int, RenderedBlock]:
    """The rendered rows of these sheets of the previous workbook; none if it cannot be read (it is then written
    from the rows, as any other)."""
    try:
        return read_blocks(Path(path), {SHEETS.index(sheet): 1 for sheet in sheets})
    except (OSError, KeyError, ValueError, UnicodeDecodeError, zipfile.BadZipFile):
        return {}


def write_county(job: CountyJob, out: str) -> list[str]:
    """Write the job's workbooks that need writing (the worker's task). Row heights are measured once per county;
    the county workbook and its township workbooks write slices of the county's rows. A sheet whose rows are as
    in the previous workbook (``job.reuse``) takes its rendered rows from it: measured and rendered only where
    some workbook needs it."""
    frames = {sheet: part.drop("__town") for sheet, part in job.parts.items()}
    lines: dict[str, list[int]] = {}
    runs = {sheet: _town_runs(part["__town"].to_list()) for sheet, part in job.parts.items()}
    written = []
    for book in (book for book in job.books if book.path in job.write):
        blocks = _previous_blocks(*job.reuse[book.path]) if book.path in job.reuse else {}
        sheets: dict[str, Rows | RenderedBlock] = {}
        for index, sheet in enumerate(SHEETS):
            if index in blocks:
                sheets[sheet] = blocks[index]
                continue
            if sheet not in lines:
                lines[sheet] = measured_lines(job.parts[sheet], COLUMNS[sheet])
            if book.town is None:
                sheets[sheet] = (frames[sheet], lines[sheet])
            else:
                start, end = runs[sheet].get(book.town, (0, 0))
                sheets[sheet] = (frames[sheet].slice(start, end - start), lines[sheet][start:end])
        _write_book(Path(out) / book.path, book.place, sheets)
        written.append(book.path)
    return written


# ---------------------------------------------------------------------------------------------- a run's lists


def pending(counties: pl.DataFrame) -> dict[str, Any]:
    """The manifest's ``worklists`` entry when the Parquet run is published: not ready yet, with the drop's
    counties (so ``dibao worklists`` can write the lists from the published run alone)."""
    known = _conform(counties, "counties")
    return {"status": PENDING, "counties": [list(row) for row in known.iter_rows()]}


def is_ready(manifest: dict[str, Any]) -> bool:
    """Whether a run's work lists are complete (runs from before the lists were written afterwards listed them
    in the manifest when they were already complete)."""
    entry = manifest.get(MANIFEST_KEY)
    return isinstance(entry, list) or (isinstance(entry, dict) and entry.get("status") == READY)


def _reusable(previous: Path | None) -> tuple[Path | None, dict[str, str], dict[str, list[str]]]:
    """The previous run's worklists folder, workbook hashes and sheet hashes, if its lists are ready and of the
    same format."""
    if previous is None or not (previous / MANIFEST_FILE).is_file():
        return None, {}, {}
    entry = json.loads((previous / MANIFEST_FILE).read_text(encoding="utf-8")).get(MANIFEST_KEY)
    if not isinstance(entry, dict) or entry.get("status") != READY or entry.get("format") != format_key():
        return None, {}, {}
    return previous / WORKLISTS_DIR, dict(entry.get("hashes", {})), dict(entry.get("sheet_hashes", {}))


def _same_sheets(book: Book, previous: list[str] | None) -> frozenset[str]:
    """The sheets of ``book`` with rows (an empty one is quick to write) that are as in its previous version."""
    if previous is None or len(previous) != len(SHEETS):
        return frozenset()
    return frozenset(sheet for sheet, digest, before, size in zip(SHEETS, book.sheets, previous, book.sizes,
                                                                  strict=True) if digest == before and size)


def _carry(source: Path, target: Path) -> None:
    """The previous run's workbook into this run: a hard link (same bytes, no copy), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp(target)
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def _sweep(out: Path, keep: set[str]) -> None:
    """Remove temp files of an interrupted write and workbooks that are not in today's lists."""
    for path in sorted(out.rglob("*"), reverse=True):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and (TEMP_MARK in path.name or rel not in keep):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _sync_dirs(out: Path) -> None:
    for folder in [out, *sorted(p for p in out.rglob("*") if p.is_dir())]:
        _fsync(folder)


def build(folder: Path, run_date: dt.date, exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame,
          flags: pl.DataFrame, diff: pl.DataFrame, counties: pl.DataFrame, *, previous: Path | None = None,
          workers: int | None = None) -> dict[str, Any]:
    """Write ``folder/worklists``: the workbooks whose rows changed since ``previous`` (a run folder) by
    ``workers`` processes (0: in this process), the others carried from it, and the province summary. Returns
    the manifest's ``worklists`` entry (status ready). Only complete files ever carry their final names.

    Workers are started with ``spawn`` (a fresh interpreter that gets only its county's rows, never a fork of a
    process holding the run's frames): a script that calls this (or ``run_daily``) must keep its own work under
    ``if __name__ == "__main__":``, as for any spawned process; ``dibao`` and ``python -m dibao`` do."""
    started = time.perf_counter()
    workers = WORKERS if workers is None else workers
    out = folder / WORKLISTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(exit_candidates, inclusion_candidates, flags, diff, counties)
    books = [book for job in jobs for book in job.books]
    _sweep(out, {b.path for b in books} | {PROVINCE_FILE})  # temps of a crash; towns without rows today
    source, hashes, sheet_hashes = _reusable(previous)
    carried = []
    if source is not None:
        for job_index, job in enumerate(jobs):
            same = {b.path for b in job.books if hashes.get(b.path) == b.digest and (source / b.path).is_file()}
            for path in sorted(same):
                _carry(source / path, out / path)
            carried += sorted(same)
            reuse = {b.path: (str(source / b.path), sheets) for b in job.books
                     if b.path not in same and (source / b.path).is_file()
                     and (sheets := _same_sheets(b, sheet_hashes.get(b.path)))}
            jobs[job_index] = CountyJob(job.books, job.parts, job.write - same, reuse)
    todo = sorted((job for job in jobs if job.write), key=lambda job: -job.rows)  # largest first
    summary = province_summary(run_date, exit_candidates, inclusion_candidates, flags, diff, counties)
    if workers > 0 and todo:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: never a copy of the run's frames
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context,
                                 initializer=end_with_parent, initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(write_county, job, str(out)) for job in todo]
            _write_summary(out / PROVINCE_FILE, run_date, summary)
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    else:
        for job in todo:
            write_county(job, str(out))
        _write_summary(out / PROVINCE_FILE, run_date, summary)
    _sync_dirs(out)
    return {
        "status": READY,
        "format": format_key(),
        "files": sorted([b.path for b in books] + [PROVINCE_FILE]),
        "hashes": {b.path: b.digest for b in books},
        "sheet_hashes": {b.path: list(b.sheets) for b in books},
        "written": sum(len(job.write) for job in todo) + 1,
        "sheets_reused": sum(len(sheets) for job in todo for _, sheets in job.reuse.values()),
        "reused": len(carried),
        "reused_from": previous.name if source is not None and previous is not None else None,
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 3),
    }


def record(folder: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Put ``entry`` into the run's manifest as ``worklists`` (temp file, sync, rename: never half written);
    return the whole manifest."""
    path = folder / MANIFEST_FILE
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    manifest[MANIFEST_KEY] = {**(manifest.get(MANIFEST_KEY) or {}), **entry} \
        if isinstance(manifest.get(MANIFEST_KEY), dict) else entry
    temp = _temp(path)
    temp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _finish(temp, path)
    _fsync(folder)
    return manifest


def complete(folder: Path, run_date: dt.date, exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame,
             flags: pl.DataFrame, diff: pl.DataFrame, counties: pl.DataFrame, *, previous: Path | None = None,
             workers: int | None = None) -> dict[str, Any]:
    """Write a published run's work lists, then record in its manifest that they are ready. Returns the entry."""
    entry = build(folder, run_date, exit_candidates, inclusion_candidates, flags, diff, counties,
                  previous=previous, workers=workers)
    return dict(record(folder, entry)[MANIFEST_KEY])


def rewrite(folder: Path, previous: Path | None = None, *, workers: int | None = None) -> dict[str, Any]:
    """(Re)write a published run's work lists from its own Parquet lists and manifest (``dibao worklists``):
    after a crash before they were ready, or to check them. Workbooks of ``previous`` are reused where their
    rows are the same."""
    from dibao.publish.state import Lists

    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    entry = manifest.get(MANIFEST_KEY)
    if not isinstance(entry, dict) or "counties" not in entry:
        raise DibaoError(f"{folder}: the manifest does not list the drop's counties (a run published before the "
                         f"work lists were written afterwards); re-run the day with `dibao run --replace`")
    counties = pl.DataFrame(entry["counties"], schema={"county_code": pl.String(), "county_name": pl.String()},
                            orient="row")
    lists = Lists.read(folder)
    diff = pl.read_parquet(folder / DIFF.filename)
    return complete(folder, dt.date.fromisoformat(manifest["run_date"]), lists.exit, lists.inclusion, lists.flag,
                    diff, counties, previous=previous, workers=workers)


def write_worklists(folder: Path, run_date: dt.date, exit_candidates: pl.DataFrame,
                    inclusion_candidates: pl.DataFrame, flags: pl.DataFrame, diff: pl.DataFrame,
                    counties: pl.DataFrame, *, workers: int = 0) -> list[Path]:
    """Write every workbook of ``folder/worklists`` (nothing reused); return the paths written, sorted.

    The folder is owned by this function: a workbook not in today's lists (a township that has nothing today) is
    removed.
    """
    entry = build(folder, run_date, exit_candidates, inclusion_candidates, flags, diff, counties, workers=workers)
    return sorted(folder / WORKLISTS_DIR / path for path in entry["files"])
