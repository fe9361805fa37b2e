"""Ingestion: every encoding and format, every row-level and file-level fault, each with its message."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from dibao.errors import DropFault, FileFault
from dibao.ingest import csv_file, ingest_drop
from dibao.ingest.table import tidy
from dibao.ingest.validate import IngestedFile
from tests.conftest import (
    COUNTY_HEADERS,
    REGISTRY_HEADERS,
    ROLL_HEADERS,
    county_rows,
    make_id,
    registry_rows,
    roll_rows,
    write_csv,
    write_parquet,
    write_xlsx,
)

Build = Callable[..., Path]


def _fault_text(build: Build, **overrides: object) -> str:
    with pytest.raises(DropFault) as info:
        ingest_drop(build(**overrides))
    return str(info.value)


# --- encodings and formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("utf-16", "utf-16")],
)
def test_csv_encodings_are_detected(drop: Build, encoding: str, expected: str) -> None:
    folder = drop(registry=lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, registry_rows(), encoding))
    result = ingest_drop(folder)
    registry = result.files["registry"]
    assert registry.raw.encoding == expected
    assert registry.accepted["name"].to_list() == ["张伟", "李丽", "王芳"]
    assert registry.accepted["county_code"].to_list() == ["340402"] * 3


def test_encoding_override_is_used_and_a_wrong_one_is_reported(drop: Build) -> None:
    folder = drop()
    assert ingest_drop(folder, encodings={"registry": "gb18030"}).files["registry"].raw.encoding == "gb18030"
    with pytest.raises(DropFault, match=r"registry.csv: 文件不是有效的 utf-8 编码 \(is not valid utf-8"):
        ingest_drop(folder, encodings={"registry": "utf-8"})


def test_tab_separated_export_is_read(drop: Build) -> None:
    folder = drop(registry=lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, registry_rows(),
                                               "gb18030", delimiter="\t"))
    assert ingest_drop(folder).files["registry"].accepted.height == 3


def test_xlsx_and_parquet_give_the_same_result_as_csv(drop: Build) -> None:
    csv_accepted = ingest_drop(drop()).files["registry"].accepted
    for name, writer in [("registry.xlsx", write_xlsx), ("registry.parquet", write_parquet)]:
        (Path(drop()) / "registry.csv").unlink()
        folder = drop(registry=lambda f, n=name, w=writer: w(f / n, REGISTRY_HEADERS, registry_rows()))
        other = ingest_drop(folder).files["registry"]
        assert other.raw.format == name.split(".")[1]
        assert other.accepted.equals(csv_accepted), name
        (folder / name).unlink()


def test_xlsx_text_ids_with_x_and_numeric_amounts(drop: Build) -> None:
    rows: list[list[object]] = [["340402", "洛河镇", "新庄村", "DB009", "赵敏", make_id(seq="009").lower(), "户主",
                                 "农村", "低保", 420.5, "2024/02/03", 300, 1]]
    folder = drop(dibao_roll=lambda f: write_xlsx(f / "dibao_roll.xlsx", ROLL_HEADERS, rows))
    roll = ingest_drop(folder).files["dibao_roll"].accepted
    assert roll["id_norm"].to_list() == [make_id(seq="009")]
    assert roll["monthly_benefit"].to_list() == [420.5]
    assert str(roll["enrolled_date"][0]) == "2024-02-03"


# --- header aliases -------------------------------------------------------------------------------------------


def test_header_aliases_units_and_full_width_are_mapped(drop: Build) -> None:
    headers = ["区县代码", "乡镇（街道）", "行政村", "户号", "姓　名", "公民身份号码", "与户主关系", "户类型",
               "脱贫年度", "家庭人均纯收入(元)", "家庭人口数", "*工资性收入（元/年）", "其他纯收入", "医疗自付支出",
               "教育支出", "备注"]
    rows = [[*r, "随便写"] for r in registry_rows()]
    folder = drop(registry=lambda f: write_csv(f / "registry.csv", headers, rows, "gb18030"))
    registry = ingest_drop(folder).files["registry"]
    assert registry.column_map["id_number"] == "公民身份号码"
    assert registry.column_map["wage_income"] == "*工资性收入（元/年）"
    assert registry.accepted["wage_income"].to_list() == [6000.0, 6000.0, 2000.0]
    assert any("'备注' is not part of the contract" in n for n in registry.notes)


def test_value_aliases_map_county_wording(drop: Build) -> None:
    row = roll_rows()[0]
    row[7], row[8] = "城镇", "特困人员"
    folder = drop(dibao_roll=lambda f: write_csv(f / "dibao_roll.csv", ROLL_HEADERS, [row]))
    roll = ingest_drop(folder).files["dibao_roll"].accepted
    assert roll.select("area", "assistance_type").row(0) == ("城市", "特困供养")


# --- row-level faults: a required field rejects the row, an optional one only clears the field ----------------


@pytest.mark.parametrize(
    ("column", "value", "field", "code", "words"),
    [
        (10, "2024-13-45", "enrolled_date", "bad_date", "日期无法识别"),
        (10, "1850-01-01", "enrolled_date", "date_out_of_range", "日期超出合理范围"),
        (9, "-350", "monthly_benefit", "negative_amount", "金额为负数"),
        (9, "12O0", "monthly_benefit", "not_a_number", "不是数字"),
        (9, "一千二", "monthly_benefit", "not_a_number", "不是数字"),
        (3, "", "dibao_household_id", "blank_required", "必填项为空"),
        (4, "", "name", "blank_required", "必填项为空"),
        (8, "临时救助", "assistance_type", "bad_category", "不是允许的取值"),
        (12, "2.5", "covered_persons", "not_whole_number", "不是非负整数"),
        (0, "34040", "county_code", "bad_area_code", "不是6位行政区划代码"),
    ],
)
def test_a_faulty_required_field_rejects_the_row_and_an_optional_one_clears_only_the_field(
    drop: Build, column: int, value: str, field: str, code: str, words: str
) -> None:
    good = roll_rows()[0]
    bad = list(good)
    bad[3] = "DB002"
    bad[column] = value
    folder = drop(dibao_roll=lambda f: write_csv(f / "dibao_roll.csv", ROLL_HEADERS, [good, bad]))
    result = ingest_drop(folder)
    roll = result.files["dibao_roll"]
    required = field in {"dibao_household_id", "name", "assistance_type", "county_code", "area"}
    if required:
        assert roll.accepted["row"].to_list() == [1]
    else:  # the person stays on the roll; only the faulty value is gone, and the row says which field was cleared
        assert roll.accepted["row"].to_list() == [1, 2]
        assert roll.accepted[field][1] is None
        assert roll.accepted["cleared_fields"].to_list() == [None, [field]]
    rejected = roll.rejected.row(0, named=True)
    assert (rejected["source"], rejected["row"], rejected["field"], rejected["reason_code"]) == (
        "dibao_roll", 2, field, code)
    assert rejected["value"] == (value or None)
    assert rejected["action"] == ("row_rejected" if required else "field_cleared")
    assert words in rejected["reason"] and ROLL_HEADERS[column] in rejected["reason"]
    assert result.rejected.height == 1


def test_yes_no_and_year_faults(drop: Build) -> None:
    rows = registry_rows()
    rows[1][8] = "20x9"
    folder = drop(registry=lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, rows))
    rejected = ingest_drop(folder).files["registry"].rejected
    assert rejected.select("row", "field", "reason_code").rows() == [(2, "exit_year", "bad_year")]


def test_a_row_with_several_faults_is_listed_once_per_field(drop: Build) -> None:
    rows = registry_rows()
    rows[2][9], rows[2][11] = "abc", "-5"
    folder = drop(registry=lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, rows))
    registry = ingest_drop(folder).files["registry"]
    assert registry.rejected.select("row", "field").rows() == [(3, "per_capita_net_income"), (3, "wage_income")]
    assert registry.accepted.height == 3
    assert registry.accepted["cleared_fields"][2].to_list() == ["per_capita_net_income", "wage_income"]


def test_accepted_values_are_typed_and_amounts_tolerate_separators(drop: Build) -> None:
    rows = registry_rows()
    rows[0][11] = '"6,000元"'
    rows[0][5] = " " + rows[0][5][:6] + " " + rows[0][5][6:] + " "
    folder = drop(registry=lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, rows))
    registry = ingest_drop(folder).files["registry"].accepted
    assert registry.schema["wage_income"] == pl.Decimal(18, 2)  # money is exact
    assert registry.schema["household_size"] == pl.Int64
    assert registry["wage_income"][0] == 6000.0
    assert registry["id_status"][0] == "valid"


def test_invalid_ids_are_kept_with_their_status_not_rejected(drop: Build) -> None:
    rows = registry_rows()
    rows[0][5] = rows[0][5][:-1] + ("0" if rows[0][5][-1] != "0" else "1")
    rows[1][5] = ""
    folder = drop(registry=lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, rows))
    registry = ingest_drop(folder).files["registry"]
    assert registry.rejected.height == 0
    assert registry.accepted["id_status"].to_list() == ["bad_check_digit", "blank", "valid"]


# --- file-level faults: clear error naming file and column, nothing loaded ------------------------------------


def test_missing_required_column(drop: Build) -> None:
    headers = [h for h in ROLL_HEADERS if h != "身份证号码"]
    rows = [r[:5] + r[6:] for r in roll_rows()]
    text = _fault_text(drop, dibao_roll=lambda f: write_csv(f / "dibao_roll.csv", headers, rows))
    assert "dibao_roll.csv, column '身份证号码': missing required column 身份证号码 (id_number)" in text


def test_ids_turned_into_numbers_by_excel_in_csv(drop: Build) -> None:
    rows = roll_rows()
    rows[0][5] = "3.40422E+17"
    text = _fault_text(drop, dibao_roll=lambda f: write_csv(f / "dibao_roll.csv", ROLL_HEADERS, rows))
    assert "dibao_roll.csv, column '身份证号码'" in text
    assert "stored as numbers (data row 1: '3.40422E+17')" in text and "nothing of this file was loaded" in text


def test_ids_stored_as_numeric_cells_in_xlsx(drop: Build) -> None:
    rows: list[list[object]] = [list(r) for r in roll_rows()]
    rows.append(list(rows[0]))
    rows[1][5] = 340402198001011234  # Excel converted this one; the first stayed text
    text = _fault_text(drop, dibao_roll=lambda f: write_xlsx(f / "dibao_roll.xlsx", ROLL_HEADERS, rows))
    assert "dibao_roll.xlsx, column '身份证号码': 证件号码被存成了数字" in text
    assert "ID numbers were stored as numbers (some of its cells)" in text
    rows[0][5] = 340402198001011111  # now the whole column is numeric: the first row is named
    text = _fault_text(drop, dibao_roll=lambda f: write_xlsx(f / "dibao_roll.xlsx", ROLL_HEADERS, rows))
    assert "ID numbers were stored as numbers (data row 1: '3.40402198001011" in text


def test_ids_stored_as_floats_in_parquet(drop: Build) -> None:
    def write(f: Path) -> Path:
        frame = pl.DataFrame({"县级区划代码": ["340402"], "县名": ["大通区"], "农村户籍人口": ["1"]})
        frame.write_parquet(f / "counties.parquet")
        bank = pl.DataFrame({"证件号码": [3.40402198e17], "余额": ["12"]})
        bank.write_parquet(f / "bank_assets.parquet")
        return f

    text = _fault_text(drop, counties=write)
    assert "bank_assets.parquet, column '证件号码': 证件号码被存成了数字" in text
    assert "ID numbers were stored as numbers" in text


def test_ragged_row_names_the_row(drop: Build) -> None:
    rows = registry_rows()
    rows[1][14] = "0,5"
    text = _fault_text(drop, registry=lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, rows))
    assert "registry.csv: 字段数与表头不符 (line 3 has 16 fields but the header has 15" in text


def test_unreadable_encoding(drop: Build) -> None:
    def write(f: Path) -> Path:
        path = f / "registry.csv"
        path.write_bytes(b"\x80\x81\xff\xfe\x00abc\n\xff\x80\x80\n")
        return path

    text = _fault_text(drop, registry=write)
    assert "registry.csv: 无法识别文件编码 (unreadable encoding" in text


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "empty file (0 bytes)"), (b"\n\n", "empty file"),
     ("县级区划代码,县名,农村户籍人口\n".encode(), "has a header but no data rows")],
)
def test_empty_files(drop: Build, content: bytes, words: str) -> None:
    def write(f: Path) -> Path:
        (f / "counties.csv").write_bytes(content)
        return f

    text = _fault_text(drop, counties=write)
    assert "counties.csv: " in text and words in text


def test_duplicate_header(drop: Build) -> None:
    headers = [*COUNTY_HEADERS, "县名"]
    text = _fault_text(drop, counties=lambda f: write_csv(f / "counties.csv", headers, [[*r, "x"] for r in
                                                                                       county_rows()]))
    assert "counties.csv, column '县名': 表头重复 (duplicate header" in text


def test_two_headers_for_one_field(drop: Build) -> None:
    headers = [*COUNTY_HEADERS, "县名称"]
    text = _fault_text(drop, counties=lambda f: write_csv(f / "counties.csv", headers, [[*r, "x"] for r in
                                                                                       county_rows()]))
    assert "columns '县名' and '县名称' both mean county_name" in text


def test_missing_required_file_and_all_faults_reported_together(drop: Build) -> None:
    headers = [h for h in ROLL_HEADERS if h != "姓名"]
    rows = [r[:4] + r[5:] for r in roll_rows()]
    text = _fault_text(drop, counties=None,
                       dibao_roll=lambda f: write_csv(f / "dibao_roll.csv", headers, rows))
    assert "2 file fault(s)" in text
    assert "counties.*: required file is missing" in text
    assert "dibao_roll.csv, column '姓名': missing required column" in text


def test_two_files_for_one_stem(drop: Build) -> None:
    folder = drop()
    write_parquet(folder / "counties.parquet", COUNTY_HEADERS, county_rows())
    with pytest.raises(DropFault, match="2 files for counties: keep exactly one"):
        ingest_drop(folder)


def test_unknown_files_and_missing_optional_files_are_noted(drop: Build) -> None:
    folder = drop()
    (folder / "readme.txt").write_text("notes from the county")
    result = ingest_drop(folder)
    assert "file readme.txt is not part of the contract and was ignored" in result.notes
    assert "asset test" in result.missing_optional["bank_assets"]


def test_full_width_digits_in_codes_and_amounts_are_read(drop: Build) -> None:
    row = roll_rows()[0]
    row[0], row[9], row[10] = "３４０４０２", "４２０", "２０２３－０５－０１"
    folder = drop(dibao_roll=lambda f: write_csv(f / "dibao_roll.csv", ROLL_HEADERS, [row]))
    roll = ingest_drop(folder).files["dibao_roll"].accepted
    assert roll.select("county_code", "monthly_benefit").row(0) == ("340402", 420.0)
    assert str(roll["enrolled_date"][0]) == "2023-05-01"


def test_gb18030_body_under_an_ascii_header_is_transcoded(drop: Build) -> None:
    headers = ["county_code", "county_name", "rural_population"]
    folder = drop(counties=lambda f: write_csv(f / "counties.csv", headers, county_rows(), "gb18030"))
    counties = ingest_drop(folder).files["counties"]
    assert counties.raw.encoding == "gb18030"
    assert counties.accepted["county_name"].to_list() == ["大通区"]


# --- memory: the text as read is let go file by file ------------------------------------------------------------


class _RecordingCache:
    """A cache that keeps nothing, and records how many rows of text each file still had when it was saved."""

    def __init__(self) -> None:
        self.text_rows_at_save: dict[str, int] = {}

    def load_file(self, stem: str, path: Path, encoding: str | None, run_date: dt.date, *,
                  with_text: bool = True) -> IngestedFile | None:
        return None

    def save_file(self, ingested: IngestedFile, path: Path, encoding: str | None, run_date: dt.date) -> None:
        self.text_rows_at_save[ingested.stem] = ingested.raw.frame.height


def test_each_files_text_is_let_go_once_it_is_typed_and_cached(drop: Build) -> None:
    cache = _RecordingCache()
    seen_by_on_file: dict[str, int] = {}
    result = ingest_drop(drop(), cache=cache,
                         on_file=lambda stem, f: seen_by_on_file.update({stem: f.raw.frame.height}))
    registry = result.files["registry"]
    assert cache.text_rows_at_save["registry"] == 3  # the cache still saw the text …
    assert seen_by_on_file == dict.fromkeys(result.files, 0)  # … nobody after it does
    assert (registry.raw.frame.height, registry.rows_read, registry.accepted.height) == (0, 3, 3)
    assert registry.raw.location(2) == "line 3"  # where a row is in the file is still known


def test_a_tool_that_edits_the_drop_can_keep_the_text(drop: Build) -> None:
    registry = ingest_drop(drop(), keep_raw=True).files["registry"]
    assert registry.raw.frame["姓名"].to_list() == ["张伟", "李丽", "王芳"]


def test_gb18030_is_transcoded_piece_by_piece_exactly_as_whole(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setattr(csv_file, "_TRANSCODE_PIECE", 7)  # pieces of a few lines, cut after line feeds
    text = "".join(f"{n},张伟{n},𠀀\n" for n in range(50))
    data = text.encode("gb18030")
    assert csv_file.transcode_to_utf8(tmp_path / "a.csv", data, None) == (text.encode("utf-8"), "gb18030")
    damaged = data[:-20] + b"\xff" + data[-19:]  # a bad byte in the last piece: reported where it is in the file
    with pytest.raises(FileFault) as whole:
        csv_file.decode_text(tmp_path / "a.csv", damaged, None)
    with pytest.raises(FileFault) as pieces:
        csv_file.transcode_to_utf8(tmp_path / "a.csv", damaged, None)
    assert str(pieces.value) == str(whole.value)
    assert f"byte {len(data) - 20} " in str(pieces.value)


@pytest.mark.parametrize("text", ["", " \n\t", "\u3000\n", "\x1c\x1f", "\u00a0", " a", "\u3000张", "\n\u3000\u2028x"])
def test_a_file_of_whitespace_is_found_without_decoding_it(text: str) -> None:
    assert csv_file._only_whitespace(text.encode("utf-8")) == (not text or text.isspace())


def test_values_are_tidied_in_place() -> None:
    frame = pl.DataFrame({"a": [" x ", "  ", None], "b": ["1", "\u3000", "2 "]})
    assert tidy(frame) is frame
    assert frame.rows() == [("x", "1"), (None, None), (None, "2")]
