"""One way to open DuckDB for the run: bounded memory and a spill folder, so a province-sized day never grows past
what the machine has (DuckDB spills its joins and aggregates to disk instead).

``configure`` is called once by the daily run with a folder inside the store's temporary area; every stage opens
its connection with ``connect``. The memory limit is ``DIBAO_DUCKDB_MEMORY`` (e.g. ``2GB``) if set, else a quarter
of the machine's memory, at most 2.5 GiB; threads are the machine's cores.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

# At 2 million households the rules' fact steps hold DuckDB at its limit: 4 GiB put the run at 6.0 GiB, 3 GiB at
# 5.1 GiB, in the same time (73.6 s and 75.3 s; benchmarks/README.md, "seventh session"). On numbered keys (ninth
# session) the steps fit in 3 GiB without spilling and the rules stage peaked at 6.24 GiB; at 2.5 GiB 5.72 GiB, in
# the same time (46.2 s and 46.5 s, one run each, back to back; 2 GiB: 5.29 GiB, 49.8 s).
_MAX_DEFAULT = 2560 * 1024**2
_settings: dict[str, str] = {}


def default_memory_limit() -> str:
    """A quarter of physical memory, at most 2.5 GiB (the rest is for Polars frames and the OS cache)."""
    configured = os.environ.get("DIBAO_DUCKDB_MEMORY")
    if configured:
        return configured
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 16 * 1024**3
    return f"{min(total // 4, _MAX_DEFAULT) // 1024**2}MB"


def configure(spill: Path | None, memory_limit: str | None = None) -> None:
    """Set the memory limit and spill folder for the connections opened after this."""
    _settings.clear()
    _settings["memory_limit"] = memory_limit or default_memory_limit()
    if spill is not None:
        spill.mkdir(parents=True, exist_ok=True)
        _settings["temp_directory"] = str(spill)


@contextmanager
def configured(spill: Path) -> Iterator[None]:
    """``configure`` for the length of a run; afterwards the defaults again, so that nothing later (another run,
    a test) spills to or writes scratch files in a folder the run has removed."""
    configure(spill)
    try:
        yield
    finally:
        _settings.clear()


def _sql_path(path: Path) -> str:
    """``path`` as a single-quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the run's limits (defaults if ``configure`` was not called)."""
    con = duckdb.connect()
    settings = _settings or {"memory_limit": default_memory_limit()}
    for name, value in settings.items():
        con.execute(f"SET {name} = '{value}'")
    con.execute("SET enable_progress_bar = false")  # the run shows its own progress; DuckDB's would garble it
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """Make a Polars frame readable as table ``name`` without copying its text.

    Handing DuckDB the frame itself converts its strings to classic Arrow strings (a copy of every text column:
    about 4 GiB for a province's drop); Arrow string views, which DuckDB reads as they are, cost nothing.
    """
    con.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))


def register_file(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """Make a Parquet file readable as view ``name``: DuckDB reads only the columns and row groups a query needs,
    streaming, within its memory limit (a spilled input file is never loaded whole)."""
    con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet({_sql_path(path)})')


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A folder for a stage's intermediate files, removed afterwards: inside the run's spill folder when
    ``configure`` set one (the store's disk), else a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="scratch-", dir=_settings.get("temp_directory")))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def take_table(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """Table ``table`` as a Polars frame, and the connection closed.

    ``.pl()`` builds the frame while DuckDB still holds the table: both at once were the rules stage's peak at
    province scale (+1.3 GiB for 2.2 million households' facts). The table goes through a Parquet file instead,
    and DuckDB lets go of everything before the frame is read."""
    with scratch_folder() as folder:
        path = folder / f"{table}.parquet"
        con.execute(f'COPY "{table}" TO {_sql_path(path)} (FORMAT parquet, COMPRESSION uncompressed)')
        con.close()
        return pl.read_parquet(path)
