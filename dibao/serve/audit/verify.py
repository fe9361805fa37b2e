"""Checking the log: every entry's ``seq`` and ``prev`` across all its files, oldest first.

The files are listed and their sizes taken under the folder's shared lock (no entry is half written at that
moment), then read without it, so a long check does not hold up the service. Faults are named with the file
and line: an edited entry (the next one no longer chains to it), removed or inserted entries (a jump in
``seq``), a gap between rotated files, a log that begins after entry 1 (a removed file), a cut last line.
Removing entries from the end leaves a valid shorter chain: only an anchor (``anchor``) tells.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dibao.serve.audit.files import LOCK, log_files
from dibao.serve.audit.log import GENESIS, line_hash

MAX_LINE = 1 << 20  # an entry is ~2 KB; a longer "line" is not one of ours


@dataclass
class ChainReport:
    """What one pass over the log found."""

    files: list[str]
    entries: int = 0  # entries read
    first_seq: int | None = None
    last_seq: int = 0
    head: str = GENESIS
    tail_file: str | None = None  # the file and offset just after the last entry
    tail_offset: int = 0
    hashes: dict[int, str] = field(default_factory=dict)  # seq → hash, for the seqs asked for
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if not self.entries:
            return "audit log is empty" if self.files else "audit log is empty (no file yet)"
        span = f"entries {self.first_seq}–{self.last_seq}" if self.first_seq != 1 else f"{self.last_seq} entries"
        return f"{span} in {len(self.files)} file(s), chain intact; head sha256 {self.head}"


@contextlib.contextmanager
def _snapshot(audit_dir: Path) -> Iterator[list[tuple[str, BinaryIO, int]]]:
    """The log's files opened, each with its size, as of one moment when no entry was being written."""
    opened: list[tuple[str, BinaryIO, int]] = []
    try:
        if audit_dir.is_dir():
            try:
                lock_fd = os.open(audit_dir / LOCK, os.O_RDONLY)
            except OSError:
                lock_fd = -1  # no writer has run yet (or it is not ours to read): nothing to wait for
            try:
                if lock_fd >= 0:
                    fcntl.flock(lock_fd, fcntl.LOCK_SH)
                for path in log_files(audit_dir):
                    try:
                        handle: BinaryIO = path.open("rb")
                    except FileNotFoundError:
                        continue
                    opened.append((path.name, handle, os.fstat(handle.fileno()).st_size))
            finally:
                if lock_fd >= 0:
                    os.close(lock_fd)  # releases the lock
        yield opened
    finally:
        for _, fh, _ in opened:
            fh.close()


def _lines(fh: BinaryIO, size: int) -> Iterator[tuple[int, int, bytes]]:
    """(line number, offset after it, bytes) of a file up to ``size``; the last may lack its newline (cut)."""
    offset, number = 0, 0
    while offset < size:
        raw = fh.readline(min(MAX_LINE, size - offset))
        if not raw:
            return
        offset += len(raw)
        number += 1
        yield number, offset, raw


def _first_seq(fh: BinaryIO, size: int) -> int | None:
    fh.seek(0)
    raw = fh.readline(min(MAX_LINE, size))
    fh.seek(0)
    try:
        seq = json.loads(raw).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


def check_chain(audit_dir: Path, *, pruning_allowed: bool = False, want: frozenset[int] | set[int] = frozenset(),
                resume: tuple[int, str] | None = None) -> ChainReport:
    """Walk the chain. ``want``: seqs whose hash to report (anchored entries). ``pruning_allowed``: a log that
    begins after entry 1 is retention at work, not a fault. ``resume`` = (seq, hash) of an anchored entry: start
    at the file holding it and check only from there (the daily anchor does not re-read months of log)."""
    with _snapshot(audit_dir) as files:
        report = ChainReport(files=[name for name, _, _ in files])
        start = 0
        if resume is not None:
            for index, (_, fh, size) in enumerate(files):
                first = _first_seq(fh, size)
                if first is not None and first <= resume[0]:
                    start = index
        _walk(files[start:], report, pruning_allowed=pruning_allowed or resume is not None,
              want=set(want) | ({resume[0]} if resume else set()), skip_before=resume[0] if resume else 0)
    return report


def _walk(files: list[tuple[str, BinaryIO, int]], report: ChainReport, *, pruning_allowed: bool,
          want: set[int], skip_before: int) -> None:
    expected: int | None = None
    prev = GENESIS
    previous_file: str | None = None

    def fault(text: str) -> None:
        if report.ok:  # after the first fault the chain is broken anyway: name only the first
            report.problems.append(text)

    for name, fh, size in files:
        first_in_file = True
        for number, offset, raw in _lines(fh, size):
            where = f"line {number} of {name}"
            if not raw.endswith(b"\n"):
                fault(f"{where}: incomplete last line of {len(raw)} bytes (a write was cut; the next entry "
                      f"removes it)" if offset >= size else f"{where}: longer than {MAX_LINE} bytes (not an entry)")
                break
            line = raw[:-1]
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            seq = entry.get("seq") if isinstance(entry, dict) else None
            if not isinstance(seq, int) or not isinstance(entry, dict):
                fault(f"{where}: not an audit entry (edited)")
                seq = (expected or 1)
                entry = {}
            if seq < skip_before:  # before the anchored entry (checked when it was anchored): counted only
                report.entries += 1
                report.last_seq = seq
                continue
            if expected is None:
                report.first_seq = seq
                if skip_before:
                    pass  # resumed at an anchored entry: what came before it was checked then
                elif seq == 1 and entry.get("prev") != GENESIS:
                    fault(f"{where}: entry 1 does not start the chain (edited)")
                elif seq > 1 and pruning_allowed:
                    report.notes.append(f"the log begins at entry {seq} ({name}): older files were removed by "
                                        f"retention (DIBAO_AUDIT_KEEP_FILES)")
                elif seq > 1:
                    fault(f"{where}: the log begins at entry {seq}, so entries 1–{seq - 1} are missing (a file "
                          f"was removed, or the log was deleted and started again)")
            elif seq != expected:
                if first_in_file and previous_file is not None:
                    fault(f"gap between {previous_file} (ends at entry {expected - 1}) and {name} (begins at "
                          f"entry {seq})")
                else:
                    fault(f"{where}: sequence number is {seq}, expected {expected} (an entry was removed or "
                          f"inserted before it)")
            elif entry.get("prev") != prev:
                before = f"the last entry of {previous_file}" if first_in_file and previous_file else \
                    f"line {number - 1}"
                fault(f"{where}: does not chain to {before} (that entry was edited, or entries were removed)")
            prev = line_hash(line)
            if seq in want:
                report.hashes[seq] = prev
            expected = seq + 1
            report.entries += 1
            report.last_seq, report.head = seq, prev
            report.tail_file, report.tail_offset = name, offset
            first_in_file = False
        else:
            if first_in_file and name != files[-1][0]:
                fault(f"{name}: a rotated file with no entries")
        previous_file = name if not first_in_file else previous_file
    if skip_before and skip_before not in report.hashes and report.last_seq >= skip_before:
        fault(f"entry {skip_before} (anchored) is not in the log")


def verify_chain(audit_dir: Path, *, pruning_allowed: bool = False) -> tuple[bool, str]:
    """(True, summary with the head hash) or (False, the first fault). Checks the chain only; ``verify_log``
    (``dibao audit --verify``) also checks it against the anchors."""
    report = check_chain(audit_dir, pruning_allowed=pruning_allowed)
    return (True, report.summary()) if report.ok else (False, report.problems[0])
