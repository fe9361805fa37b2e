"""A work-list sheet's data rows as SpreadsheetML, made column by column in Polars.

xlsxwriter keeps every cell as a Python object and writes its XML one cell at a time: about 10 µs a cell, and a
province's daily lists are some 17 million cells (each row goes into a county and a township workbook, and into
今日变化 on a day it changed) — over a minute on two cores. Here the rows of a sheet are rendered in one pass of
Polars string expressions and handed to xlsxwriter, which still writes everything else of the workbook (styles,
column formats, the header row, print set-up, autofilter, header and footer).

The cells are what xlsxwriter itself writes in its ``constant_memory`` mode: numbers as ``<v>`` values, text as
inline strings (``t="inlineStr"``, the form Excel, LibreOffice, openpyxl and calamine all read), control characters
escaped as ``_xHHHH_``, XML's ``& < >`` escaped, leading or trailing blanks kept with ``xml:space="preserve"``.
Empty cells are not written (the column format and the printed grid cover them). Each row carries its height.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from dibao.errors import DibaoError
from dibao.publish.formulas import FORMULA_START, neutralised

_CONTROL = r"[\x00-\x08\x0b-\x1f]"  # the characters Excel writes as _xHHHH_ (tab, line feed, return stay)
_CONTROL_CODES = [*range(0x00, 0x09), *range(0x0B, 0x20)]
_MAX_TEXT = 32767 // 2  # a text of at most this many characters is within Excel's 32,767 UTF-16 units


@dataclass(frozen=True)
class RowsColumn:
    """One column of the rendered rows: its values' name in the frame, whether they are numbers, and the cell
    format every non-empty cell gets."""

    name: str
    numeric: bool
    cell_format: Format


# What a text column may need beyond plain copying, each looked for once per sheet: a cell is rendered with only
# the passes some value of its column needs.
_NEEDS: dict[str, str] = {
    "formula": FORMULA_START,  # an apostrophe in front
    "excel_escape": r"_x[0-9a-fA-F]{4}_",  # Excel's escape written literally: its underscore escaped
    "control": _CONTROL,  # control characters as _xHHHH_
    "noncharacter": "[\ufffe\uffff]",
    "markup": "[&<>]",  # XML's escapes
    "blanks": r"^\s|\s$",  # xml:space="preserve"
}
_HEIGHT = "__row_height"


def _escaped(text: pl.Expr, needs: frozenset[str]) -> pl.Expr:
    """XML text content, with Excel's escapes (as xlsxwriter writes an inline string): ``_xHHHH_`` written
    literally gets its underscore escaped (``_x005F``), then control characters become ``_xHHHH_``, then
    ``& < >``."""
    if "excel_escape" in needs:
        text = text.str.replace_all(f"({_NEEDS['excel_escape']})", "_x005F$1")
    if "control" in needs:  # rare: one pass per control character
        for code in _CONTROL_CODES:
            text = text.str.replace_all(chr(code), f"_x{code:04X}_", literal=True)
    if "noncharacter" in needs:
        text = text.str.replace_all("\ufffe", "_xFFFE_", literal=True).str.replace_all("\uffff", "_xFFFF_",
                                                                                         literal=True)
    if "markup" in needs:
        text = (text.str.replace_all("&", "&amp;", literal=True).str.replace_all("<", "&lt;", literal=True)
                .str.replace_all(">", "&gt;", literal=True))
    return text


_ColumnKey = tuple[str, bool, int, frozenset[str]]  # name, numeric, cell format index, needs


def _cell(key: _ColumnKey, letter: str, row_number: pl.Expr) -> pl.Expr:
    name, numeric, xf_index, needs = key
    value = pl.col(name) if numeric else pl.col(name).cast(pl.String)
    start = pl.concat_str([pl.lit(f'<c r="{letter}'), row_number, pl.lit(f'" s="{xf_index}"')])
    if numeric:
        return pl.when(value.is_not_null()).then(pl.concat_str([start, pl.lit("><v>"), value.cast(pl.String),
                                                                pl.lit("</v></c>")])).otherwise(pl.lit(""))
    text = neutralised(value) if "formula" in needs else value
    preserve = (pl.when(text.str.contains(_NEEDS["blanks"])).then(pl.lit(' xml:space="preserve"'))
                .otherwise(pl.lit("")) if "blanks" in needs else pl.lit(""))
    return (pl.when(value.is_not_null() & (value != ""))
            .then(pl.concat_str([start, pl.lit(' t="inlineStr"><is><t'), preserve, pl.lit(">"),
                                 _escaped(text, needs), pl.lit("</t></is></c>")]))
            .otherwise(pl.lit("")))


@functools.lru_cache(maxsize=512)
def _rows_expression(keys: tuple[_ColumnKey, ...], first_row: int) -> pl.Expr:
    """All of a sheet's rows as one string: built once per layout (sheets of the same columns and needs share
    it)."""
    row_number = (pl.int_range(pl.len(), dtype=pl.Int64) + (first_row + 1)).cast(pl.String)
    cells = [_cell(key, xl_col_to_name(index), row_number) for index, key in enumerate(keys)]
    return pl.concat_str([pl.lit('<row r="'), row_number, pl.lit('" ht="'), pl.col(_HEIGHT),
                          pl.lit('" customHeight="1">'), *cells, pl.lit("</row>")]).str.join("")


def row_height(points: float) -> str:
    """A row's height as xlsxwriter writes it (``set_row``: rounded to whole pixels, then points)."""
    return f"{int(points * 4.0 / 3.0 + 0.5) * 0.75:.16g}"


