"""A run's typed input rows leave memory as each file is ingested (``ingest_drop(spill_to=…)``,
``IngestedFile.spill``): each later stage reads only the columns it needs from a Parquet file, and what it reads
is exactly what was ingested."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dibao.ingest import Drop, IngestedFile, ingest_drop
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao_synth import generate

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def drop_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spill") / "drop"
    generate(households=200, seed=3, out=out, as_of=DAY, formats="mixed")
    return out


def test_a_spilled_file_reads_back_exactly(drop_folder: Path, tmp_path: Path) -> None:
    before = {stem: f.accepted for stem, f in ingest_drop(drop_folder, run_date=DAY).files.items()}
    drop = ingest_drop(drop_folder, run_date=DAY, spill_to=tmp_path)
    con = duckdb.connect()
    for stem, f in drop.files.items():
        frame = before[stem]
        assert f.spilled == tmp_path / f"{stem}.parquet"
        assert f.in_memory.height == 0 and f.in_memory.schema == frame.schema  # nothing held, same shape
        assert f.rows_accepted == frame.height
        assert f.accepted.schema == frame.schema and f.accepted.equals(frame)
        some = frame.columns[:3]
        assert drop.scan(stem).select(some).collect().equals(frame.select(some))
        drop.register(con, stem)
        count = con.execute(f'SELECT count(*), count(DISTINCT "row") FROM "{stem}"').fetchone()
        assert count == (frame.height, frame["row"].n_unique())


def test_spilling_twice_or_into_a_copy_writes_nothing_more(drop_folder: Path, tmp_path: Path) -> None:
    roll = ingest_drop(drop_folder, run_date=DAY).files["dibao_roll"]
    copy = tmp_path / "copy.parquet"
    roll.accepted.write_parquet(copy)
    roll.spill(copy, written=True)
    assert roll.spilled == copy and roll.in_memory.height == 0  # pointed at, not written again
    roll.spill(tmp_path / "elsewhere.parquet")
    assert roll.spilled == copy and not (tmp_path / "elsewhere.parquet").exists()


def test_a_missing_file_scans_as_empty_rows_of_its_shape(drop_folder: Path, tmp_path: Path) -> None:
    drop = ingest_drop(drop_folder, run_date=DAY, spill_to=tmp_path)
    lacking = Drop(drop.folder, {s: f for s, f in drop.files.items() if s != "relatives"}, {}, [])
    assert lacking.scan("relatives").collect().height == 0
    assert "staff_id_norm" in lacking.scan("relatives").collect_schema()


@pytest.mark.parametrize("cache", [True, False])
def test_after_ingest_no_stage_loads_a_large_input_whole(drop_folder: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, cache: bool) -> None:
    """The stages read spilled inputs by column (``scan``, DuckDB views); only the small counties table is read
    whole. A stage reading ``accepted`` of a province's registry would bring its ~1.4 GiB back."""
    loads: Counter[str] = Counter()
    whole = IngestedFile.accepted.fget
    assert whole is not None

    def counted(self: IngestedFile) -> pl.DataFrame:
        if self.spilled is not None:
            loads[self.stem] += 1
        return whole(self)

    monkeypatch.setattr(IngestedFile, "accepted", property(counted))
    store = RunStore(tmp_path / "store")
    result = run_daily(drop_folder, DAY, store, cache=cache)
    assert set(loads) <= {"counties"}
    assert all(f.spilled is not None and f.in_memory.height == 0 for f in result.drop.files.values())
    if cache:  # the cache's own copy serves as the spill: the rows are not written a second time
        assert all((tmp_path / "store" / "cache") in f.spilled.parents for f in result.drop.files.values()
                   if f.spilled is not None)
    # The next day on the same files starts from the cache without reading any file's rows into memory.
    loads.clear()
    again = run_daily(drop_folder, DAY + dt.timedelta(days=1), store, cache=cache)
    assert set(loads) <= {"counties"}
    assert again.manifest["inputs"]["registry"]["rows_accepted"] == result.manifest["inputs"]["registry"][
        "rows_accepted"]
