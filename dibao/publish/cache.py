"""Incremental days: a cache of ingested files and of the linkage in the store (``STORE/cache/``).

A second day on the same drop should not re-read, re-validate and re-link what has not changed. Two caches:

- **ingest** — ``STORE/cache/ingest/<stem>-<sha256>-<key>/``: one validated file (accepted, rejected and
  household-notes frames, the all-text frame as read, and in ``meta.json`` the rest of the ``IngestedFile``).
  Keyed by the input file's SHA-256, its name, the encoding override and ``ingest_key``: the engine version, a
  hash of the engine's ingest / normalise / link source, the versions of the libraries that parse and
  normalise, and the header table's content. The run date matters only through ID birth dates (an ID born
  after the run date is ``bad_date``), so an entry also records the dates it holds for: from the latest birth
  date on or before the date it was made, to the day before the earliest birth date after it. A run on a date
  outside that span recomputes the file.
- **link** — ``STORE/cache/link/<key>/``: the linkage result (person links with each record's person and
  household numbers, review cases, household cross-walk) and its counts (``LinkSummary``). Keyed by the code
  hash and the SHA-256 of every person-level file's accepted frame as cached: same records in, same linkage out.
- **rules** — ``STORE/cache/rules/<key>/``: a day's household facts, decisions and parameters in force, with its
  date (``dibao/rules/incremental.py`` starts a later day from it). Keyed by the linkage key, every file's
  accepted frame, the rules' source and the policy files' content: same inputs and rules, only the date differs.
  A day that reused an entry keeps it rather than writing a new one, until it had to recompute more than
  ``RULES_RENEW_ABOVE`` of the households (birthdays accumulate).

Every cached Parquet file's SHA-256 is in its ``meta.json`` and checked on load, with the frames' schemas: an
entry that is damaged, cut short or from another layout is ignored (and removed), never trusted. The cache is
bounded: after a successful publish, entries not used by the last ``KEEP_RUNS`` runs are removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

import dibao
from dibao.headers import HeaderTable
from dibao.ingest.table import RawTable
from dibao.ingest.validate import IngestedFile
from dibao.link import LinkResult
from dibao.link.keys import LINK_KEYS, NUMBERS, Linkage
from dibao.link.summary import LinkSummary
from dibao.normalise.ids import normalise_ids
from dibao.publish.parquet import quick_to_write
from dibao.rules import RulesBasis
from dibao.schema import FILE_SPECS, FieldType

CACHE_DIR = "cache"
KEEP_RUNS = 2  # entries used by this many latest runs are kept
FORMAT = 3  # layout of an entry; bump when it changes
RULES_RENEW_ABOVE = 0.05  # share of cross-walk groups recomputed above which a day caches its own rules result

# The engine's source that decides what ingest and linkage produce (relative to the package folder).
_CODE_PATHS = ("__init__.py", "schema.py", "headers.py", "errors.py", "ingest", "normalise", "link",
               "publish/contract.py", "publish/cache.py")
# Libraries whose behaviour shapes parsed values, ID and name keys, similarity scores or Parquet bytes.
_LIBRARIES = ("polars", "numpy", "python-stdnum", "pypinyin", "rapidfuzz", "openpyxl", "python-calamine", "xlrd",
              "fastexcel", "pyarrow", "charset-normalizer")
# The engine's source that decides the facts and decisions (with _CODE_PATHS).
_RULES_CODE_PATHS = ("rules", "duck.py", "policy")
_FAR_FUTURE = dt.date(9999, 12, 31)
_LINK_FRAMES = ("links.parquet", "review.parquet", "households.parquet")


def _hash_paths(root: Path, relative: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for rel in relative:
        path = root / rel
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
        for file in files:
            digest.update(f"{file.relative_to(root).as_posix()}\0".encode())
            digest.update(file.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def code_hash() -> str:
    """The engine version, its ingest / normalise / link source, and the versions of the libraries they use."""
    digest = hashlib.sha256(f"dibao {dibao.__version__} format {FORMAT}\n".encode())
    digest.update(_hash_paths(Path(dibao.__file__).parent, _CODE_PATHS).encode())
    for name in _LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"\n{name}={version}".encode())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def rules_code_hash() -> str:
    """The source of the fact steps, the rules compiler and evaluator, and the shipped policy files."""
    return _hash_paths(Path(dibao.__file__).parent, _RULES_CODE_PATHS)


def headers_hash(headers: HeaderTable) -> str:
    """The header table by content (its version and every alias), not by path."""
    doc = {"version": headers.version, "by_stem": headers.by_stem, "value_aliases": headers.value_aliases}
    return hashlib.sha256(json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def date_span(ingested: IngestedFile, run_date: dt.date) -> tuple[dt.date, dt.date]:
    """The run dates on which validating this file gives the same result as on ``run_date``.

    Only ID statuses depend on the date (a birth date after it is impossible), so the span runs from the latest
    birth date on or before ``run_date`` to the day before the earliest birth date after it."""
    spec = FILE_SPECS[ingested.stem]
    births: list[pl.Series] = []
    for f in spec.fields:
        if f.type is FieldType.ID_NUMBER and f.name in ingested.accepted.columns:
            probe = normalise_ids(ingested.accepted.select(f.name), f.name, prefix="__p_", today=_FAR_FUTURE)
            births.append(probe.get_column("__p_birth_date").drop_nulls())
    if not births:
        return dt.date.min, dt.date.max
    every = pl.concat(births)
    before = every.filter(every <= run_date).max()
    after = every.filter(every > run_date).min()
    start = before if isinstance(before, dt.date) else dt.date.min
    end = after - dt.timedelta(days=1) if isinstance(after, dt.date) else dt.date.max
    return start, end


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _write_frame(folder: Path, name: str, frame: pl.DataFrame) -> dict[str, Any]:
    buffer = io.BytesIO()
    # The cached linkage's evidence lists in one chunk took 10 s to write (``quick_to_write``). How a frame read
    # back is chunked does not matter: published bytes never depend on it (``canonical_chunks``).
    quick_to_write(frame).write_parquet(buffer, compression="lz4", statistics=False)
    data = buffer.getvalue()
    (folder / name).write_bytes(data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "schema": repr(frame.schema)}


def _read_frame(folder: Path, name: str, meta: dict[str, Any]) -> pl.DataFrame:
    data = (folder / name).read_bytes()
    expected = meta["frames"][name]
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise ValueError(f"{name}: checksum differs")
    # In one chunk, as the frame was made: the rules from a cached day gather rows of the cached facts, and a
    # frame in row-group chunks was copied into one at that point, where a day's memory peaks (+0.4 GiB at 2M).
    frame = pl.read_parquet(io.BytesIO(data)).rechunk()
    if repr(frame.schema) != expected["schema"]:
        raise ValueError(f"{name}: schema differs")
    return frame


def _checked_file(folder: Path, name: str, meta: dict[str, Any]) -> Path:
    """A cached frame's file, checked by SHA-256 and schema without loading its rows."""
    path = folder / name
    expected = meta["frames"][name]
    if file_sha256(path) != expected["sha256"]:
        raise ValueError(f"{name}: checksum differs")
    if repr(pl.read_parquet(path, n_rows=0).schema) != expected["schema"]:
        raise ValueError(f"{name}: schema differs")
    return path


