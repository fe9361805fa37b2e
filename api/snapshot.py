"""Immutable in-memory snapshots of published runs, with the indexes a fast household lookup needs.

A snapshot is built once per run (runs are never modified after publishing) and then only read, so any number of
requests share it without locks. ``SnapshotHolder`` serves the latest published run and switches to a newer one
without a restart and without a failed request: a background thread checks ``RunStore.published_dates()`` every
few seconds, builds the new snapshot off the request path and swaps the reference in one assignment; a request
keeps the snapshot it started with.

The household lookup gives the same content as ``dibao.explain.explain`` (tests/test_api.py checks it), but from
indexes built at load instead of scanning Parquet on every call:

* every cross-walk household group gets a number (``gid``); members, facts and decisions are sorted by it, with
  an offsets array, so a group's rows are one slice of each frame;
* ID numbers (the canonical 18-digit person_key) are kept as int64 in a sorted NumPy array, household numbers as a
  sorted byte-string array: ``searchsorted`` finds a query's groups in microseconds and little memory.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from dibao.explain import HEADLINE_FACTS
from dibao.ids import check_id, looks_like_id, may_be_old_id, usable_id_fast
from dibao.state import LIST_FILES, LISTS
from dibao.store import RunStore
from dibao.text import clean_code

log = logging.getLogger("dibao.api")

Stamp = tuple[int, int, int]
_CANONICAL_ID = r"^[0-9]{17}[0-9X]$"


def id_as_int(canonical: str) -> int:
    """An 18-character ID as one int64: first 17 digits × 11 + check value (X = 10). Unique and order-free."""
    last = canonical[17]
    return int(canonical[:17]) * 11 + (10 if last == "X" else int(last))


def _id_int_expr(col: str) -> pl.Expr:
    last = pl.col(col).str.slice(17, 1)
    return (pl.col(col).str.slice(0, 17).cast(pl.Int64) * 11
            + pl.when(last == "X").then(pl.lit(10, pl.Int64)).otherwise(last.cast(pl.Int64, strict=False)))


def _offsets(gids: np.ndarray, groups: int) -> np.ndarray:
    """Row offsets of each gid in a frame sorted by gid: rows of g are ``offsets[g]:offsets[g + 1]``."""
    counts = np.bincount(gids.astype(np.int64), minlength=groups) if len(gids) else np.zeros(groups, np.int64)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _read(folder: Path, name: str, columns: list[str] | None = None) -> pl.DataFrame:
    path = folder / f"{name}.parquet"
    if not path.exists():
        return pl.DataFrame()
    if columns is None:
        return pl.read_parquet(path)
    present = set(pl.read_parquet_schema(path))
    return pl.read_parquet(path, columns=[c for c in columns if c in present])


# --- per-run files: cached by (date, manifest stamp), since published runs do not change ---------------------


class RunFiles:
    """Reads and caches the files of published runs; a run replaced in place (``--replace``) gets a new stamp."""

    def __init__(self, store: RunStore, keep: int = 6) -> None:
        self.store = store
        self.keep = keep
        self._lock = threading.Lock()
        self._small: dict[tuple[str, dt.date, Stamp], Any] = {}
        self._large: OrderedDict[tuple[str, dt.date, Stamp], Any] = OrderedDict()

    def stamp(self, date: dt.date) -> Stamp | None:
        try:
            st = (self.store.run_dir(date) / "manifest.json").stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def dates(self) -> list[dt.date]:
        return self.store.published_dates()

    def _cached(self, kind: str, date: dt.date, make: Callable[[Path], Any], *, large: bool = False) -> Any:
        stamp = self.stamp(date)
        if stamp is None:
            raise FileNotFoundError(f"no published run for {date}")
        key = (kind, date, stamp)
        with self._lock:
            cache = self._large if large else self._small
            if key in cache:
                if large:
                    self._large.move_to_end(key)
                return cache[key]
        value = make(self.store.run_dir(date))
        with self._lock:
            if large:
                self._large[key] = value
                while len(self._large) > self.keep:
                    self._large.popitem(last=False)
            else:
                for old in [k for k in self._small if k[0] == kind and k[1] == date and k[2] != stamp]:
                    del self._small[old]
                self._small[key] = value
        return value

    def manifest(self, date: dt.date) -> dict[str, Any]:
        result: dict[str, Any] = self._cached(
            "manifest", date, lambda folder: json.loads((folder / "manifest.json").read_text(encoding="utf-8")))
        return result

    def lists(self, date: dt.date) -> dict[str, pl.DataFrame]:
        result: dict[str, pl.DataFrame] = self._cached("lists", date, read_lists, large=True)
        return result

    def diff(self, date: dt.date) -> pl.DataFrame:
        result: pl.DataFrame = self._cached("diff", date, lambda folder: _read(folder, "diff"), large=True)
        return result

    def coverage(self, date: dt.date) -> pl.DataFrame:
        result: pl.DataFrame = self._cached("coverage", date, read_coverage)
        return result



def read_lists(folder: Path) -> dict[str, pl.DataFrame]:
    """The three work lists of a run, each with a uniform ``subject_id`` column for sorting and paging."""
    lists = {name: _read(folder, LIST_FILES[name]) for name in LISTS}
    subject = {"exit": "dibao_household_id", "inclusion": "household_id", "flag": "subject_id"}
    for name, frame in lists.items():
        if frame.width and name != "flag":
            lists[name] = frame.with_columns(pl.col(subject[name]).alias("subject_id"))
    return lists


COVERAGE_COLUMNS: dict[str, pl.DataType] = {
    "level": pl.String(), "area_code": pl.String(), "area_name": pl.String(), "measure": pl.String(),
    "label": pl.String(), "numerator": pl.Float64(), "denominator": pl.Float64(), "rate": pl.Float64(),
    "reference_rate": pl.Float64(), "run_date": pl.Date(),
}


def read_coverage(folder: Path) -> pl.DataFrame:
    """coverage.parquet with every column of the contract (older runs have none: an empty frame)."""
    frame = _read(folder, "coverage")
    if not frame.width:
        return pl.DataFrame(schema=COVERAGE_COLUMNS)
    if "run_date" not in frame.columns:
        frame = frame.with_columns(pl.lit(dt.date.fromisoformat(folder.name)).alias("run_date"))
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in COVERAGE_COLUMNS.items() if c not in frame.columns]
    return frame.with_columns(missing).select(list(COVERAGE_COLUMNS)).cast(COVERAGE_COLUMNS)  # type: ignore[arg-type]


HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "household_key": pl.String(), "list": pl.String(), "reasons": pl.List(pl.String()),
    "reason_labels": pl.List(pl.String()), "first_seen": pl.Date(), "grace_until": pl.Date(),
}
SPAN_SCHEMA: dict[str, pl.DataType] = {**HISTORY_SCHEMA, "key": pl.String(), "start": pl.Int32(), "end": pl.Int32()}


def history_part(folder: Path) -> pl.DataFrame:
    """Which household was on which list of this run, with the reasons: one row per (household, list)."""
    lists = read_lists(folder)
    parts = []
    exits = lists["exit"]
    if exits.width:
        parts.append(exits.select(
            (pl.lit("dibao_roll:") + pl.col("dibao_household_id")).alias("household_key"), pl.lit("exit").alias("list"),
            "reasons", "reason_labels", "first_seen", "grace_until"))
    inclusions = lists["inclusion"]
    if inclusions.width:
        parts.append(inclusions.select(
            (pl.col("source") + pl.lit(":") + pl.col("household_id")).alias("household_key"),
            pl.lit("inclusion").alias("list"), "reasons", "reason_labels", "first_seen",
            pl.lit(None, dtype=pl.Date).alias("grace_until")))
    flags = lists["flag"]
    if flags.width:
        parts.append(
            flags.filter(pl.col("subject_type") != "person")
            .group_by((pl.col("source") + pl.lit(":") + pl.col("subject_id")).alias("household_key"),
                      maintain_order=True)
            .agg(pl.col("code").alias("reasons"), pl.col("label").alias("reason_labels"),
                 pl.col("first_seen").min())
            .select("household_key", pl.lit("flag").alias("list"), "reasons", "reason_labels", "first_seen",
                    pl.lit(None, dtype=pl.Date).alias("grace_until")))
    if not parts:
        return pl.DataFrame(schema=HISTORY_SCHEMA)
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


class HistorySpans:
    """Spans of list membership over the published runs, extended run by run as new runs are served.

    Runs are immutable, so the spans of runs already seen are reused; when an earlier run was replaced or
    removed (``--rebuild``) everything is rebuilt from the runs' files.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: tuple[tuple[dt.date, Stamp], ...] = ()
        self._spans = pl.DataFrame(schema=SPAN_SCHEMA)

    def upto(self, files: RunFiles, runs: tuple[tuple[dt.date, Stamp], ...]) -> pl.DataFrame:
        with self._lock:
            if self._runs != runs[:len(self._runs)]:
                self._runs, self._spans = (), pl.DataFrame(schema=SPAN_SCHEMA)
            spans = self._spans
            for index in range(len(self._runs), len(runs)):
                date = runs[index][0]
                spans = extend_spans(spans, history_part(files.store.run_dir(date)), index)
            self._runs, self._spans = runs, spans
            return spans


