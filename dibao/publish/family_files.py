"""The household index of a run as files, written once per run and memory-mapped by every service worker.

Why: ``FamilyIndex.load`` holds every member, fact, decision and history row of a run in the process's own memory
(7.3 GiB at 2 million households), and each service worker held its own copy. Written once as uncompressed Arrow
IPC (the frames, sorted by group) and ``.npy`` (the offsets and the sorted search arrays) and mapped, the rows
live in the operating system's page cache, shared by all workers and read only where a lookup touches them;
``FamilyIndex`` answers from the mapped frames with the same code as from frames in memory.

Layout: ``STORE/family-index/<date>/<key>/`` beside ``STORE/runs/``, never inside a published run folder (the run's
files, manifest and content hash stay as published; the service writes nothing there). The folder is derived and
can be deleted at any time. ``<key>`` names everything the index depends on: this format, the code that builds it,
the library versions, and every published run up to ``<date>`` by content hash (household history spans them all),
so a replaced earlier run or new code gets a new folder. ``meta.json`` lists each file with its size and SHA-256;
an index that fails the check (missing, cut short, altered) is removed and rebuilt, never mapped — a damaged Arrow
file mapped as is would be undefined behaviour.

Building: in a child process (``python -m dibao.publish.family_files``), so the memory of the build (the whole run
in Polars frames) is returned to the system when it exits; under one lock per store, so workers starting together
build once and the others wait and map it; into a temporary folder renamed into place, so a reader sees a whole
index or none; owner-only (``dibao/private_files.py``: names and ID numbers, like the runs it is made from).
History spans are extended from the previous run's index when it covers the same earlier runs (one run read, not
all of them). After a build, indexes of runs before the previous one are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc

import dibao
from dibao.errors import DibaoError
from dibao.private_files import owner_only_process, owner_only_umask
from dibao.publish.contract import PublishedRun
from dibao.publish.household import SPAN_SCHEMA, FamilyIndex, extend_spans, history_part, history_spans
from dibao.publish.store import RunStore

INDEX_DIR = "family-index"
FORMAT = 1  # the layout below; the code hash changes the key whenever the building code changes anyway
META = "meta.json"
FRAMES = ("members", "facts", "decisions", "history")  # FamilyIndex frames, sorted by gid
ARRAYS = ("member_offsets", "fact_offsets", "decision_offsets", "history_offsets", "id_keys", "id_gids",
          "number_keys", "number_gids")
GROUPS, SPANS = "group_names", "spans"  # gid → cross-walk group; the raw spans the next run's index extends
FILES = (*(f"{name}.arrow" for name in (*FRAMES, GROUPS, SPANS)), *(f"{name}.npy" for name in ARRAYS))
_CODE = ("publish/household.py", "publish/family_files.py", "publish/contract.py")
_LIBRARIES = ("polars", "pyarrow", "numpy")
_BUILDING = ".building-"
_LOCK = ".lock"

log = logging.getLogger(__name__)

RunId = tuple[dt.date, str]  # a published run: its date and what identifies its content


class DamagedIndex(DibaoError):
    """An index folder is missing, incomplete or altered: it is rebuilt, never mapped."""


class IndexNotWritable(DibaoError):
    """The index folder cannot be created (a read-only store): the caller indexes the run in memory instead."""


# --- what an index depends on -----------------------------------------------------------------------------------


def run_id(date: dt.date, manifest: dict[str, Any]) -> RunId:
    """A run by the content hash of its data files (a manifest too old to have one: the manifest itself)."""
    content = manifest.get("content_sha256")
    if not isinstance(content, str):
        content = hashlib.sha256(json.dumps(manifest, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return date, content


def store_runs(store: RunStore, date: dt.date) -> list[RunId]:
    """The published runs up to ``date``, oldest first, as the index of ``date`` depends on them."""
    return [run_id(d, store.manifest(d)) for d in store.published_dates() if d <= date]


@lru_cache(maxsize=1)
def _code_hash() -> str:
    digest = hashlib.sha256(f"dibao {dibao.__version__} format {FORMAT}\n".encode())
    package = Path(dibao.__file__).parent
    for relative in _CODE:
        digest.update(relative.encode() + b"\0" + (package / relative).read_bytes() + b"\0")
    for name in _LIBRARIES:
        digest.update(f"{name} {metadata.version(name)}\n".encode())
    return digest.hexdigest()


def index_key(runs: Sequence[RunId]) -> str:
    """The folder name of the index of ``runs[-1]``: changes with the code or with any run up to it."""
    digest = hashlib.sha256(_code_hash().encode())
    for date, content in runs:
        digest.update(f"{date.isoformat()} {content}\n".encode())
    return digest.hexdigest()[:32]


def index_home(store: RunStore) -> Path:
    return store.root / INDEX_DIR


def index_folder(store: RunStore, runs: Sequence[RunId]) -> Path:
    return index_home(store) / runs[-1][0].isoformat() / index_key(runs)


def _encode_runs(runs: Sequence[RunId]) -> list[list[str]]:
    return [[date.isoformat(), content] for date, content in runs]


# --- writing and checking ---------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    """Read with plain reads, not through a mapping: checking a file does not count in the reader's memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_index(index: FamilyIndex, spans: pl.DataFrame, runs: Sequence[RunId], folder: Path,
                seconds: dict[str, float] | None = None) -> None:
    """Write ``index`` (and the raw ``spans`` its history came from) into ``folder``, ``meta.json`` last.
    ``seconds``: how long the steps of the build took, kept in ``meta.json`` for whoever wonders."""
    started = time.perf_counter()
    folder.mkdir(parents=True)
    for name in FRAMES:
        getattr(index, name).write_ipc(folder / f"{name}.arrow", compression="uncompressed")
    index.group_names.to_frame().write_ipc(folder / f"{GROUPS}.arrow", compression="uncompressed")
    spans.write_ipc(folder / f"{SPANS}.arrow", compression="uncompressed")
    for name in ARRAYS:
        np.save(folder / f"{name}.npy", np.ascontiguousarray(getattr(index, name)), allow_pickle=False)
    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)} for name in FILES}
    seconds = {**(seconds or {}), "write": round(time.perf_counter() - started, 2)}
    meta = {"format": FORMAT, "key": index_key(runs), "runs": _encode_runs(runs), "sizes": index.sizes,
            "files": files, "build_seconds": seconds}
    (folder / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def checked_meta(folder: Path, key: str, *, hashes: bool = True) -> dict[str, Any]:
    """``meta.json`` of a whole, unaltered index for ``key``; ``DamagedIndex`` otherwise. ``hashes``: also compare
    every file's SHA-256 (seconds at 2 million households), not only its size."""
    try:
        meta: dict[str, Any] = json.loads((folder / META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("key") != key or sorted(meta.get("files", {})) != sorted(FILES):
            raise DamagedIndex(f"{folder}: not an index of this format and key")
        for name, expected in meta["files"].items():
            path = folder / name
            if path.stat().st_size != expected["bytes"]:
                raise DamagedIndex(f"{path}: {path.stat().st_size} bytes, {expected['bytes']} written")
            if hashes and _sha256(path) != expected["sha256"]:
                raise DamagedIndex(f"{path}: content differs from what was written (SHA-256)")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DamagedIndex(f"{folder}: {exc}") from exc
    return meta


def _mapped_frame(path: Path) -> pl.DataFrame:
    """The frame as a view of the file's pages: pyarrow maps it, Polars takes the Arrow buffers without a copy."""
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    frame = pl.from_arrow(table, rechunk=False)
    if not isinstance(frame, pl.DataFrame):
        raise DamagedIndex(f"{path}: not a table")
    return frame


def _mapped_array(path: Path) -> np.ndarray:
    array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    return array


def map_index(folder: Path, meta: dict[str, Any]) -> FamilyIndex:
    """The ``FamilyIndex`` of a checked index folder, its frames and arrays mapped from the files."""
    runs = [dt.date.fromisoformat(date) for date, _ in meta["runs"]]
    mapped: dict[str, Any] = {name: _mapped_frame(folder / f"{name}.arrow") for name in FRAMES}
    mapped.update({name: _mapped_array(folder / f"{name}.npy") for name in ARRAYS})
    return FamilyIndex(date=runs[-1], run_dates=tuple(runs),
                       group_names=_mapped_frame(folder / f"{GROUPS}.arrow").to_series(), sizes=dict(meta["sizes"]),
                       **mapped)


# --- building (the child process) -------------------------------------------------------------------------------


def _previous_spans(store: RunStore, runs: Sequence[RunId]) -> pl.DataFrame | None:
    """The raw spans of ``runs[:-1]`` from the previous run's index, when one covers exactly those runs."""
    if len(runs) < 2:
        return None
    earlier = runs[:-1]
    folder = index_folder(store, earlier)
    try:
        meta = checked_meta(folder, index_key(earlier), hashes=False)
        if meta["runs"] != _encode_runs(earlier) or _sha256(folder / f"{SPANS}.arrow") != \
                meta["files"][f"{SPANS}.arrow"]["sha256"]:
            return None
        spans = pl.read_ipc(folder / f"{SPANS}.arrow")
    except (DamagedIndex, OSError, pl.exceptions.PolarsError):
        return None
    return spans if spans.schema == pl.Schema(SPAN_SCHEMA) else None


def build_index(store: RunStore, date: dt.date, key: str) -> Path:
    """Index the run of ``date`` into ``STORE/family-index/<date>/<key>/`` (call under the store's index lock).

    Fails when the store's runs up to ``date`` no longer give ``key`` (a run was published or replaced meanwhile):
    the caller asks again with the runs it sees then."""
    runs = store_runs(store, date)
    if not runs or runs[-1][0] != date or index_key(runs) != key:
        raise DibaoError(f"{store.root}: the runs up to {date} changed while their index was asked for")
    dates = [d for d, _ in runs]
    started = time.perf_counter()
    previous = _previous_spans(store, runs)
    spans = (history_spans(store, dates) if previous is None else
             extend_spans(previous, history_part(PublishedRun(store.run_dir(date))), len(dates) - 1))
    history_done = time.perf_counter()
    index = FamilyIndex.load(PublishedRun(store.run_dir(date)), dates, spans)
    seconds = {"history": round(history_done - started, 2), "index": round(time.perf_counter() - history_done, 2),
               "history_runs_read": 1 if previous is not None else len(dates)}
    final = index_folder(store, runs)
    temporary = final.parent / f"{_BUILDING}{os.getpid()}-{uuid.uuid4().hex}"
    try:
        write_index(index, spans, runs, temporary, seconds)
        if index_key(store_runs(store, date)) != key:
            raise DibaoError(f"{store.root}: a run up to {date} was replaced while it was being indexed")
        temporary.rename(final)  # no fsync: a file cut short by a crash fails the check and is rebuilt
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dibao.publish.family_files",
                                     description="Write the household index of one published run (the service "
                                                 "runs this itself, under the store's index lock).")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--date", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    owner_only_process()  # the index holds names and ID numbers, like the runs it is made from
    started = time.perf_counter()
    try:
        folder = build_index(RunStore(args.store), args.date, args.key)
    except DibaoError as exc:
        sys.exit(f"error: {exc}")
    print(f"{folder} written in {time.perf_counter() - started:.1f} s")


# --- opening (the service) -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _store_lock(home: Path) -> Iterator[None]:
    """One index build at a time per store (each holds a whole run in memory); waits for the one under way."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise IndexNotWritable(f"{home}: cannot write the household index here ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _run_builder(store: RunStore, date: dt.date, key: str) -> None:
    """Build in a child process; it gets every core (the service's one-thread Polars setting is for requests)."""
    package_root = str(Path(dibao.__file__).resolve().parent.parent)
    env = {name: value for name, value in os.environ.items() if name != "POLARS_MAX_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-m", "dibao.publish.family_files", "--store", str(store.root),
                           "--date", date.isoformat(), "--key", key], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise DibaoError(f"indexing the run of {date} failed (exit {done.returncode}): " + " | ".join(tail))


def _prune(store: RunStore, runs: Sequence[RunId]) -> None:
    """Remove other keys of this run, builds left by killed builders, and indexes of runs before the previous one
    (a worker still mapping a removed file keeps reading it: the pages live until it lets go)."""
    home = index_home(store)
    date = runs[-1][0]
    keep_from = runs[-2][0] if len(runs) > 1 else date
    key = index_key(runs)
    for entry in home.iterdir():
        if not entry.is_dir():
            continue
        try:
            entry_date = dt.date.fromisoformat(entry.name)
        except ValueError:
            continue
        if entry_date < keep_from:
            shutil.rmtree(entry, ignore_errors=True)
        elif entry_date == date:
            for built in entry.iterdir():
                if built.name != key:
                    shutil.rmtree(built, ignore_errors=True)


def ensure_index(store: RunStore, runs: Sequence[RunId]) -> tuple[Path, dict[str, Any], bool]:
    """The checked index folder of ``runs[-1]``, built when missing or damaged: (folder, meta, built here)."""
    key = index_key(runs)
    folder = index_folder(store, runs)
    with contextlib.suppress(DamagedIndex):
        return folder, checked_meta(folder, key), False
    with owner_only_umask(), _store_lock(index_home(store)):
        with contextlib.suppress(DamagedIndex):  # built by another worker while this one waited
            return folder, checked_meta(folder, key), False
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        for leftover in folder.parent.glob(f"{_BUILDING}*"):  # a killed builder's (builders hold this lock)
            shutil.rmtree(leftover, ignore_errors=True)
        started = time.perf_counter()
        _run_builder(store, runs[-1][0], key)
        meta = checked_meta(folder, key, hashes=False)  # written and hashed by the builder just now
        log.info("indexed run %s in %.1f s (%s) into %s", runs[-1][0], time.perf_counter() - started,
                 meta.get("build_seconds"), folder)
        _prune(store, runs)
        return folder, meta, True


def open_index(store: RunStore, runs: Sequence[RunId]) -> FamilyIndex:
    """The ``FamilyIndex`` of ``runs[-1]`` (``runs``: every published run up to it), mapped from its files."""
    folder, meta, _ = ensure_index(store, runs)
    return map_index(folder, meta)


if __name__ == "__main__":
    main()
