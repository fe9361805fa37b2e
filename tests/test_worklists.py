"""Printed work lists: files per county/township, sheets, headers, IDs kept as text, print setup, determinism."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path

import fastexcel
import polars as pl
import pytest
from typer.testing import CliRunner

from dibao.cli import app
from dibao.errors import DibaoError
from dibao.pipeline import RunResult, content_hash, run_daily
from dibao.publish import worklists
from dibao.publish.contract import DIFF_SCHEMA, EXIT_SCHEMA, FLAG_SCHEMA, INCLUSION_SCHEMA
from dibao.publish.store import RunStore
from dibao.publish.worklist_rows import COLUMNS, SUMMARY_COLUMNS
from dibao.publish.worklists import write_worklists
from dibao_synth import generate

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
    assert "&amp;P/&amp;N" in xml and "大通区" in xml and "&amp;A" in xml
    assert "&amp;R&amp;D" in xml and "2026-11-20" not in xml  # the printing date: the rows alone make the bytes
    assert "_xlnm.Print_Titles" in workbook_xml and "$1:$1" in workbook_xml
    assert 'width="50.7109375"' in xml  # 核查依据与数据 is wide
    assert 'customHeight="1"' in xml  # every row's height is set from its text (tests/test_worklist_print.py)
    assert "应退尽退!$A$1:$L$4" in workbook_xml  # print area takes in the empty 核查结果/备注 columns
    assert '<printOptions gridLines="1"/>' in xml  # the grid is printed: a box for every cell, filled or not
    with zipfile.ZipFile(lists / "全省汇总.xlsx") as book:
        summary_xml = book.read("xl/workbook.xml").decode()
        assert "&amp;R2026-11-20" in book.read("xl/worksheets/sheet1.xml").decode()  # the summary is of one day
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


# ---------------------------------------------------------------------------------------------- after publishing


def _files(out: Path) -> dict[str, Path]:
    return {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*")) if p.is_file()}


def test_only_workbooks_with_changed_rows_are_written_again(tmp_path: Path) -> None:
    """Day two: one county's rows changed; its workbooks are written, every other one is carried (same inode),
    and the result is byte for byte a full rewrite."""
    day1, day2 = tmp_path / "day1", tmp_path / "day2"
    for folder in (day1, day2):
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps({"worklists": worklists.pending(county_frame())}))
    frames = {"exit_candidates": exits(), "inclusion_candidates": inclusions(), "flags": flag_frame(),
              "diff": diff_frame(), "counties": county_frame()}
    first = worklists.complete(day1, RUN, **frames, workers=0)
    assert first["status"] == "ready" and first["reused"] == 0
    moved = exits().with_columns(pl.when(pl.col("dibao_household_id") == "DB1001").then(pl.lit("新村"))
                                 .otherwise(pl.col("village")).alias("village"))  # 340403 only
    second = worklists.complete(day2, RUN + dt.timedelta(days=1), **{**frames, "exit_candidates": moved},
                                previous=day1, workers=2)
    assert json.loads((day2 / "manifest.json").read_text())["worklists"]["status"] == "ready"
    old, new = _files(day1 / "worklists"), _files(day2 / "worklists")
    assert sorted(new) == second["files"] == first["files"]
    rewritten = {name for name in new if new[name].stat().st_ino != old[name].stat().st_ino}
    assert rewritten == {"340403_田家庵区.xlsx", "340403_田家庵区/舜耕镇.xlsx", "全省汇总.xlsx"}
    assert second["reused"] == len(new) - 3 and second["written"] == 3
    assert second["sheets_reused"] == 4  # 其他核查 and 今日变化 of both 340403 workbooks: the same rows as day one
    full = tmp_path / "full"
    write_worklists(full, RUN + dt.timedelta(days=1), **{**frames, "exit_candidates": moved})
    assert sorted(_files(full / "worklists")) == sorted(new)
    for name, path in _files(full / "worklists").items():
        assert path.read_bytes() == new[name].read_bytes(), name


def _changed(frames: dict[str, pl.DataFrame], which: str) -> dict[str, pl.DataFrame]:
    """The frames with one list changed in county 340402 (a row's text, or today's changes gone)."""
    if which == "diff_candidates":
        return {**frames, "diff": frames["diff"].clear()}
    column = {"exit_candidates": "detail", "inclusion_candidates": "detail", "flags": "detail"}[which]
    changed = frames[which].with_columns(pl.when(pl.col("county_code") == "340402")
                                         .then(pl.concat_str(pl.col(column), pl.lit("（已复核）")))
                                         .otherwise(pl.col(column)).alias(column))
    return {**frames, which: changed}


@pytest.mark.parametrize("which", ["exit_candidates", "inclusion_candidates", "flags", "diff_candidates"])
def test_a_sheet_with_the_same_rows_is_taken_from_yesterday_byte_for_byte(tmp_path: Path, which: str) -> None:
    """A workbook written again because one of its sheets changed takes its other sheets' rendered rows from the
    previous workbook (not measured or rendered again), and is byte for byte what a full write gives, also for
    a row so tall it goes on in continuation rows."""
    tall = "\n".join(f"第{i}行：家庭月人均收入高于低保标准" for i in range(40))
    frames = {"exit_candidates": exits().with_columns(
                  pl.when(pl.col("dibao_household_id") == "DB0001").then(pl.lit(tall)).otherwise(pl.col("detail"))
                  .alias("detail")),
              "inclusion_candidates": inclusions(), "flags": flag_frame(), "diff": diff_frame(),
              "counties": county_frame()}
    day1, day2, full = tmp_path / "day1", tmp_path / "day2", tmp_path / "full"
    for folder in (day1, day2):
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps({"worklists": worklists.pending(county_frame())}))
    worklists.complete(day1, RUN, **frames, workers=0)
    today = _changed(frames, which)
    second = worklists.complete(day2, RUN + dt.timedelta(days=1), **today, previous=day1, workers=0)
    assert second["sheets_reused"] > 0 and second["written"] > 1
    write_worklists(full, RUN + dt.timedelta(days=1), **today)
    for name, path in _files(full / "worklists").items():
        assert path.read_bytes() == (day2 / "worklists" / name).read_bytes(), name


def test_an_unreadable_previous_workbook_is_written_from_the_rows(tmp_path: Path) -> None:
    frames = {"exit_candidates": exits(), "inclusion_candidates": inclusions(), "flags": flag_frame(),
              "diff": diff_frame(), "counties": county_frame()}
    day1, day2, full = tmp_path / "day1", tmp_path / "day2", tmp_path / "full"
    for folder in (day1, day2):
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps({"worklists": worklists.pending(county_frame())}))
    worklists.complete(day1, RUN, **frames, workers=0)
    (day1 / "worklists" / "340402_大通区.xlsx").write_bytes(b"not a workbook")
    today = _changed(frames, "diff_candidates")
    worklists.complete(day2, RUN + dt.timedelta(days=1), **today, previous=day1, workers=0)
    write_worklists(full, RUN + dt.timedelta(days=1), **today)
    for name, path in _files(full / "worklists").items():
        assert path.read_bytes() == (day2 / "worklists" / name).read_bytes(), name


# A small synthetic province published on three days: day 2 the same drop (today's changes empty everywhere), day 3
# with one roll household of one county gone.
DAYS = [dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)]


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("province")
    drop = root / "drop"
    generate(households=300, seed=1, out=drop, truth_out=root / "truth", as_of=DAYS[0], formats="csv")
    return root, drop, root / "store"


def _one_county_less(drop: Path, out: Path, household: str) -> Path:
    shutil.copytree(drop, out)
    roll = pl.read_csv(drop / "dibao_roll.csv", infer_schema=False)
    roll.filter(pl.col("低保家庭编号") != household).write_csv(out / "dibao_roll.csv")
    return out


def _run(drop: Path, date: dt.date, store: Path) -> RunResult:
    return run_daily(drop, date, RunStore(store))


def _same_as_full_rewrite(run: Path, tmp: Path) -> None:
    """Every workbook of ``run`` equals, byte for byte, what writing all of them from its Parquet files gives."""
    copy = tmp / f"full-{run.name}"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("worklists"))
    worklists.rewrite(copy, workers=0)
    assert sorted(_files(copy / "worklists")) == sorted(_files(run / "worklists"))
    for name, path in _files(copy / "worklists").items():
        assert path.read_bytes() == (run / "worklists" / name).read_bytes(), name


def test_daily_runs_publish_parquet_then_work_lists(province: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, drop, store = province
    day1 = _run(drop, DAYS[0], store)
    manifest = json.loads((day1.folder / "manifest.json").read_text())
    assert manifest["worklists"]["status"] == "ready" and manifest["worklists"]["workers"] == 2
    assert manifest["worklists"]["files"] == sorted(_files(day1.folder / "worklists"))
    assert "全省汇总.xlsx" in manifest["worklists"]["files"]
    assert not any("worklists" in name for name in manifest["files"])  # the content hash is the Parquet files'
    assert manifest["content_sha256"] == content_hash(manifest["files"])
    day2 = _run(drop, DAYS[1], store)
    exits_day2 = pl.read_parquet(day2.folder / "exit_candidates.parquet").sort("dibao_household_id")
    county = exits_day2["county_code"][0]
    household = exits_day2["dibao_household_id"][0]
    day3 = _run(_one_county_less(drop, root / "drop3", household), DAYS[2], store)
    entry = json.loads((day3.folder / "manifest.json").read_text())["worklists"]
    assert entry["status"] == "ready" and entry["reused_from"] == DAYS[1].isoformat() and entry["reused"] > 0
    before, after = _files(day2.folder / "worklists"), _files(day3.folder / "worklists")
    rewritten = {name for name in after
                 if name not in before or after[name].stat().st_ino != before[name].stat().st_ino}
    # Rewritten: the summary, and exactly the workbooks whose rows changed: the county that lost a household, and
    # those whose rows say how many days are left or overdue (核查事项's 超过核查日期天数=249 → 250).
    hashes = json.loads((day2.folder / "manifest.json").read_text())["worklists"]["hashes"]
    assert rewritten == {"全省汇总.xlsx"} | {name for name, digest in entry["hashes"].items()
                                           if hashes.get(name) != digest}
    assert f"{county}_" in " ".join(rewritten)
    assert len(after) - len(rewritten) == entry["reused"]
    _same_as_full_rewrite(day3.folder, tmp_path)
    shown = CliRunner().invoke(app, ["runs", "--store", str(store)])
    assert shown.exit_code == 0 and shown.output.count("ready") == 3 and "not ready" not in shown.output


def test_a_crash_before_the_work_lists_are_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 province: tuple[Path, Path, Path]) -> None:
    """Killed half-way: the Parquet run is published, its manifest says the lists are not ready, no half-written
    workbook carries a final name; ``dibao worklists`` completes them."""
    _, drop, _ = province
    store = tmp_path / "store"
    real = worklists.write_book
    written: list[Path] = []

    def crash(path: Path, place: str, sheets: dict[str, worklists.Rows]) -> None:
        if len(written) == 3:
            worklists.temp_path(path).write_bytes(b"PK\x03\x04 half a workbook")
            raise RuntimeError("killed")
        real(path, place, sheets)
        written.append(path)

    monkeypatch.setattr(worklists, "WORKERS", 0)
    monkeypatch.setattr(worklists, "write_book", crash)
    with pytest.raises(DibaoError, match="dibao worklists"):
        _run(drop, DAYS[0], store)
    run = RunStore(store).run_dir(DAYS[0])
    assert RunStore(store).published_dates() == [DAYS[0]]  # the Parquet run is served
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["worklists"]["status"] == "pending" and not worklists.is_ready(manifest)
    assert all(p.name.endswith(".xlsx") == (p in written) for p in (run / "worklists").rglob("*") if p.is_file())
    assert any(".tmp-" in p.name and p.name.startswith(".") for p in (run / "worklists").rglob("*"))
    shown = CliRunner().invoke(app, ["runs", "--store", str(store)])
    assert "not ready" in shown.output

    monkeypatch.setattr(worklists, "write_book", real)
    out = CliRunner().invoke(app, ["worklists", "--store", str(store), "--date", DAYS[0].isoformat()])
    assert out.exit_code == 0, out.output
    assert "work lists ready" in out.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert worklists.is_ready(manifest) and manifest["worklists"]["reused"] == 0
    assert not [p for p in (run / "worklists").rglob("*") if ".tmp-" in p.name]
    assert manifest["worklists"]["files"] == sorted(_files(run / "worklists"))
    _same_as_full_rewrite(run, tmp_path)
    # the repaired day is what the next day carries workbooks from
    assert _run(drop, DAYS[1], store).manifest["worklists"]["reused_from"] == DAYS[0].isoformat()
