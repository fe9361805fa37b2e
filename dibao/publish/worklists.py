"""Printable work lists (工作清单) for county data teams and township caseworkers (经办人员).

Every morning the county prints these and hands each township its own workbook, so they are built for paper:
header row frozen and repeated on every page, A4 landscape one page wide, a header/footer naming county, sheet,
run date and page, and an empty 核查结果(填写) column for the caseworker's pen. Every text cell wraps and every row
is as tall as its text (``dibao.publish.print_layout``: xlsxwriter cannot autofit heights); a text taller than
Excel's tallest row goes on in continuation rows. ID numbers and household numbers are always text cells with a
text column format: Excel silently turns an 18-digit number into ``3.40402E+17``.

Layout under ``RUN/worklists/``::

    全省汇总.xlsx                              province summary (one row per county + 合计)
    {county_code}_{county_name}.xlsx           whole county
    {county_code}_{county_name}/{town}.xlsx    one township (only towns present in today's lists)

Each county/township workbook has the sheets 应退尽退, 应保尽保, 其他核查, 今日变化, always all four, in that order.
An empty list keeps its header row and gets one merged row "今日无", so a printed empty sheet says so rather than
looking like a printing fault. Rows are built with Polars and rendered as the sheet's XML by Polars too
(``dibao.publish.sheet_rows``): xlsxwriter writes everything else of the workbook.

The work lists are off the daily run's critical path: the Parquet run is published first (its manifest says
``"worklists": {"status": "pending"}``), then ``complete`` writes the workbooks in worker processes and records
``"status": "ready"`` with every file and the hash of each workbook's rows. A county or township workbook depends
only on its rows (its header and footer print the printing date, not the run date; its document properties are
fixed), so when its rows are the same as in the previous run its workbook is carried over (hard link) instead of
written again: byte for byte what writing it would give. The province summary carries the day's date and counts and
is always written. Every file is written under a hidden temp name and renamed when complete; after a crash
``dibao worklists`` (``rewrite``) writes the run's lists from its published Parquet files.

Three modules: ``worklist_rows`` declares each sheet's columns and builds its rows, ``worklist_sheets`` writes a
sheet and a workbook for paper, and this one plans the workbooks (which changed, which sheets of them), has the
workers write them and records them in the manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from dibao.durable import fsync_path
from dibao.errors import DibaoError
from dibao.processes import end_with_parent
from dibao.publish.contract import DIFF, MANIFEST_FILE, WORKLISTS_DIR
from dibao.publish.sheet_rows import RenderedBlock, read_blocks
from dibao.publish.worklist_rows import (
    COLUMNS,
    KEYS,
    PROVINCE_FILE,
    SHEET_DIFF,
    SHEET_EXIT,
    SHEET_FLAGS,
    SHEET_INCLUSION,
    SHEETS,
    UNKNOWN_TOWN,
    conform,
    county_names,
    diff_rows,
    exit_rows,
    flag_rows,
    inclusion_rows,
    printed_rows,
    province_summary,
)
from dibao.publish.worklist_sheets import (
    TEMP_MARK,
    Rows,
    finish,
    measured_lines,
    temp_path,
    write_book,
    write_summary,
)

FORMAT = "6"  # bump when the same rows would be written differently: no earlier workbook is then reused
WORKERS = 2  # worker processes writing workbooks
MANIFEST_KEY = "worklists"
READY, PENDING = "ready", "pending"
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def _safe_name(text: str) -> str:
    """A file name Windows and Linux both accept (county staff open these on Windows)."""
    cleaned = _UNSAFE.sub("_", text).strip().strip(".")
    return cleaned or UNKNOWN_TOWN


def _split(frame: pl.DataFrame, key: str) -> dict[str, pl.DataFrame]:
    return {str(k[0]): part for k, part in frame.partition_by(key, as_dict=True, maintain_order=True).items()}


# ---------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Book:
    """One county or township workbook: its path under ``worklists/``, the place it prints, and the hash of
    everything that goes into it (format, path, place, every sheet's rows in order)."""

    path: str
    place: str
    town: str | None  # None: the whole county
    digest: str
    sheets: tuple[str, ...]  # each sheet's hash (format, path, place, its rows in order), in SHEETS order
    sizes: tuple[int, ...]  # each sheet's rows, in SHEETS order


@dataclass(frozen=True)
class CountyJob:
    """What one worker needs for one county: the county's printed rows per sheet (with ``__town``), its
    workbooks, and which of them to write (the others are carried from the previous run)."""

    books: tuple[Book, ...]
    parts: dict[str, pl.DataFrame]
    write: frozenset[str]
    # Workbooks to write whose previous version has some sheets with the same rows: path -> (that workbook,
    # those sheets), whose rendered rows are read from it rather than measured and rendered again.
    reuse: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(part.height for part in self.parts.values())


def format_key() -> str:
    """Changes whenever the same rows could give other bytes: then no workbook of a previous run is reused."""
    return f"{FORMAT}; xlsxwriter {xlsxwriter.__version__}; polars {pl.__version__}"


def _digest(path: str, place: str, hashes: dict[str, pl.Series]) -> str:
    digest = hashlib.sha256(f"{format_key()}\n{path}\n{place}\n".encode())
    for sheet in SHEETS:
        series = hashes[sheet]
        digest.update(f"{sheet}:{series.len()}\n".encode())
        digest.update(series.to_numpy().tobytes())
    return digest.hexdigest()


def _sheet_digest(path: str, place: str, sheet: str, series: pl.Series) -> str:
    digest = hashlib.sha256(f"{format_key()}\n{path}\n{place}\n{sheet}:{series.len()}\n".encode())
    digest.update(series.to_numpy().tobytes())
    return digest.hexdigest()


def _book(path: str, place: str, town: str | None, hashes: dict[str, pl.Series]) -> Book:
    """A workbook with the hash of all it holds and of each of its sheets."""
    return Book(path, place, town, _digest(path, place, hashes),
                tuple(_sheet_digest(path, place, sheet, hashes[sheet]) for sheet in SHEETS),
                tuple(hashes[sheet].len() for sheet in SHEETS))


def _province_lists(exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame, flags: pl.DataFrame,
                    diff: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Each sheet's rows province-wide as written, with the partition keys and a per-row hash ``__h``."""
    rows = {
        SHEET_EXIT: exit_rows(exit_candidates),
        SHEET_INCLUSION: inclusion_rows(inclusion_candidates),
        SHEET_FLAGS: flag_rows(flags),
        SHEET_DIFF: diff_rows(diff, flags),
    }
    printed = {sheet: printed_rows(frame, sheet) for sheet, frame in rows.items()}
    return {sheet: frame.with_columns(frame.drop(KEYS).hash_rows().alias("__h"))
            for sheet, frame in printed.items()}


def plan(exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame, flags: pl.DataFrame,
         diff: pl.DataFrame, counties: pl.DataFrame) -> list[CountyJob]:
    """Split the province-wide rows by county, then by township (only towns present in some list), and hash
    each workbook's rows. Nothing is written; ``write`` is every workbook."""
    lists = _province_lists(exit_candidates, inclusion_candidates, flags, diff)
    names = county_names(counties, exit_candidates, inclusion_candidates, flags, diff)
    by_county = {sheet: _split(rows, "__county") for sheet, rows in lists.items()}
    jobs: list[CountyJob] = []
    for code, name in names.select("__county", "__name").iter_rows():
        county = _safe_name(f"{code}_{name}")
        parts = {sheet: by_county[sheet].get(code, lists[sheet].clear()) for sheet in SHEETS}
        books = [_book(f"{county}.xlsx", name, None, {s: p["__h"] for s, p in parts.items()})]
        by_town = {sheet: _split(part.select("__town", "__h"), "__town") for sheet, part in parts.items()}
        for town in sorted({town for split in by_town.values() for town in split}):
            path, place = f"{county}/{_safe_name(town)}.xlsx", f"{name} {town}"
            hashes = {s: by_town[s][town]["__h"] if town in by_town[s] else pl.Series("__h", [], pl.UInt64)
                      for s in SHEETS}
            books.append(_book(path, place, town, hashes))
        jobs.append(CountyJob(tuple(books), {s: p.drop("__county", "__h") for s, p in parts.items()},
                              frozenset(b.path for b in books)))
    return jobs


def _town_runs(towns: list[str]) -> dict[str, tuple[int, int]]:
    """Start and end row of each town: rows are sorted by county and town, so a town's rows are contiguous."""
    runs: dict[str, tuple[int, int]] = {}
    start = 0
    for i in range(1, len(towns) + 1):
        if i == len(towns) or towns[i] != towns[start]:
            if towns[start] in runs:
                raise AssertionError(f"rows of {towns[start]} are not contiguous")
            runs[towns[start]] = (start, i)
            start = i
    return runs


def _previous_blocks(path: str, sheets: frozenset[str]) -> dict[int, RenderedBlock]:
    """The rendered rows of these sheets of the previous workbook; none if it cannot be read (it is then written
    from the rows, as any other)."""
    try:
        return read_blocks(Path(path), {SHEETS.index(sheet): 1 for sheet in sheets})
    except (OSError, KeyError, ValueError, UnicodeDecodeError, zipfile.BadZipFile):
        return {}


def write_county(job: CountyJob, out: str) -> list[str]:
    """Write the job's workbooks that need writing (the worker's task). Row heights are measured once per county;
    the county workbook and its township workbooks write slices of the county's rows. A sheet whose rows are as
    in the previous workbook (``job.reuse``) takes its rendered rows from it: measured and rendered only where
    some workbook needs it."""
    frames = {sheet: part.drop("__town") for sheet, part in job.parts.items()}
    lines: dict[str, list[int]] = {}
    runs = {sheet: _town_runs(part["__town"].to_list()) for sheet, part in job.parts.items()}
    written = []
    for book in (book for book in job.books if book.path in job.write):
        blocks = _previous_blocks(*job.reuse[book.path]) if book.path in job.reuse else {}
        sheets: dict[str, Rows | RenderedBlock] = {}
        for index, sheet in enumerate(SHEETS):
            if index in blocks:
                sheets[sheet] = blocks[index]
                continue
            if sheet not in lines:
                lines[sheet] = measured_lines(job.parts[sheet], COLUMNS[sheet])
            if book.town is None:
                sheets[sheet] = (frames[sheet], lines[sheet])
            else:
                start, end = runs[sheet].get(book.town, (0, 0))
                sheets[sheet] = (frames[sheet].slice(start, end - start), lines[sheet][start:end])
        write_book(Path(out) / book.path, book.place, sheets)
        written.append(book.path)
    return written


# ---------------------------------------------------------------------------------------------- a run's lists


def pending(counties: pl.DataFrame) -> dict[str, Any]:
    """The manifest's ``worklists`` entry when the Parquet run is published: not ready yet, with the drop's
    counties (so ``dibao worklists`` can write the lists from the published run alone)."""
    known = conform(counties, "counties")
    return {"status": PENDING, "counties": [list(row) for row in known.iter_rows()]}


def is_ready(manifest: dict[str, Any]) -> bool:
    """Whether a run's work lists are complete (runs from before the lists were written afterwards listed them
    in the manifest when they were already complete)."""
    entry = manifest.get(MANIFEST_KEY)
    return isinstance(entry, list) or (isinstance(entry, dict) and entry.get("status") == READY)


def _reusable(previous: Path | None) -> tuple[Path | None, dict[str, str], dict[str, list[str]]]:
    """The previous run's worklists folder, workbook hashes and sheet hashes, if its lists are ready and of the
    same format."""
    if previous is None or not (previous / MANIFEST_FILE).is_file():
        return None, {}, {}
    entry = json.loads((previous / MANIFEST_FILE).read_text(encoding="utf-8")).get(MANIFEST_KEY)
    if not isinstance(entry, dict) or entry.get("status") != READY or entry.get("format") != format_key():
        return None, {}, {}
    return previous / WORKLISTS_DIR, dict(entry.get("hashes", {})), dict(entry.get("sheet_hashes", {}))


def _same_sheets(book: Book, previous: list[str] | None) -> frozenset[str]:
    """The sheets of ``book`` with rows (an empty one is quick to write) that are as in its previous version."""
    if previous is None or len(previous) != len(SHEETS):
        return frozenset()
    return frozenset(sheet for sheet, digest, before, size in zip(SHEETS, book.sheets, previous, book.sizes,
                                                                  strict=True) if digest == before and size)


def _carry(source: Path, target: Path) -> None:
    """The previous run's workbook into this run: a hard link (same bytes, no copy), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(target)
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def _sweep(out: Path, keep: set[str]) -> None:
    """Remove temp files of an interrupted write and workbooks that are not in today's lists."""
    for path in sorted(out.rglob("*"), reverse=True):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and (TEMP_MARK in path.name or rel not in keep):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _sync_dirs(out: Path) -> None:
    for folder in [out, *sorted(p for p in out.rglob("*") if p.is_dir())]:
        fsync_path(folder)


def build(folder: Path, run_date: dt.date, exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame,
          flags: pl.DataFrame, diff: pl.DataFrame, counties: pl.DataFrame, *, previous: Path | None = None,
          workers: int | None = None) -> dict[str, Any]:
    """Write ``folder/worklists``: the workbooks whose rows changed since ``previous`` (a run folder) by
    ``workers`` processes (0: in this process), the others carried from it, and the province summary. Returns
    the manifest's ``worklists`` entry (status ready). Only complete files ever carry their final names.

    Workers are started with ``spawn`` (a fresh interpreter that gets only its county's rows, never a fork of a
    process holding the run's frames): a script that calls this (or ``run_daily``) must keep its own work under
    ``if __name__ == "__main__":``, as for any spawned process; ``dibao`` and ``python -m dibao`` do."""
    started = time.perf_counter()
    workers = WORKERS if workers is None else workers
    out = folder / WORKLISTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(exit_candidates, inclusion_candidates, flags, diff, counties)
    books = [book for job in jobs for book in job.books]
    _sweep(out, {b.path for b in books} | {PROVINCE_FILE})  # temps of a crash; towns without rows today
    source, hashes, sheet_hashes = _reusable(previous)
    carried = []
    if source is not None:
        for job_index, job in enumerate(jobs):
            same = {b.path for b in job.books if hashes.get(b.path) == b.digest and (source / b.path).is_file()}
            for path in sorted(same):
                _carry(source / path, out / path)
            carried += sorted(same)
            reuse = {b.path: (str(source / b.path), sheets) for b in job.books
                     if b.path not in same and (source / b.path).is_file()
                     and (sheets := _same_sheets(b, sheet_hashes.get(b.path)))}
            jobs[job_index] = CountyJob(job.books, job.parts, job.write - same, reuse)
    todo = sorted((job for job in jobs if job.write), key=lambda job: -job.rows)  # largest first
    summary = province_summary(run_date, exit_candidates, inclusion_candidates, flags, diff, counties)
    if workers > 0 and todo:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: never a copy of the run's frames
        with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context,
                                 initializer=end_with_parent, initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(write_county, job, str(out)) for job in todo]
            write_summary(out / PROVINCE_FILE, run_date, summary)
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    else:
        for job in todo:
            write_county(job, str(out))
        write_summary(out / PROVINCE_FILE, run_date, summary)
    _sync_dirs(out)
    return {
        "status": READY,
        "format": format_key(),
        "files": sorted([b.path for b in books] + [PROVINCE_FILE]),
        "hashes": {b.path: b.digest for b in books},
        "sheet_hashes": {b.path: list(b.sheets) for b in books},
        "written": sum(len(job.write) for job in todo) + 1,
        "sheets_reused": sum(len(sheets) for job in todo for _, sheets in job.reuse.values()),
        "reused": len(carried),
        "reused_from": previous.name if source is not None and previous is not None else None,
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 3),
    }


