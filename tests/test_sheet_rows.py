"""Rows rendered in Polars (dibao/publish/sheet_rows.py) read back exactly as xlsxwriter's own cells would.

The oracle is xlsxwriter writing the same values cell by cell (``write_string`` of the neutralised text,
``write_number``); both workbooks are read back with fastexcel (calamine, what dibao's own ingest reads workbooks
with), and the printed layout is checked in LibreOffice by tests/test_worklist_print.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import fastexcel
import polars as pl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dibao.errors import DibaoError
from dibao.publish.formulas import neutralise
from dibao.publish.sheet_rows import RenderedRowsWorksheet, RowsColumn, row_height

# Text as it arrives from county exports and explanations: Chinese, XML's special characters, control characters,
# Excel's own escape sequences written literally, formula starts, blanks at either end.
TEXT = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(list("张三李四乡镇 ,&<>\"'=+-@_x0F9\t\r\n\x00\x01\x1f\ufffe\uffff"))
            | st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(["_x0041_", "_x005F_x0000_", " 前后空格 ", "=SUM(A1)", "+86", "-", "@x", "a & b <c>"]),
)
NUMBER = st.one_of(st.none(), st.integers(min_value=-(2**53), max_value=2**53))


def _oracle(path: Path, rows: list[tuple[str | None, int | None]]) -> None:
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                               "strings_to_urls": False})
    sheet = workbook.add_worksheet("s")
    sheet.write_row(0, 0, ["text", "number"])
    for index, (text, number) in enumerate(rows, start=1):
        if text:
            sheet.write_string(index, 0, neutralise(text))
        if number is not None:
            sheet.write_number(index, 1, number)
    workbook.close()


def _rendered(path: Path, rows: list[tuple[str | None, int | None]]) -> None:
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("s", worksheet_class=RenderedRowsWorksheet)
    sheet.write_row(0, 0, ["text", "number"])
    frame = pl.DataFrame(rows, schema={"text": pl.String, "number": pl.Int64}, orient="row")
    text_format, number_format = workbook.add_format({"num_format": "@"}), workbook.add_format({"num_format": "0"})
    sheet.put_rows(frame, [RowsColumn("text", False, text_format), RowsColumn("number", True, number_format)],
                   pl.Series([row_height(15.0)] * frame.height, dtype=pl.String), 1)
    sheet.write_string(frame.height + 1, 0, "合计")  # a row below the rendered ones, written by xlsxwriter
    workbook.close()


def _values(path: Path) -> pl.DataFrame:
    return fastexcel.read_excel(path).load_sheet(0, dtypes="string").to_polars()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(TEXT, NUMBER), max_size=12))
def test_rendered_rows_read_back_as_xlsxwriter_cells(tmp_path: Path, rows: list[tuple[str | None, int | None]]
                                                     ) -> None:
    expected, actual = tmp_path / "oracle.xlsx", tmp_path / "rendered.xlsx"
    _oracle(expected, [*rows, ("合计", None)])
    _rendered(actual, rows)
    read, oracle = _values(actual), _values(expected)
    assert read.equals(oracle), (read.to_dicts(), oracle.to_dicts())


def test_rows_carry_their_heights_and_the_sheet_its_dimension(tmp_path: Path) -> None:
    path = tmp_path / "rows.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("s", worksheet_class=RenderedRowsWorksheet)
    sheet.write_row(0, 0, ["a", "b", "c"])
    frame = pl.DataFrame({"a": ["x", None], "b": [None, "y"], "c": [1, None]})
    last = sheet.put_rows(frame, [RowsColumn("a", False, workbook.add_format()),
                                  RowsColumn("b", False, workbook.add_format()),
                                  RowsColumn("c", True, workbook.add_format({"bold": True}))],
                          pl.Series([row_height(30.0), row_height(14.25)], dtype=pl.String), 1)
    workbook.close()
    assert last == 2
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert '<dimension ref="A1:C3"/>' in xml
    assert '<row r="2" ht="30" customHeight="1">' in xml and '<row r="3" ht="14.25" customHeight="1">' in xml
    assert '<c r="B2"' not in xml and '<c r="A3"' not in xml  # empty cells are not written
    assert _values(path).rows() == [("x", None, "1"), (None, "y", None)]


def test_rows_past_the_last_worksheet_row_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    workbook = xlsxwriter.Workbook(str(tmp_path / "full.xlsx"))
    sheet = workbook.add_worksheet("s", worksheet_class=RenderedRowsWorksheet)
    frame = pl.DataFrame({"a": ["x", "y", "z"]})
    with pytest.raises(DibaoError, match="超出 Excel 的上限"):
        sheet.put_rows(frame, [RowsColumn("a", False, workbook.add_format())],
                       pl.Series([row_height(15.0)] * 3, dtype=pl.String), 1_048_574)
    workbook.close()
