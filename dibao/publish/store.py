"""The run store: one dated folder per published run (``dibao/publish/contract.py``), published all at once
or not at all.

A run is written into a hidden ``runs/.incoming-*`` folder and renamed to ``runs/YYYY-MM-DD`` only when every
file is complete and synced, so a reader (an analyst's DuckDB query, the API) sees either the previous run or
the new one, never half of one. A lock file keeps two runs from writing the same store at once.

Everything in a store is personal data: a run writes under umask ``0o077`` (folders ``0700``, files ``0600``, also
in the worker processes it starts), and a store root that others can read is made owner-only, with everything
below it, when a run opens it (``dibao/private_files.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dibao.durable import fsync_path
from dibao.errors import DibaoError, StoreBusy
from dibao.private_files import owner_only_umask, private_dir

INCOMING_PREFIX = ".incoming-"
REPLACED_PREFIX = ".replaced-"
SPILL_PREFIX = ".spill-"  # DuckDB's spill folder of a run in progress


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            fsync_path(path)
    fsync_path(folder)


class RunStore:
    """A folder of published runs: ``STORE/runs/<date>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs_dir = root / "runs"

    def secure(self) -> None:
        """Create the store root and ``runs/`` owner-only; a root others can read is fixed, tree and all, with a
        warning (a store written before this rule, or copied without its modes)."""
        private_dir(self.root, what="store", tree=True)
        private_dir(self.runs_dir, what="store folder")

    def run_dir(self, date: dt.date) -> Path:
        return self.runs_dir / date.isoformat()

    def published_dates(self) -> list[dt.date]:
        """Dates of complete, published runs, oldest first."""
        if not self.runs_dir.is_dir():
            return []
        dates = []
        for entry in self.runs_dir.iterdir():
            if entry.name.startswith("."):
                continue
            with contextlib.suppress(ValueError):
                if (entry / "manifest.json").is_file():
                    dates.append(dt.date.fromisoformat(entry.name))
        return sorted(dates)

    def previous(self, date: dt.date) -> dt.date | None:
        """The latest published run strictly before ``date`` (its state is carried into ``date``)."""
        earlier = [d for d in self.published_dates() if d < date]
        return earlier[-1] if earlier else None

    def remove_after(self, date: dt.date) -> list[dt.date]:
        """Remove published runs later than ``date`` (a rebuild from ``date`` forward). Call under ``lock()``."""
        later = [d for d in self.published_dates() if d > date]
        for d in later:
            aside = self.runs_dir / f"{REPLACED_PREFIX}{d.isoformat()}-{os.getpid()}"
            self.run_dir(d).rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        return later

    def manifest(self, date: dt.date) -> dict[str, object]:
        path = self.run_dir(date) / "manifest.json"
        result: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
        return result

    @contextlib.contextmanager
    def lock(self, wait_seconds: float = 0.0) -> Iterator[None]:
        """Hold the store's write lock; another run waits up to ``wait_seconds`` then gets StoreBusy.

        While it is held the process umask is ``0o077``: whatever the run writes (Parquet, the cache, DuckDB's
        spill files, work lists written by spawned workers) is owner-only."""
        with owner_only_umask():
            self.secure()
            with self._locked(wait_seconds):
                yield

    @contextlib.contextmanager
    def _locked(self, wait_seconds: float) -> Iterator[None]:
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_seconds
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise StoreBusy(f"{self.root}: another dibao run holds this store; try again later") \
                            from None
                    time.sleep(0.2)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._sweep_leftovers()
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _sweep_leftovers(self) -> None:
        """Remove half-written folders of runs that were killed (only ever called under the lock)."""
        for entry in self.runs_dir.iterdir():
            if entry.name.startswith((INCOMING_PREFIX, REPLACED_PREFIX, SPILL_PREFIX)):
                shutil.rmtree(entry, ignore_errors=True)

    @contextlib.contextmanager
    def spill_folder(self) -> Iterator[Path]:
        """A folder for DuckDB to spill to while the run holds the lock, inside the store (same disk as the runs),
        removed afterwards; a killed run's is swept by the next run."""
        folder = self.runs_dir / f"{SPILL_PREFIX}{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish(self, date: dt.date, write: Callable[[Path], None], *, replace: bool = False) -> Path:
        """Write a run with ``write(folder)`` into a temporary folder, then rename it into place.

        Must be called under ``lock()``. An existing run for ``date`` is replaced only when ``replace`` is set.
        """
        final = self.run_dir(date)
        if final.exists() and not replace:
            raise DibaoError(f"{final}: a run for {date} is already published (use --replace to rebuild it)")
        incoming = self.runs_dir / f"{INCOMING_PREFIX}{date.isoformat()}-{os.getpid()}"
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(parents=True)
        try:
            write(incoming)
            _fsync_tree(incoming)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        if final.exists():
            aside = self.runs_dir / f"{REPLACED_PREFIX}{date.isoformat()}-{os.getpid()}"
            final.rename(aside)
            incoming.rename(final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            incoming.rename(final)
        fsync_path(self.runs_dir)
        return final
