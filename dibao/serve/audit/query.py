"""Reading the log back: entries by user, time, action or looked-up number; the full check with anchors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dibao.serve.audit.anchor import Anchor, compare, load_anchors
from dibao.serve.audit.files import log_files
from dibao.serve.audit.ids import IdHasher
from dibao.serve.audit.settings import AuditSettings
from dibao.serve.audit.verify import ChainReport, check_chain


def _entries(audit_dir: Path) -> Iterator[dict[str, Any]]:
    for path in log_files(audit_dir):
        try:
            fh = path.open("rb")
        except FileNotFoundError:  # rotated away since listed
            continue
        with fh:
            for raw in fh:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    yield entry


def _as_time(value: dt.datetime | dt.date | str | None, *, end: bool) -> dt.datetime | None:
    """A bound for ``query_audit``: a date covers the whole day; naive times are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time.max if end else dt.time.min)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def query_audit(audit_dir: Path, user: str | None = None, since: dt.datetime | dt.date | str | None = None,
                until: dt.datetime | dt.date | str | None = None, action: str | None = None,
                mentions: str | None = None) -> list[dict[str, Any]]:
    """Entries of ``user`` / ``action`` between ``since`` and ``until`` (inclusive), oldest first, across the
    rotated files; ``mentions``: only entries whose path or query holds that text (an ``[id:…]`` hash)."""
    lower, upper = _as_time(since, end=False), _as_time(until, end=True)
    found = []
    for entry in _entries(audit_dir):
        if user is not None and entry.get("user") != user:
            continue
        if action is not None and entry.get("action") != action:
            continue
        if mentions is not None and mentions not in f"{entry.get('path', '')} {entry.get('query', '')}":
            continue
        if lower is not None or upper is not None:
            try:
                when = dt.datetime.fromisoformat(entry["time"])
            except (KeyError, TypeError, ValueError):
                continue
            if (lower is not None and when < lower) or (upper is not None and when > upper):
                continue
        found.append(entry)
    return found


def find_id(settings: AuditSettings, number: str, **filters: Any) -> tuple[str, list[dict[str, Any]]]:
    """(the number's hash, the entries that looked it up): the hash is made with the service's ID key, from the
    number in any form (spaces, hyphens, full-width, lower-case x, 15 or 18 digits)."""
    tag = IdHasher.from_file(settings.hmac_key_file, create=False).tag(number)
    return tag, query_audit(settings.audit_dir, mentions=tag, **filters)


@dataclass
class Verification:
    """``dibao audit --verify``: the chain across all files, and the log against the latest anchor."""

    chain: ChainReport
    anchor: Anchor | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        if not self.ok:
            return "; ".join(self.problems)
        text = self.chain.summary()
        if self.anchor is not None:
            text += f"; matches {self.anchor.describe()}"
        return text


def verify_log(settings: AuditSettings) -> Verification:
    """Every entry's place in the chain, then the log against the latest anchor: fewer entries than anchored,
    or another entry at the anchored count, fails (as does a missing or empty log once anything was anchored)."""
    anchors = load_anchors(settings)
    latest = anchors.latest
    chain = check_chain(settings.audit_dir, pruning_allowed=settings.keep_files is not None,
                        want={latest.entries} if latest else set())
    result = Verification(chain, latest, problems=[*chain.problems, *anchors.problems, *compare(chain, latest)],
                          notes=[*chain.notes, *anchors.notes])
    if latest is not None and latest.entries and chain.last_seq >= latest.entries \
            and latest.entries not in chain.hashes:
        result.notes.append(f"entry {latest.entries} of {latest.describe()} is no longer kept (retention): "
                            f"the log is checked against it no further")
    return result
