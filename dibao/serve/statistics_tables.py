"""/counts, /coverage and /coverage/trend without singling anyone out: who sees exact figures, which cells add up
to which totals, and the suppressed rows the API answers with (``suppression`` does the choosing).

Who sees what (configurable, ``DisclosurePolicy``):

* ``admin`` — exact figures everywhere (``DIBAO_API_EXACT_ROLES``, default ``admin``, names the roles that do);
* ``caseworker`` — exact figures of their own counties (they read those households' lists anyway), the rest
  suppressed; the suppression is chosen with their counties' cells as published, so their own figures cannot
  be subtracted from a total to give a neighbour's small cell back;
* ``analyst`` — every cell with ``0 < value < DIBAO_API_MIN_CELL`` (default 5) withheld, plus the complementary
  cells that keep it from being worked out from totals.

The tables (assumed-known totals in brackets):

* /counts, per list: county × reason cells, every cell of a county that is on the list and a reason the list has
  (an empty cell may be withheld as a complement); groups: each county's row [its list size, published per
  county elsewhere], each reason's column [the province's count per reason], the whole list [``/runs``].
* /coverage: one cell per quantity and area — numerators and denominators; the two per-10,000 measures share
  their denominator (covered persons), so it is one cell; groups: a city's counties [the city's cell], a province's
  cities [the province's cell], and for the exit and inclusion numerators the provinces [``/runs`` list sizes].
  A rate is withheld when its numerator or denominator is.

Each run is suppressed on its own (the same rule every date; ``/coverage/trend`` is the per-date tables side by
side), so a cell small on either of two dates is withheld on that date.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl

from dibao.errors import ConfigError
from dibao.publish.contract import COVERAGE_SCHEMA
from dibao.serve.suppression import Group, suppress
from dibao.serve.tokens import ROLES, Principal

log = logging.getLogger("dibao.api")
T = TypeVar("T")

ENV_MIN_CELL = "DIBAO_API_MIN_CELL"
ENV_EXACT_ROLES = "DIBAO_API_EXACT_ROLES"
DEFAULT_MIN_CELL = 5
DEFAULT_EXACT_ROLES = frozenset({"admin"})

# The quantity behind each coverage measure's numerator and denominator: one quantity, one cell, one decision.
QUANTITIES: dict[str, tuple[str, str]] = {
    "rural_dibao_coverage": ("rural_dibao_persons", "rural_population"),
    "escaped_poverty_covered_share": ("escaped_poverty_covered", "escaped_poverty_persons"),
    "monitored_covered_share": ("monitored_covered", "monitored_persons"),
    "edge_covered_share": ("edge_covered", "edge_persons"),
    "exit_candidates_per_10k": ("exit_households", "covered_persons"),
    "inclusion_candidates_per_10k": ("inclusion_households", "covered_persons"),
}
STORE_TOTALS = frozenset({"exit_households", "inclusion_households"})  # /runs publishes these store-wide


@dataclass(frozen=True)
class DisclosurePolicy:
    """How small a published figure may be, and which roles see exact figures everywhere."""

    threshold: int = DEFAULT_MIN_CELL
    exact_roles: frozenset[str] = DEFAULT_EXACT_ROLES

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> DisclosurePolicy:
        env = os.environ if environ is None else environ
        text = env.get(ENV_MIN_CELL, "").strip()
        try:
            threshold = int(text) if text else DEFAULT_MIN_CELL
        except ValueError:
            raise ConfigError(f"{ENV_MIN_CELL}={text!r}: expected a whole number (default {DEFAULT_MIN_CELL})") \
                from None
        if threshold < 1:
            raise ConfigError(f"{ENV_MIN_CELL}={text!r}: must be at least 1 (1 publishes every figure)")
        roles_text = env.get(ENV_EXACT_ROLES)
        roles = DEFAULT_EXACT_ROLES if roles_text is None else \
            frozenset(r.strip() for r in roles_text.split(",") if r.strip())
        unknown = sorted(roles - set(ROLES))
        if unknown:
            raise ConfigError(f"{ENV_EXACT_ROLES}: unknown role {', '.join(unknown)} (known: {', '.join(ROLES)})")
        return cls(threshold, roles)

    def exact_counties(self, who: Principal) -> frozenset[str] | None:
        """None: every figure exact; else the counties whose figures are exact (a caseworker's own)."""
        if who.role in self.exact_roles:
            return None
        return who.counties if who.role == "caseworker" else frozenset()


# --- /counts ---------------------------------------------------------------------------------------------------


def count_rows(lists: Mapping[str, pl.DataFrame]) -> list[dict[str, Any]]:
    """How many households each list holds per county and reason (flags: findings per code), exact."""
    rows: list[dict[str, Any]] = []
    for name, frame in lists.items():
        if not frame.width or not frame.height:
            continue
        if name == "flag":
            exploded = frame.select("county_code", pl.col("code").alias("reason"),
                                    pl.col("label").alias("reason_label"))
        else:
            exploded = frame.select("county_code", pl.col("reasons").alias("reason"),
                                    pl.col("reason_labels").alias("reason_label")).explode("reason", "reason_label")
        grouped = exploded.group_by("county_code", "reason", "reason_label").len("count").sort(
            "county_code", "reason", nulls_last=True)
        rows.extend({**r, "list": name, "suppressed": False} for r in grouped.to_dicts())
    return rows


def _county_order(code: str | None) -> tuple[bool, str]:
    return (code is None, code or "")


def suppress_counts(rows: Sequence[dict[str, Any]], threshold: int,
                    exact: frozenset[str] | None) -> list[dict[str, Any]]:
    """``count_rows`` with small cells and their complements withheld (``count`` null, ``suppressed`` true).

    A withheld empty cell (a complement) appears as a row of its own; published empty cells stay absent."""
    if exact is None:
        return [dict(r) for r in rows]
    result: list[dict[str, Any]] = []
    for name in dict.fromkeys(r["list"] for r in rows):
        part = [r for r in rows if r["list"] == name]
        counties = sorted({r["county_code"] for r in part}, key=_county_order)
        reasons = sorted({r["reason"] for r in part})
        labels = {r["reason"]: r["reason_label"] for r in part}
        cell = {(c, r): i for i, (c, r) in enumerate((c, r) for c in counties for r in reasons)}
        values = [0] * len(cell)
        for r in part:
            values[cell[(r["county_code"], r["reason"])]] += int(r["count"])
        groups = [Group(tuple(cell[(c, r)] for r in reasons)) for c in counties]
        groups += [Group(tuple(cell[(c, r)] for c in counties)) for r in reasons]
        groups.append(Group(tuple(range(len(values)))))
        fixed = {i for (c, _), i in cell.items() if c in exact}
        chosen = suppress(values, groups, threshold, fixed)
        if chosen.exposed:
            log.debug("counts %s: %d withheld cells follow from the caller's own counties", name, len(chosen.exposed))
        for (county, reason), i in cell.items():
            withheld = i in chosen.suppressed
            if values[i] or withheld:
                result.append({"county_code": county, "reason": reason, "reason_label": labels[reason],
                               "list": name, "count": None if withheld else values[i], "suppressed": withheld})
    return result


# --- /coverage -------------------------------------------------------------------------------------------------


def _parent(level: str, area: str) -> tuple[str, str] | None:
    """The level and area a county or city adds up into (as dibao/publish/coverage.py sums them)."""
    if level == "county":
        return "city", area[:4] + "00"
    if level == "city":
        return "province", area[:2] + "0000"
    return None


def suppress_coverage(frame: pl.DataFrame, threshold: int, exact: frozenset[str] | None) -> list[dict[str, Any]]:
    """coverage.parquet as API rows: a numerator or denominator below the threshold (and the complements that
    keep it from the levels above) withheld, with the rate; ``suppressed_fields`` names what was withheld."""
    rows = frame.to_dicts()
    if exact is None:
        return [{**r, "suppressed": False, "suppressed_fields": []} for r in rows]
    cells: dict[tuple[str, str, str], int] = {}
    values: list[float] = []

    def cell(quantity: str, level: str, area: str, value: float | None) -> int:
        key = (quantity, level, area)
        if key not in cells:
            cells[key] = len(values)
            values.append(value or 0.0)
        return cells[key]

    placed = []
    for r in rows:
        numerator, denominator = QUANTITIES.get(r["measure"], (f"{r['measure']}:n", f"{r['measure']}:d"))
        placed.append((cell(numerator, r["level"], r["area_code"], r["numerator"]),
                       cell(denominator, r["level"], r["area_code"], r["denominator"])))
    children: dict[int, list[int]] = {}
    provinces: dict[str, list[int]] = {}
    for (quantity, level, area), i in cells.items():
        parent = _parent(level, area)
        if parent is not None and (quantity, *parent) in cells:
            children.setdefault(cells[(quantity, *parent)], []).append(i)
        if level == "province" and quantity in STORE_TOTALS:
            provinces.setdefault(quantity, []).append(i)
    groups = [Group(tuple(members), total=total) for total, members in children.items()]
    groups += [Group(tuple(members)) for members in provinces.values()]
    fixed = {i for (_, level, area), i in cells.items() if level == "county" and area in exact}
    withheld = suppress(values, groups, threshold, fixed).suppressed
    result = []
    for r, (n, d) in zip(rows, placed, strict=True):
        fields = [name for name, i in (("numerator", n), ("denominator", d)) if i in withheld]
        if fields:
            fields.append("rate")
        result.append({**r, **dict.fromkeys(fields), "suppressed": bool(fields), "suppressed_fields": fields})
    return result


def coverage_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """``suppress_coverage`` rows as a frame (what the cache keeps: a year of daily runs stays small)."""
    schema = {**COVERAGE_SCHEMA, "suppressed": pl.Boolean(), "suppressed_fields": pl.List(pl.String())}
    return pl.DataFrame(list(rows), schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


# --- computed once per run and audience ------------------------------------------------------------------------


class Disclosure:
    """The policy, and the suppressed tables already computed (per run, run stamp and audience; the last
    ``keep``, enough for a year of daily runs for a few audiences — /coverage/trend reads every run)."""

    def __init__(self, policy: DisclosurePolicy | None = None, keep: int = 1024) -> None:
        self.policy = policy or DisclosurePolicy.from_environment()
        self.keep = keep
        self._lock = threading.Lock()
        self._done: OrderedDict[Hashable, Any] = OrderedDict()

    def rows(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                found: T = self._done[key]
                return found
        made = make()
        with self._lock:
            self._done[key] = made
            while len(self._done) > self.keep:
                self._done.popitem(last=False)
        return made