@dataclass
class RunCache:
    """The store's cache, as one run uses it. ``ingest_status`` / ``used`` record hits, misses and entries."""

    root: Path  # STORE/cache
    headers: HeaderTable
    ingest_status: dict[str, str] = field(default_factory=dict)  # stem → hit | miss
    accepted_sha: dict[str, str] = field(default_factory=dict)  # stem → SHA-256 of its cached accepted frame
    accepted_files: dict[str, Path] = field(default_factory=dict)  # stem → its cached accepted frame's file
    used: set[str] = field(default_factory=set)  # entry folders (relative to root) this run used or made
    linkage: str | None = None  # reused | computed
    rules_basis: str | None = None  # the date of the cached day the rules stage started from
    # Entries found unreadable and removed this run (relative folder → why). Damage is expected (a full disk, a
    # copied store); an error of ours would look the same, a silent miss, so the manifest says which and why.
    discarded: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_store(cls, store_root: Path, headers: HeaderTable) -> RunCache:
        return cls(store_root / CACHE_DIR, headers)

    def _discard(self, entry: Path, reason: Exception) -> None:
        """Remove an entry that could not be read, and note why."""
        shutil.rmtree(entry, ignore_errors=True)
        with self._lock:
            self.discarded[entry.relative_to(self.root).as_posix()] = f"{type(reason).__name__}: {reason}"[:300]

    # ---- ingest -------------------------------------------------------------------------------------------
    def ingest_key(self) -> str:
        return _key("ingest", code_hash(), headers_hash(self.headers))

    def _entry(self, stem: str, path: Path, sha: str, encoding: str | None) -> Path:
        key = _key(self.ingest_key(), stem, path.name, encoding or "-")
        return self.root / "ingest" / f"{stem}-{sha}-{key[:24]}"

    def load_file(self, stem: str, path: Path, encoding: str | None, run_date: dt.date, *,
                  with_text: bool = True) -> IngestedFile | None:
        """The cached ingest of ``path`` (read with the ``encoding`` override) on ``run_date``, or None (a miss).

        ``with_text=False``: the file's text as read is not loaded (only its row count is kept, as
        ``IngestedFile.release_raw`` leaves it); a run lets it go at once, and at province scale reading every
        file's text back was the whole of a second day's ingest peak."""
        try:
            sha = file_sha256(path)
        except OSError:  # reading it again will say what is wrong, as a file fault
            return None
        entry = self._entry(stem, path, sha, encoding)
        result = None
        if (entry / "meta.json").is_file():
            try:
                result = self._read_ingested(entry, stem, path, sha, run_date, with_text)
            except Exception as exc:  # damaged or foreign: never trusted, recomputed
                self._discard(entry, exc)
        with self._lock:
            self.ingest_status[stem] = "hit" if result is not None else "miss"
            if result is not None:
                self.used.add(entry.relative_to(self.root).as_posix())
        return result

    def _read_ingested(self, entry: Path, stem: str, path: Path, sha: str, run_date: dt.date,
                       with_text: bool) -> IngestedFile | None:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("sha256") != sha or meta.get("stem") != stem:
            raise ValueError("entry is not for this file")
        start, end = dt.date.fromisoformat(meta["valid_from"]), dt.date.fromisoformat(meta["valid_until"])
        if not start <= run_date <= end:
            return None  # an ID's status would differ on this date: recompute (the entry is replaced)
        raw_meta = meta["raw"]
        row_lines = _read_frame(entry, "row_lines.parquet", meta).to_series() \
            if with_text and "row_lines.parquet" in meta["frames"] else None
        text = _read_frame(entry, "raw.parquet", meta) if with_text \
            else pl.read_parquet(entry / "raw.parquet", n_rows=0)  # its columns only
        raw = RawTable(
            path=path, format=raw_meta["format"], encoding=raw_meta["encoding"], sha256=sha,
            headers=list(raw_meta["headers"]), frame=text,
            numeric_columns=dict(raw_meta["numeric_columns"]), notes=list(raw_meta["notes"]),
            header_line=raw_meta["header_line"], sheet=raw_meta["sheet"],
            header_columns=list(raw_meta["header_columns"]), first_column=raw_meta["first_column"],
            data_line=raw_meta["data_line"], row_lines=row_lines)
        accepted = _checked_file(entry, "accepted.parquet", meta)  # checked, not loaded: the run scans it
        ingested = IngestedFile.on_disk(
            stem, raw, accepted, int(meta["rows_accepted"]),
            rejected=_read_frame(entry, "rejected_rows.parquet", meta), column_map=dict(meta["column_map"]),
            notes=list(meta["notes"]), data_notes=_read_frame(entry, "data_notes.parquet", meta))
        if not with_text:
            ingested.released_rows = int(meta["rows_read"])
        if ingested.rows_read != meta["rows_read"] or pl.scan_parquet(accepted).select(pl.len()).collect().item() \
                != meta["rows_accepted"]:
            raise ValueError("row counts differ")
        with self._lock:
            self.accepted_sha[stem] = meta["frames"]["accepted.parquet"]["sha256"]
            self.accepted_files[stem] = accepted
        return ingested

    def accepted_file(self, stem: str) -> Path | None:
        """The cache's Parquet copy of a file's accepted rows, checked this run (hit) or written by it (miss):
        the run points its drop at it rather than writing the rows again (``ingest_drop(spill_to=…)``)."""
        with self._lock:
            return self.accepted_files.get(stem)

    def save_file(self, ingested: IngestedFile, path: Path, encoding: str | None, run_date: dt.date) -> None:
        """Cache a freshly ingested file (written aside, then renamed into place: a killed run leaves no half)."""
        sha = ingested.raw.sha256
        entry = self._entry(ingested.stem, path, sha, encoding)
        start, end = date_span(ingested, run_date)
        raw = ingested.raw
        frames = {"accepted.parquet": ingested.accepted, "rejected_rows.parquet": ingested.rejected,
                  "data_notes.parquet": ingested.data_notes, "raw.parquet": raw.frame}
        if raw.row_lines is not None:
            frames["row_lines.parquet"] = raw.row_lines.to_frame()
        meta: dict[str, Any] = {
            "format": FORMAT, "stem": ingested.stem, "file": path.name, "sha256": sha,
            "valid_from": start.isoformat(), "valid_until": end.isoformat(), "made_on": run_date.isoformat(),
            "rows_read": ingested.rows_read, "rows_accepted": ingested.accepted.height,
            "column_map": ingested.column_map, "notes": ingested.notes,
            "raw": {"format": raw.format, "encoding": raw.encoding, "headers": raw.headers,
                    "numeric_columns": raw.numeric_columns, "notes": raw.notes, "header_line": raw.header_line,
                    "sheet": raw.sheet, "header_columns": raw.header_columns, "first_column": raw.first_column,
                    "data_line": raw.data_line},
        }
        written = self._write_entry(entry, frames, meta)
        if written is not None:
            with self._lock:
                self.ingest_status.setdefault(ingested.stem, "miss")
                self.accepted_sha[ingested.stem] = written["accepted.parquet"]["sha256"]
                self.accepted_files[ingested.stem] = entry / "accepted.parquet"
                self.used.add(entry.relative_to(self.root).as_posix())

    def _write_entry(self, entry: Path, frames: dict[str, pl.DataFrame],
                     meta: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        aside = entry.parent / f".incoming-{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            aside.mkdir(parents=True)
            meta["frames"] = {name: _write_frame(aside, name, frame) for name, frame in frames.items()}
            (aside / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1, default=str) + "\n",
                                             encoding="utf-8")
            if entry.exists():
                shutil.rmtree(entry)
            aside.rename(entry)
        except OSError:  # a cache that cannot be written costs time, never the run
            shutil.rmtree(aside, ignore_errors=True)
            return None
        frames_meta: dict[str, dict[str, Any]] = meta["frames"]
        return frames_meta

    # ---- linkage ------------------------------------------------------------------------------------------
    def link_key(self) -> str | None:
        """Key of the linkage of this run's person-level files, or None when one of them was not cached."""
        stems = [s for s, spec in FILE_SPECS.items() if spec.person_level and s in self.ingest_status]
        if any(s not in self.accepted_sha for s in stems):
            return None
        return _key("link", code_hash(), *(f"{s}={self.accepted_sha[s]}" for s in sorted(stems)))

    def load_link(self) -> Linkage | None:
        """The cached linkage of this run's records, or None. Every file is checked now; only the numbered keys
        are read (``Linkage.result`` reads the rest if a published file needs it)."""
        key = self.link_key()
        if key is None:
            return None
        entry = self.root / "link" / key[:32]
        if not (entry / "meta.json").is_file():
            return None
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("key") != key:
                raise ValueError("entry is not for these records")
            for name in _LINK_FRAMES:
                _checked_file(entry, name, meta)
            keys = pl.read_parquet(entry / "links.parquet", columns=[*LINK_KEYS, *NUMBERS])
            summary = LinkSummary.from_manifest(meta["summary"])
        except Exception as exc:  # damaged: never trusted, relinked
            self._discard(entry, exc)
            return None
        self.used.add(entry.relative_to(self.root).as_posix())

        def result() -> LinkResult:
            links = _read_frame(entry, "links.parquet", meta)
            return LinkResult(links.drop(NUMBERS), _read_frame(entry, "review.parquet", meta),
                              _read_frame(entry, "households.parquet", meta))

        return Linkage(keys, summary, result)

    def save_link(self, linkage: Linkage) -> None:
        """Cache a linkage with its numbered keys (``numbered_links``: the numbers travel as two more columns of
        the links, read alone on a day that reuses them) and its counts."""
        linked, keys, summary = linkage.result(), linkage.keys, linkage.summary
        key = self.link_key()
        if key is None:
            return
        entry = self.root / "link" / key[:32]
        frames = {"links.parquet": linked.links.with_columns(keys.select(NUMBERS)), "review.parquet": linked.review,
                  "households.parquet": linked.households}
        meta = {"format": FORMAT, "key": key, "summary": summary.as_manifest()}
        if self._write_entry(entry, frames, meta) is not None:
            self.used.add(entry.relative_to(self.root).as_posix())

    # ---- rules ----------------------------------------------------------------------------------------------
    def rules_key(self, policy: tuple[Path, ...]) -> str | None:
        """Key of the rules result on this run's inputs, or None when a file or the linkage was not cached."""
        link_key = self.link_key()
        if link_key is None or any(s not in self.accepted_sha for s in self.ingest_status):
            return None
        try:
            policy_hashes = [file_sha256(path) for path in policy]
        except OSError:
            return None
        return _key("rules", link_key, rules_code_hash(), *policy_hashes,
                    *(f"{s}={self.accepted_sha[s]}" for s in sorted(self.ingest_status)))

    def load_rules(self, policy: tuple[Path, ...]) -> RulesBasis | None:
        """The cached day on these inputs and rules, or None."""
        key = self.rules_key(policy)
        if key is None:
            return None
        entry = self.root / "rules" / key[:32]
        if not (entry / "meta.json").is_file():
            return None
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("key") != key:
                raise ValueError("entry is not for these inputs")
            basis = RulesBasis(dt.date.fromisoformat(meta["run_date"]),
                               _read_frame(entry, "day_params.parquet", meta),
                               _checked_file(entry, "day_facts.parquet", meta),  # read when the rules need it
                               _checked_file(entry, "day_decisions.parquet", meta))
        except Exception as exc:  # damaged: never trusted, recomputed
            self._discard(entry, exc)
            return None
        self.used.add(entry.relative_to(self.root).as_posix())
        self.rules_basis = basis.run_date.isoformat()
        return basis

    def save_rules(self, policy: tuple[Path, ...], basis: RulesBasis) -> None:
        key = self.rules_key(policy)
        if key is None:
            return
        entry = self.root / "rules" / key[:32]
        frames = {"day_params.parquet": basis.params, "day_facts.parquet": basis.facts,
                  "day_decisions.parquet": basis.decisions}
        meta = {"format": FORMAT, "key": key, "run_date": basis.run_date.isoformat()}
        if self._write_entry(entry, frames, meta) is not None:
            self.used.add(entry.relative_to(self.root).as_posix())

    # ---- bounding ------------------------------------------------------------------------------------------
    def sweep(self, run_date: dt.date) -> list[str]:
        """Record this run's entries; remove every entry not used by the last ``KEEP_RUNS`` runs. Returns those
        removed. Call after a successful publish, under the store's lock."""
        ledger_path = self.root / "runs.json"
        try:
            ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
            runs = [r for r in ledger["runs"] if r.get("date") != run_date.isoformat()]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            runs = []
        runs.append({"date": run_date.isoformat(), "entries": sorted(self.used)})
        runs = runs[-KEEP_RUNS:]
        keep = {e for r in runs for e in r.get("entries", [])}
        removed = []
        for kind in ("ingest", "link", "rules"):
            folder = self.root / kind
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                name = f"{kind}/{entry.name}"
                if name not in keep:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                    removed.append(name)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = ledger_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"runs": runs}, indent=1) + "\n", encoding="utf-8")
        tmp.replace(ledger_path)
        return sorted(removed)
