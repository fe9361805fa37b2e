"""SQL as named steps (in the manner of Splink's CTE pipeline): each step builds one table from named inputs.

A step is readable on its own — its name says what the table holds, its inputs say what it reads — and the
pipeline refuses to run a step whose inputs are not yet there, so a reordering or a renamed table fails at once
naming the step instead of deep inside DuckDB. ``referenced_tables`` (sqlglot) lets a test check that every
step declares exactly what its SQL reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from dibao.errors import ConfigError


@dataclass(frozen=True)
class Step:
    """``CREATE TEMP TABLE name AS sql``, reading ``inputs`` (registered frames or earlier steps)."""

    name: str
    inputs: tuple[str, ...]
    sql: str
    why: str = ""


def referenced_tables(sql: str) -> set[str]:
    """The tables a SELECT reads (CTE names it defines itself excluded)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    defined = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if t.name and t.name not in defined}


def last_readers(steps: Iterable[Step]) -> dict[str, str]:
    """For each table a step makes: the name of the last step that reads it (itself, when none does)."""
    last: dict[str, str] = {}
    for step in steps:
        for name in step.inputs:
            if name in last:
                last[name] = step.name
        last[step.name] = step.name
    return last


def run_steps(con: duckdb.DuckDBPyConnection, steps: Iterable[Step], available: Iterable[str],
              parameters: Mapping[str, Any], keep: Collection[str] | None = None) -> None:
    """Run the steps in order; ``parameters`` fill ``$name`` placeholders where a step uses them.

    ``keep``: the tables wanted after the run. When given, every other table a step makes is dropped as soon as
    the last step reading it is done, so DuckDB holds the tables still to be read, not every intermediate one of
    the pipeline (at province scale they outgrew its memory limit and spilled). None keeps them all.
    """
    steps = tuple(steps)
    ready = set(available)
    release: dict[str, list[str]] = {}
    if keep is not None:
        for table, reader in last_readers(steps).items():
            if table not in keep:
                release.setdefault(reader, []).append(table)
    for step in steps:
        missing = [name for name in step.inputs if name not in ready]
        if missing:
            raise ConfigError(f"facts step {step.name!r} reads {', '.join(missing)}, which no earlier step makes")
        values = {k: v for k, v in parameters.items() if f"${k}" in step.sql}
        con.execute(f"CREATE TEMP TABLE {step.name} AS {step.sql}", values)
        ready.add(step.name)
        for table in release.get(step.name, ()):
            con.execute(f"DROP TABLE {table}")
            ready.discard(table)
