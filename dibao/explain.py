"""Why was this household flagged? ``dibao explain``: one household (or person) across systems, from a published
run — the household view of ``dibao.publish.household``, the same the API serves, with the run's history.

The caseworker types an ID number (15 or 18 digits, any formatting) or a household number of any system; only the
cross-walk groups that query reaches are loaded (with their lists in every earlier run), so one lookup does not
read the whole run into memory.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dibao.errors import DibaoError
from dibao.publish.household import Family, Query, load_family
from dibao.publish.store import RunStore
from dibao.rules.catalog import FACT_LABELS


class NotFound(DibaoError):
    """Nothing in the run matches the number asked for."""

    exit_code = 4


def explain(run: Path, query: str) -> Family:
    """Everything the run ``STORE/runs/YYYY-MM-DD`` knows about the household(s) of ``query``.

    Raises ``NotFound`` (saying what is wrong with a malformed ID number) when nothing matches.
    """
    date = dt.date.fromisoformat(run.name)
    parsed = Query.parse(query)
    index, found = load_family(RunStore(run.parent.parent), date, parsed)
    if not found.gids:
        fault = parsed.fault()
        if fault is not None:
            raise NotFound(f"{query!r} 不是可用的证件号码 (is not a usable ID number): {fault[1]}")
        raise NotFound(f"运行 {run.name} 中没有该家庭或人员 (no household or person {query!r} in the run {run.name})")
    return Family(query, date, found.matched_by, found.person_key, index.family(found.gids))


def fact_label(name: str) -> str:
    return FACT_LABELS.get(name, name)


def figure_text(value: object) -> str:
    """A figure as a caseworker reads it."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)