def render_rows(frame: pl.DataFrame, columns: Sequence[RowsColumn], heights: pl.Series, first_row: int) -> str:
    """The ``<row>`` elements of ``frame``'s rows, the first at 0-based sheet row ``first_row``; ``heights`` is
    each row's height as written (``row_height``)."""
    if frame.height == 0:
        return ""
    texts = [column.name for column in columns if not column.numeric]
    checks = frame.select(
        *[pl.col(name).cast(pl.String).str.len_chars().max().alias(f"long:{name}") for name in texts],
        *[pl.col(name).cast(pl.String).str.contains(pattern).any().alias(f"{need}:{name}")
          for name in texts for need, pattern in _NEEDS.items()],
    ).row(0, named=True) if texts else {}
    too_long = [name for name in texts if (checks[f"long:{name}"] or 0) > _MAX_TEXT]
    if too_long:  # the rows are cut into continuation rows long before this (print_layout.MAX_LINES)
        raise AssertionError(f"text longer than a spreadsheet cell holds in {too_long}")
    keys = tuple((column.name, column.numeric, column.cell_format._get_xf_index(),
                  frozenset(need for need in _NEEDS if not column.numeric and checks[f"{need}:{column.name}"]))
                 for column in columns)
    return str(frame.with_columns(heights.alias(_HEIGHT)).select(_rows_expression(keys, first_row)).item())


@dataclass(frozen=True)
class RenderedBlock:
    """A sheet's data rows as a workbook of an earlier run wrote them (``read_blocks``): the XML, and the last
    0-based sheet row it fills."""

    xml: str
    last_row: int


def read_blocks(path: Path, sheets: dict[int, int]) -> dict[int, RenderedBlock]:
    """The rendered data rows of some sheets of a workbook this module wrote: ``sheets`` maps a sheet's position
    (0-based, as added) to the 0-based sheet row its block starts at. A sheet whose rows are the same as in that
    workbook is then not rendered again; the block is exactly what ``render_rows`` would give, so the new
    workbook is byte for byte the one a fresh write makes (``tests/test_worklists.py``)."""
    blocks = {}
    with zipfile.ZipFile(path) as archive:
        for index, first_row in sheets.items():
            xml = archive.read(f"xl/worksheets/sheet{index + 1}.xml").decode("utf-8")
            start, end = xml.find(f'<row r="{first_row + 1}"'), xml.find("</sheetData>")
            if start < 0 or end < start:
                raise ValueError(f"{path}: sheet {index + 1} has no rows from {first_row + 1}")
            block = xml[start:end]
            last = int(block[block.rindex('<row r="') + 8:].split('"', 1)[0]) - 1
            blocks[index] = RenderedBlock(block, last)
    return blocks


class RenderedRowsWorksheet(Worksheet):
    """A worksheet whose data rows come as one block of rendered XML (``render_rows``, or a ``RenderedBlock``
    of an earlier run); xlsxwriter writes the rows before and after the block from its own cells (the header row
    above, a total row below)."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: tuple[pl.DataFrame | RenderedBlock, list[RowsColumn], pl.Series | None, int, int] | None = None

    def _claim(self, first_row: int, last_row: int, columns: int) -> None:
        if self._check_dimensions(last_row, columns - 1) or self._check_dimensions(first_row, 0):
            raise DibaoError(f"工作表 {self.name}: 第 {first_row + 1}–{last_row + 1} 行超出 Excel 的上限 "
                             f"{self.xls_rowmax:,} 行 (sheet {self.name}: rows {first_row + 1}–{last_row + 1} do "
                             f"not fit in a worksheet of at most {self.xls_rowmax:,} rows)")

    def put_rows(self, frame: pl.DataFrame, columns: Sequence[RowsColumn], heights: pl.Series, first_row: int
                 ) -> int:
        """Write ``frame``'s rows from sheet row ``first_row`` (0-based); returns the last row written. Each
        column's cell formats are given; nothing else may be written into these rows."""
        if frame.height == 0:
            return first_row - 1
        last_row = first_row + frame.height - 1
        self._claim(first_row, last_row, len(columns))
        self._rows = (frame, list(columns), heights, first_row, last_row)
        return last_row

    def put_block(self, block: RenderedBlock, columns: Sequence[RowsColumn], first_row: int) -> int:
        """Write rows rendered earlier (``read_blocks``) from ``first_row``, as ``put_rows`` would have written
        them; returns the last row written."""
        self._claim(first_row, block.last_row, len(columns))
        self._rows = (block, list(columns), None, first_row, block.last_row)
        return block.last_row

    def _write_sheet_data(self) -> None:
        if self._rows is None:
            super()._write_sheet_data()
            return
        rows, columns, heights, first, last = self._rows
        if isinstance(rows, RenderedBlock):
            for column in columns:  # the formats get their indices in the order render_rows gives them
                column.cell_format._get_xf_index()
            xml = rows.xml
        else:
            assert heights is not None
            xml = render_rows(rows, columns, heights, first)  # the formats get their indices here, as in xlsxwriter
        low: int | None = self.dim_rowmin  # type: ignore[has-type]
        high: int | None = self.dim_rowmax  # type: ignore[has-type]
        self._xml_start_tag("sheetData")
        if low is not None and low < first:
            self.dim_rowmax = first - 1
            self._write_rows()
        self.fh.write(xml)
        if high is not None and high > last:
            self.dim_rowmin, self.dim_rowmax = last + 1, high
            self._write_rows()
        self.dim_rowmin, self.dim_rowmax = low, high  # type: ignore[assignment]
        self._xml_end_tag("sheetData")
