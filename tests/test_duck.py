"""How the run opens DuckDB (``dibao/duck.py``): bounded memory, and tables handed to Polars without two copies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dibao import duck


def test_the_default_memory_limit_leaves_room_for_the_runs_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIBAO_DUCKDB_MEMORY", raising=False)
    limit_mib = int(duck.default_memory_limit().removesuffix("MB"))
    assert 0 < limit_mib <= 2560  # with the Polars frames, a 2M day stays under 6 GiB (dibao/duck.py)
    monkeypatch.setenv("DIBAO_DUCKDB_MEMORY", "2GB")
    assert duck.default_memory_limit() == "2GB"


def test_a_taken_table_is_what_duckdb_held_and_the_connection_is_closed(tmp_path: Path) -> None:
    duck.configure(tmp_path / "spill")
    try:
        con = duck.connect()
        con.execute("""CREATE TEMP TABLE facts AS SELECT * FROM (VALUES
            ('roll:1', 1, 1234.56::DECIMAL(18, 2), DATE '2026-11-20', ['bank', 'car'], NULL::VARCHAR),
            ('roll:2', 2, 0.10::DECIMAL(18, 2), NULL, [], '张三')) t(household, persons, income, since, kinds, head)""")
        expected = con.sql("SELECT * FROM facts").pl()
        taken = duck.take_table(con, "facts")
        assert taken.equals(expected) and taken.schema == expected.schema
        assert taken["income"].to_list() == [Decimal("1234.56"), Decimal("0.10")]  # money stays exact
        assert taken["since"].to_list() == [dt.date(2026, 11, 20), None]
        with pytest.raises(duckdb.ConnectionException):
            con.execute("SELECT 1")
        assert list((tmp_path / "spill").iterdir()) == []  # the scratch file is gone
    finally:
        duck.configure(None)