def id_problem(query: str) -> tuple[str, str] | None:
    """(status, plain-words problem) when ``query`` looks like an ID number but is not a usable one, else None."""
    text = query.strip()
    if not looks_like_id(text) or usable_id_fast(text):
        return None
    checked = check_id(text)
    problem = checked.problem()
    return None if problem is None else (checked.status.value, problem)


# --- the snapshot --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """What a query matched: the cross-walk groups (possibly none) and how."""

    query: str
    matched_by: str  # id_number | household_id | none
    person_key: str | None
    gids: tuple[int, ...]
    looks_like_id: bool


_MEMBER_COLUMNS = ["source", "row", "person_key", "method", "score", "evidence", "id_status", "household",
                   "household_group", "name"]


@dataclass(frozen=True)
class RunSnapshot:
    """Everything the API serves from one run, indexed at load; never modified after it is built."""

    date: dt.date
    stamp: Stamp
    folder: Path
    manifest: dict[str, Any]
    run_dates: tuple[dt.date, ...]  # published runs up to this one, oldest first (for household history)
    lists: dict[str, pl.DataFrame]
    coverage: pl.DataFrame
    group_names: pl.Series
    members: pl.DataFrame
    member_offsets: np.ndarray
    facts: pl.DataFrame
    fact_offsets: np.ndarray
    group_counties: tuple[frozenset[str], ...]
    decisions: pl.DataFrame
    decision_offsets: np.ndarray
    history: pl.DataFrame  # spans of list membership: run_dates[start] … run_dates[end]
    history_offsets: np.ndarray
    id_keys: np.ndarray
    id_gids: np.ndarray
    number_keys: np.ndarray
    number_gids: np.ndarray
    load_seconds: float = 0.0
    sizes: dict[str, int] = field(default_factory=dict)

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

    def resolve(self, query: str) -> Resolution:
        """Like ``dibao.explain.resolve_query``: an ID number first, else a household number of any source.

        Only the fast path runs here; ``id_problem`` (which builds a Polars frame through ``check_id``) is asked
        only when nothing the caller may see matched.
        """
        text = query.strip()
        id_like = looks_like_id(text)
        canonical = None
        if id_like:
            canonical = usable_id_fast(text)
            if canonical is None and may_be_old_id(text):
                checked = check_id(text)
                canonical = checked.id if checked.usable else None
        if canonical is not None:
            gids = self._ids(canonical)
            if gids:
                return Resolution(query, "id_number", canonical, gids, id_like)
        gids = self._numbers(text)
        if not gids:
            relaxed = (clean_code(text) or "").upper()
            if relaxed and relaxed != text:
                gids = self._numbers(relaxed)
        if gids:
            return Resolution(query, "household_id", None, gids, id_like)
        return Resolution(query, "none", canonical, (), id_like)

    # -- the family ------------------------------------------------------------------------------------------

    def counties_of(self, gid: int) -> frozenset[str]:
        return self.group_counties[gid]

    def family(self, gids: tuple[int, ...]) -> list[dict[str, Any]]:
        """Every household of the groups, with facts, decisions, members and history (unmasked)."""
        facts, decisions, members, history = [], [], [], []
        for g in gids:
            facts.extend(self.facts.slice(int(self.fact_offsets[g]),
                                          int(self.fact_offsets[g + 1] - self.fact_offsets[g])).to_dicts())
            decisions.extend(self.decisions.slice(
                int(self.decision_offsets[g]), int(self.decision_offsets[g + 1] - self.decision_offsets[g])
            ).to_dicts())
            members.extend(self.members.slice(int(self.member_offsets[g]),
                                              int(self.member_offsets[g + 1] - self.member_offsets[g])).to_dicts())
            history.extend(self.history.slice(int(self.history_offsets[g]),
                                              int(self.history_offsets[g + 1] - self.history_offsets[g])).to_dicts())
        by_subject: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for d in decisions:
            by_subject.setdefault((d["subject_type"], d["subject_id"], d["source"]), []).append(d)
        by_household: dict[str, list[dict[str, Any]]] = {}
        for m in members:
            by_household.setdefault(m["household"], []).append(m)
        listed: dict[str, dict[dt.date, list[dict[str, Any]]]] = {}
        for h in history:
            days = listed.setdefault(h["household_key"], {})
            for index in range(h["start"], h["end"] + 1):
                days.setdefault(self.run_dates[index], []).append(h)
        households = []
        for row in sorted(facts, key=lambda r: (r["subject_type"], r["subject_id"], r["source"])):
            key = row["household_key"]
            on_lists = listed.get(key, {})
            households.append({
                "subject_type": row["subject_type"],
                "source": row["source"],
                "household_id": row["subject_id"],
                "household_key": key,
                "county_code": row["county_code"],
                "town": row.get("town"),
                "village": row.get("village"),
                "head_name": row.get("head_name"),
                "head_id": row.get("head_id"),
                "facts": {name: row[name] for name in HEADLINE_FACTS if name in row},
                "first_seen": row["exit_first_seen"],
                "grace_start": row["exit_grace_start"],
                "grace_until": row["exit_grace_until"],
                "decisions": [
                    {"code": d["rule_id"], "outcome": d["outcome"], "label": d["label"], "detail": d["detail"],
                     "reference": d["reference"], "figures": json.loads(d["figures"]),
                     "parameters": json.loads(d["parameters"])}
                    for d in by_subject.get((row["subject_type"], row["subject_id"], row["source"]), [])
                ],
                "members": [
                    {"name": m["name"], "person_key": m["person_key"], "source": m["source"], "row": m["row"],
                     "method": m["method"], "score": m["score"], "evidence": m["evidence"],
                     "id_status": m["id_status"]}
                    for m in by_household.get(key, [])
                ],
                "history": [
                    {"run_date": day, "lists": [
                        {"list": h["list"], "reasons": h["reasons"], "reason_labels": h["reason_labels"],
                         "first_seen": h["first_seen"], "grace_until": h["grace_until"]}
                        for h in sorted(on_lists.get(day, []), key=lambda h: _LIST_ORDER[h["list"]])]}
                    for day in self.run_dates
                ],
            })
        return households


