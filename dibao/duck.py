"""One way to open DuckDB for the run: bounded memory and a spill folder, so a province-sized day never grows past
what the machine has (DuckDB spills its joins and aggregates to disk instead).

``configure`` is called once by the daily run with a folder inside the store's temporary area; every stage opens
its connection with ``connect``. The memory limit is ``DIBAO_DUCKDB_MEMORY`` (e.g. ``3GB``) if set, else a quarter
of the machine's memory, at most 4 GiB; threads are the machine's cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

_MAX_DEFAULT = 4 * 1024**3
_settings: dict[str, str] = {}


def default_memory_limit() -> str:
    """A quarter of physical memory, at most 4 GiB (the rest is for Polars frames and the OS cache)."""
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
    literal = str(path).replace("'", "''")
    con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet(\'{literal}\')')
