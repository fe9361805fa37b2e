"""Row heights of printed work lists (dibao/publish/print_layout.py): the measure of wrapped lines, the row heights
and continuation rows written into the workbooks. The printed result itself is checked on PDF in
tests/test_worklist_print.py."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import fastexcel
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dibao.publish import print_layout
from dibao.publish.contract import DIFF_SCHEMA, EXIT_SCHEMA, FLAG_SCHEMA, INCLUSION_SCHEMA
from dibao.publish.print_layout import (
    LINE_POINTS,
    MAX_LINES,
    MAX_ROW_POINTS,
    PAD_POINTS,
    STEPS,
    count_lines,
    line_count,
    row_points,
    split_cell,
    text_steps,
    tokens,
    wrap,
)
from dibao.publish.worklist_rows import COLUMNS, SHEET_EXIT
from dibao.publish.worklist_sheets import measured_lines
from dibao.publish.worklists import write_worklists

# Chinese text, ASCII words and numbers, punctuation that binds, line breaks, spaces of both widths, and a few
# characters outside the Basic Multilingual Plane and control characters.
TEXT = st.text(alphabet=st.sampled_from(
    list("收入超过低保标准家庭月人均") + list("0123456789.=-+@%") + list("abcxyzMWmwABX()")
    + list("：；，、（）。“”《》") + ["\n", " ", "\u3000", "\t", "𠀀", "\x01"]), max_size=300)
WIDTH = st.sampled_from([3, 5, 6, 8, 10, 11, 16, 19, 50, 60])


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.one_of(st.none(), TEXT), max_size=12), width=WIDTH, batch=st.sampled_from([1, 7, 1 << 20]))
def test_the_column_measure_agrees_with_the_one_text_measure(texts: list[str | None], width: int, batch: int) -> None:
    """count_lines (arrays, in batches of any size) gives for every text what line_count gives."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(print_layout, "BATCH_CHARS", batch)
        assert count_lines(texts, width).tolist() == [line_count(text, width) for text in texts]


@settings(max_examples=300, deadline=None)
@given(text=TEXT, width=WIDTH)
def test_lines_fit_and_are_full(text: str, width: int) -> None:
    """Each paragraph's lines give the paragraph back; every line fits the column; a line ends only where the
    next piece would not fit (no line is left short for nothing, so rows are no taller than they need), except
    after a piece wider than the column, which is broken onto lines of its own."""
    room = width * STEPS
    paragraphs = wrap(text, width)
    assert ["".join(lines) for lines in paragraphs] == text.split("\n")
    for lines in paragraphs:
        unbroken = all(text_steps(token) <= room for token in tokens("".join(lines)))
        for index, line in enumerate(lines):
            assert text_steps(line) <= room or len(line) == 1
            if unbroken and index + 1 < len(lines):
                following = tokens(lines[index + 1])[0]
                assert text_steps(line) + text_steps(following) > room