_LIST_ORDER = {name: i for i, name in enumerate(LISTS)}


def load_snapshot(files: RunFiles, date: dt.date, spans: HistorySpans | None = None) -> RunSnapshot:
    """Read one published run and build its indexes (seconds at 200,000 households; off the request path)."""
    started = time.perf_counter()
    stamp = files.stamp(date)
    if stamp is None:
        raise FileNotFoundError(f"no published run for {date}")
    folder = files.store.run_dir(date)
    manifest = files.manifest(date)

    links = _read(folder, "person_links", _MEMBER_COLUMNS).filter(pl.col("household_group").is_not_null())
    group_names = links.select(pl.col("household_group").unique().sort())["household_group"]
    groups = len(group_names)
    gid_of = pl.DataFrame({"household_group": group_names, "gid": np.arange(groups, dtype=np.int32)})
    links = links.join(gid_of, on="household_group", how="inner")
    members = links.sort("gid", "household", "row")
    member_offsets = _offsets(members["gid"].to_numpy(), groups)

    household_gid = links.select("household", "gid").unique("household")
    exits = _read(folder, "exit_candidates", ["dibao_household_id", "first_seen", "grace_start", "grace_until"])
    if not exits.width:
        exits = pl.DataFrame(schema={"dibao_household_id": pl.String, "first_seen": pl.Date,
                                     "grace_start": pl.Date, "grace_until": pl.Date})
    exits = exits.rename({"dibao_household_id": "__exit_id", "first_seen": "exit_first_seen",
                          "grace_start": "exit_grace_start", "grace_until": "exit_grace_until"})
    for column in ("exit_grace_start", "exit_grace_until"):
        if column not in exits.columns:
            exits = exits.with_columns(pl.lit(None, dtype=pl.Date).alias(column))
    fact_columns = ["subject_type", "subject_id", "source", "household_key", "county_code", "town", "village",
                    "head_name", "head_id", *HEADLINE_FACTS]
    facts = (
        _read(folder, "household_facts", list(dict.fromkeys(fact_columns)))
        .join(household_gid, left_on="household_key", right_on="household", how="inner")
        .with_columns(pl.when(pl.col("subject_type") == "roll").then(pl.col("subject_id")).alias("__exit_id"))
        .join(exits.unique("__exit_id"), on="__exit_id", how="left")
        .drop("__exit_id")
        .sort("gid", "subject_type", "subject_id", "source")
    )
    fact_offsets = _offsets(facts["gid"].to_numpy(), groups)
    county_rows = facts.group_by("gid").agg(pl.col("county_code").drop_nulls().unique())
    counties: list[frozenset[str]] = [frozenset()] * groups
    for g, codes in county_rows.iter_rows():
        counties[g] = frozenset(codes)

    decisions = (
        _read(folder, "decisions", ["subject_type", "subject_id", "source", "rule_id", "outcome", "label",
                                    "reference", "figures", "parameters", "detail"]).with_row_index("__order")
        .join(facts.select("subject_type", "subject_id", "source", "gid"),
              on=["subject_type", "subject_id", "source"], how="inner")
        .sort("gid", "__order")
    )
    decision_offsets = _offsets(decisions["gid"].to_numpy(), groups)

    runs = tuple((d, files.stamp(d)) for d in files.dates() if d <= date)
    runs_known = tuple((d, st) for d, st in runs if st is not None)
    run_dates = tuple(d for d, _ in runs_known)
    history = (spans or HistorySpans()).upto(files, runs_known).join(
        household_gid, left_on="household_key", right_on="household", how="inner").sort(
        "gid", "household_key", "start", "list").drop("key")
    history_offsets = _offsets(history["gid"].to_numpy(), groups)

    ids = (links.filter(pl.col("person_key").str.contains(_CANONICAL_ID))
           .select(_id_int_expr("person_key").alias("key"), "gid").drop_nulls().unique().sort("key"))
    numbers = links.select(pl.col("household").str.split(":").list.last().alias("number"), "gid").unique()
    number_keys = np.array([s.encode("utf-8") for s in numbers["number"].to_list()], dtype=np.bytes_)
    order = np.argsort(number_keys, kind="stable") if len(number_keys) else np.array([], dtype=np.int64)
    number_gids = numbers["gid"].to_numpy()

    snapshot = RunSnapshot(
        date=date, stamp=stamp, folder=folder, manifest=manifest, run_dates=run_dates,
        lists=files.lists(date), coverage=files.coverage(date), group_names=group_names,
        members=members.drop("household_group"), member_offsets=member_offsets,
        facts=facts, fact_offsets=fact_offsets, group_counties=tuple(counties),
        decisions=decisions.drop("__order"), decision_offsets=decision_offsets,
        history=history, history_offsets=history_offsets,
        id_keys=ids["key"].to_numpy(), id_gids=ids["gid"].to_numpy(),
        number_keys=number_keys[order] if len(number_keys) else np.array([], dtype="S1"),
        number_gids=number_gids[order] if len(number_gids) else np.array([], dtype=np.int32),
        load_seconds=round(time.perf_counter() - started, 3),
        sizes={"groups": groups, "member_records": members.height, "households": facts.height,
               "decisions": decisions.height, "id_numbers": ids.height, "household_numbers": numbers.height},
    )
    log.info("loaded run %s in %.2f s (%s)", date, snapshot.load_seconds, snapshot.sizes)
    return snapshot


