"""Anchors: the log's head (entry count and hash of the last entry, with its file and offset) written now and
then to a separate place, signed with a key the service never reads, so that cutting, rewriting or deleting the
log after an anchor is found by ``dibao audit --verify``.

``ANCHOR_DIR/anchors.jsonl``, one JSON line per anchor: ``n`` (1, 2…), ``time``, ``log`` (the audit folder),
``entries``, ``head``, ``file``, ``offset``, ``prev`` (SHA-256 of the previous anchor line) and ``mac``
(HMAC-SHA256 of the rest with the anchor key). Written by ``dibao audit anchor`` and by the daily run after it
publishes. Before anchoring, the log is checked from the previous anchor on; a log that fails is not anchored.

What this detects and what not (the threat model) is in dibao/serve/README.md, "Audit log".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dibao.durable import fsync_path
from dibao.errors import DibaoError
from dibao.serve.audit.files import log_files
from dibao.serve.audit.keys import KeyFileError, key_from_file, read_key
from dibao.serve.audit.log import GENESIS, line_hash
from dibao.serve.audit.settings import AuditSettings
from dibao.serve.audit.verify import ChainReport, check_chain

ANCHORS = "anchors.jsonl"
log = logging.getLogger("dibao.audit")


class AnchorError(DibaoError):
    """The log (or the anchors) failed the check that comes before a new anchor: nothing was anchored."""


@dataclass(frozen=True)
class Anchor:
    number: int
    time: str
    entries: int
    head: str
    file: str | None
    offset: int

    def describe(self) -> str:
        return f"anchor #{self.number} of {self.time} ({self.entries} entries)"


@dataclass
class Anchors:
    """The anchors read back, with what is wrong with them."""

    records: list[Anchor] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last_line: bytes | None = None

    @property
    def latest(self) -> Anchor | None:
        return self.records[-1] if self.records else None


def _mac(key: bytes, record: dict[str, Any]) -> str:
    body = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def load_anchors(settings: AuditSettings) -> Anchors:
    """The anchors of ``settings.anchor_dir``, each checked: its MAC, its place in the anchors' own chain."""
    found = Anchors()
    path = settings.anchor_dir / ANCHORS
    if not path.exists():
        if settings.anchor_key_file.exists():
            found.problems.append(f"{path} does not exist, but the anchor key {settings.anchor_key_file} does: "
                                  f"anchors were written and have been removed")
        else:
            found.notes.append("not anchored yet: removing the newest entries cannot be detected until "
                               "`dibao audit anchor` (or a daily run) has anchored the log")
        return found
    try:
        key = read_key(settings.anchor_key_file)
    except KeyFileError as exc:
        found.problems.append(f"the anchors cannot be checked: {exc}")
        return found
    prev = GENESIS
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            where = f"{path.name} line {number}"
            try:
                record = json.loads(raw)
                mac = record.pop("mac")
                anchor = Anchor(int(record["n"]), str(record["time"]), int(record["entries"]), str(record["head"]),
                                record.get("file"), int(record.get("offset") or 0))
            except (ValueError, KeyError, TypeError, AttributeError):
                found.problems.append(f"{where}: not an anchor (edited)")
                break
            if not hmac.compare_digest(str(mac), _mac(key, record)):
                found.problems.append(f"{where}: signature does not match (forged or edited anchor)")
                break
            if anchor.number != number or record.get("prev") != prev:
                found.problems.append(f"{where}: anchors were removed or reordered before it")
                break
            found.records.append(anchor)
            prev = line_hash(raw.rstrip(b"\n"))
            found.last_line = raw.rstrip(b"\n")
    if not found.records and not found.problems:
        found.problems.append(f"{path} is empty: its anchors have been removed")
    return found


def compare(report: ChainReport, anchor: Anchor | None) -> list[str]:
    """What is wrong with the log as ``report`` read it, against ``anchor``."""
    if anchor is None or anchor.entries == 0:
        return []
    if report.last_seq < anchor.entries:
        if not report.entries:
            return [f"the audit log is missing or empty, but {anchor.describe()} recorded {anchor.entries} "
                    f"entries: the log was deleted or emptied"]
        return [f"the log ends at entry {report.last_seq}, but {anchor.describe()} recorded {anchor.entries}: "
                f"entries {report.last_seq + 1}–{anchor.entries} were removed (the log was cut)"]
    seen = report.hashes.get(anchor.entries)
    if seen is None:
        return []  # no longer kept (retention): nothing to compare with; ``verify_log`` notes it
    if seen != anchor.head:
        return [f"entry {anchor.entries} is not the one {anchor.describe()} recorded: the log was rewritten "
                f"up to there"]
    return []


@contextlib.contextmanager
def _anchors_locked(settings: AuditSettings) -> Iterator[tuple[int, bool]]:
    """The anchors file, open for appending under an exclusive lock; whether this call made it. A file made here
    and left empty (the check failed) is removed again, so it cannot pass for anchors that were removed."""
    settings.anchor_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = settings.anchor_dir / ANCHORS
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        created = os.fstat(fd).st_size == 0 and not settings.anchor_key_file.exists()
        try:
            yield fd, created
        finally:
            if created and os.fstat(fd).st_size == 0:
                path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def write_anchor(settings: AuditSettings) -> Anchor:
    """Check the log since the latest anchor, then anchor its head; ``AnchorError`` when the check fails."""
    with _anchors_locked(settings) as (fd, first):
        anchors = Anchors() if first else load_anchors(settings)
        if anchors.problems:
            raise AnchorError("not anchored: " + "; ".join(anchors.problems))
        latest = anchors.latest
        resume = (latest.entries, latest.head) if latest is not None and latest.entries else None
        report = check_chain(settings.audit_dir, pruning_allowed=settings.keep_files is not None,
                             want={latest.entries} if latest else set(), resume=resume)
        problems = report.problems + compare(report, latest)
        if problems:
            raise AnchorError(f"not anchored: the audit log in {settings.audit_dir} fails its check: "
                              + "; ".join(problems))
        key = key_from_file(settings.anchor_key_file, create=True)
        record: dict[str, Any] = {
            "n": (latest.number if latest else 0) + 1,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "log": str(settings.audit_dir.resolve()),
            "entries": report.last_seq, "head": report.head, "file": report.tail_file,
            "offset": report.tail_offset,
            "prev": line_hash(anchors.last_line) if anchors.last_line is not None else GENESIS,
        }
        record["mac"] = _mac(key, record)
        line = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        written = os.write(fd, line + b"\n")
        if written != len(line) + 1:
            os.ftruncate(fd, os.fstat(fd).st_size - written)
            raise AnchorError(f"not anchored: short write to {settings.anchor_dir / ANCHORS} (disk full?)")
        os.fsync(fd)
        if first:
            fsync_path(settings.anchor_dir)
    return Anchor(record["n"], record["time"], record["entries"], record["head"], record["file"], record["offset"])


def anchor_after_run(store: Path) -> Anchor | None:
    """The daily run's anchor, after it has published. A published run stays published: a failure here is
    logged as an error (with what is wrong with the log), not raised. Nothing is anchored before the log
    exists."""
    try:
        settings = AuditSettings.for_store(store)
        if not log_files(settings.audit_dir) and not (settings.anchor_dir / ANCHORS).exists():
            return None
        anchor = write_anchor(settings)
    except (DibaoError, OSError) as exc:
        log.error("audit log: %s", exc)
        return None
    log.info("audit log anchored: %s", anchor.describe())
    return anchor
