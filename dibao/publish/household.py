"""One household across systems, as ``dibao explain``, the API and the web pages show it — built here, once.

A caseworker types an ID number (15 or 18 digits, any formatting) or a household number of any system. The
answer is the family's cross-walk group(s) with every household in them: its head and place, its key facts, every
decision with the figures, the parameters in force and the policy reference, the 渐退 dates, each member record
with its link evidence, and the lists the household was on in every published run (``Family``, plain dataclasses,
unmasked: the service masks what a role may not see).

``FamilyIndex`` holds what that needs from one published run, indexed so that a lookup is a few slices:

* every cross-walk household group gets a number (``gid``); members, facts, decisions and history are sorted by
  it, with an offsets array, so a group's rows are one slice of each frame;
* ID numbers (the canonical 18-digit person_key) are kept as int64 in a sorted NumPy array, household numbers as
  a sorted byte-string array: ``searchsorted`` finds a query's groups in microseconds and little memory.

The service indexes the whole run once (``FamilyIndex.load``, in a child process) into files that every worker
maps (``dibao/publish/family_files.py``: the same frames and arrays, answered by the same methods); ``dibao explain``
loads only the groups the query can reach (``groups=``), through the same code, so both give the same answer.
Queries are read with ``dibao.normalise.ids`` (``looks_like_id``, ``usable_id_fast``, ``check_id(...).problem()``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from dibao.normalise.ids import IdStatus, check_id, looks_like_id, may_be_old_id, usable_id_fast
from dibao.normalise.text import clean_code
from dibao.publish.contract import (
    DECISIONS,
    EXIT_CANDIDATES,
    HOUSEHOLD_FACTS,
    HOUSEHOLD_KIND_LABELS,
    LIST_FILES,
    LIST_LABELS,
    LISTS,
    METHOD_LABELS,
    OUTCOME_LABELS,
    PERSON_LINKS,
    PublishedRun,
)
from dibao.publish.store import RunStore
from dibao.rules.catalog import CATALOG, FACT_LABELS
from dibao.rules.params import UNITS

# The facts shown for a household, in order.
HEADLINE_FACTS = ("county_code", "area", "members", "covered", "assistance_type", "coverage_mode", "family_basis",
                  "per_capita_income", "income_source", "income_basis", "excluded_income", "assessed_income",
                  "per_capita_assets", "vehicles", "exempt_vehicles", "homes", "active_businesses",
                  "deceased_members", "next_review_date", "monitoring_category", "risk_eliminated")

# A canonical ID number (18 characters; 15 for an old one), as person_key and head_id hold them.
ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]|[0-9]{15}")
_CANONICAL_18 = r"^[0-9]{17}[0-9X]$"


def is_id_number(value: str | None) -> bool:
    """Whether a stored value (a person_key, a head_id) is an ID number rather than an internal key or text."""
    return value is not None and ID_NUMBER.fullmatch(value) is not None


# --- the view --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    name: str
    label: str
    value: Any

    @property
    def words(self) -> Any:
        """The value as caseworkers read it: a coded fact in Chinese (收入口径 per_capita → 按来源家庭人均折算)."""
        return CATALOG.codes.get(self.name, {}).get(self.value, self.value) if isinstance(self.value, str) \
            else self.value


@dataclass(frozen=True)
class Parameter:
    """A parameter in force, as the decision read it."""

    value: Any
    from_: str | None  # in force since (``from`` in the published JSON)
    unit: str | None
    carried_forward: bool = False  # an expired yearly value used on (the parameter says carry_forward)

    @property
    def unit_label(self) -> str | None:
        return UNITS.get(self.unit, self.unit) if self.unit else None


@dataclass(frozen=True)
class Decision:
    code: str
    outcome: str
    label: str
    detail: str
    reference: str
    figures: dict[str, Any]
    parameters: dict[str, Parameter]
    due_date: dt.date | None = None  # when the finding falls due (a death's re-check, a review, an 18th birthday)

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS.get(self.outcome, self.outcome)


@dataclass(frozen=True)
class Member:
    """One input record of a household member, with how it was linked to a person."""

    name: str | None
    person_key: str
    source: str
    row: int
    method: str
    score: float | None
    evidence: list[str] | None
    id_status: str | None

    @property
    def id_number(self) -> str | None:
        return self.person_key if is_id_number(self.person_key) else None

    @property
    def method_label(self) -> str:
        return METHOD_LABELS.get(self.method, self.method)


@dataclass(frozen=True)
class ListEntry:
    """The household on one list of one run."""

    list_name: str  # exit | inclusion | flag
    reasons: list[str]
    reason_labels: list[str]
    first_seen: dt.date | None
    grace_until: dt.date | None

    @property
    def list_label(self) -> str:
        return LIST_LABELS.get(self.list_name, self.list_name)


@dataclass(frozen=True)
class HistoryDay:
    run_date: dt.date
    lists: tuple[ListEntry, ...]  # empty: on no list that day


@dataclass(frozen=True)
class Household:
    """One household of one system (the roll, the registry, monitoring), unmasked."""

    subject_type: str  # roll | household
    source: str
    household_id: str
    household_key: str  # source:number
    county_code: str | None
    town: str | None
    village: str | None
    head_name: str | None
    head_id: str | None
    facts: tuple[Fact, ...]
    first_seen: dt.date | None  # on the 应退尽退 list since
    grace_start: dt.date | None  # 渐退 grace period
    grace_until: dt.date | None
    decisions: tuple[Decision, ...]
    members: tuple[Member, ...]
    history: tuple[HistoryDay, ...]  # every published run up to this one, oldest first

    @property
    def kind_label(self) -> str:
        return HOUSEHOLD_KIND_LABELS.get(self.subject_type, self.subject_type)


@dataclass(frozen=True)
class Family:
    """The answer to one query: the households of the family across systems, in one run."""

    query: str
    run: dt.date
    matched_by: str  # id_number | household_id
    person_key: str | None  # the ID number asked for, normalised
    households: tuple[Household, ...]


# --- reading a query -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What a typed query can be: an ID number (its canonical form when usable), else a household number."""

    text: str
    looks_like_id: bool
    id_number: str | None

    @classmethod
    def parse(cls, query: str) -> Query:
        text = query.strip()
        id_like = looks_like_id(text)
        canonical = None
        if id_like:
            canonical = usable_id_fast(text)
            if canonical is None and may_be_old_id(text):
                checked = check_id(text)
                canonical = checked.id if checked.usable else None
        return cls(text, id_like, canonical)

    @cached_property
    def numbers(self) -> tuple[str, ...]:
        """The household numbers to try: as typed, then cleaned like a code and upper-cased when that differs."""
        relaxed = (clean_code(self.text) or "").upper()
        return (self.text, relaxed) if relaxed and relaxed != self.text else (self.text,)

    def fault(self) -> tuple[IdStatus, str] | None:
        """(status, what is wrong — Chinese with English beside) when the query is meant as an ID number but is
        not a usable one; None otherwise. Built with ``check_id`` (a Polars frame): ask only when nothing matched."""
        if not self.looks_like_id or usable_id_fast(self.text):
            return None
        checked = check_id(self.text)
        problem = checked.problem()
        return None if problem is None else (checked.status, problem)


