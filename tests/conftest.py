"""Shared helpers: build small drops in any format and encoding, by hand, so each test states its own data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from dibao.normalise.ids import expected_check_char


def make_id(region: str = "340402", birth: str = "19800101", seq: str = "123") -> str:
    first17 = region + birth + seq
    return first17 + expected_check_char(first17)


REGISTRY_HEADERS = ["县级区划代码", "乡镇", "行政村", "户编号", "姓名", "证件号码", "与户主关系", "户类型", "脱贫年度",
                    "家庭人均纯收入", "家庭人口数", "工资性收入", "其他纯收入", "医疗自付支出", "教育支出"]
ROLL_HEADERS = ["县级区划代码", "乡镇", "行政村", "低保家庭编号", "姓名", "身份证号码", "与户主关系", "城乡类别",
                "救助类型",
                "月保障金额", "纳入时间", "家庭月人均收入", "保障人数"]
COUNTY_HEADERS = ["县级区划代码", "县名", "农村户籍人口"]


def registry_rows() -> list[list[str]]:
    return [
        ["340402", "洛河镇", "新庄村", "H001", "张伟", make_id(seq="111"), "户主", "脱贫户", "2019", "5200", "2",
         "6000", "1200", "300", "0"],
        ["340402", "洛河镇", "新庄村", "H001", "李丽", make_id(birth="19820304", seq="222"), "配偶", "脱贫户", "2019",
         "5200", "2", "6000", "1200", "300", "0"],
        ["340402", "洛河镇", "新庄村", "H002", "王芳", make_id(birth="19700505", seq="342"), "户主", "脱贫户", "2020",
         "3600", "1", "2000", "800", "0", "0"],
    ]


def roll_rows() -> list[list[str]]:
    return [
        ["340402", "洛河镇", "新庄村", "DB001", "王芳", make_id(birth="19700505", seq="342"), "户主", "农村", "低保",
         "420", "2023-05-01", "300", "1"],
    ]


def county_rows() -> list[list[str]]:
    return [["340402", "大通区", "120000"]]


def write_csv(path: Path, headers: list[str], rows: list[list[str]], encoding: str = "utf-8",
              delimiter: str = ",") -> Path:
    lines = [delimiter.join(headers)] + [delimiter.join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def write_xlsx(path: Path, headers: list[str], rows: list[list[object]]) -> Path:
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    sheet = workbook.add_worksheet("Sheet1")
    sheet.write_row(0, 0, headers)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, int | float):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, str(value)) if value != "" else None
    workbook.close()
    return path


def write_parquet(path: Path, headers: list[str], rows: list[list[str]]) -> Path:
    pl.DataFrame([list(col) for col in zip(*rows, strict=True)], schema=headers, orient="col").write_parquet(path)
    return path


@pytest.fixture
def drop(tmp_path: Path) -> Callable[..., Path]:
    """Build a minimal valid drop; keyword args replace a file: ``drop(registry=lambda folder: path)``."""

    def build(**overrides: Callable[[Path], Path] | None) -> Path:
        folder = tmp_path / "drop"
        folder.mkdir(exist_ok=True)
        defaults: dict[str, Callable[[Path], Path] | None] = {
            "registry": lambda f: write_csv(f / "registry.csv", REGISTRY_HEADERS, registry_rows(), "gb18030"),
            "dibao_roll": lambda f: write_csv(f / "dibao_roll.csv", ROLL_HEADERS, roll_rows(), "utf-8-sig"),
            "counties": lambda f: write_csv(f / "counties.csv", COUNTY_HEADERS, county_rows()),
        }
        defaults.update(overrides)
        for make in defaults.values():
            if make is not None:
                make(folder)
        return folder

    return build


TODAY = dt.date(2026, 11, 20)