# --- serving the latest run ----------------------------------------------------------------------------------


def _exempt_from_gc() -> None:
    """Keep the collector away from the snapshot's millions of long-lived index objects.

    A full collection walks every tracked object; with a 200,000-household snapshot that is a pause of tens of
    milliseconds in the middle of requests (the p99). After a swap the previous snapshot is released, collected
    once, and everything still alive is frozen (moved out of the collector's generations).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class SnapshotHolder:
    """The snapshot of the latest published run, refreshed in a background thread.

    ``current`` never blocks on a load once the first snapshot is in; a failed load (a damaged run) is logged,
    the previous snapshot stays served, and the load is retried after ``retry_seconds``.
    """

    def __init__(self, store: RunStore, refresh_seconds: float = 2.0, retry_seconds: float = 60.0) -> None:
        self.files = RunFiles(store)
        self.spans = HistorySpans()
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self._snapshot: RunSnapshot | None = None
        self._start_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._started = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[tuple[dt.date, Stamp], float] = {}
        self.swaps = 0

    @property
    def snapshot(self) -> RunSnapshot | None:
        if not self._started:
            self.start()
        return self._snapshot

    def start(self) -> None:
        """Load the latest run now (the server is ready when this returns), then watch for newer runs."""
        with self._start_lock:
            if self._started:
                return
            self.refresh()
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="dibao-run-watcher", daemon=True)
            self._thread.start()
            self._started = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._started = False
        gc.unfreeze()  # hand frozen objects back to the collector, so they are freed normally at shutdown

    def _watch(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # never let the watcher die; the next round retries
                log.exception("checking for a newer run failed")

    def refresh(self) -> bool:
        """Load and swap in the latest published run if it is not the one served; True when swapped."""
        with self._load_lock:
            dates = self.files.dates()
            if not dates:
                return False
            latest = dates[-1]
            stamp = self.files.stamp(latest)
            current = self._snapshot
            if stamp is None or (current is not None and current.date == latest and current.stamp == stamp):
                return False
            failed_at = self._failed.get((latest, stamp))
            if failed_at is not None and time.monotonic() - failed_at < self.retry_seconds:
                return False
            try:
                snapshot = load_snapshot(self.files, latest, self.spans)
            except Exception:
                self._failed[(latest, stamp)] = time.monotonic()
                log.exception("could not load run %s; still serving %s", latest,
                              current.date if current else "nothing")
                return False
            self._snapshot = snapshot  # one reference assignment: requests see the old or the new run
            self.swaps += 1
            _exempt_from_gc()
            return True