@dataclass(frozen=True)
class Resolution:
    """What a query matched: the cross-walk groups (possibly none) and how."""

    query: Query
    matched_by: str  # id_number | household_id | none
    person_key: str | None
    gids: tuple[int, ...]


# --- history across runs ---------------------------------------------------------------------------------------

HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "household_key": pl.String(), "list": pl.String(),
    **{c: EXIT_CANDIDATES.schema[c] for c in ("reasons", "reason_labels", "first_seen", "grace_until")},
}
SPAN_SCHEMA: dict[str, pl.DataType] = {**HISTORY_SCHEMA, "key": pl.String(), "start": pl.Int32(), "end": pl.Int32()}
_LIST_ORDER = {name: i for i, name in enumerate(LISTS)}


def history_part(run: PublishedRun, keys: Iterable[str] | None = None) -> pl.DataFrame:
    """Which household was on which list of this run, with the reasons: one row per (household, list).

    ``keys``: only these households (``source:number``)."""
    wanted = None if keys is None else pl.Series(sorted(set(keys)), dtype=pl.String)

    def only(frame: pl.DataFrame) -> pl.DataFrame:
        return frame if wanted is None else frame.filter(pl.col("household_key").is_in(wanted.implode()))

    exits = run.read(LIST_FILES["exit"], ["dibao_household_id", "reasons", "reason_labels", "first_seen",
                                          "grace_until"])
    inclusions = run.read(LIST_FILES["inclusion"], ["household_id", "source", "reasons", "reason_labels",
                                                    "first_seen"])
    flags = run.read(LIST_FILES["flag"], ["subject_type", "subject_id", "source", "code", "label", "first_seen"])
    parts = [
        only(exits.select(
            (pl.lit("dibao_roll:") + pl.col("dibao_household_id")).alias("household_key"), pl.lit("exit").alias("list"),
            "reasons", "reason_labels", "first_seen", "grace_until")),
        only(inclusions.select(
            (pl.col("source") + pl.lit(":") + pl.col("household_id")).alias("household_key"),
            pl.lit("inclusion").alias("list"), "reasons", "reason_labels", "first_seen",
            pl.lit(None, dtype=pl.Date).alias("grace_until"))),
        only(flags.filter(pl.col("subject_type") != "person")
             .group_by((pl.col("source") + pl.lit(":") + pl.col("subject_id")).alias("household_key"),
                       maintain_order=True)
             .agg(pl.col("code").alias("reasons"), pl.col("label").alias("reason_labels"),
                  pl.col("first_seen").min())
             .select("household_key", pl.lit("flag").alias("list"), "reasons", "reason_labels", "first_seen",
                     pl.lit(None, dtype=pl.Date).alias("grace_until"))),
    ]
    return pl.concat(parts, how="diagonal_relaxed").select(list(HISTORY_SCHEMA)).cast(
        HISTORY_SCHEMA)  # type: ignore[arg-type]


