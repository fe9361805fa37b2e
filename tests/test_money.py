"""Money is exact: amounts parse to Decimal(18, 2), sums and per-capita figures are exact and rounded once
(half-up, to the fen), rules compare exactly, and the same drop publishes byte-identical files on every run."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dibao.errors import ConfigError
from dibao.ingest import ingest_drop
from dibao.ingest.parse import parse_money
from dibao.link import link_persons, person_records
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.rules import decide, load_parameters, load_rules
from dibao.rules.evaluate import evaluate_rules
from dibao.rules.params import DEFAULT_PARAMETERS_PATH
from dibao_synth import generate
from tests.conftest import make_id, write_csv
from tests.test_rule_cases import _facts

Build = Callable[..., Path]
RUN = dt.date(2026, 11, 20)
FEN = Decimal("0.01")
BANK_HEADERS = ["证件号码", "姓名", "金融机构", "余额", "查询日期"]
_DECIMALS = re.compile(r"\d\.(\d+)")


def money(*texts: str | None) -> tuple[list[Decimal | None], list[str | None]]:
    value, fault = parse_money(pl.Series(list(texts), dtype=pl.String))
    assert value.dtype == pl.Decimal(18, 2)
    return value.to_list(), fault.to_list()


# --- parsing -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("1200", "1200.00"), ("1200.5", "1200.50"), ("￥1200", "1200.00"), ("¥1,200.00", "1200.00"),
    ("1200元", "1200.00"), ("1.2万", "12000.00"), ("1.2万元", "12000.00"), ("RMB 1200", "1200.00"),
    ("rmb1200", "1200.00"), ("人民币1,200元", "1200.00"), ("１２００", "1200.00"), ("１，２００．５０", "1200.50"),
    ("12,345,678.9", "12345678.90"), (" 1 200 ", "1200.00"), ("'1200", "1200.00"), ("\u202d1200\u202c", "1200.00"),
    ("0.30000000000000004", "0.30"), ("1e3", "1000.00"), ("1.23456789万", "12345.68"), (".5", "0.50"),
    ("5.", "5.00"), ("+5", "5.00"), ("9999999999999999.99", "9999999999999999.99"),
])
def test_money_spellings_parse_exactly(text: str, expected: str) -> None:
    assert money(text) == ([Decimal(expected)], [None])


@pytest.mark.parametrize(("text", "expected"), [
    ("12.345", "12.35"), ("12.3449", "12.34"), ("12.3450001", "12.35"), ("1.005", "1.01"), ("2.675", "2.68"),
    ("0.005", "0.01"), ("0.004999", "0.00"), ("12.995", "13.00"), ("1.2345e1", "12.35"), ("-0.001", "0.00"),
])
def test_more_than_two_decimals_round_half_up_to_the_fen(text: str, expected: str) -> None:
    """A float would give 1.00 for 1.005 and 2.67 for 2.675; the text is rounded, not its binary neighbour."""
    assert money(text) == ([Decimal(expected)], [None])


@pytest.mark.parametrize(("text", "fault"), [
    ("12O0", "not_a_number"), ("一千二", "not_a_number"), ("1,5", "not_a_number"), ("1.2.3", "not_a_number"),
    ("NaN", "not_a_number"), ("inf", "not_a_number"), ("万", "not_a_number"), ("元", "not_a_number"),
    ("-", "not_a_number"), ("1e20", "not_a_number"), ("-350", "negative_amount"), ("-￥5", "negative_amount"),
    ("-0.005", "negative_amount"),
])
def test_what_is_not_an_amount_stays_a_fault(text: str, fault: str) -> None:
    assert money(text)[1] == [fault]


def test_blank_is_no_fault_of_the_parser() -> None:
    assert money(None) == ([None], [None])


_FULL_WIDTH = str.maketrans("0123456789.,", "０１２３４５６７８９．，")
_SPELLINGS: list[Callable[[Decimal], str]] = [
    lambda v: f"{v:f}", lambda v: f"{v:,f}", lambda v: f"￥{v:f}", lambda v: f"¥{v:,f}", lambda v: f"{v:f}元",
    lambda v: f"RMB {v:f}", lambda v: f"人民币{v:,f}元", lambda v: f"{v.scaleb(-4):f}万",
    lambda v: f"{v.scaleb(-4):f}万元", lambda v: f"{v:,f}".translate(_FULL_WIDTH), lambda v: f" {v:f} ",
    lambda v: f"{v:E}",
]


@st.composite
def _written(draw: st.DrawFn) -> tuple[str, Decimal]:
    places = draw(st.integers(0, 6))
    units = draw(st.integers(0, 10**13))
    value = Decimal(units).scaleb(-places)
    return draw(st.sampled_from(_SPELLINGS))(value), value.quantize(FEN, rounding=ROUND_HALF_UP)


@settings(max_examples=150, deadline=None)
@given(st.lists(_written(), min_size=1, max_size=30))
def test_every_spelling_parses_to_the_exact_value_rounded_half_up(cases: list[tuple[str, Decimal]]) -> None:
    """One column mixing clean values (the one fast cast) and messy ones (the clean-up on the rows that failed)."""
    values, faults = money(*(text for text, _ in cases))
    assert faults == [None] * len(cases)
    assert values == [expected for _, expected in cases], [text for text, _ in cases]


# --- exact sums, rounding once, exact comparisons -------------------------------------------------------------


def _bank_rows() -> list[list[str]]:
    zhang, li, wang = make_id(seq="111"), make_id(birth="19820304", seq="222"), make_id(birth="19700505", seq="342")
    tenths = ["0.10", "￥0.1", "0.1元", "RMB 0.10", "０.１", "¥0.10", "0.1", " 0.10 ", "0.10元", "人民币0.1"]
    rows = [[zhang, "张伟", f"银行{i}", t, "2026-11-01"] for i, t in enumerate(tenths)]  # 0.1 × 10: 1.00, not 0.99…
    rows.append([li, "李丽", "银行A", '"1,000.05"', "2026-11-01"])
    # 18239.7 + 0.1 + 0.1 + 0.1 is 18239.999999999996 in floats; exactly 24 × 760 = 18240 in yuan.
    rows += [[wang, "王芳", f"信用社{i}", t, "2026-11-01"] for i, t in enumerate(["18239.70", "0.10", "0.10", "0.10"])]
    return rows


def test_sums_are_exact_and_per_capita_figures_round_once_half_up(drop: Build) -> None:
    folder = drop(bank_assets=lambda f: write_csv(f / "bank_assets.csv", BANK_HEADERS, _bank_rows()))
    ingested = ingest_drop(folder)
    assert ingested.files["bank_assets"].rejected.height == 0
    parameters = load_parameters()
    decided = decide(ingested, link_persons(person_records(ingested)).links, RUN, parameters, load_rules(parameters))
    facts = decided.facts
    assert facts.schema["financial_assets"] == pl.Float64 and facts.schema["per_capita_assets"] == pl.Float64
    h001 = facts.filter(pl.col("subject_id") == "H001").row(0, named=True)
    assert h001["financial_assets"] == 1001.05  # 1.00 + 1000.05
    assert h001["per_capita_assets"] == 500.53  # 1001.05 / 2 = 500.525, half-up (a float division gives 500.52)
    roll = facts.filter(pl.col("subject_type") == "roll").row(0, named=True)
    assert roll["financial_assets"] == 18240.0 and roll["per_capita_assets"] == 18240.0
    # the boundary is met exactly: assets at 24 × the standard fail the asset test
    exit_row = decided.exit_candidates.row(0, named=True)
    assert "assets_above_limit" in exit_row["reasons"]
    figures = json.loads(exit_row["figures"])["assets_above_limit"]
    assert figures["per_capita_assets"] == 18240.0 and figures["financial_assets"] == 18240.0
    assert "人均金融资产=18240；" in exit_row["detail"] and "低保标准=760" in exit_row["detail"]
    for text in [*decided.decisions["figures"], *decided.decisions["detail"], *decided.decisions["parameters"]]:
        assert all(len(d) <= 2 for d in _DECIMALS.findall(text)), text


@pytest.mark.parametrize(("expr", "expected"), [
    ("fen_div(1001.05::DECIMAL(38, 2), 2)", "500.53"), ("fen_div(-1001.05::DECIMAL(38, 2), 2)", "-500.53"),
    ("fen_div(200::DECIMAL(18, 2), 3)", "66.67"), ("fen_div(100::DECIMAL(18, 2), 3)", "33.33"),
    ("fen_div(4567.89::DECIMAL(18, 2) * (1 - 0.2::DECIMAL(38, 6)), 12)", "304.53"),  # 3654.312 / 12 = 304.526
    ("fen(2.675::DECIMAL(38, 8))", "2.68"), ("fen(1785.125::DECIMAL(38, 8))", "1785.13"),
])
def test_the_rounding_rule_in_sql(expr: str, expected: str) -> None:
    from dibao.rules.facts import _MACROS

    con = duckdb.connect()
    try:
        con.execute(_MACROS)
        assert con.sql(f"SELECT {expr}").fetchall() == [(Decimal(expected),)]
    finally:
        con.close()


@settings(max_examples=300, deadline=None)
@given(units=st.integers(-(10**20), 10**20) | st.integers(-(10**16), 10**16) | st.integers(-(10**9), 10**9),
       divisor=st.integers(1, 10**10) | st.integers(1, 40))
def test_fen_and_fen_div_round_half_up_exactly_on_either_path(units: int, divisor: int) -> None:
    """The 64-bit fast path (a household's amounts) and the 128-bit path (anything larger) round alike: half-up,
    ties away from zero, as exact decimal arithmetic would."""
    from dibao.rules.facts import _MACROS

    amount = Decimal(units).scaleb(-8)  # ≤ 8 decimals, up to 10^12 yuan
    with localcontext() as exact:
        exact.prec = 80
        expected_div = (amount / divisor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        expected = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    con = duckdb.connect()
    try:
        con.execute(_MACROS)
        got = con.execute("SELECT fen($x::DECIMAL(38, 8)), fen_div($x::DECIMAL(38, 8), $d::BIGINT)",
                          {"x": str(amount), "d": divisor}).fetchone()
    finally:
        con.close()
    assert got == (expected, expected_div)


def test_a_household_tie_on_assistance_type_goes_to_the_head(drop: Build) -> None:
    """Two members, one 低保 and one 特困供养: the 户主's value, on every run (``mode`` would pick either)."""
    spouse = ["340402", "洛河镇", "新庄村", "DB001", "李丽", make_id(birth="19820304", seq="222"), "配偶", "农村",
              "低保", "420", "2023-05-01", "300", "2"]
    head = ["340402", "洛河镇", "新庄村", "DB001", "王芳", make_id(birth="19700505", seq="342"), "户主", "农村",
            "特困供养", "420", "2023-05-01", "300", "2"]
    from tests.conftest import ROLL_HEADERS

    folder = drop(dibao_roll=lambda f: write_csv(f / "dibao_roll.csv", ROLL_HEADERS, [spouse, head]))
    ingested = ingest_drop(folder)
    parameters = load_parameters()
    links = link_persons(person_records(ingested)).links
    for _ in range(3):
        facts = decide(ingested, links, RUN, parameters, load_rules(parameters)).facts
        assert facts.filter(pl.col("subject_type") == "roll")["assistance_type"].to_list() == ["特困供养"]


def test_rules_compare_exactly() -> None:
    """0.6 × 1025.9 is 615.54; in floats it is 615.5400000000001, and 615.54 ≥ it would be false."""
    parameters = load_parameters()
    rules = load_rules(parameters)
    facts = _facts({"subject_type": "household", "covered": False, "per_capita_income": 1200,
                    "per_capita_income_year": 14400, "gross_income": 1025.9, "rigid_spending": 615.54})
    params = parameters.resolve(RUN, facts["county_code"].to_list())
    assert "rigid_spending_hardship" in set(evaluate_rules(facts, params, rules, parameters)["rule_id"])


def test_parameters_with_more_than_six_decimals_are_refused(tmp_path: Path) -> None:
    text = DEFAULT_PARAMETERS_PATH.read_text(encoding="utf-8")
    assert "value: 0.20}" in text
    path = tmp_path / "parameters.yaml"
    path.write_text(text.replace("value: 0.20}", "value: 0.1234567}", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"employment_cost_share.*at most 6 decimals"):
        load_parameters(path)


# --- repeatability -----------------------------------------------------------------------------------------------


def test_the_same_drop_publishes_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five runs of one generated drop, DuckDB on 4 threads: the same content hash and the same bytes."""
    connect = duckdb.connect

    def threaded(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        con = connect(*args, **kwargs)  # type: ignore[arg-type]
        con.execute("SET threads = 4")
        return con

    monkeypatch.setattr(duckdb, "connect", threaded)
    generate(households=3000, seed=20261120, out=tmp_path / "drop", as_of=RUN)
    runs = [run_daily(tmp_path / "drop", RUN, RunStore(tmp_path / f"store{i}")) for i in range(5)]
    hashes = {r.manifest["content_sha256"] for r in runs}
    assert len(hashes) == 1, hashes
    names = sorted(p.name for p in runs[0].folder.glob("*.parquet"))
    assert len(names) == len(runs[0].manifest["files"]) >= 12
    for name in names:
        first = (runs[0].folder / name).read_bytes()
        assert all((r.folder / name).read_bytes() == first for r in runs[1:]), name
    decisions = pl.read_parquet(runs[0].folder / "decisions.parquet")
    for text in [*decisions["figures"], *decisions["detail"]]:
        assert all(len(d) <= 2 for d in _DECIMALS.findall(text)), text
