"""Name normalisation (homophones, traditional characters, spaces, minority-name dots) and the alias table."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dibao.errors import ConfigError
from dibao.headers import header_key, load_header_table
from dibao.normalise.names import normalise_name, normalise_names


@pytest.mark.parametrize(
    ("raw", "norm", "pinyin"),
    [
        ("李麗", "李丽", "lili"),  # traditional → simplified
        ("王華明", "王华明", "wanghuaming"),
        ("李 丽", "李丽", "lili"),  # inner space
        ("李　丽 ", "李丽", "lili"),  # ideographic space
        ("阿依古丽•买买提", "阿依古丽·买买提", "ayigulimaimaiti"),
        ("阿依古丽.买买提", "阿依古丽·买买提", "ayigulimaimaiti"),
        ("热合曼・吐尔逊", "热合曼·吐尔逊", "rehemantuerxun"),
        ("ＡＢ", "AB", "ab"),  # full-width letters
        ("", None, None),
        (None, None, None),
    ],
)
def test_name_normalisation(raw: str | None, norm: str | None, pinyin: str | None) -> None:
    assert normalise_name(raw) == (norm, pinyin)


def test_homophones_share_a_pinyin_key_but_not_a_normalised_name() -> None:
    out = normalise_names(pl.Series(["李丽", "李力", "李莉", "张伟"]))
    assert out["name_pinyin"].to_list() == ["lili", "lili", "lili", "zhangwei"]
    assert out["name_norm"].n_unique() == 4


def test_header_key_ignores_presentation_only() -> None:
    assert header_key(" *余额（元） ") == header_key("余额")
    assert header_key("姓　名") == header_key("姓名")
    assert header_key("余额") != header_key("余额日期")


def test_shipped_alias_table_loads_and_resolves() -> None:
    table = load_header_table()
    assert table.resolve("registry", "公民身份号码") == "id_number"
    assert table.resolve("relatives", "关系") == "relation"
    assert table.resolve("registry", "关系") is None
    assert table.resolve("dibao_roll", "id_number") == "id_number"  # canonical English names always work


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("version: 1\nfields:\n  idnum: [证件号]\n", "fields.idnum: no file of the contract has a field 'idnum'"),
        ("version: 1\nfields:\n  name: [姓名]\nstems:\n  bank: {name: [户名]}\n", "stems.bank: unknown file stem"),
        ("version: 1\nfields:\n  name: [号码]\n  id_number: [号码]\n", "header '号码' is claimed by both"),
        ("version: 1\nfields: {}\nvalues:\n  area: {城: 城区}\n", "values.area.城: '城区' is not one of"),
        ("version: 1\nfieldz: {}\n", "malformed header aliases"),
    ],
)
def test_alias_table_mistakes_name_the_file_and_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "headers.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_header_table(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