def _span_key() -> pl.Expr:
    """What must stay the same for consecutive runs to form one span."""
    return pl.concat_str([
        pl.col("household_key"), pl.col("list"), pl.col("reasons").list.join("|"),
        pl.col("first_seen").cast(pl.String).fill_null(""), pl.col("grace_until").cast(pl.String).fill_null(""),
    ], separator="\x1f").alias("key")


def extend_spans(spans: pl.DataFrame, part: pl.DataFrame, index: int) -> pl.DataFrame:
    """Add run number ``index`` (``part``: its ``history_part``) to the spans of runs 0 … index − 1.

    A span is one household on one list with the same reasons over consecutive runs ``start`` … ``end``; a year
    of daily runs keeps one row per episode instead of one row per household per day.
    """
    keyed = part.with_columns(_span_key()).unique("key", keep="first")
    hit = keyed.select("key", pl.lit(True).alias("__hit"))
    open_now = spans.filter(pl.col("end") == index - 1).select("key")
    spans = spans.join(hit, on="key", how="left").with_columns(
        pl.when((pl.col("end") == index - 1) & pl.col("__hit").fill_null(False)).then(pl.lit(index, pl.Int32))
        .otherwise(pl.col("end")).alias("end")).drop("__hit")
    new = keyed.join(open_now, on="key", how="anti").with_columns(
        pl.lit(index, pl.Int32).alias("start"), pl.lit(index, pl.Int32).alias("end"))
    return pl.concat([spans, new.select(list(SPAN_SCHEMA))], how="vertical_relaxed").cast(
        SPAN_SCHEMA)  # type: ignore[arg-type]


