"""Published runs in memory: a cache of each run's files, and the immutable snapshot of the served run.

A snapshot is built once per run (runs are never modified after publishing) and then only read, so any number of
requests share it without locks: the run's lists and coverage, and its ``FamilyIndex`` (dibao/publish/household.py), the
index that answers a household lookup with a few slices. The index is mapped from files written once per run
(dibao/publish/family_files.py), so every worker shares one copy in the page cache; a store the service cannot
write to gets the index built in the worker's own memory, as before. ``watcher.SnapshotHolder`` swaps in newer runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from dibao.publish.contract import COVERAGE, DIFF, LIST_FILES, LISTS, PublishedRun
from dibao.publish.family_files import IndexNotWritable, open_index, run_id
from dibao.publish.household import FamilyIndex, HistorySpans
from dibao.publish.store import RunStore
from dibao.serve.masking import county_names

log = logging.getLogger("dibao.api")

Stamp = tuple[int, int, int]


def read_lists(folder: Path) -> dict[str, pl.DataFrame]:
    """The three lists of a run, with every column of the contract (``subject_id`` on all three)."""
    run = PublishedRun(folder)
    return {name: run.read(LIST_FILES[name]) for name in LISTS}


def read_coverage(folder: Path) -> pl.DataFrame:
    """coverage.parquet with every column of the contract (a run made before coverage: an empty frame)."""
    return PublishedRun(folder).read(COVERAGE)


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
        result: dict[str, Any] = self._cached("manifest", date, lambda folder: PublishedRun(folder).manifest())
        return result

    def lists(self, date: dt.date) -> dict[str, pl.DataFrame]:
        result: dict[str, pl.DataFrame] = self._cached("lists", date, read_lists, large=True)
        return result

    def diff(self, date: dt.date) -> pl.DataFrame:
        result: pl.DataFrame = self._cached("diff", date, lambda folder: PublishedRun(folder).read(DIFF),
                                            large=True)
        return result

    def coverage(self, date: dt.date) -> pl.DataFrame:
        result: pl.DataFrame = self._cached("coverage", date, read_coverage)
        return result


@dataclass(frozen=True)
class RunSnapshot:
    """Everything the API serves from one run, loaded once; never modified after it is built."""

    date: dt.date
    stamp: Stamp
    folder: Path
    manifest: dict[str, Any]
    lists: dict[str, pl.DataFrame]
    coverage: pl.DataFrame
    index: FamilyIndex
    load_seconds: float = 0.0
    sizes: dict[str, int] = field(default_factory=dict)
    county_names: dict[str, str] = field(default_factory=dict)  # county code → name, once per run, not per request


def load_snapshot(files: RunFiles, date: dt.date, spans: HistorySpans | None = None) -> RunSnapshot:
    """Read one published run and build its indexes (seconds at 200,000 households; off the request path)."""
    started = time.perf_counter()
    stamp = files.stamp(date)
    if stamp is None:
        raise FileNotFoundError(f"no published run for {date}")
    folder = files.store.run_dir(date)
    manifest = files.manifest(date)
    runs = tuple((d, files.stamp(d)) for d in files.dates() if d <= date)
    runs_known = tuple((d, st) for d, st in runs if st is not None)
    try:
        index = open_index(files.store, [run_id(d, files.manifest(d)) for d, _ in runs_known])
    except IndexNotWritable as exc:
        log.warning("%s; indexing run %s in this worker's memory instead", exc, date)
        history = (spans or HistorySpans()).upto(files.store, runs_known)
        index = FamilyIndex.load(PublishedRun(folder), [d for d, _ in runs_known], history)
    coverage = files.coverage(date)
    snapshot = RunSnapshot(
        date=date, stamp=stamp, folder=folder, manifest=manifest, lists=files.lists(date),
        coverage=coverage, index=index, load_seconds=round(time.perf_counter() - started, 3),
        sizes=index.sizes, county_names=county_names(coverage),
    )
    log.info("loaded run %s in %.2f s (%s)", date, snapshot.load_seconds, snapshot.sizes)
    return snapshot
