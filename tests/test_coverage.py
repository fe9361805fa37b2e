"""Coverage-rate statistics: hand-countable numbers at county, city and province level, with references."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from dibao.errors import ConfigError
from dibao.pipeline import run_daily
from dibao.publish.coverage import load_coverage_config
from dibao.publish.store import RunStore


def _rate(table: pl.DataFrame, level: str, area: str, measure: str) -> tuple[float, float, float]:
    row = table.filter((pl.col("level") == level) & (pl.col("area_code") == area) & (pl.col("measure") == measure))
    assert row.height == 1, (level, area, measure)
    return row["numerator"][0], row["denominator"][0], row["rate"][0]


def test_coverage_counts_persons_and_aggregates_levels(drop: Callable[..., Path], tmp_path: Path) -> None:
    # conftest's drop: registry 张伟, 李丽 (H001) and 王芳 (H002); 王芳 is on the rural 低保 roll; 340402 has
    # a rural household-register population of 120,000.
    result = run_daily(drop(), dt.date(2026, 11, 20), RunStore(tmp_path / "store"))
    table = pl.read_parquet(result.folder / "coverage.parquet")
    for level, area in (("county", "340402"), ("city", "340400"), ("province", "340000")):
        assert _rate(table, level, area, "rural_dibao_coverage") == (1.0, 120000.0, pytest.approx(1 / 120000))
        assert _rate(table, level, area, "escaped_poverty_covered_share") == (1.0, 3.0, pytest.approx(1 / 3))
    national = table.filter(pl.col("measure") == "rural_dibao_coverage")["reference_rate"].unique().to_list()
    assert national == [0.044]
    assert set(table["area_name"].drop_nulls()) >= {"大通区", "淮南市", "安徽省"}
    exits = pl.read_parquet(result.folder / "exit_candidates.parquet").height
    num, den, rate = _rate(table, "county", "340402", "exit_candidates_per_10k")
    assert (num, den) == (exits, 1.0) and rate == pytest.approx(exits * 10000)


def test_an_unknown_reference_measure_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "coverage.yaml"
    path.write_text("version: 1\nreference_rates:\n  rural_coverage: {rate: 0.04, label: x, source: y}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"reference_rates\.rural_coverage: unknown measure"):
        load_coverage_config(path)