def history_spans(store: RunStore, dates: Sequence[dt.date], keys: Iterable[str] | None = None) -> pl.DataFrame:
    """The spans of ``dates`` (oldest first), optionally of some households only."""
    keys = None if keys is None else list(keys)
    spans = pl.DataFrame(schema=SPAN_SCHEMA)
    for index, date in enumerate(dates):
        spans = extend_spans(spans, history_part(PublishedRun(store.run_dir(date)), keys), index)
    return spans


class HistorySpans:
    """Spans of list membership over the published runs, extended run by run as the service loads new runs.

    Runs are immutable, so the spans of runs already seen are reused; when an earlier run was replaced or removed
    (``--rebuild``) everything is rebuilt. ``runs``: (date, anything that changes when the run is replaced).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: tuple[tuple[dt.date, Hashable], ...] = ()
        self._spans = pl.DataFrame(schema=SPAN_SCHEMA)

    def upto(self, store: RunStore, runs: tuple[tuple[dt.date, Hashable], ...]) -> pl.DataFrame:
        with self._lock:
            if self._runs != runs[:len(self._runs)]:
                self._runs, self._spans = (), pl.DataFrame(schema=SPAN_SCHEMA)
            spans = self._spans
            for index in range(len(self._runs), len(runs)):
                spans = extend_spans(spans, history_part(PublishedRun(store.run_dir(runs[index][0]))), index)
            self._runs, self._spans = runs, spans
            return spans


# --- the index -------------------------------------------------------------------------------------------------


def id_as_int(canonical: str) -> int:
    """An 18-character ID as one int64: first 17 digits × 11 + check value (X = 10). Unique and order-free."""
    last = canonical[17]
    return int(canonical[:17]) * 11 + (10 if last == "X" else int(last))


def _id_int_expr(col: str) -> pl.Expr:
    last = pl.col(col).str.slice(17, 1)
    return (pl.col(col).str.slice(0, 17).cast(pl.Int64) * 11
            + pl.when(last == "X").then(pl.lit(10, pl.Int64)).otherwise(last.cast(pl.Int64, strict=False)))


def _number_expr(col: str) -> pl.Expr:
    """The household number of a ``source:number`` household."""
    return pl.col(col).str.split(":").list.last()


def _offsets(gids: np.ndarray, groups: int) -> np.ndarray:
    """Row offsets of each gid in a frame sorted by gid: rows of g are ``offsets[g]:offsets[g + 1]``."""
    counts = np.bincount(gids.astype(np.int64), minlength=groups) if len(gids) else np.zeros(groups, np.int64)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _slice(frame: pl.DataFrame, offsets: np.ndarray, gid: int) -> list[dict[str, Any]]:
    return frame.slice(int(offsets[gid]), int(offsets[gid + 1] - offsets[gid])).to_dicts()


_MEMBER_COLUMNS = ["source", "row", "person_key", "method", "score", "evidence", "id_status", "household",
                   "household_group", "name"]
_EXIT_COLUMNS = {"dibao_household_id": "__exit_id", "first_seen": "exit_first_seen",
                 "grace_start": "exit_grace_start", "grace_until": "exit_grace_until"}


def groups_of(run: PublishedRun, query: Query) -> list[str]:
    """The cross-walk groups a query can reach (its ID number, or any of its household numbers), found by a scan:
    what ``dibao explain`` loads instead of the whole run."""
    links = run.scan(PERSON_LINKS, ["person_key", "household", "household_group"])
    hit = _number_expr("household").is_in(list(query.numbers))
    if query.id_number is not None:
        hit = hit | (pl.col("person_key") == query.id_number)
    found = links.filter(hit).select(pl.col("household_group").drop_nulls().unique()).collect()
    return sorted(found["household_group"].to_list())


@dataclass(frozen=True)
class FamilyIndex:
    """Everything the household view needs from one run, indexed at load; never modified after it is built."""

    date: dt.date
    run_dates: tuple[dt.date, ...]  # published runs up to this one, oldest first (for household history)
    group_names: pl.Series
    members: pl.DataFrame
    member_offsets: np.ndarray
    facts: pl.DataFrame
    fact_offsets: np.ndarray
    decisions: pl.DataFrame
    decision_offsets: np.ndarray
    history: pl.DataFrame  # spans of list membership: run_dates[start] … run_dates[end]
    history_offsets: np.ndarray
    id_keys: np.ndarray
    id_gids: np.ndarray
    number_keys: np.ndarray
    number_gids: np.ndarray
    sizes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, run: PublishedRun, run_dates: Sequence[dt.date], spans: pl.DataFrame,
             groups: Sequence[str] | None = None) -> FamilyIndex:
        """Index one published run. ``spans``: the history of ``run_dates`` (``history_spans``); ``groups``: only
        these cross-walk groups (default: all)."""
        date = run.date
        if date is None:
            raise ValueError(f"{run.folder}: not a dated run folder")
        if groups is None:
            links = run.read(PERSON_LINKS, _MEMBER_COLUMNS).filter(pl.col("household_group").is_not_null())
        else:
            links = run.scan(PERSON_LINKS, _MEMBER_COLUMNS).filter(
                pl.col("household_group").is_in(list(groups))).collect()
        # Groups numbered in name order: one sort by name gives the members in gid order and the gids themselves
        # (a new number where the name changes), without joining millions of rows on the name.
        members = links.sort("household_group", "household", "row").with_columns(
            (pl.col("household_group") != pl.col("household_group").shift()).fill_null(True).cum_sum()
            .sub(1).cast(pl.Int32).alias("gid"))
        links = members
        group_names = members["household_group"].unique(maintain_order=True)
        count = len(group_names)
        member_offsets = _offsets(members["gid"].to_numpy(), count)

        household_gid = links.select("household", "gid").unique("household")
        exits = run.read(EXIT_CANDIDATES, list(_EXIT_COLUMNS)).rename(_EXIT_COLUMNS)
        fact_columns = ["subject_type", "subject_id", "source", "household_key", "county_code", "town", "village",
                        "head_name", "head_id", *HEADLINE_FACTS]
        facts_source = (run.read(HOUSEHOLD_FACTS, list(dict.fromkeys(fact_columns))) if groups is None else
                        run.scan(HOUSEHOLD_FACTS, list(dict.fromkeys(fact_columns))).filter(
                            pl.col("household_key").is_in(household_gid["household"].implode())).collect())
        facts = (
            facts_source.join(household_gid, left_on="household_key", right_on="household", how="inner")
            .with_columns(pl.when(pl.col("subject_type") == "roll").then(pl.col("subject_id")).alias("__exit_id"))
            .join(exits.unique("__exit_id"), on="__exit_id", how="left")
            .drop("__exit_id")
            .sort("gid", "subject_type", "subject_id", "source")
        )
        fact_offsets = _offsets(facts["gid"].to_numpy(), count)

        decision_columns = ["subject_type", "subject_id", "source", "rule_id", "outcome", "label", "reference",
                            "figures", "parameters", "detail", "due_date"]
        decisions_source = (run.read(DECISIONS, decision_columns).with_row_index("__order") if groups is None else
                            run.scan(DECISIONS, decision_columns).with_row_index("__order").filter(
                                pl.col("subject_id").is_in(facts["subject_id"].implode())).collect())
        decisions = (
            decisions_source
            .join(facts.select("subject_type", "subject_id", "source", "gid"),
                  on=["subject_type", "subject_id", "source"], how="inner")
            .sort("gid", "__order")
        )
        decision_offsets = _offsets(decisions["gid"].to_numpy(), count)

        history = spans.join(household_gid, left_on="household_key", right_on="household", how="inner").sort(
            "gid", "household_key", "start", "list").drop("key")
        history_offsets = _offsets(history["gid"].to_numpy(), count)

        ids = (links.filter(pl.col("person_key").str.contains(_CANONICAL_18))
               .select(_id_int_expr("person_key").alias("key"), "gid").drop_nulls().unique().sort("key"))
        numbers = links.select(_number_expr("household").alias("number"), "gid").unique()
        number_keys = np.array([s.encode("utf-8") for s in numbers["number"].to_list()], dtype=np.bytes_)
        order = np.argsort(number_keys, kind="stable") if len(number_keys) else np.array([], dtype=np.int64)
        number_gids = numbers["gid"].to_numpy()
        return cls(
            date=date, run_dates=tuple(run_dates), group_names=group_names,
            members=members.drop("household_group"), member_offsets=member_offsets,
            facts=facts, fact_offsets=fact_offsets,
            decisions=decisions.drop("__order"), decision_offsets=decision_offsets,
            history=history, history_offsets=history_offsets,
            id_keys=ids["key"].to_numpy(), id_gids=ids["gid"].to_numpy(),
            number_keys=number_keys[order] if len(number_keys) else np.array([], dtype="S1"),
            number_gids=number_gids[order] if len(number_gids) else np.array([], dtype=np.int32),
            sizes={"groups": count, "member_records": members.height, "households": facts.height,
                   "decisions": decisions.height, "id_numbers": ids.height, "household_numbers": numbers.height},
        )

    # -- resolution ------------------------------------------------------------------------------------------

    def _ids(self, key: str) -> tuple[int, ...]:
        value = np.int64(id_as_int(key))
        lo = int(np.searchsorted(self.id_keys, value, side="left"))
        hi = int(np.searchsorted(self.id_keys, value, side="right"))
        return tuple(sorted({int(g) for g in self.id_gids[lo:hi]}))

    def _numbers(self, text: str) -> tuple[int, ...]:
        if not text or "\x00" in text:  # NumPy byte strings drop trailing NULs: never let "A\0" match "A"
            return ()
        value = np.bytes_(text.encode("utf-8", "surrogatepass"))
        lo = int(np.searchsorted(self.number_keys, value, side="left"))
        hi = int(np.searchsorted(self.number_keys, value, side="right"))
        return tuple(sorted({int(g) for g in self.number_gids[lo:hi]}))

    def resolve(self, query: str | Query) -> Resolution:
        """An ID number first, else a household number of any source (as typed, then cleaned like a code)."""
        parsed = query if isinstance(query, Query) else Query.parse(query)
        if parsed.id_number is not None:
            gids = self._ids(parsed.id_number)
            if gids:
                return Resolution(parsed, "id_number", parsed.id_number, gids)
        gids = self._numbers(parsed.text)
        if not gids and len(parsed.numbers) > 1:
            gids = self._numbers(parsed.numbers[1])
        if gids:
            return Resolution(parsed, "household_id", None, gids)
        return Resolution(parsed, "none", parsed.id_number, ())

    def rows_of(self, gids: Sequence[int]) -> int:
        """How many index rows (members, facts, decisions, history) the family of ``gids`` reads: its cost."""
        return sum(int(offsets[g + 1] - offsets[g]) for g in gids
                   for offsets in (self.member_offsets, self.fact_offsets, self.decision_offsets,
                                   self.history_offsets))

    def counties_of(self, gid: int) -> frozenset[str]:
        """The counties of a group's households, read from its fact rows (no per-group objects kept in memory)."""
        start, end = int(self.fact_offsets[gid]), int(self.fact_offsets[gid + 1])
        return frozenset(self.facts.get_column("county_code").slice(start, end - start).drop_nulls().to_list())

    # -- the family ------------------------------------------------------------------------------------------

    def family(self, gids: Sequence[int]) -> tuple[Household, ...]:
        """Every household of the groups, with facts, decisions, members and history (unmasked)."""
        facts, decisions, members, spans = [], [], [], []
        for g in gids:
            facts.extend(_slice(self.facts, self.fact_offsets, g))
            decisions.extend(_slice(self.decisions, self.decision_offsets, g))
            members.extend(_slice(self.members, self.member_offsets, g))
            spans.extend(_slice(self.history, self.history_offsets, g))
        by_subject: dict[tuple[str, str, str], list[Decision]] = {}
        for d in decisions:
            by_subject.setdefault((d["subject_type"], d["subject_id"], d["source"]), []).append(_decision(d))
        by_household: dict[str, list[Member]] = {}
        for m in members:
            by_household.setdefault(m["household"], []).append(Member(
                name=m["name"], person_key=m["person_key"], source=m["source"], row=m["row"], method=m["method"],
                score=m["score"], evidence=m["evidence"], id_status=m["id_status"]))
        listed: dict[str, dict[dt.date, list[dict[str, Any]]]] = {}
        for h in spans:
            days = listed.setdefault(h["household_key"], {})
            for index in range(h["start"], h["end"] + 1):
                days.setdefault(self.run_dates[index], []).append(h)
        households = []
        for row in sorted(facts, key=lambda r: (r["subject_type"], r["subject_id"], r["source"])):
            key = row["household_key"]
            on_lists = listed.get(key, {})
            households.append(Household(
                subject_type=row["subject_type"], source=row["source"], household_id=row["subject_id"],
                household_key=key, county_code=row["county_code"], town=row.get("town"),
                village=row.get("village"), head_name=row.get("head_name"), head_id=row.get("head_id"),
                facts=tuple(Fact(name, FACT_LABELS.get(name, name), row[name]) for name in HEADLINE_FACTS
                            if name in row),
                first_seen=row["exit_first_seen"], grace_start=row["exit_grace_start"],
                grace_until=row["exit_grace_until"],
                decisions=tuple(by_subject.get((row["subject_type"], row["subject_id"], row["source"]), [])),
                members=tuple(by_household.get(key, [])),
                history=tuple(HistoryDay(day, tuple(
                    ListEntry(h["list"], h["reasons"], h["reason_labels"], h["first_seen"], h["grace_until"])
                    for h in sorted(on_lists.get(day, []), key=lambda h: _LIST_ORDER[h["list"]])))
                    for day in self.run_dates),
            ))
        return tuple(households)

    def lookup(self, query: str) -> Family | None:
        """The family of ``query``, or None when nothing matches."""
        found = self.resolve(query)
        if not found.gids:
            return None
        return Family(query, self.date, found.matched_by, found.person_key, self.family(found.gids))


