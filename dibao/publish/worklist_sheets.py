"""Writing a work-list sheet for paper: cell formats, print set-up, each row as tall as its text (continuation rows
past Excel's tallest row), and the county/township workbook and province summary written under a temporary name
and renamed when complete (``dibao.publish.worklists`` decides which to write).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from dibao.durable import fsync_path
from dibao.publish.contract import (
    LIST_LABELS,
)
from dibao.publish.formulas import neutralise, neutralised
from dibao.publish.print_layout import FONT_POINTS, MAX_LINES, line_count, row_lines, row_points, split_cell
from dibao.publish.sheet_rows import RenderedBlock, RenderedRowsWorksheet, RowsColumn, row_height
from dibao.publish.worklist_rows import (
    COLUMNS,
    EMPTY_TEXT,
    FIXED_CREATED,
    KEYS,
    PRINT_DATE,
    PROVINCE_SHEET,
    SHEET_EXIT,
    SHEETS,
    SUMMARY_COLUMNS,
    TEXT_KINDS,
    Column,
    exit_rows,
    flag_rows,
    inclusion_rows,
    printed_rows,
)
from dibao.publish.xlsx import new_workbook

TEMP_MARK = ".tmp-"  # in the name of a file still being written


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


def temp_path(path: Path) -> Path:
    """Where a file is written before it is renamed into place: hidden, never mistaken for a finished one."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def finish(temp: Path, path: Path) -> None:
    """Sync a completely written temp file and rename it into place."""
    fsync_path(temp)
    os.replace(temp, path)


Rows = tuple[pl.DataFrame, list[int]]  # the printed columns after 序号, and each row's lines


def _numbered(rows: pl.DataFrame) -> pl.DataFrame:
    """序号 in front: the rows numbered from 1 in each workbook."""
    return rows.select(pl.int_range(1, rows.height + 1, dtype=pl.Int64).alias(COLUMNS[SHEET_EXIT][0].header),
                       pl.all())


def write_book(path: Path, place: str, sheets: dict[str, Rows | RenderedBlock]) -> None:
    """A county or township workbook: its four sheets, written to a temp name and renamed when complete."""
    temp = temp_path(path)
    workbook, formats = _new_workbook(temp, FIXED_CREATED, f"{place} 低保核查工作清单")
    for sheet in SHEETS:
        given = sheets[sheet]
        if isinstance(given, RenderedBlock):
            _write_sheet(workbook, formats, sheet, COLUMNS[sheet], given, [], place, PRINT_DATE)
            continue
        rows, lines = given
        _write_sheet(workbook, formats, sheet, COLUMNS[sheet], _numbered(rows), lines, place, PRINT_DATE)
    workbook.close()
    finish(temp, path)


def write_list_workbook(path: Path, name: str, items: pl.DataFrame, place: str, stamp: str) -> None:
    """One list's rows (``exit``, ``inclusion`` or ``flag``, as published, any subset) as a workbook of that one
    sheet, laid out and printed exactly as the batch work lists: the web page's download (dibao/serve/pages/).
    The caller masks what its reader may not see first; ``stamp`` is printed in the header and footer."""
    sheet = LIST_LABELS[name]
    rows = {"exit": exit_rows, "inclusion": inclusion_rows, "flag": flag_rows}[name](items)
    printed = printed_rows(rows, sheet).drop(KEYS)
    workbook, formats = _new_workbook(path, FIXED_CREATED, f"{place} 低保核查工作清单")
    lines = measured_lines(printed, COLUMNS[sheet])
    _write_sheet(workbook, formats, sheet, COLUMNS[sheet], _numbered(printed), lines, place, stamp)
    workbook.close()


def write_summary(path: Path, run_date: dt.date, summary: pl.DataFrame) -> None:
    temp = temp_path(path)
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
    finish(temp, path)