@settings(max_examples=200, deadline=None)
@given(text=TEXT, width=WIDTH, most=st.integers(1, 6))
def test_split_cells_keep_every_character(text: str, width: int, most: int) -> None:
    pieces = split_cell(text, width, most)
    assert all(line_count(piece, width) <= most for piece in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert len(pieces) == -(-line_count(text, width) // most)  # as few pieces as the lines need


def test_break_rules() -> None:
    assert tokens("收入=941.5；救助") == ["收", "入", "=941.5；", "救", "助"]  # no line starts with ；
    assert tokens("（低保）标准") == ["（低", "保）", "标", "准"]  # none ends with （
    assert tokens("iqsp（7989）") == ["iqsp（7989）"]  # an ASCII run and the bracket after it: one word, as printed
    assert tokens("registry abc") == ["registry ", "abc"]  # spaces hang at the line's end
    assert line_count("收" * 25, 50) == 1 and line_count("收" * 26, 50) == 2  # a Chinese character is 2 units
    assert line_count("3" * 50, 50) == 1 and line_count("3" * 51, 50) == 2  # an unbroken run: broken by character
    assert line_count("", 10) == line_count(None, 10) == 1 and line_count("a\n\nb", 10) == 3
    assert row_points(1) == 19.5 >= PAD_POINTS + LINE_POINTS and row_points(10_000) == MAX_ROW_POINTS
    assert row_points(MAX_LINES) <= MAX_ROW_POINTS < row_points(MAX_LINES) + LINE_POINTS


def test_the_apostrophe_before_a_formula_is_measured() -> None:
    """'=…' is written with an apostrophe in front (dibao/publish/formulas.py); it is measured as written."""
    text = "=" + "收" * 24 + "a"  # 50 units as given, 51 as written
    frame = pl.DataFrame({"核查依据与数据": [text, text[1:]]})
    assert line_count(text, 50) == 1
    assert measured_lines(frame, [c for c in COLUMNS[SHEET_EXIT] if c.header == "核查依据与数据"]) == [2, 1]


RUN = dt.date(2026, 11, 20)


def _exits(details: list[str]) -> pl.DataFrame:
    rows = [{"dibao_household_id": f"DB{i:04d}", "county_code": "340402", "town": "洛河镇", "village": "新庄村",
             "head_name": "张伟", "head_id": "34040219800101123X", "reasons": ["income_above_standard"],
             "reason_labels": ["收入超过低保标准"], "detail": detail, "first_seen": RUN} for i, detail in
            enumerate(details)]
    return pl.DataFrame([{name: row.get(name) for name in EXIT_SCHEMA} for row in rows], schema=EXIT_SCHEMA)


def _write(folder: Path, details: list[str]) -> Path:
    write_worklists(folder, RUN, _exits(details), pl.DataFrame(schema=INCLUSION_SCHEMA),
                    pl.DataFrame(schema=FLAG_SCHEMA), pl.DataFrame(schema=DIFF_SCHEMA),
                    pl.DataFrame({"county_code": ["340402"], "county_name": ["大通区"]}))
    return folder / "worklists" / "340402_大通区.xlsx"


def _row_heights(book: Path) -> dict[int, float]:
    with zipfile.ZipFile(book) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    return {int(r): float(h) for r, h in re.findall(r'<row r="(\d+)"[^>]*? ht="([\d.]+)" customHeight="1"', xml)}


def test_each_row_is_as_tall_as_its_text(tmp_path: Path) -> None:
    details = ["短", "收入超过低保标准：" * 12, "第一行\n第二行\n第三行\n第四行"]
    heights = _row_heights(_write(tmp_path, details))
    detail_width = next(c.width for c in COLUMNS[SHEET_EXIT] if c.header == "核查依据与数据")
    for row, detail in enumerate(details, start=2):  # row 1 is the header
        assert heights[row] == row_points(line_count(detail, detail_width))
    assert heights[2] == row_points(1) < heights[4] < heights[3]


def test_a_text_past_the_tallest_row_goes_on_in_continuation_rows(tmp_path: Path) -> None:
    detail = "\n".join(f"第{i}项：家庭月人均收入=1064.57；低保标准=760；人均金融资产上限(低保标准的月数)=24"
                       for i in range(60))
    book = _write(tmp_path, [detail, "短"])
    heights = _row_heights(book)
    sheet = fastexcel.read_excel(book).load_sheet(SHEET_EXIT, dtypes="string").to_polars()
    pieces = sheet["核查依据与数据"].to_list()[:-1]
    assert len(pieces) > 2 and all(height <= MAX_ROW_POINTS for height in heights.values())
    assert "".join(pieces).replace("\n", "") == detail.replace("\n", "")  # every character, in order
    assert sheet["序号"].to_list() == ["1"] + [None] * (len(pieces) - 1) + ["2"]  # continuation rows: only the text
    assert sheet["低保家庭编号"].to_list()[-1] == "DB0001"
    assert max(line_count(piece, 50) for piece in pieces) <= MAX_LINES
