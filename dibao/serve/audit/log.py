"""The append-only audit log writer: hash-chained JSON lines, written whole or not at all, rotated by size.

Each entry carries ``seq`` (1, 2, 3… across all files) and ``prev``, the SHA-256 of the previous entry's exact
bytes (64 zeros before the first), so editing, removing or inserting an entry breaks the chain there. Writers
(threads, and server worker processes) take ``audit.lock`` for each entry, then:

- reopen ``audit.jsonl`` when the path is no longer the file they hold open (removed, replaced, or rotated by
  another process): compared by device and inode;
- re-read the head of the chain when the file changed under them; a line left cut by a crash is removed first
  (and the next entry says how many bytes were removed);
- rotate when the entry would take the file past ``max_file_bytes``: ``audit.jsonl`` is renamed to the next
  ``audit.NNNNNN.jsonl`` and the chain goes on in a new ``audit.jsonl``; with ``keep_files`` set the oldest rotated
  files beyond that many are deleted;
- write the line with one ``write``; a short write or an error truncates the file back to where it was and raises
  ``AuditWriteError``, so the log never holds half an entry and the caller can refuse the request;
- ``fdatasync`` the entry when asked (``sync=True``), before returning. The sync is a group commit: it runs after
  the lock is let go, and one ``fdatasync`` makes every entry written before it durable, so concurrent requests
  wait for one disk flush together instead of one after another (an entry whose sync fails is in the file but
  the caller is told, and refuses the request).
- or, for a caller on the event loop, write now and wait later: ``append(defer_to=tickets)`` adds the entry's
  ticket to ``tickets`` and ``await durable(ticket)`` waits without blocking the loop. One syncer thread runs the
  ``fdatasync`` for every ticket waiting and wakes each waiting loop once, so a burst of lookups costs one flush
  and one wake-up, not a worker thread per request.

When the active file was removed, the chain goes on from the newest head this process knows (its own last entry,
or the newest rotated file's), so the entries that went with the file show up as a gap (``verify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from dibao.durable import fsync_path
from dibao.serve.audit.files import ACTIVE, FolderLock, identity, last_line, rotated_files, rotated_name
from dibao.serve.audit.settings import DEFAULT_MAX_FILE_BYTES

GENESIS = "0" * 64
log = logging.getLogger("dibao.audit")


class AuditWriteError(OSError):
    """An entry could not be written whole; the log is left as it was before the attempt."""


def line_hash(line: bytes) -> str:
    """The chain hash of one entry: SHA-256 of its bytes without the newline."""
    return hashlib.sha256(line).hexdigest()


def _seq_of(line: bytes) -> int | None:
    try:
        value = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


class AuditLog:
    """Appends hash-chained entries to ``audit_dir/audit.jsonl``; safe across threads and processes."""

    def __init__(self, audit_dir: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 keep_files: int | None = None, fsync: bool = False) -> None:
        self.audit_dir = audit_dir
        self.path = audit_dir / ACTIVE
        self.max_file_bytes = max_file_bytes
        self.keep_files = keep_files
        self.fsync = fsync  # sync every entry (else only those appended with sync=True)
        self._lock = threading.Lock()
        self._folder = FolderLock(audit_dir)
        # Group commit: entries are numbered as written (``_written``); ``_synced`` is the highest known durable.
        # ``_sync_lock`` is taken inside ``_lock`` whenever the file descriptor changes, so a sync never runs on a
        # descriptor that is being swapped, and every entry numbered up to ``_written`` is in the current file.
        self._sync_lock = threading.Lock()
        self._written = self._synced = 0
        self._fd = -1
        self._size = -1  # size of the open file after our last look at it; -1: look again
        self._prev, self._seq = GENESIS, 0
        self._repaired = 0  # bytes of a cut line removed, reported in the next entry
        self._syncer = _Syncer(self)
        with self._lock, self._folder.held():
            self._ensure_open()  # fail at start-up, not at the first request, when the folder is not writable

    def close(self) -> None:
        self._syncer.stop()  # its last flush settles every waiter first
        with self._lock, self._sync_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._folder.close()

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last entry this writer knows of."""
        return self._seq, self._prev

    # --- the open file ---------------------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        """Open ``audit.jsonl``, or open it again when the path now names another file (or none)."""
        if self._fd >= 0:
            try:
                if identity(os.stat(self.path)) == identity(os.fstat(self._fd)):
                    return
            except FileNotFoundError:
                pass
            log.warning("audit log %s was removed or replaced; writing to a new file there", self.path)
            self._retire_fd()
        self.audit_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if created:
            fsync_path(self.audit_dir)
        self._size = -1

    def _sync_tail(self) -> None:
        """Take up the head of the chain from the file when it changed since our last entry."""
        size = os.fstat(self._fd).st_size
        if size == self._size:
            return
        last = last_line(self.path, end=size) if size else None
        good_end = 0 if last is None else self._end_of_last_line(size)
        if good_end < size:  # a cut line (a crash mid-write): not an entry, remove it so the chain can go on
            os.ftruncate(self._fd, good_end)
            self._repaired += size - good_end
            log.warning("audit log %s: removed %d bytes of an incomplete last line", self.path, size - good_end)
            size = good_end
        if last is not None:  # the file's own last entry is the head, whatever this process remembers
            self._seq, self._prev = _seq_of(last) or self._seq, line_hash(last)
        else:  # empty: just rotated (by any process), or removed: the newest head known goes on
            rotated = rotated_files(self.audit_dir)
            newest = last_line(rotated[-1][1]) if rotated else None
            if newest is not None and (_seq_of(newest) or 0) > self._seq:
                self._seq, self._prev = _seq_of(newest) or 0, line_hash(newest)
        self._size = size

    def _end_of_last_line(self, size: int) -> int:
        """Offset just after the last newline before ``size``."""
        with self.path.open("rb") as fh:
            pos = size
            while pos > 0:
                step = min(8192, pos)
                pos -= step
                fh.seek(pos)
                chunk = fh.read(step)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    return pos + cut + 1
        return 0

    def _retire_fd(self) -> None:
        """Close the current descriptor after making what was written through it durable (``_lock`` held)."""
        with self._sync_lock:
            try:
                os.fdatasync(self._fd)
                self._synced = self._written
            except OSError:
                log.exception("audit log %s: could not sync the file being closed", self.path)
            os.close(self._fd)
            self._fd = -1

    # --- rotation --------------------------------------------------------------------------------------------

    def _rotate(self) -> None:
        """Rename the full ``audit.jsonl`` to the next ``audit.NNNNNN.jsonl`` and start a new one (the full file is
        synced as its descriptor is retired)."""
        rotated = rotated_files(self.audit_dir)
        target = self.audit_dir / rotated_name(rotated[-1][0] + 1 if rotated else 1)
        os.rename(self.path, target)
        self._retire_fd()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fsync_path(self.audit_dir)
        self._size = 0
        if self.keep_files is not None:
            for _, old in rotated_files(self.audit_dir)[:-self.keep_files]:
                old.unlink(missing_ok=True)
                log.info("audit log: removed %s (keeping %d rotated files)", old.name, self.keep_files)

    # --- appending -------------------------------------------------------------------------------------------

    def append(self, *, user: str | None, role: str | None, action: str, path: str, query: str, status: int | None,
               count: int | None = None, sync: bool = False, defer_to: list[int] | None = None,
               **extra: Any) -> dict[str, Any]:
        """Write one entry whole (or raise ``AuditWriteError`` and write nothing); returns it as written.
        With ``defer_to``, an entry to be synced is not waited for here: its ticket is added to the list, for
        ``durable`` (a caller on the event loop)."""
        with self._lock, self._folder.held():
            try:
                self._ensure_open()
                self._sync_tail()
            except OSError as exc:
                raise AuditWriteError(exc.errno, f"audit log {self.path} cannot be opened: {exc}") from exc
            if self._repaired:
                extra = {**extra, "repaired_bytes": self._repaired}
            entry: dict[str, Any] = {
                "seq": self._seq + 1,
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "user": user, "role": role, "action": action, "path": path, "query": query,
                "status": status, "count": count, **extra, "prev": self._prev,
            }
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            if self._size > 0 and self._size + len(line) + 1 > self.max_file_bytes:
                try:
                    self._rotate()
                except OSError as exc:
                    self._size = -1
                    raise AuditWriteError(exc.errno, f"audit log {self.path} cannot be rotated: {exc}") from exc
            self._write_whole(line + b"\n")
            self._prev, self._seq, self._repaired = line_hash(line), self._seq + 1, 0
            self._written += 1
            ticket = self._written
        if sync or self.fsync:
            if defer_to is None:
                self._sync_through(ticket)
            else:
                defer_to.append(ticket)
        return entry

    async def durable(self, ticket: int) -> None:
        """Wait, without blocking the event loop, until entry number ``ticket`` is on disk (``AuditWriteError``
        when the flush fails)."""
        if self._synced >= ticket:
            return
        await self._syncer.wait(ticket)

    def _sync_through(self, ticket: int) -> None:
        """Make entry number ``ticket`` durable: one ``fdatasync`` serves every entry written before it starts."""
        with self._sync_lock:
            if self._synced >= ticket:
                return  # a sync that started after this entry was written has finished
            target = self._written  # all in the current file: a descriptor swap syncs first (``_retire_fd``)
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                raise AuditWriteError(exc.errno, f"audit entry written but not made durable: {exc}") from exc
            self._synced = max(self._synced, target)

    def _write_whole(self, data: bytes) -> None:
        before = self._size
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise AuditWriteError(f"short write: {written} of {len(data)} bytes (disk full?)")
        except OSError as exc:
            self._truncate(before)
            if isinstance(exc, AuditWriteError):
                raise
            raise AuditWriteError(exc.errno, f"audit entry not written: {exc}") from exc
        self._size = before + len(data)

    def _truncate(self, size: int) -> None:
        """Undo a partial write: cut the file back to ``size``. If even that fails, the next append repairs it."""
        try:
            os.ftruncate(self._fd, size)
        except OSError:
            log.exception("audit log %s: could not remove a partial entry", self.path)
            self._size = -1


class _Syncer:
    """The thread that flushes the log for waiters on event loops: it takes every ticket waiting, runs one
    ``_sync_through`` for the highest, and settles each loop's futures with one ``call_soon_threadsafe``."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self._wake = threading.Condition()
        self._waiting: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    async def wait(self, ticket: int) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._wake:
            if self._stopping:
                raise AuditWriteError("audit log closed before the entry was made durable")
            self._waiting.append((ticket, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-syncer", daemon=True)
                self._thread.start()
            self._wake.notify()
        await future

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._stopping:
                    self._wake.wait()
                batch, self._waiting = self._waiting, []
                if not batch and self._stopping:
                    return
            error: AuditWriteError | None = None
            try:
                self._log._sync_through(max(ticket for ticket, _, _ in batch))
            except AuditWriteError as exc:
                error = exc
            except OSError as exc:  # e.g. the descriptor closed under it: the entry's durability is unknown
                error = AuditWriteError(exc.errno, f"audit entry written but not made durable: {exc}")
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _, loop, future in batch:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
                    loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: AuditWriteError | None) -> None:
    for future in futures:
        if not future.done():  # a cancelled request (the client went away) stays cancelled
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
