"""The daily run end to end on a generated drop: contract columns, accuracy against truth, explanations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from benchmarks.accuracy import score
from dibao.cli import app
from dibao.pipeline import RunResult, run_daily
from dibao.publish.store import RunStore
from dibao_synth import generate

RUN_DATE = dt.date(2026, 11, 20)
CONTRACT = {
    "person_links.parquet": {"source", "row", "person_key", "method", "score"},
    "exit_candidates.parquet": {"dibao_household_id", "county_code", "reasons", "figures", "first_seen",
                                "grace_until"},
    "inclusion_candidates.parquet": {"household_id", "source", "county_code", "reasons", "figures", "first_seen"},
    "flags.parquet": {"subject_type", "subject_id", "county_code", "code", "detail"},
    "rejected.parquet": {"source", "row", "field", "value", "reason"},
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    root = tmp_path_factory.mktemp("e2e")
    generate(households=1500, seed=20261120, out=root / "drop", truth_out=root / "truth", as_of=RUN_DATE)
    return run_daily(root / "drop", RUN_DATE, RunStore(root / "store")), root / "truth"


def test_every_published_file_has_the_contract_columns(published: tuple[RunResult, Path]) -> None:
    result, _ = published
    for name, columns in CONTRACT.items():
        frame = pl.read_parquet(result.folder / name)
        assert columns <= set(frame.columns), name
    links = pl.read_parquet(result.folder / "person_links.parquet")
    records = sum(f.accepted.height for s, f in result.drop.files.items()
                  if s in ("registry", "monitoring", "dibao_roll", "bank_assets", "dept_facts"))
    assert links.height == records  # every person-level record is linked (or given an internal key)


def test_decisions_are_accurate_against_the_truth(published: tuple[RunResult, Path]) -> None:
    result, truth = published
    results = score(result.folder, truth)
    for name in ("exit (应退尽退)", "inclusion (应保尽保)"):
        assert results[name]["true"] > 10, name
        assert results[name]["precision"] >= 0.98, (name, results[name])
        assert results[name]["recall"] >= 0.98, (name, results[name])


def test_explain_a_flagged_household_and_a_person(published: tuple[RunResult, Path]) -> None:
    result, _ = published
    exits = pl.read_parquet(result.folder / "exit_candidates.parquet")
    household = exits.filter(pl.col("reasons").list.contains("income_above_standard"))["dibao_household_id"][0]
    store = str(result.folder.parent.parent)
    out = CliRunner().invoke(app, ["explain", household, "--store", store])
    assert out.exit_code == 0, out.output
    assert "收入超过低保标准" in out.output and "低保标准" in out.output and "依据" in out.output
    assert "渐退帮扶期至" in out.output
    # what the API's /households shows, too: the head, the 渐退 start, the lists in every run
    row = exits.filter(pl.col("dibao_household_id") == household).row(0, named=True)
    assert f"户主 {row['head_name']}" in out.output and f"自 {row['grace_start']} 起" in out.output
    assert "历次名单" in out.output and f"{RUN_DATE}  应退尽退：" in out.output
    person = pl.read_parquet(result.folder / "person_links.parquet").filter(
        pl.col("method") == "repaired_id")["person_key"][0]
    messy = f" {person[:6]} {person[6:14]} {person[14:].lower()} "
    out = CliRunner().invoke(app, ["explain", messy, "--store", store])
    assert out.exit_code == 0 and person in out.output and "证件号纠错" in out.output
    out = CliRunner().invoke(app, ["explain", "nothing-like-this", "--store", store])
    assert out.exit_code == 4 and "no household or person" in out.output


def test_work_lists_open_with_the_four_sheets_and_text_ids(published: tuple[RunResult, Path]) -> None:
    import fastexcel

    result, _ = published
    exits = pl.read_parquet(result.folder / "exit_candidates.parquet")
    county = exits["county_code"][0]
    workbook = next((result.folder / "worklists").glob(f"{county}_*.xlsx"))
    reader = fastexcel.read_excel(workbook)
    assert reader.sheet_names == ["应退尽退", "应保尽保", "其他核查", "今日变化"]
    sheet = reader.load_sheet("应退尽退", schema_sample_rows=None, dtype_coercion="strict").to_polars()
    assert sheet.schema["户主证件号码"] == pl.String and sheet.schema["低保家庭编号"] == pl.String
    expected = set(exits.filter(pl.col("county_code") == county)["head_id"].drop_nulls())
    assert set(sheet["户主证件号码"].drop_nulls()) == expected
    assert (result.folder / "worklists" / "全省汇总.xlsx").is_file()