def record(folder: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Put ``entry`` into the run's manifest as ``worklists`` (temp file, sync, rename: never half written);
    return the whole manifest."""
    path = folder / MANIFEST_FILE
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    manifest[MANIFEST_KEY] = {**(manifest.get(MANIFEST_KEY) or {}), **entry} \
        if isinstance(manifest.get(MANIFEST_KEY), dict) else entry
    temp = temp_path(path)
    temp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    finish(temp, path)
    fsync_path(folder)
    return manifest


def complete(folder: Path, run_date: dt.date, exit_candidates: pl.DataFrame, inclusion_candidates: pl.DataFrame,
             flags: pl.DataFrame, diff: pl.DataFrame, counties: pl.DataFrame, *, previous: Path | None = None,
             workers: int | None = None) -> dict[str, Any]:
    """Write a published run's work lists, then record in its manifest that they are ready. Returns the entry."""
    entry = build(folder, run_date, exit_candidates, inclusion_candidates, flags, diff, counties,
                  previous=previous, workers=workers)
    return dict(record(folder, entry)[MANIFEST_KEY])


def rewrite(folder: Path, previous: Path | None = None, *, workers: int | None = None) -> dict[str, Any]:
    """(Re)write a published run's work lists from its own Parquet lists and manifest (``dibao worklists``):
    after a crash before they were ready, or to check them. Workbooks of ``previous`` are reused where their
    rows are the same."""
    from dibao.publish.state import Lists

    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    entry = manifest.get(MANIFEST_KEY)
    if not isinstance(entry, dict) or "counties" not in entry:
        raise DibaoError(f"{folder}: the manifest does not list the drop's counties (a run published before the "
                         f"work lists were written afterwards); re-run the day with `dibao run --replace`")
    counties = pl.DataFrame(entry["counties"], schema={"county_code": pl.String(), "county_name": pl.String()},
                            orient="row")
    lists = Lists.read(folder)
    diff = pl.read_parquet(folder / DIFF.filename)
    return complete(folder, dt.date.fromisoformat(manifest["run_date"]), lists.exit, lists.inclusion, lists.flag,
                    diff, counties, previous=previous, workers=workers)


def write_worklists(folder: Path, run_date: dt.date, exit_candidates: pl.DataFrame,
                    inclusion_candidates: pl.DataFrame, flags: pl.DataFrame, diff: pl.DataFrame,
                    counties: pl.DataFrame, *, workers: int = 0) -> list[Path]:
    """Write every workbook of ``folder/worklists`` (nothing reused); return the paths written, sorted.

    The folder is owned by this function: a workbook not in today's lists (a township that has nothing today) is
    removed.
    """
    entry = build(folder, run_date, exit_candidates, inclusion_candidates, flags, diff, counties, workers=workers)
    return sorted(folder / WORKLISTS_DIR / path for path in entry["files"])
