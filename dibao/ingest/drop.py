"""A daily drop: one folder, one file per contract stem (``dibao/schema.py``).

All files are read and checked before anything is decided, and every file-level fault is reported together, so
the operator fixes the drop once rather than one error per morning. Required stems missing, or any file fault,
refuse the whole drop: a run on half the data would publish wrong work lists.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import polars as pl

from dibao import duck
from dibao.errors import DropFault, FileFault
from dibao.headers import HeaderTable, load_header_table
from dibao.ingest.households import empty_notes
from dibao.ingest.read import SUPPORTED_SUFFIXES, header_scorer, read_table
from dibao.ingest.validate import REJECTED_SCHEMA, IngestedFile, empty_accepted, validate
from dibao.schema import FILE_SPECS, REQUIRED_STEMS, FieldType

# Files read at once. Two use both cores; one holds a single file's transient memory at a time (at 2 million
# households, ingest peaks ~4.7 GiB with one, ~5.8 GiB with two, for the same CPU time).
_WORKERS = 2

# What a run cannot do without an optional file; said in the summary and the manifest.
SKIPPED_WITHOUT = {
    "monitoring": "no monitored households: 防返贫 monitoring checks and monitored 应保尽保 candidates skipped",
    "bank_assets": "no bank-asset results: the asset test (金融资产) was skipped",
    "dept_facts": "no department data: deaths, vehicles, property, business and wage cross-checks skipped",
    "relatives": "no relatives filings: 近亲属备案 check skipped",
}


class FileCache(Protocol):
    """Where validated files are kept between runs (``dibao/publish/cache.py``): a hit skips reading the file."""

    def load_file(self, stem: str, path: Path, encoding: str | None, run_date: dt.date, *,
                  with_text: bool = True) -> IngestedFile | None: ...

    def save_file(self, ingested: IngestedFile, path: Path, encoding: str | None, run_date: dt.date) -> None: ...

    def accepted_file(self, stem: str) -> Path | None: ...


@dataclass
class Drop:
    """Every file of one drop, validated."""

    folder: Path
    files: dict[str, IngestedFile]
    missing_optional: dict[str, str]  # stem → what is skipped without it
    notes: list[str] = field(default_factory=list)  # files in the folder that are not part of the contract
    seconds: float = 0.0

    def frame(self, stem: str) -> pl.DataFrame | None:
        """Accepted rows of a file, whole (read back when spilled: for small files; stages use ``scan``)."""
        f = self.files.get(stem)
        return f.accepted if f else None

    def frame_or_empty(self, stem: str) -> pl.DataFrame:
        """Accepted rows of a file, or an empty frame of the same shape when the drop lacks it."""
        f = self.files.get(stem)
        return f.accepted if f else empty_accepted(FILE_SPECS[stem])

    def scan(self, stem: str) -> pl.LazyFrame:
        """Accepted rows of a file, lazily (empty, of the same shape, when the drop lacks it): a stage selects the
        columns it reads, and only those are read from a spilled file."""
        f = self.files.get(stem)
        return f.scan() if f else empty_accepted(FILE_SPECS[stem]).lazy()

    def spilled(self, stem: str) -> Path | None:
        """The Parquet file holding a file's accepted rows, once spilled (else None: they are in memory)."""
        f = self.files.get(stem)
        return f.spilled if f else None

    def register(self, con: duckdb.DuckDBPyConnection, stem: str, name: str | None = None) -> None:
        """Make a file's accepted rows readable in DuckDB as ``name`` (default: the stem), from its spilled file
        when there is one."""
        path = self.spilled(stem)
        if path is not None:
            duck.register_file(con, name or stem, path)
        else:
            duck.register(con, name or stem, self.frame_or_empty(stem))

    @property
    def rejected(self) -> pl.DataFrame:
        frames = [f.rejected for f in self.files.values()]
        return pl.concat(frames) if frames else pl.DataFrame(schema=REJECTED_SCHEMA)

    @property
    def data_notes(self) -> pl.DataFrame:
        """Household values members disagree on, several 户主 (published as ``input_notes.parquet``)."""
        frames = [f.data_notes for f in self.files.values()]
        return pl.concat(frames) if frames else empty_notes()


def find_files(folder: Path) -> tuple[dict[str, Path], list[str], list[FileFault]]:
    """Map each contract stem to its file. Returns (files, notes about other entries, faults)."""
    if not folder.is_dir():
        raise DropFault([FileFault(str(folder), "is not a folder")])
    found: dict[str, list[Path]] = {}
    notes: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "~$")):
            continue  # hidden files, Excel lock files
        if path.is_dir():
            notes.append(f"folder {path.name}/ ignored")
            continue
        stem = path.stem.lower()
        if stem in FILE_SPECS and path.suffix.lower() in SUPPORTED_SUFFIXES:
            found.setdefault(stem, []).append(path)
        else:
            notes.append(f"file {path.name} is not part of the contract and was ignored")
    faults = [
        FileFault(", ".join(p.name for p in paths), f"{len(paths)} files for {stem}: keep exactly one")
        for stem, paths in found.items() if len(paths) > 1
    ]
    faults += [
        FileFault(f"{stem}.*", f"required file is missing ({FILE_SPECS[stem].label}; CSV, XLSX or Parquet)")
        for stem in REQUIRED_STEMS if stem not in found
    ]
    return {stem: paths[0] for stem, paths in found.items()}, notes, faults


