"""Files shaped like real county exports: phone-copied IDs, Excel apostrophes, total rows, repeated lines,
members who disagree, a roll that lost every row, a drop that shrank overnight, dates written loosely."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dibao.cli import app
from dibao.errors import DropFault
from dibao.ingest import ingest_drop
from dibao.normalise.ids import check_id, clean_id_expr, clean_id_text, looks_like_id
from dibao.normalise.text import clean_code, clean_code_expr
from dibao.pipeline import run_daily
from dibao.publish.guards import DropShrank
from dibao.publish.store import RunStore
from tests.conftest import (
    COUNTY_HEADERS,
    REGISTRY_HEADERS,
    ROLL_HEADERS,
    county_rows,
    make_id,
    registry_rows,
    roll_rows,
    write_csv,
)

Build = Callable[..., Path]
SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
DAY1, DAY2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)


def _roll(rows: list[list[str]]) -> Callable[[Path], Path]:
    return lambda f: write_csv(f / "dibao_roll.csv", ROLL_HEADERS, rows)


def _registry(rows: list[list[str]]) -> Callable[[Path], Path]:
    return lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, rows)


# --- one cleaning of every code-like cell ------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [
    "\u202d{}\u202c",  # what a phone's copy adds: left-to-right override … pop directional formatting
    "{}\u200b",  # a zero-width space
    "\ufeff{}",  # a BOM pasted in front
    "{}".replace("{}", "{}"),  # plain, for comparison
    "'{}",  # Excel's leading apostrophe
    " {} ",
])
def test_phone_copied_and_excel_marked_ids_are_one_person(drop: Build, wrap: str) -> None:
    roll = roll_rows()
    person = roll[0][5]
    inner = person[:6] + "\u200b" + person[6:] if "\u200b" in wrap else person
    roll[0][5] = wrap.format(inner)
    ingested = ingest_drop(drop(dibao_roll=_roll(roll))).files["dibao_roll"].accepted
    assert ingested["id_status"].to_list() == ["valid"]
    assert ingested["id_norm"].to_list() == [person]


def test_an_id_excel_wrote_with_dot_zero_is_refused_not_made_up(drop: Build) -> None:
    roll = roll_rows()
    roll[0][5] = "34052419800101001.0"
    with pytest.raises(DropFault, match=r"stored as numbers \(data row 1: '34052419800101001.0'\)"):
        ingest_drop(drop(dibao_roll=_roll(roll)))
    assert check_id("34052419800101001.0").status.value == "bad_length"
    assert "Excel" in (check_id("34052419800101001.0").problem() or "")


def test_leading_apostrophes_on_county_codes_and_household_numbers_are_excel_marks(drop: Build) -> None:
    roll = roll_rows()
    roll[0][0], roll[0][3] = "'340402", "'DB001"
    registry = registry_rows()
    registry[2][0], registry[2][3] = "\u2018340402", "2002.0"  # a short household number Excel made numeric
    result = ingest_drop(drop(dibao_roll=_roll(roll), registry=_registry(registry)))
    accepted = result.files["dibao_roll"].accepted
    assert accepted.select("county_code", "dibao_household_id").row(0) == ("340402", "DB001")
    assert result.files["registry"].accepted["household_id"].to_list() == ["H001", "H001", "2002"]
    assert result.rejected.is_empty()


def test_a_long_household_number_excel_made_numeric_is_refused(drop: Build) -> None:
    registry = registry_rows()
    registry[2][3] = "3404020101000123.0"  # 16 digits: a spreadsheet number keeps 15
    with pytest.raises(DropFault, match=r"household_id values were stored as numbers"):
        ingest_drop(drop(registry=_registry(registry)))


def test_control_characters_leave_names(drop: Build) -> None:
    registry = registry_rows()
    registry[0][4] = "张\x00伟\u200b"
    accepted = ingest_drop(drop(registry=_registry(registry))).files["registry"].accepted
    assert accepted["name"][0] == "张伟" and accepted["name_norm"][0] == "张伟"


CODE_ALPHABET = st.sampled_from(list("0123456789Xx-./ '’‘`０１２３４５６７８９Ｘ"
                                     "\u3000\u00a0\u200b\u202c\u202d\ufeff\x00\t\n张伟AB·"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(CODE_ALPHABET, max_size=24), min_size=1, max_size=20), st.booleans())
def test_the_scalar_cleaning_is_the_bulk_cleaning(values: list[str], drop_dot_zero: bool) -> None:
    """The API parses one query with the scalar form; ingest cleans millions with the expression: they agree."""
    bulk = pl.select(clean_code_expr(pl.lit(pl.Series(values, dtype=pl.String)), drop_dot_zero=drop_dot_zero)
                     ).to_series().to_list()
    assert bulk == [clean_code(v, drop_dot_zero=drop_dot_zero) for v in values]
    ids = pl.select(clean_id_expr(pl.lit(pl.Series(values, dtype=pl.String)))).to_series().to_list()
    assert ids == [clean_id_text(v) for v in values]


def test_an_id_with_an_area_code_no_edition_of_gb2260_has_is_kept_linked_and_marked(drop: Build) -> None:
    fabricated = make_id(region="990426", birth="19911201", seq="007")
    roll = roll_rows()
    roll[0][5] = fabricated
    accepted = ingest_drop(drop(dibao_roll=_roll(roll))).files["dibao_roll"].accepted
    assert accepted.select("id_norm", "id_status").row(0) == (fabricated, "unknown_region")
    assert check_id(fabricated).usable
    historic = make_id(region="110103", birth="19700101", seq="011")  # 崇文区, merged into 东城区 in 2010
    permit = make_id(region="810000", birth="19900101", seq="012")  # a 香港 resident's residence permit
    assert check_id(historic).status.value == "valid" and check_id(permit).status.value == "valid"
    assert looks_like_id("\u202d" + fabricated + "\u202c")


def test_id_plausibility_is_judged_on_the_run_date(drop: Build) -> None:
    newborn = make_id(birth="20261125", seq="021")
    roll = roll_rows()
    roll[0][5] = newborn
    folder = drop(dibao_roll=_roll(roll))
    before = ingest_drop(folder, run_date=dt.date(2026, 11, 20)).files["dibao_roll"].accepted
    after = ingest_drop(folder, run_date=dt.date(2026, 12, 1)).files["dibao_roll"].accepted
    assert before["id_status"].to_list() == ["bad_date"]
    assert after["id_status"].to_list() == ["valid"]


# --- total rows --------------------------------------------------------------------------------------------------


def test_a_bank_total_row_is_nobodys_savings(drop: Build) -> None:
    person = registry_rows()[0][5]

    def bank(f: Path) -> Path:
        return write_csv(f / "bank_assets.csv", ["证件号码", "姓名", "金融机构", "余额", "查询日期"], [
            [person, "张伟", "农商行", "3500", "2026-11-01"],
            [person, "张伟", "邮储银行", "100000", "2026-11-01"],
            ["合计", "", "", "3103500", ""],
        ])

    result = ingest_drop(drop(bank_assets=bank))
    files = result.files["bank_assets"]
    assert files.accepted["row"].to_list() == [1, 2]
    total = files.rejected.row(0, named=True)
    assert (total["row"], total["reason_code"], total["value"], total["action"]) == (3, "total_row", "合计",
                                                                                    "row_rejected")
    assert any("合计行（第3行）余额=3103500" in note and "103500" in note and "不符" in note for note in files.notes)


@pytest.mark.parametrize("word", ["合计", "小 计", "总计：", "累计(全县)"])
def test_total_rows_in_roll_registry_and_counties_are_recognised_as_totals(drop: Build, word: str) -> None:
    roll = [*roll_rows(), [word, "", "", "", "", "", "", "", "", "420", "", "", "1"]]
    registry = [*registry_rows(), ["", "", "", "", word, "", "", "", "", "", "", "6000", "", "", ""]]
    counties = [*county_rows(), ["", word, "120000"]]
    result = ingest_drop(drop(dibao_roll=_roll(roll), registry=_registry(registry),
                              counties=lambda f: write_csv(f / "counties.csv", COUNTY_HEADERS, counties)))
    for stem, kept in (("dibao_roll", 1), ("registry", 3), ("counties", 1)):
        ingested = result.files[stem]
        assert ingested.accepted.height == kept, stem
        assert ingested.rejected["reason_code"].to_list() == ["total_row"], stem


def test_a_row_with_no_identifying_field_but_an_amount_is_a_total(drop: Build) -> None:
    registry = [*registry_rows(), ["", "", "", "", "", "", "", "", "", "", "", "14000", "3200", "600", "0"]]
    registry_file = ingest_drop(drop(registry=_registry(registry))).files["registry"]
    assert registry_file.accepted.height == 3
    assert registry_file.rejected["reason_code"].to_list() == ["total_row"]


# --- notes, not silence ------------------------------------------------------------------------------------------


def test_duplicate_lines_are_counted_dropped_once_and_listed(drop: Build) -> None:
    registry = registry_rows()
    registry = [*registry, list(registry[1]), list(registry[1])]
    ingested = ingest_drop(drop(registry=_registry(registry))).files["registry"]
    assert ingested.accepted["row"].to_list() == [1, 2, 3]
    rejected = ingested.rejected.select("row", "reason_code").rows()
    assert rejected == [(4, "duplicate_row"), (5, "duplicate_row")]
    assert "与第2行完全相同" in ingested.rejected["reason"][0]
    assert any("2 exact duplicate" in note for note in ingested.notes)


def test_members_who_disagree_on_a_household_value_are_listed_with_the_value_chosen(drop: Build) -> None:
    registry = registry_rows()
    registry[1][9] = "5400"  # the spouse's row says 5400, the head's 5200
    registry[1][11] = "6500"
    ingested = ingest_drop(drop(registry=_registry(registry))).files["registry"]
    notes = ingested.data_notes.filter(pl.col("code") == "household_value_conflict").sort("field")
    assert notes.select("household", "field").rows() == [("H001", "per_capita_net_income"), ("H001", "wage_income")]
    assert [float(v) for v in notes["chosen"]] == [5200, 6000]  # the head's row
    assert "户主" in notes["detail"][0] and notes["rows"][0].to_list() == [1, 2]
    household = ingested.accepted.filter(pl.col("household_id") == "H001")
    assert household["per_capita_net_income"].cast(pl.Float64).to_list() == [5200.0, 5200.0]


def test_a_household_with_two_heads_is_listed(drop: Build) -> None:
    registry = registry_rows()
    registry[1][6] = "户主"
    notes = ingest_drop(drop(registry=_registry(registry))).files["registry"].data_notes
    heads = notes.filter(pl.col("code") == "multiple_heads")
    assert heads.select("household", "chosen").rows() == [("H001", "张伟")]
    assert heads["values"][0].to_list() == ["张伟", "李丽"]


# --- a broken drop never makes yesterday's cases look resolved ---------------------------------------------------


def _sample_copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(SAMPLES, folder)
    return folder


def _rewrite_roll(folder: Path, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    path = folder / "dibao_roll.csv"
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    change(frame).write_csv(path)


def test_a_roll_that_loses_every_row_publishes_nothing(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "store")
    run_daily(_sample_copy(tmp_path, "day1"), DAY1, store)
    day2 = _sample_copy(tmp_path, "day2")
    _rewrite_roll(day2, lambda f: f.with_columns(pl.lit("凤台县").alias("县级区划代码")))
    rows = pl.read_csv(day2 / "dibao_roll.csv", infer_schema=False).height
    with pytest.raises(DropFault, match=rf"dibao_roll.csv: 全部{rows}行均被拒绝.*all {rows} rows were rejected"):
        run_daily(day2, DAY2, store)
    assert store.published_dates() == [DAY1]
    out = CliRunner().invoke(app, ["run", "--inputs", str(day2), "--date", "2026-11-21", "--store", str(store.root)])
    assert out.exit_code == 2 and "不是6位行政区划代码" in out.output


def test_a_roll_that_shrank_overnight_stops_the_run_unless_the_operator_accepts_it(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "store")
    run_daily(_sample_copy(tmp_path, "day1"), DAY1, store)
    exits_before = pl.read_parquet(store.run_dir(DAY1) / "exit_candidates.parquet").height
    day2 = _sample_copy(tmp_path, "day2")
    _rewrite_roll(day2, lambda f: f.head(int(f.height * 0.7)))
    accepted = store.manifest(DAY1)["inputs"]["dibao_roll"]["rows_accepted"]
    with pytest.raises(DropShrank, match=rf"dibao_roll: 上次运行接受 {accepted} 行"):
        run_daily(day2, DAY2, store)
    assert store.published_dates() == [DAY1]
    out = CliRunner().invoke(app, ["run", "--inputs", str(day2), "--date", "2026-11-21", "--store", str(store.root)])
    assert out.exit_code == 5 and "--accept-shrink" in out.output

    out = CliRunner().invoke(app, ["run", "--inputs", str(day2), "--date", "2026-11-21", "--store", str(store.root),
                                   "--accept-shrink"])
    assert out.exit_code == 0, out.output
    guards = json.loads((store.run_dir(DAY2) / "manifest.json").read_text())["guards"]
    assert guards["accept_shrink"] is True and guards["shrunk"][0]["stem"] == "dibao_roll"
    assert exits_before > 0


def test_an_optional_file_that_disappears_is_a_shrink_too(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "store")
    run_daily(_sample_copy(tmp_path, "day1"), DAY1, store)
    day2 = _sample_copy(tmp_path, "day2")
    (day2 / "bank_assets.csv").unlink()
    with pytest.raises(DropShrank, match=r"bank_assets: .*missing today"):
        run_daily(day2, DAY2, store)


def test_a_faulty_optional_amount_clears_the_field_and_keeps_the_person(tmp_path: Path) -> None:
    """Before: a roll row whose 月保障金额 was unreadable left the household, changing its size and head."""
    store = RunStore(tmp_path / "store")
    clean = run_daily(_sample_copy(tmp_path, "day1"), DAY1, store)
    messy = _sample_copy(tmp_path, "messy")
    _rewrite_roll(messy, lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.lit("一千二")).otherwise(pl.col("月保障金额"))
        .alias("月保障金额")))
    dirty = run_daily(messy, DAY2, store, accept_shrink=True)
    assert dirty.drop.files["dibao_roll"].accepted.height == clean.drop.files["dibao_roll"].accepted.height
    facts = [pl.read_parquet(store.run_dir(day) / "household_facts.parquet").filter(pl.col("subject_type") == "roll")
             .select("subject_id", "members", "head_name").sort("subject_id") for day in (DAY1, DAY2)]
    assert facts[0].equals(facts[1])


# --- dates on the command line -----------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["20261122", "2026W471", "2026/11/22", "2026-11-22T00:00", "22.11.2026"])
def test_run_dates_must_be_written_yyyy_mm_dd(tmp_path: Path, written: str) -> None:
    out = CliRunner().invoke(app, ["run", "--inputs", str(SAMPLES), "--date", written, "--store", str(tmp_path)])
    assert out.exit_code == 64 and "YYYY-MM-DD" in out.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_usage_error_has_its_own_exit_code(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["run", "--inputs", str(SAMPLES), "--store", str(tmp_path)])
    assert out.exit_code == 64


# --- what the rules say about it ---------------------------------------------------------------------------------


def test_a_fabricated_id_on_the_roll_is_a_flag(drop: Build, tmp_path: Path) -> None:
    roll = roll_rows()
    roll[0][5] = make_id(region="990426", birth="19700505", seq="342")
    result = run_daily(drop(dibao_roll=_roll(roll)), DAY1, RunStore(tmp_path / "store"))
    flags = pl.read_parquet(result.folder / "flags.parquet")
    assert flags.filter(pl.col("code") == "id_unknown_region")["subject_id"].to_list() == ["DB001"]


def test_a_rule_reading_a_household_with_a_cleared_field_says_data_is_missing(drop: Build, tmp_path: Path) -> None:
    roll = roll_rows()
    roll[0][11] = "八百"  # 家庭月人均收入 unreadable: cleared, the household stays on the roll
    registry = registry_rows()
    registry[2][11] = "12O00"  # 工资性收入 of the roll family's registry household
    registry[2][12] = "12000"  # other income alone would be above the standard if the wage were taken as 0
    owner = roll[0][5]

    def dept(folder: Path) -> Path:  # the roll member's car: a rule that does fire, to read its explanation
        return write_csv(folder / "dept_facts.csv", ["证件号码", "姓名", "核对项目", "数值", "车辆类型", "数据日期"],
                         [[owner, "王芳", "机动车", "皖D12345", "小型普通客车", "2026-11-01"]])

    result = run_daily(drop(dibao_roll=_roll(roll), registry=_registry(registry), dept_facts=dept), DAY1,
                       RunStore(tmp_path / "s"))
    facts = pl.read_parquet(result.folder / "household_facts.parquet").filter(pl.col("subject_id") == "DB001")
    assert facts["missing_fields"].to_list() == ["assessed_monthly_income,wage_income"]
    # An unreadable figure is unknown, never 0: no income is known, so no income rule decides anything.
    assert facts["per_capita_income"].to_list() == [None] and facts["income_basis"].to_list() == ["none"]
    decisions = pl.read_parquet(result.folder / "decisions.parquet").filter(pl.col("subject_id") == "DB001")
    assert "vehicle_owned" in decisions["rule_id"] and "income_above_standard" not in decisions["rule_id"]
    assert all("数据缺失(无法识别已置空)：家庭月人均收入、工资性收入" in d for d in decisions["detail"])


def test_excel_apostrophes_on_every_roll_code_do_not_resolve_yesterdays_cases(tmp_path: Path) -> None:
    """The reported case: '340421 and 'DB… on every roll row used to reject every roll row and resolve every exit."""
    store = RunStore(tmp_path / "store")
    run_daily(_sample_copy(tmp_path, "day1"), DAY1, store)
    day2 = _sample_copy(tmp_path, "day2")
    marked = ("县级区划代码", "低保家庭编号")
    _rewrite_roll(day2, lambda f: f.with_columns((pl.lit("'") + pl.col(c)).alias(c) for c in marked))
    result = run_daily(day2, DAY2, store)
    assert result.manifest["inputs"]["dibao_roll"]["rows_accepted"] == store.manifest(DAY1)["inputs"][
        "dibao_roll"]["rows_accepted"]
    diff = pl.read_parquet(result.folder / "diff.parquet")
    assert diff.filter((pl.col("list") == "exit") & (pl.col("change") == "resolved")).is_empty()
    before = pl.read_parquet(store.run_dir(DAY1) / "exit_candidates.parquet")["dibao_household_id"].sort()
    assert pl.read_parquet(result.folder / "exit_candidates.parquet")["dibao_household_id"].sort().equals(before)


@pytest.mark.parametrize(("written", "yuan"), [("1.2万", 12000), ("￥1200", 1200), ("1,200元", 1200)])
def test_benefit_amounts_written_the_common_ways_are_read_exactly(drop: Build, written: str, yuan: int) -> None:
    roll = roll_rows()
    roll[0][9] = f'"{written}"' if "," in written else written
    accepted = ingest_drop(drop(dibao_roll=_roll(roll))).files["dibao_roll"].accepted
    assert accepted["monthly_benefit"].to_list() == [pytest.approx(yuan)]
    assert accepted["cleared_fields"].to_list() == [None]
