"""Real county layouts: title rows, unit lines, signatures below the data, several sheets, old .xls, broken CSV.

Each test states a file as counties export it and the published answer: the rows accepted, the notes saying what
was skipped, or the error naming the line or the cell the operator has to fix.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter

from dibao.errors import DropFault
from dibao.headers import load_header_table
from dibao.ingest import excel_file, ingest_drop
from dibao.ingest.read import RawTable, header_scorer, read_table
from dibao.schema import FILE_SPECS, FieldType
from tests.conftest import REGISTRY_HEADERS, ROLL_HEADERS, make_id, registry_rows, roll_rows

Build = Callable[..., Path]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _fault_text(build: Build, **overrides: object) -> str:
    with pytest.raises(DropFault) as info:
        ingest_drop(build(**overrides))
    return str(info.value)


def _write_text(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    """Write lines exactly as given (quotes, blank lines, ragged rows), one line feed after each."""
    path.write_bytes("".join(line + "\n" for line in lines).encode(encoding))
    return path


def _csv_line(cells: list[str]) -> str:
    return ",".join(cells)


def _workbook(path: Path, fill: Callable[[xlsxwriter.Workbook], None]) -> Path:
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    fill(workbook)
    workbook.close()
    return path


def _write_rows(sheet: Any, first_row: int, rows: Sequence[Sequence[object]]) -> None:
    """Rows from ``first_row`` on: numbers as number cells, text as text cells, "" as no cell."""
    for r, row in enumerate(rows, start=first_row):
        for c, value in enumerate(row):
            if isinstance(value, int | float):
                sheet.write_number(r, c, value)
            elif value != "":
                sheet.write_string(r, c, str(value))


def _read(path: Path, stem: str) -> RawTable:
    """read_table as the drop calls it, for asserting where things are in the file."""
    headers = load_header_table()
    ids = {f.name for f in FILE_SPECS[stem].fields if f.type is FieldType.ID_NUMBER}
    return read_table(path, is_id_header=lambda h: headers.resolve(stem, h) in ids,
                      header_score=header_scorer(lambda h: headers.resolve(stem, h)))


def _two_roll_rows() -> list[list[str]]:
    first = roll_rows()[0]
    second = list(first)
    second[3], second[4], second[5] = "DB002", "林蝶萱", make_id(birth="19880808", seq="081")
    return [first, second]


# --- the header is found under titles, unit lines and blank rows ------------------------------------------------


def test_xlsx_with_a_merged_title_and_a_blank_row_above_the_header(drop: Build) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        sheet = book.add_worksheet("Sheet1")
        sheet.merge_range(0, 0, 0, len(ROLL_HEADERS) - 1, "凤台县2026年11月低保花名册",
                          book.add_format({"align": "center"}))
        sheet.write_row(2, 0, ROLL_HEADERS)
        _write_rows(sheet, 3, [[*r[:9], 420, r[10], 300, 1] for r in _two_roll_rows()])

    folder = drop(dibao_roll=lambda f: _workbook(f / "dibao_roll.xlsx", fill))
    roll = ingest_drop(folder).files["dibao_roll"]
    assert roll.accepted["name"].to_list() == ["王芳", "林蝶萱"]
    assert roll.accepted["row"].to_list() == [1, 2]
    assert "header found on sheet 'Sheet1' row 3; 2 title/blank row(s) above it skipped" in roll.notes
    assert (roll.raw.header_line, roll.raw.location(1), roll.raw.location(2)) == (
        3, "sheet 'Sheet1' row 4", "sheet 'Sheet1' row 5")
    assert roll.raw.cell(2, "姓名") == "sheet 'Sheet1' cell E5"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_with_a_title_line_and_a_unit_line(drop: Build, encoding: str) -> None:
    rows = registry_rows()
    rows[1][8] = "20x9"  # a row fault: its row number must lead back to its line
    lines = ["凤台县2026年11月脱贫人口花名册", "单位：元", _csv_line(REGISTRY_HEADERS), *map(_csv_line, rows)]
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines, encoding))
    registry = ingest_drop(folder).files["registry"]
    assert registry.raw.encoding == encoding
    assert registry.accepted["name"].to_list() == ["张伟", "李丽", "王芳"]
    assert "header found on line 3; 2 title/blank line(s) above it skipped" in registry.notes
    rejected = registry.rejected.row(0, named=True)
    assert (rejected["row"], rejected["field"]) == (2, "exit_year")
    assert registry.raw.location(rejected["row"]) == "line 5"


def test_a_tab_separated_export_with_a_title_line(drop: Build) -> None:
    lines = ["凤台县脱贫人口", "\t".join(REGISTRY_HEADERS), *["\t".join(r) for r in registry_rows()]]
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines, "gb18030"))
    assert ingest_drop(folder).files["registry"].accepted.height == 3


def test_the_header_on_line_1_keeps_the_numbering(drop: Build) -> None:
    registry = ingest_drop(drop()).files["registry"]
    raw = registry.raw
    assert (raw.header_line, raw.location(1), raw.location(3), raw.row_lines) == (1, "line 2", "line 4", None)
    assert not any("header found" in n for n in registry.notes)


def test_without_a_plausible_header_line_1_is_the_header_and_the_missing_column_is_named(drop: Build) -> None:
    lines = ["编号,名字,证件", "1,张伟,x"]
    text = _fault_text(drop, registry=lambda f: _write_text(f / "registry.csv", lines))
    assert "registry.csv, column '县级区划代码': missing required column" in text


def test_a_quoted_line_break_inside_a_header_cell_is_one_cell(drop: Build) -> None:
    headers = [*REGISTRY_HEADERS]
    headers[9] = '"家庭人均纯收入\n（元）"'
    lines = [_csv_line(headers), *map(_csv_line, registry_rows())]
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines, "gb18030"))
    registry = ingest_drop(folder).files["registry"]
    assert registry.column_map["per_capita_net_income"] == "家庭人均纯收入\n（元）"
    assert [float(v) for v in registry.accepted["per_capita_net_income"]] == [5200.0, 5200.0, 3600.0]
    assert (registry.raw.header_line, registry.raw.location(1)) == (1, "line 3")  # the header spans lines 1–2


def test_a_quoted_line_break_inside_a_value_keeps_later_lines_right(drop: Build) -> None:
    rows = registry_rows()
    rows[1][2] = '"新庄\n村"'
    rows[2][8] = "20x9"
    lines = [_csv_line(REGISTRY_HEADERS), *map(_csv_line, rows)]
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines))
    registry = ingest_drop(folder, keep_raw=True).files["registry"]
    assert registry.raw.frame["行政村"].to_list() == ["新庄村", "新庄\n村", "新庄村"]
    assert registry.rejected["row"].to_list() == [3]
    assert [registry.raw.location(r) for r in (1, 2, 3)] == ["line 2", "line 3", "line 5"]


def _two_row_header() -> tuple[list[str], list[str]]:
    """ROLL_HEADERS as a printed form has them: 姓名, 身份证号码, 与户主关系 under a group title 家庭成员."""
    upper = [h if i not in (4, 5, 6) else "" for i, h in enumerate(ROLL_HEADERS)]
    upper[4] = "家庭成员"
    lower = [h if i in (4, 5, 6) else "" for i, h in enumerate(ROLL_HEADERS)]
    return upper, lower


def test_a_two_row_header_in_a_workbook_is_read_as_one(drop: Build) -> None:
    upper, lower = _two_row_header()

    def fill(book: xlsxwriter.Workbook) -> None:
        sheet = book.add_worksheet("Sheet1")
        sheet.merge_range(0, 0, 0, len(ROLL_HEADERS) - 1, "低保花名册")
        for column, (up, low) in enumerate(zip(upper, lower, strict=True)):
            if up and not low:
                sheet.merge_range(1, column, 2, column, up)  # merged down over both header rows
            elif low:
                sheet.write(2, column, low)
        sheet.merge_range(1, 4, 1, 6, "家庭成员")
        _write_rows(sheet, 3, _two_roll_rows())

    folder = drop(dibao_roll=lambda f: _workbook(f / "dibao_roll.xlsx", fill))
    roll = ingest_drop(folder).files["dibao_roll"]
    assert roll.accepted["name"].to_list() == ["王芳", "林蝶萱"]
    assert roll.raw.headers == ROLL_HEADERS
    assert "two-row header on sheet 'Sheet1' rows 2–3: a lower cell names its column, the upper one where it is " \
           "blank" in roll.notes
    assert roll.raw.location(1) == "sheet 'Sheet1' row 4"


def test_a_two_row_header_in_a_csv_is_read_as_one(drop: Build) -> None:
    upper, lower = _two_row_header()
    lines = ["低保花名册", _csv_line(upper), _csv_line(lower), *map(_csv_line, _two_roll_rows())]
    folder = drop(dibao_roll=lambda f: _write_text(f / "dibao_roll.csv", lines))
    roll = ingest_drop(folder).files["dibao_roll"]
    assert roll.accepted["name"].to_list() == ["王芳", "林蝶萱"]
    assert roll.raw.headers == ROLL_HEADERS
    assert "two-row header on lines 2–3: a lower cell names its column, the upper one where it is blank" in roll.notes
    assert "header found on line 2; 1 title/blank line(s) above it skipped" in roll.notes
    assert (roll.raw.header_line, roll.raw.location(1)) == (2, "line 4")


# --- signature lines and blank rows are not data -------------------------------------------------------------------


def test_signature_lines_below_the_data_are_dropped_and_listed(drop: Build) -> None:
    width = len(REGISTRY_HEADERS)
    signed = _csv_line(["制表人：张三", "", "审核人：李四"] + [""] * (width - 3))
    lines = [_csv_line(REGISTRY_HEADERS), *map(_csv_line, registry_rows()), "", signed, "制表日期：2026年11月20日",
             " 注： 数据截至11月20日"]
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines, "gb18030"))
    registry = ingest_drop(folder).files["registry"]
    assert registry.accepted.height == 3 and registry.rejected.height == 0
    notes = registry.notes
    assert "line 6 dropped: a note below the data, not data (制表人：张三)" in notes
    assert "line 7 dropped: a note below the data, not data (制表日期：2026年11月20日)" in notes
    assert "line 8 dropped: a note below the data, not data (注： 数据截至11月20日)" in notes
    assert "1 blank row(s) below the data dropped (line(s) 5)" in notes


def test_a_signature_row_in_a_workbook_is_dropped_and_the_remark_words_anywhere_else_are_data(drop: Build) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        sheet = book.add_worksheet("花名册")
        sheet.write_row(0, 0, ROLL_HEADERS)
        _write_rows(sheet, 1, _two_roll_rows())
        sheet.write_row(4, 0, ["填报单位：凤台县民政局", "", "负责人：王五"])
        sheet.write_row(5, 0, ["单位负责人：赵六"])

    folder = drop(dibao_roll=lambda f: _workbook(f / "dibao_roll.xlsx", fill))
    roll = ingest_drop(folder).files["dibao_roll"]
    assert roll.accepted["name"].to_list() == ["王芳", "林蝶萱"]
    assert "sheet '花名册' row 5 dropped: a note below the data, not data (填报单位：凤台县民政局)" in roll.notes
    assert "sheet '花名册' row 6 dropped: a note below the data, not data (单位负责人：赵六)" in roll.notes
    assert "1 blank row(s) inside the data dropped (sheet '花名册' row(s) 4)" not in roll.notes  # row 4 is trailing
    assert "1 blank row(s) below the data dropped (sheet '花名册' row(s) 4)" in roll.notes


def test_a_total_row_above_the_signatures_is_left_to_validation(drop: Build, tmp_path: Path) -> None:
    rows = list(map(_csv_line, registry_rows()))
    total = _csv_line(["合计", "", "", "", "", "", "", "", "", "14000", "5", "14000", "3200", "600", "0"])
    lines = [_csv_line(REGISTRY_HEADERS), *rows, total, "制表人：张三"]
    raw = _read(_write_text(tmp_path / "registry.csv", lines), "registry")
    assert raw.frame.height == 4 and raw.frame["县级区划代码"][3] == "合计"
    assert raw.notes == ["line 6 dropped: a note below the data, not data (制表人：张三)"]


def test_a_sheet_whose_top_rows_are_blank_is_not_a_candidate(drop: Build) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        book.add_worksheet("空").write(40, 3, "备注")
        sheet = book.add_worksheet("名册")
        sheet.write_row(0, 0, ROLL_HEADERS)
        _write_rows(sheet, 1, _two_roll_rows())

    folder = drop(dibao_roll=lambda f: _workbook(f / "dibao_roll.xlsx", fill))
    roll = ingest_drop(folder).files["dibao_roll"]
    assert roll.accepted.height == 2 and "used sheet '名册' (sheet 2 of 2)" in roll.notes


def test_blank_lines_inside_the_data_are_dropped_and_counted(drop: Build) -> None:
    rows = list(map(_csv_line, registry_rows()))
    rows[2] = rows[2].replace("2020", "20x0")  # a fault on the last row: its location is past both blank lines
    lines = [_csv_line(REGISTRY_HEADERS), rows[0], "", rows[1], "," * (len(REGISTRY_HEADERS) - 1), rows[2]]
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines))
    registry = ingest_drop(folder).files["registry"]
    assert registry.accepted["name"].to_list() == ["张伟", "李丽", "王芳"]
    assert "2 blank row(s) inside the data dropped (line(s) 3, 5)" in registry.notes
    assert registry.rejected["row"].to_list() == [3]
    assert registry.raw.location(3) == "line 6"


# --- the sheet holding the table ---------------------------------------------------------------------------------


def test_the_table_on_the_second_sheet_is_found_and_named(drop: Build) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        book.add_worksheet("填表说明").write_column(0, 0, ["填表说明", "1. 身份证号码请设为文本", "2. 金额单位为元"])
        sheet = book.add_worksheet("低保名册")
        sheet.write(0, 0, "2026年11月低保花名册")
        sheet.write_row(1, 0, ROLL_HEADERS)
        _write_rows(sheet, 2, _two_roll_rows())
        book.add_worksheet("统计").write_row(0, 0, ["乡镇", "户数"])

    folder = drop(dibao_roll=lambda f: _workbook(f / "dibao_roll.xlsx", fill))
    roll = ingest_drop(folder).files["dibao_roll"]
    assert roll.accepted["name"].to_list() == ["王芳", "林蝶萱"]
    assert "used sheet '低保名册' (sheet 2 of 3)" in roll.notes
    assert roll.raw.location(1) == "sheet '低保名册' row 3"


def test_a_workbook_with_no_table_on_any_sheet_names_the_sheets_searched(drop: Build) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        book.add_worksheet("说明").write_column(0, 0, ["本月无变化", "姓名"])
        book.add_worksheet("汇总").write_row(0, 0, ["月份", "户数", "人数"])
        book.add_worksheet("空白")

    text = _fault_text(drop, dibao_roll=lambda f: _workbook(f / "dibao_roll.xlsx", fill))
    assert "dibao_roll.xlsx: 找不到表头 (no header row found" in text
    assert "sheets searched: '说明' (best row names 1); '汇总' (best row names 0); '空白' (empty)" in text


def test_an_old_xls_workbook_is_read(drop: Build) -> None:
    folder = drop(dibao_roll=lambda f: (f / "dibao_roll.xls").write_bytes((FIXTURES / "dibao_roll.xls").read_bytes()))
    roll = ingest_drop(folder).files["dibao_roll"]
    assert roll.raw.format == "xls"
    assert roll.accepted["name"].to_list() == ["王芳", "林蝶萱"]
    assert roll.accepted["id_norm"].to_list() == [make_id(birth="19700505", seq="342"),
                                                  make_id(birth="19880808", seq="081")]
    assert [float(v) for v in roll.accepted["monthly_benefit"]] == [420.0, 650.5]
    assert roll.accepted["assistance_type"].to_list() == ["低保", "特困供养"]
    assert "used sheet '低保名册' (sheet 2 of 2)" in roll.notes
    assert "header found on sheet '低保名册' row 3; 2 title/blank row(s) above it skipped" in roll.notes
    assert "sheet '低保名册' row 7 dropped: a note below the data, not data (制表人：张三)" in roll.notes
    assert "sheet '低保名册' row 8 dropped: a note below the data, not data (制表日期：2026年11月20日)" in roll.notes


# --- IDs stored as numbers are refused wherever the header is ------------------------------------------------------


def _numeric_id_roll(path: Path, *, signature_in_id_column: bool) -> Path:
    def fill(book: xlsxwriter.Workbook) -> None:
        sheet = book.add_worksheet("Sheet1")
        sheet.merge_range(0, 0, 0, 5, "凤台县低保花名册")
        sheet.write_row(2, 0, ROLL_HEADERS)
        rows: list[list[object]] = [list(r) for r in _two_roll_rows()]
        for row in rows:
            row[5] = float(str(row[5]))  # Excel turned the column into numbers
        _write_rows(sheet, 3, rows)
        if signature_in_id_column:
            sheet.write_row(6, 0, ["制表人：张三", "", "", "", "", "审核人：李四"])

    return _workbook(path, fill)


@pytest.mark.parametrize("signature_in_id_column", [False, True])
def test_ids_stored_as_numbers_under_a_header_on_row_3_are_refused_naming_the_cell(
    drop: Build, tmp_path: Path, signature_in_id_column: bool
) -> None:
    raw = _read(_numeric_id_roll(tmp_path / "dibao_roll.xlsx", signature_in_id_column=signature_in_id_column),
                "dibao_roll")
    assert raw.numeric_columns == {"身份证号码": 1}
    assert raw.cell(raw.numeric_columns["身份证号码"], "身份证号码") == "sheet 'Sheet1' cell F4"
    text = _fault_text(drop, dibao_roll=lambda f: _numeric_id_roll(f / "dibao_roll.xlsx",
                                                                   signature_in_id_column=signature_in_id_column))
    assert "dibao_roll.xlsx, column '身份证号码'" in text and "ID numbers were stored as numbers" in text


# --- CSV faults name the physical line; quotes as Excel writes them ------------------------------------------------


def _many_registry_lines(count: int) -> list[str]:
    lines = [_csv_line(REGISTRY_HEADERS)]
    for i in range(count):
        row = registry_rows()[0]
        row[3], row[5] = f"H{i:04d}", make_id(seq=f"{i % 1000:03d}")
        lines.append(_csv_line(row))
    return lines


def test_an_unclosed_quote_is_reported_at_the_line_that_opens_it(drop: Build) -> None:
    lines = _many_registry_lines(2000)
    lines[9] = lines[9].replace("新庄村", '"新庄村')  # physical line 10
    text = _fault_text(drop, registry=lambda f: _write_text(f / "registry.csv", lines))
    assert "registry.csv: 引号未闭合 (line 10: a value opens a quote" in text
    assert "olars" not in text and "malformed" not in text


def test_an_unclosed_quote_closed_by_a_later_quoted_value_is_still_reported_where_it_opens(drop: Build) -> None:
    lines = _many_registry_lines(50)
    lines[9] = lines[9].replace("新庄村", '"新庄村')
    lines[30] = lines[30].replace(",6000,", ',"6,000",')
    text = _fault_text(drop, registry=lambda f: _write_text(f / "registry.csv", lines))
    assert "registry.csv: 引号未闭合 (line 10:" in text


@pytest.mark.parametrize("quoted_elsewhere", [False, True])
def test_a_quote_inside_an_unquoted_value_is_a_character_of_the_value(drop: Build, quoted_elsewhere: bool) -> None:
    lines = _many_registry_lines(300)
    lines[150] = lines[150].replace("张伟", '林"蝶萱')
    if quoted_elsewhere:
        lines[20] = lines[20].replace(",6000,", ',"6,000",')
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines))
    registry = ingest_drop(folder).files["registry"]
    assert registry.accepted.height == 300
    assert registry.accepted["name"][149] == '林"蝶萱'
    assert registry.raw.location(150) == "line 151"
    if quoted_elsewhere:
        assert float(registry.accepted["wage_income"][19]) == 6000.0


def test_a_value_with_text_after_its_closing_quote_is_refused_at_its_line(drop: Build) -> None:
    lines = _many_registry_lines(20)
    lines[14] = lines[14].replace(",张伟,", ',"张"伟,')
    lines[3] = lines[3].replace(",6000,", ',"6,000",')
    text = _fault_text(drop, registry=lambda f: _write_text(f / "registry.csv", lines))
    assert "registry.csv: 引号使用错误 (line 15: a value starts with a quote but has more text after" in text


def test_old_mac_line_endings_are_read_as_lines(drop: Build) -> None:
    lines = ["脱贫人口花名册", _csv_line(REGISTRY_HEADERS), *map(_csv_line, registry_rows())]
    folder = drop(registry=lambda f: (f / "registry.csv").write_bytes("\r".join(lines).encode("gb18030") + b"\r"))
    registry = ingest_drop(folder).files["registry"]
    assert registry.accepted["name"].to_list() == ["张伟", "李丽", "王芳"]
    assert registry.raw.location(3) == "line 5"


def test_a_ragged_row_below_a_title_names_its_physical_line(drop: Build) -> None:
    rows = registry_rows()
    rows[1][14] = "0,5"
    lines = ["脱贫人口花名册", "", _csv_line(REGISTRY_HEADERS), *map(_csv_line, rows)]
    text = _fault_text(drop, registry=lambda f: _write_text(f / "registry.csv", lines))
    assert "registry.csv: 字段数与表头不符 (line 5 has 16 fields but the header has 15" in text


def test_a_too_wide_row_with_a_closed_multi_line_value_is_ragged_not_an_open_quote(drop: Build) -> None:
    rows = registry_rows()
    rows[1][2], rows[1][14] = '"新庄\n村"', "0,5"
    lines = [_csv_line(REGISTRY_HEADERS), *map(_csv_line, rows)]
    text = _fault_text(drop, registry=lambda f: _write_text(f / "registry.csv", lines))
    assert "registry.csv: 字段数与表头不符 (line 3 has 16 fields but the header has 15 (the row runs over lines 3–4)" \
           in text


_GOOD = ("\n".join([_csv_line(REGISTRY_HEADERS), *map(_csv_line, registry_rows())]) + "\n").encode()


@pytest.mark.parametrize(
    ("garbage", "words", "hexes"),
    [(b"\x01\x02" + b"\x00" * 8 + b"\x07garbage\n", "文件含有二进制数据 (binary data, not text: NUL bytes at byte {} "
      "(line 5): ", "… 30 0a 01 02 [00] 00 00 00 00 00 00 00 …"),
     (b"\x13\x9a\x00\xff\x00\x01garbage\n", "文件中有无效的 UTF-8 字节 (the file is UTF-8 but holds bytes that are "
      "not: byte {} (line 5): ", "… 2c 30 0a 13 [9a] 00 ff 00 01 67 61 72 …")],
)
def test_binary_garbage_is_located_by_byte_and_line(drop: Build, garbage: bytes, words: str, hexes: str) -> None:
    def write(f: Path) -> Path:
        path = f / "registry.csv"
        path.write_bytes(_GOOD + garbage)
        return path

    text = _fault_text(drop, registry=write)
    assert "registry.csv: " + words.format(len(_GOOD) + 1 + (garbage[0] == 1)) + hexes in text


def test_a_utf8_file_with_a_line_in_another_encoding_is_located(drop: Build) -> None:
    def write(f: Path) -> Path:
        path = f / "registry.csv"
        path.write_bytes(_GOOD + _csv_line(registry_rows()[0]).replace("张伟", "赵敏").encode("gb18030") + b"\n")
        return path

    text = _fault_text(drop, registry=write)
    assert "registry.csv: 文件中有无效的 UTF-8 字节 (the file is UTF-8 but holds bytes that are not: byte " in text
    assert f"byte {len(_GOOD) + 7} (line 5): … 34 30 32 2c [c2] e5 ba d3" in text  # 340402,洛 (GB18030 c2 e5)


def test_an_unreadable_encoding_names_the_byte(drop: Build) -> None:
    def write(f: Path) -> Path:
        path = f / "registry.csv"
        path.write_bytes(b"abc,def\n\x80\x80\x80\n")
        return path

    text = _fault_text(drop, registry=write)
    assert "registry.csv: 无法识别文件编码 (unreadable encoding: the file is neither UTF-8 nor GB18030; byte 8 (line " \
           "2): … 64 65 66 0a [80] 80 80 0a); re-export as CSV UTF-8" in text


def test_a_workbook_saved_under_a_csv_name_says_so(drop: Build, tmp_path: Path) -> None:
    workbook = _workbook(tmp_path / "x.xlsx", lambda book: book.add_worksheet("S").write(0, 0, "x"))
    text = _fault_text(drop, dibao_roll=lambda f: (f / "dibao_roll.csv").write_bytes(workbook.read_bytes()))
    assert "dibao_roll.csv: 这是 Excel 工作簿而不是 CSV" in text


# --- header cells ------------------------------------------------------------------------------------------------


def test_a_duplicate_header_in_a_workbook_names_both_cells(drop: Build) -> None:
    def fill(book: xlsxwriter.Workbook) -> None:
        sheet = book.add_worksheet("Sheet1")
        sheet.write(0, 0, "低保花名册")
        sheet.write_row(2, 0, [*ROLL_HEADERS, "姓名"])
        _write_rows(sheet, 3, [[*r, r[4]] for r in _two_roll_rows()])

    text = _fault_text(drop, dibao_roll=lambda f: _workbook(f / "dibao_roll.xlsx", fill))
    assert ("dibao_roll.xlsx, column '姓名': 表头重复 (duplicate header: the column appears twice, at "
            "sheet 'Sheet1' cell E3 and sheet 'Sheet1' cell N3)") in text


def test_a_blank_header_over_data_is_refused_and_an_empty_unnamed_column_ignored(drop: Build) -> None:
    lines = [_csv_line([*REGISTRY_HEADERS, ""]), *[_csv_line([*r, ""]) for r in registry_rows()]]
    folder = drop(registry=lambda f: _write_text(f / "registry.csv", lines))
    registry = ingest_drop(folder).files["registry"]
    assert registry.accepted.height == 3
    assert "column 16 of line 1 has no header and the column no data: ignored" in registry.notes
    lines[2] = lines[2] + "备注"
    text = _fault_text(drop, registry=lambda f: _write_text(f / "registry.csv", lines))
    assert ("registry.csv: 表头单元格为空 (the header cell at column 16 of line 1 is blank but the column holds "
            "data, e.g. at line 3, column 16)") in text


def _long_roll_book(path: Path) -> Path:
    """A roll on sheet 2 under a merged title, from column B, 40 rows of data, and a signature in column A."""
    def fill(book: xlsxwriter.Workbook) -> None:
        book.add_worksheet("说明").write_string(0, 0, "本表由民政局导出")
        sheet = book.add_worksheet("花名册")
        sheet.merge_range(0, 1, 0, 6, "某县低保花名册")
        sheet.write_row(2, 1, ROLL_HEADERS)
        first = roll_rows()[0]
        _write_rows(sheet, 3, [["", *first[:3], f"DB{n:03d}", first[4], make_id(seq=f"{n:03d}"), *first[6:]]
                               for n in range(40)])
        sheet.write_string(44, 0, "制表人：张三")

    return _workbook(path, fill)


def test_the_header_is_found_from_a_copy_of_the_workbook_cut_after_its_top_rows(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = _long_roll_book(tmp_path / "dibao_roll.xlsx")
    survey = excel_file._survey_copy(path.read_bytes())
    assert survey is not None and survey.load_sheet(1, header_row=None).height == 30  # of the sheet's 45 rows
    cut = _read(path, "dibao_roll")
    monkeypatch.setattr(excel_file, "_survey_copy", lambda data: None)  # the survey reads the whole workbook
    whole = _read(path, "dibao_roll")
    assert (cut.sheet, cut.header_line, cut.headers, cut.notes, cut.first_column) == (
        whole.sheet, whole.header_line, whole.headers, whole.notes, whole.first_column)
    assert cut.frame.equals(whole.frame) and cut.frame.height == 40
    assert "sheet '花名册' row 45 dropped: a note below the data, not data (制表人：张三)" in cut.notes


def test_a_workbook_whose_rows_carry_no_numbers_is_surveyed_whole(tmp_path: Path) -> None:
    path = _long_roll_book(tmp_path / "dibao_roll.xlsx")
    with zipfile.ZipFile(path) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    parts["xl/worksheets/sheet2.xml"] = re.sub(rb'(<row\b[^>]*?)\sr="\d+"', rb"\1", parts["xl/worksheets/sheet2.xml"])
    unnumbered = tmp_path / "unnumbered.xlsx"
    with zipfile.ZipFile(unnumbered, "w") as book:
        for name, data in parts.items():
            book.writestr(name, data)
    assert excel_file._survey_copy(unnumbered.read_bytes()) is None