def ingest_file(stem: str, path: Path, headers: HeaderTable, encoding: str | None = None,
                today: dt.date | None = None) -> IngestedFile:
    """Read and validate one file of the contract. A required file none of whose rows is usable is a file fault:
    a roll that lost every row to one bad column must stop the run, not publish an empty list."""
    spec = FILE_SPECS[stem]
    id_fields = {f.name for f in spec.fields if f.type is FieldType.ID_NUMBER}
    raw = read_table(path, forced_encoding=encoding,
                     is_id_header=lambda h: headers.resolve(stem, h) in id_fields,
                     header_score=header_scorer(lambda h: headers.resolve(stem, h)))
    ingested = validate(raw, spec, headers, today=today)
    if spec.required_file and ingested.rows_read == 0:
        raise FileFault(path.name, "没有数据行，必需文件不能为空 (has a header but no data rows; a required file "
                                   "cannot be empty)")
    if spec.required_file and ingested.accepted.height == 0:
        raise FileFault(path.name, f"全部{ingested.rows_read}行均被拒绝，未发布任何结果 (all {ingested.rows_read} rows "
                                   f"were rejected; nothing was published): {_top_reasons(ingested.rejected)}")
    return ingested


def _top_reasons(rejected: pl.DataFrame) -> str:
    """The commonest rejection reasons of a file, with the field's header and an example value."""
    top = (rejected.group_by("reason", "header").agg(pl.col("row").n_unique().alias("rows"),
                                                     pl.col("value").drop_nulls().first().alias("example"))
           .sort(["rows", "reason"], descending=[True, False]).head(3))
    return "; ".join(f"{r['reason']} — {r['rows']} rows, e.g. {r['example']!r}" for r in top.iter_rows(named=True))


def ingest_drop(
    folder: Path,
    *,
    headers: HeaderTable | None = None,
    encodings: dict[str, str] | None = None,
    on_file: Callable[[str, IngestedFile], None] | None = None,
    run_date: dt.date | None = None,
    cache: FileCache | None = None,
    keep_raw: bool = False,
    spill_to: Path | None = None,
) -> Drop:
    """Read and validate a whole drop. Raises DropFault listing every file fault; nothing partial is returned.

    ``run_date`` is the day the drop is judged on (an ID's birth date after it is impossible); default today.
    ``cache``: validated files of earlier runs, by content; a hit is used as is, a miss is cached.
    ``keep_raw``: keep each file's text as read (``IngestedFile.raw.frame``), for a tool that edits the drop. By
    default it is let go as soon as that file is typed and cached: it is as large as the file, several times
    over, and holding every file's until the last one is read made the text, not the typed rows, the peak.
    ``spill_to``: a folder; each file's accepted rows leave memory as soon as it is typed (``IngestedFile.spill``:
    the cache's copy when there is one, else ``<stem>.parquet`` there). A province's typed rows are ~3 GiB that
    the later stages read a few columns of at a time (``Drop.scan``)."""
    started = time.perf_counter()
    headers = headers or load_header_table()
    encodings = encodings or {}
    unknown = set(encodings) - set(FILE_SPECS)
    if unknown:
        raise DropFault([FileFault(s, "encoding override names an unknown file stem") for s in sorted(unknown)])
    paths, notes, faults = find_files(folder)

    day = run_date or dt.date.today()
    if spill_to is not None:
        spill_to.mkdir(parents=True, exist_ok=True)

    def one(stem: str) -> IngestedFile | FileFault:
        ingested = cache.load_file(stem, paths[stem], encodings.get(stem), day, with_text=keep_raw) \
            if cache is not None else None
        if ingested is None:
            try:
                ingested = ingest_file(stem, paths[stem], headers, encodings.get(stem), day)
            except FileFault as fault:
                return fault
            if cache is not None:
                cache.save_file(ingested, paths[stem], encodings.get(stem), day)
        if not keep_raw:
            ingested.release_raw()
        if spill_to is not None:
            existing = cache.accepted_file(stem) if cache is not None else None
            ingested.spill(existing or spill_to / f"{stem}.parquet", written=existing is not None)
        return ingested

    files: dict[str, IngestedFile] = {}
    # Files are independent; Polars releases the GIL, so two at a time uses both cores. Largest first, so the
    # biggest file does not run alone at the end.
    order = sorted(paths, key=lambda stem: paths[stem].stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        for stem, result in zip(order, pool.map(one, order), strict=True):
            if isinstance(result, FileFault):
                faults.append(result)
            else:
                files[stem] = result
                if on_file:
                    on_file(stem, result)
    if faults:
        raise DropFault(faults)
    missing = {stem: why for stem, why in SKIPPED_WITHOUT.items() if stem not in files}
    ordered = {stem: files[stem] for stem in FILE_SPECS if stem in files}
    return Drop(folder, ordered, missing, notes, time.perf_counter() - started)
