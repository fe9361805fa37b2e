"""Bearer tokens for the API: a YAML file that holds only each token's SHA-256, with its name, role and counties.

```yaml
tokens:
- name: 凤台县-张三
  role: caseworker          # caseworker | analyst | admin
  counties: ['340421']      # a caseworker sees households of these counties only
  sha256: 9f86d08…
  created: '2026-11-21T08:00:00+00:00'
```

``add_token`` makes a random token (``secrets.token_urlsafe(32)``), stores its hash and returns the token once: it
cannot be recovered from the file. A lost token is revoked (``revoke_token``) and a new one added.
The server re-reads the file when it changes, so adding or revoking a token needs no restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROLES = ("caseworker", "analyst", "admin")
ROLE_LABELS = {"caseworker": "经办人员", "analyst": "统计分析人员", "admin": "管理员"}
_COUNTY = re.compile(r"^[0-9]{6}$")


class TokenFileError(ValueError):
    """The tokens file is malformed, or a token request is invalid."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, role and (for a caseworker) counties."""

    name: str
    role: str
    counties: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def reads_personal_data(self) -> bool:
        """Caseworkers and admins; an analyst reads aggregates only."""
        return self.role in ("caseworker", "admin")

    def sees_county(self, county_code: str | None) -> bool:
        if self.role == "admin":
            return True
        return self.role == "caseworker" and county_code in self.counties


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read_entries(tokens_file: Path) -> list[dict[str, Any]]:
    if not tokens_file.exists():
        return []
    try:
        doc = yaml.safe_load(tokens_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TokenFileError(f"{tokens_file}: not valid YAML: {exc}") from exc
    entries = doc.get("tokens", []) if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise TokenFileError(f"{tokens_file}: expected a mapping with a 'tokens' list")
    return entries


def _write_entries(tokens_file: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the file atomically (temporary file + rename), readable by its owner only."""
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    text = ("# dibao API tokens: only SHA-256 hashes are stored (dibao/serve/tokens.py)\n"
            + yaml.safe_dump({"tokens": entries}, allow_unicode=True, sort_keys=False))
    fd, tmp = tempfile.mkstemp(dir=tokens_file.parent, prefix=f".{tokens_file.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, tokens_file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _principal(entry: dict[str, Any], where: str) -> tuple[str, Principal]:
    try:
        name, role, digest = str(entry["name"]), str(entry["role"]), str(entry["sha256"])
    except (KeyError, TypeError) as exc:
        raise TokenFileError(f"{where}: each token needs name, role and sha256") from exc
    if role not in ROLES:
        raise TokenFileError(f"{where}: token {name!r} has unknown role {role!r} (known: {', '.join(ROLES)})")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise TokenFileError(f"{where}: token {name!r}: sha256 must be 64 lower-case hex digits")
    counties = frozenset(str(c) for c in entry.get("counties") or [])
    return digest, Principal(name, role, counties if role == "caseworker" else frozenset())


def load_tokens(tokens_file: Path) -> dict[str, Principal]:
    """SHA-256 of the token → who holds it. A missing file means no tokens (every request gets 401)."""
    book: dict[str, Principal] = {}
    for i, entry in enumerate(_read_entries(tokens_file), start=1):
        if not isinstance(entry, dict):
            raise TokenFileError(f"{tokens_file}: tokens[{i}] is not a mapping")
        digest, principal = _principal(entry, f"{tokens_file}: tokens[{i}]")
        book[digest] = principal
    return book


def add_token(tokens_file: Path, name: str, role: str, counties: list[str]) -> str:
    """Create a token for ``name``; store only its SHA-256; return the token (show it once, it is not kept)."""
    name = name.strip()
    if not name:
        raise TokenFileError("a token needs a name")
    if role not in ROLES:
        raise TokenFileError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    counties = sorted({c.strip() for c in counties})
    bad = [c for c in counties if not _COUNTY.match(c)]
    if bad:
        raise TokenFileError(f"county codes must have 6 digits: {', '.join(bad)}")
    if role == "caseworker" and not counties:
        raise TokenFileError("a caseworker token needs at least one county code")
    entries = _read_entries(tokens_file)
    if any(str(e.get("name")) == name for e in entries if isinstance(e, dict)):
        raise TokenFileError(f"a token named {name!r} exists already (revoke it first)")
    token = secrets.token_urlsafe(32)
    entries.append({
        "name": name, "role": role, "counties": counties if role == "caseworker" else [],
        "sha256": hash_token(token), "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })
    _write_entries(tokens_file, entries)
    return token


def revoke_token(tokens_file: Path, name: str) -> bool:
    """Remove the token named ``name``; False when there is none."""
    entries = _read_entries(tokens_file)
    kept = [e for e in entries if not (isinstance(e, dict) and str(e.get("name")) == name)]
    if len(kept) == len(entries):
        return False
    _write_entries(tokens_file, kept)
    return True


class TokenBook:
    """The tokens file, re-read when it changes (checked at most every ``recheck_seconds``)."""

    def __init__(self, tokens_file: Path, recheck_seconds: float = 1.0) -> None:
        self.tokens_file = tokens_file
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._book: dict[str, Principal] = {}
        self._checked = 0.0
        self._reload()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.tokens_file.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def _reload(self) -> None:
        stamp = self._file_stamp()
        if stamp == self._stamp and self._stamp is not None:
            return
        # A malformed file (an edit half-way through) keeps the tokens last read, rather than locking everyone out.
        with contextlib.suppress(TokenFileError, OSError):
            self._book = load_tokens(self.tokens_file) if stamp is not None else {}
            self._stamp = stamp

    def verify(self, token: str | None) -> Principal | None:
        """The holder of ``token``, or None for a missing or unknown token."""
        now = time.monotonic()
        if now - self._checked >= self.recheck_seconds:
            with self._lock:
                if now - self._checked >= self.recheck_seconds:
                    self._reload()
                    self._checked = now
        if not token:
            return None
        return self._book.get(hash_token(token))
