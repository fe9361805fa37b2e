"""Printed work lists: files per county/township, sheets, headers, IDs kept as text, print setup, determinism."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import fastexcel
import polars as pl
import pytest

from dibao.publish.contract import DIFF_SCHEMA, EXIT_SCHEMA, FLAG_SCHEMA, INCLUSION_SCHEMA
from dibao.publish.worklists import COLUMNS, SUMMARY_COLUMNS, write_worklists

RUN = dt.date(2026, 11, 20)
ID_X = "34040219800101123X"  # 18-digit ID ending in X
ID_DIGITS = "340402198203042221"  # all digits: Excel would make it 3.40402E+17 if written as a number
HH_ZEROS = "0012345678901234"  # household number with leading zeros


def frame(schema: dict[str, pl.DataType], columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> pl.DataFrame:
    """Rows by the named columns; any other column of the published schema (figures, grace_start…) is null."""
    data = [dict(zip(columns, row, strict=True)) for row in rows]
    return pl.DataFrame([{name: r.get(name) for name in schema} for r in data], schema=schema)


EXIT_COLUMNS = ("dibao_household_id", "county_code", "town", "village", "head_name", "head_id", "reasons",
                "reason_labels", "detail", "first_seen", "grace_until")


def exits() -> pl.DataFrame:
    return frame(EXIT_SCHEMA, EXIT_COLUMNS, [
        ("DB0001", "340402", "洛河镇", "新庄村", "张伟", ID_X, ["income_above_standard"], ["收入超过低保标准"],
         "家庭月人均收入 812.50 元，高于低保标准 760 元", dt.date(2026, 11, 1), dt.date(2027, 4, 30)),
        (HH_ZEROS, "340402", "洛河镇", "新庄村", "王芳", ID_DIGITS, ["vehicle_owned", "member_deceased"],
         ["拥有机动车", "家庭成员已死亡"], "机动车 1 辆\n死亡成员 1 人（2026-10-02）", RUN, None),
        ("DB0003", "340402", None, "", "赵六", None, ["assets_above_limit"], ["金融资产超过限额"],
         "人均金融资产 30000 元，超过 18240 元", RUN, dt.date(2026, 11, 19)),
        ("DB1001", "340403", "舜耕镇", "泉山村", "孙七", "340403197001011234", ["income_above_standard"],
         ["收入超过低保标准"], "家庭月人均收入 900 元", dt.date(2026, 10, 1), dt.date(2027, 3, 31)),
    ])


def inclusions() -> pl.DataFrame:
    columns = ("household_id", "source", "county_code", "town", "village", "head_name", "head_id", "reasons",
               "reason_labels", "detail", "first_seen")
    return frame(INCLUSION_SCHEMA, columns, [
        ("H001", "registry", "340402", "洛河镇", "新庄村", "李丽", "340402198203040011", ["income_below_standard"],
         ["收入低于低保标准"], "家庭月人均收入 300 元，低于低保标准 760 元", RUN),
        ("M001", "monitoring", "340402", "孔店乡", "孔店村", "周八", "340402199001011111",
         ["income_below_standard"], ["收入低于低保标准"], "家庭月人均收入 200 元", RUN),
    ])


def flag_frame() -> pl.DataFrame:
    columns = ("subject_type", "subject_id", "source", "county_code", "town", "village", "head_name", "head_id",
               "code", "label", "detail", "first_seen")
    return frame(FLAG_SCHEMA, columns, [
        ("household", "DB1001", "dibao_roll", "340403", "舜耕镇", "泉山村", "孙七", "340403197001011234",
         "relative_not_filed", "近亲属未备案", "户主为村干部近亲属，未备案", RUN),
        ("person", ID_DIGITS, "registry", "340402", "洛河镇", "新庄村", None, None,
         "id_repaired", "证件号码已修正", "校验位错误，已按姓名匹配修正", RUN),
    ])


def diff_frame() -> pl.DataFrame:
    return frame(DIFF_SCHEMA, tuple(DIFF_SCHEMA), [
        ("exit", "DB0001", "340402", "洛河镇", None, "added", "新发现：收入超过低保标准", RUN),
        ("inclusion", "H009", "340402", "孔店乡", None, "resolved", "已不再成立：收入低于低保标准", RUN),
        ("flag", "DB1001", "340403", "舜耕镇", "relative_not_filed", "changed", "核查依据有变化", RUN),
        ("exit", "DB1002", "340403", "舜耕镇", None, "resolved", "已不再成立：收入超过低保标准", RUN),
    ])


def county_frame() -> pl.DataFrame:
    return pl.DataFrame({"county_code": ["340402", "340403", "422827"], "county_name": ["大通区", "田家庵区", "来凤县"],
                         "rural_population": [120000, 90000, 250000]})


def write(folder: Path, **overrides: pl.DataFrame) -> list[Path]:
    frames = {"exit_candidates": exits(), "inclusion_candidates": inclusions(), "flags": flag_frame(),
              "diff": diff_frame(), "counties": county_frame(), **overrides}
    return write_worklists(folder, RUN, **frames)


def sheet(path: Path, name: str) -> pl.DataFrame:
    return fastexcel.read_excel(path).load_sheet(name, dtypes="string").to_polars()


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    write(tmp_path)
    return tmp_path / "worklists"


def test_files_per_county_township_and_province(tmp_path: Path) -> None:
    paths = write(tmp_path)
    out = tmp_path / "worklists"
    expected = sorted(out / p for p in [
        "340402_大通区.xlsx", "340402_大通区/洛河镇.xlsx", "340402_大通区/孔店乡.xlsx", "340402_大通区/未知乡镇.xlsx",
        "340403_田家庵区.xlsx", "340403_田家庵区/舜耕镇.xlsx", "422827_来凤县.xlsx", "全省汇总.xlsx",
    ])
    assert paths == expected
    assert sorted(out.rglob("*.xlsx")) == expected


def test_sheets_in_order_with_chinese_headers(lists: Path) -> None:
    path = lists / "340402_大通区.xlsx"
    assert fastexcel.read_excel(path).sheet_names == ["应退尽退", "应保尽保", "其他核查", "今日变化"]
    assert sheet(path, "应退尽退").columns == [
        "序号", "乡镇", "行政村", "低保家庭编号", "户主姓名", "户主证件号码", "退出原因", "核查依据与数据",
        "首次发现日期", "渐退期至", "核查结果(填写)", "备注"]
    assert sheet(path, "应保尽保").columns[:5] == ["序号", "乡镇", "行政村", "户编号", "来源"]
    assert "核查事项" in sheet(path, "其他核查").columns
    assert sheet(path, "今日变化").columns == [c.header for c in COLUMNS["今日变化"]]
    for name, columns in COLUMNS.items():
        assert sheet(path, name).columns == [c.header for c in columns]


def test_row_counts_per_county_and_township(lists: Path) -> None:
    county = lists / "340402_大通区.xlsx"
    assert [sheet(county, s).height for s in COLUMNS] == [3, 2, 1, 2]
    town = lists / "340402_大通区" / "洛河镇.xlsx"
    assert [sheet(town, s).height for s in ("应退尽退", "应保尽保", "其他核查")] == [2, 1, 1]
    assert sheet(town, "今日变化")["编号"].to_list() == ["DB0001"]
    unknown = sheet(lists / "340402_大通区" / "未知乡镇.xlsx", "应退尽退")
    assert unknown["低保家庭编号"].to_list() == ["DB0003"]
    assert unknown["乡镇"].to_list() == ["未知乡镇"]


def test_ids_read_back_exactly_and_as_text(lists: Path) -> None:
    path = lists / "340402_大通区.xlsx"
    exit_sheet = sheet(path, "应退尽退")
    # sorted by 乡镇, 行政村, then id: 洛河镇/新庄村 "0012…" before "DB0001", then 未知乡镇
    assert exit_sheet["低保家庭编号"].to_list() == [HH_ZEROS, "DB0001", "DB0003"]
    assert exit_sheet["户主证件号码"].to_list() == [ID_DIGITS, ID_X, None]
    assert exit_sheet["序号"].to_list() == ["1", "2", "3"]
    strict = fastexcel.read_excel(path).load_sheet("应退尽退", schema_sample_rows=None,
                                                   dtype_coercion="strict").to_polars()
    assert strict.schema["低保家庭编号"] == pl.String
    assert strict.schema["户主证件号码"] == pl.String
    assert strict["低保家庭编号"][0] == HH_ZEROS
    inclusion = fastexcel.read_excel(path).load_sheet("应保尽保", schema_sample_rows=None,
                                                      dtype_coercion="strict").to_polars()
    assert inclusion.schema["户编号"] == pl.String
    assert inclusion.schema["户主证件号码"] == pl.String  # every value all digits, still text
    assert inclusion["户主证件号码"].to_list() == ["340402199001011111", "340402198203040011"]  # 孔店乡 < 洛河镇
    person_flag = sheet(path, "其他核查")
    assert person_flag["对象编号"].to_list() == [ID_DIGITS]
    assert person_flag["对象类型"].to_list() == ["个人"]


def test_dates_detail_and_labels(lists: Path) -> None:
    path = lists / "340402_大通区.xlsx"
    strict = fastexcel.read_excel(path).load_sheet("应退尽退", schema_sample_rows=None,
                                                   dtype_coercion="strict").to_polars()
    assert strict.schema["首次发现日期"] in (pl.Datetime("ms"), pl.Date)  # real dates, not text
    by_id = {r["低保家庭编号"]: r for r in sheet(path, "应退尽退").iter_rows(named=True)}
    assert by_id["DB0001"]["渐退期至"].startswith("2027-04-30")
    assert by_id["DB0001"]["首次发现日期"].startswith("2026-11-01")
    assert by_id[HH_ZEROS]["渐退期至"] is None
    assert by_id[HH_ZEROS]["退出原因"] == "拥有机动车、家庭成员已死亡"
    assert by_id[HH_ZEROS]["核查依据与数据"] == "机动车 1 辆\n死亡成员 1 人（2026-10-02）"
    assert by_id[HH_ZEROS]["核查结果(填写)"] is None
    inclusion = sheet(path, "应保尽保")
    assert dict(zip(inclusion["户编号"], inclusion["来源"], strict=True)) == {"H001": "脱贫户", "M001": "监测户"}


def test_today_changes_use_chinese_words(lists: Path) -> None:
    changes = sheet(lists / "340403_田家庵区.xlsx", "今日变化")
    assert changes.select("清单", "编号", "核查事项", "变化").rows() == [
        ("应退尽退", "DB1002", None, "已解决"),
        ("其他核查", "DB1001", "近亲属未备案", "有变化"),
    ]
    added = sheet(lists / "340402_大通区.xlsx", "今日变化")
    assert added.select("清单", "变化").rows() == [("应保尽保", "已解决"), ("应退尽退", "新增")]  # 孔店乡 < 洛河镇


def test_empty_list_prints_one_row_today_none(lists: Path) -> None:
    empty = sheet(lists / "340403_田家庵区.xlsx", "应保尽保")
    assert empty.columns == [c.header for c in COLUMNS["应保尽保"]]
    assert empty.height == 1
    assert empty["序号"].to_list() == ["今日无"]
    assert empty.drop("序号").null_count().row(0) == (1,) * (empty.width - 1)
    quiet = lists / "422827_来凤县.xlsx"  # a county with nothing at all still gets its workbook
    assert fastexcel.read_excel(quiet).sheet_names == list(COLUMNS)
    assert [sheet(quiet, s)["序号"].to_list() for s in COLUMNS] == [["今日无"]] * 4


def test_all_lists_empty(tmp_path: Path) -> None:
    """The first run of a quiet province: empty frames (even of Null-typed columns) still give every workbook."""
    untyped = {name: pl.DataFrame({c: [] for c in schema}) for name, schema in
               [("exit_candidates", EXIT_SCHEMA), ("inclusion_candidates", INCLUSION_SCHEMA),
                ("flags", FLAG_SCHEMA), ("diff", DIFF_SCHEMA)]}
    paths = write(tmp_path, **untyped)
    assert [p.name for p in paths] == ["340402_大通区.xlsx", "340403_田家庵区.xlsx", "422827_来凤县.xlsx",
                                       "全省汇总.xlsx"]
    summary = sheet(tmp_path / "worklists" / "全省汇总.xlsx", "全省汇总")
    assert summary["应退尽退户数"].to_list() == ["0", "0", "0", "0"]


def test_province_summary(lists: Path) -> None:
    path = lists / "全省汇总.xlsx"
    assert fastexcel.read_excel(path).sheet_names == ["全省汇总"]
    summary = sheet(path, "全省汇总")
    assert summary.columns == [c.header for c in SUMMARY_COLUMNS]
    assert summary.rows() == [
        ("340402", "大通区", "3", "1", "2", "1", "1", "1"),  # DB0003's grace ended yesterday: not counted
        ("340403", "田家庵区", "1", "1", "0", "1", "0", "1"),
        ("422827", "来凤县", "0", "0", "0", "0", "0", "0"),
        ("合计", None, "4", "2", "2", "2", "1", "2"),
    ]
    strict = fastexcel.read_excel(path).load_sheet("全省汇总", schema_sample_rows=None,
                                                   dtype_coercion="strict").to_polars()
    assert strict.schema["县级区划代码"] == pl.String
    assert strict.schema["应退尽退户数"] == pl.Float64  # counts are numbers


def test_print_setup(lists: Path) -> None:
    with zipfile.ZipFile(lists / "340402_大通区.xlsx") as book:
        xml = book.read("xl/worksheets/sheet1.xml").decode()
        workbook_xml = book.read("xl/workbook.xml").decode()
    assert 'ySplit="1"' in xml and 'state="frozen"' in xml
    assert '<autoFilter ref="A1:L4"/>' in xml
    assert 'paperSize="9"' in xml and 'orientation="landscape"' in xml and 'fitToHeight="0"' in xml
    assert '<pageSetUpPr fitToPage="1"/>' in xml
    assert "&amp;P/&amp;N" in xml and "大通区" in xml and "2026-11-20" in xml and "&amp;A" in xml
    assert "_xlnm.Print_Titles" in workbook_xml and "$1:$1" in workbook_xml
    assert 'width="60.7109375"' in xml  # 核查依据与数据 is wide
    assert "应退尽退!$A$1:$L$4" in workbook_xml  # print area takes in the empty 核查结果/备注 columns
    assert '<printOptions gridLines="1"/>' in xml  # the grid is printed: a box for every cell, filled or not
    with zipfile.ZipFile(lists / "全省汇总.xlsx") as book:
        summary_xml = book.read("xl/workbook.xml").decode()
    assert "全省汇总!$A$1:$H$5" in summary_xml  # three counties + 合计 are printed


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    first = write(tmp_path / "a")
    second = write(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_rerun_replaces_stale_township(tmp_path: Path) -> None:
    write(tmp_path)
    assert (tmp_path / "worklists" / "340402_大通区" / "孔店乡.xlsx").exists()
    write(tmp_path, inclusion_candidates=inclusions().head(1), diff=diff_frame().filter(pl.col("town") != "孔店乡"))
    assert not (tmp_path / "worklists" / "340402_大通区" / "孔店乡.xlsx").exists()


def test_unsafe_town_name_and_unknown_county(tmp_path: Path) -> None:
    odd = exits().head(1).with_columns(pl.lit("东/西镇").alias("town"), pl.lit("999999").alias("county_code"))
    paths = write(tmp_path, exit_candidates=odd)
    names = {p.relative_to(tmp_path / "worklists").as_posix() for p in paths}
    assert "999999_未知县区.xlsx" in names
    assert "999999_未知县区/东_西镇.xlsx" in names
    town = sheet(tmp_path / "worklists" / "999999_未知县区" / "东_西镇.xlsx", "应退尽退")
    assert town["乡镇"].to_list() == ["东/西镇"]