def _decision(d: dict[str, Any]) -> Decision:
    parameters = {}
    for name, p in json.loads(d["parameters"]).items():
        p = p if isinstance(p, dict) else {"value": p}
        parameters[name] = Parameter(p.get("value"), p.get("from"), p.get("unit"), bool(p.get("carried_forward")))
    return Decision(code=d["rule_id"], outcome=d["outcome"], label=d["label"], detail=d["detail"],
                    reference=d["reference"], figures=json.loads(d["figures"]), parameters=parameters,
                    due_date=d.get("due_date"))


def load_family(store: RunStore, date: dt.date, query: str | Query) -> tuple[FamilyIndex, Resolution]:
    """Index only what ``query`` can reach in the run of ``date`` (with its history over the earlier runs) and
    resolve it: one lookup without loading the whole run (``dibao explain``)."""
    parsed = query if isinstance(query, Query) else Query.parse(query)
    run = PublishedRun(store.run_dir(date))
    groups = groups_of(run, parsed)
    dates = [d for d in store.published_dates() if d <= date] or [date]
    keys = (run.scan(PERSON_LINKS, ["household", "household_group"])
            .filter(pl.col("household_group").is_in(groups)).select(pl.col("household").drop_nulls().unique())
            .collect()["household"].to_list()) if groups else []
    index = FamilyIndex.load(run, dates, history_spans(store, dates, keys), groups=groups)
    return index, index.resolve(parsed)
