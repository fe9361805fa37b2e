"""Bearer tokens for the API: a YAML file that holds only each token's SHA-256, with its name, role and counties.

```yaml
tokens:
- name: 凤台县-张三
  role: caseworker          # caseworker | analyst | admin
  counties: ['340421']      # a caseworker sees households of these counties only
  sha256: 9f86d08…
  created: '2026-11-21T08:00:00+00:00'
  expires: '2027-02-19T08:00:00+00:00'   # absent or null: never (tokens made before expiry existed)
```

``add_token`` makes a random token (``secrets.token_urlsafe(32)``), stores its hash and returns the token once: it
cannot be recovered from the file. A lost token is revoked (``revoke_token``) and a new one added. A new token
expires after ``DEFAULT_LIFETIME`` (90 days) unless told otherwise (``--expires 30d``, a date, or ``never``); an
expired token gets 401 saying so.

The server re-reads the file when it changes, so adding or revoking a token needs no restart. A file that does not
parse (a hand edit gone wrong) refuses every token until it is fixed — 503 for every authenticated request, and
the reason in the server log — rather than keep serving the tokens read before it, revoked ones included.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from dibao.private_files import private_dir

log = logging.getLogger("dibao.api")

ROLES = ("caseworker", "analyst", "admin")
ROLE_LABELS = {"caseworker": "经办人员", "analyst": "统计分析人员", "admin": "管理员"}
_COUNTY = re.compile(r"^[0-9]{6}$")
DEFAULT_LIFETIME = dt.timedelta(days=90)
_LIFETIME = re.compile(r"^\s*([0-9]+)\s*([hdw])\s*$")
_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}


class TokenFileError(ValueError):
    """The tokens file is malformed, or a token request is invalid."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, role and (for a caseworker) counties."""

    name: str
    role: str
    counties: frozenset[str] = field(default_factory=frozenset)
    expires: dt.datetime | None = None  # aware; None: never

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and now >= self.expires

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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _end_of_day(day: dt.date) -> dt.datetime:
    """A token 'valid until' a date works through that whole day, in the server's local time."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).astimezone()


def parse_expiry(text: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """``--expires``: ``90d`` / ``12h`` / ``2w`` from now, a date (valid through that day), an ISO date-time, or
    ``never`` (None). A moment already past is refused."""
    now = now or _now()
    value = text.strip()
    if value.lower() == "never":
        return None
    match = _LIFETIME.match(value)
    try:
        if match:
            moment = now + int(match.group(1)) * _UNITS[match.group(2)]
        elif len(value) == 10:
            moment = _end_of_day(dt.date.fromisoformat(value))
        else:
            parsed = dt.datetime.fromisoformat(value)
            moment = parsed if parsed.tzinfo else parsed.astimezone()
    except ValueError:
        raise TokenFileError(f"有效期 {text!r} 无法识别，应写作 90d、12h、2w、2027-03-01 或 never "
                             f"(expiry {text!r} not understood: write 90d, 12h, 2w, a date like 2027-03-01, "
                             f"or never)") from None
    if moment <= now:
        raise TokenFileError(f"有效期 {text!r} 已过 (expiry {text!r} is already past)")
    return moment.astimezone(dt.UTC)


def _stored_expiry(raw: object, where: str) -> dt.datetime | None:
    """The ``expires`` of an entry: absent/null = never; an ISO date-time (or a date, by hand: through that day)."""
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):  # YAML reads an unquoted timestamp as a datetime
        return raw if raw.tzinfo else raw.replace(tzinfo=dt.UTC)
    if isinstance(raw, dt.date):
        return _end_of_day(raw)
    try:
        text = str(raw).strip()
        if len(text) == 10:
            return _end_of_day(dt.date.fromisoformat(text))
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise TokenFileError(f"{where}: expires {raw!r} is not a date-time (YYYY-MM-DDTHH:MM:SS+00:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


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
    """Replace the file atomically (temporary file + rename), readable by its owner only (a folder made for it:
    ``0700``)."""
    if not tokens_file.parent.exists():
        private_dir(tokens_file.parent, what="tokens folder")
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
    listed = entry.get("counties") or []
    if not isinstance(listed, list):
        raise TokenFileError(f"{where}: token {name!r}: counties must be a list of 6-digit codes")
    counties = frozenset(str(c) for c in listed)
    bad = sorted(c for c in counties if not _COUNTY.match(c))
    if bad:
        raise TokenFileError(f"{where}: token {name!r}: county codes must have 6 digits: {', '.join(bad)}")
    expires = _stored_expiry(entry.get("expires"), f"{where}: token {name!r}")
    return digest, Principal(name, role, counties if role == "caseworker" else frozenset(), expires)


def load_tokens(tokens_file: Path) -> dict[str, Principal]:
    """SHA-256 of the token → who holds it. A missing file means no tokens (every request gets 401); a malformed
    one raises TokenFileError (the whole file, not the entries that happen to parse)."""
    book: dict[str, Principal] = {}
    for i, entry in enumerate(_read_entries(tokens_file), start=1):
        if not isinstance(entry, dict):
            raise TokenFileError(f"{tokens_file}: tokens[{i}] is not a mapping")
        digest, principal = _principal(entry, f"{tokens_file}: tokens[{i}]")
        if digest in book:
            raise TokenFileError(f"{tokens_file}: tokens[{i}] ({principal.name!r}) has the same sha256 as "
                                 f"{book[digest].name!r}")
        book[digest] = principal
    return book


@dataclass(frozen=True)
class TokenInfo:
    """What ``dibao token list`` shows of a token: never the token, nor its hash."""

    name: str
    role: str
    counties: tuple[str, ...]
    created: str | None
    expires: dt.datetime | None


def list_tokens(tokens_file: Path) -> list[TokenInfo]:
    """Every token of the file, in file order (a malformed file raises TokenFileError, as the server refuses it)."""
    load_tokens(tokens_file)  # the same checks the server makes
    infos = []
    for i, entry in enumerate(_read_entries(tokens_file), start=1):
        _, principal = _principal(entry, f"{tokens_file}: tokens[{i}]")
        created = entry.get("created")
        infos.append(TokenInfo(principal.name, principal.role, tuple(sorted(principal.counties)),
                               None if created is None else str(created), principal.expires))
    return infos


def store_counties(store: Path) -> tuple[dt.date, frozenset[str]] | None:
    """The counties of the store's latest run (its drop's counties file, as recorded in the manifest; for older
    runs the counties its coverage and lists name), or None when nothing is published yet."""
    from dibao.publish.contract import COVERAGE, LIST_FILES, LISTS, PublishedRun
    from dibao.publish.store import RunStore

    runs = RunStore(store)
    dates = runs.published_dates()
    if not dates:
        return None
    latest = dates[-1]
    entry = runs.manifest(latest).get("worklists")
    if isinstance(entry, dict) and isinstance(entry.get("counties"), list):
        return latest, frozenset(str(row[0]) for row in entry["counties"] if row and row[0] is not None)
    run = PublishedRun(runs.run_dir(latest))
    codes: set[str] = set()
    coverage = run.read(COVERAGE)
    if coverage.height:
        codes |= set(coverage.filter(coverage["level"] == "county")["area_code"].drop_nulls().to_list())
    for name in LISTS:
        frame = run.read(LIST_FILES[name])
        if frame.height:
            codes |= set(frame["county_code"].drop_nulls().to_list())
    return latest, frozenset(codes)


def check_counties(counties: list[str], known: tuple[dt.date, frozenset[str]] | None, store: Path) -> None:
    """Refuse county codes that are not counties of the store's latest run (a typo would give a caseworker an
    empty, or someone else's, county)."""
    if not counties:
        return
    if known is None:
        raise TokenFileError(f"{store} 尚无已发布的运行，无法核对县级区划代码 (no published run in {store} to check "
                             f"county codes against: run `dibao run` first, or pass --allow-unknown-county for a "
                             f"county whose first run is still to come)")
    date, codes = known
    unknown = sorted(set(counties) - codes)
    if unknown:
        listed = ", ".join(sorted(codes)[:12]) + (" …" if len(codes) > 12 else "")
        raise TokenFileError(f"县级区划代码 {', '.join(unknown)} 不是本库的县 (county {', '.join(unknown)} is not a "
                             f"county of this store: its latest run, {date}, has {listed}; a county whose first run "
                             f"is still to come: --allow-unknown-county)")


def add_token(tokens_file: Path, name: str, role: str, counties: list[str], *,
              lifetime: dt.timedelta | None = DEFAULT_LIFETIME, expires: dt.datetime | None = None) -> str:
    """Create a token for ``name``; store only its SHA-256; return the token (show it once, it is not kept).

    It expires at ``expires`` if given, else ``lifetime`` from now (default 90 days; None: never)."""
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
    now = _now()
    until = expires if expires is not None else (now + lifetime if lifetime is not None else None)
    token = secrets.token_urlsafe(32)
    entries.append({
        "name": name, "role": role, "counties": counties if role == "caseworker" else [],
        "sha256": hash_token(token), "created": now.isoformat(timespec="seconds"),
        "expires": None if until is None else until.astimezone(dt.UTC).isoformat(timespec="seconds"),
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


@dataclass(frozen=True)
class Refusal:
    """Why a bearer token was not accepted: none or unknown, expired (its holder known), or the tokens file is
    broken (every token is refused until it is fixed)."""

    reason: Literal["unknown", "expired", "tokens_file_broken"]
    who: Principal | None = None


class TokenBook:
    """The tokens file, re-read when it changes (checked at most every ``recheck_seconds``)."""

    def __init__(self, tokens_file: Path, recheck_seconds: float = 1.0) -> None:
        self.tokens_file = tokens_file
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._loaded = False
        self._book: dict[str, Principal] = {}
        self._broken: str | None = None  # why the file was refused; None when it loaded
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
        if self._loaded and stamp == self._stamp:
            return
        try:
            book = load_tokens(self.tokens_file) if stamp is not None else {}
            broken = None
        except (TokenFileError, OSError, UnicodeDecodeError) as exc:
            # Fail closed: the tokens read before may include revoked ones; nobody is let in until it is fixed.
            book, broken = {}, str(exc)
            log.error("令牌文件损坏，修复前拒绝所有令牌 (tokens file %s is broken; every token is refused until it is "
                      "fixed): %s", self.tokens_file, broken)
        if self._broken is not None and broken is None:
            log.warning("tokens file %s reads again: %d tokens", self.tokens_file, len(book))
        self._book, self._broken, self._stamp, self._loaded = book, broken, stamp, True

    @property
    def broken(self) -> str | None:
        """Why the tokens file is refused (None: it loaded)."""
        return self._broken

    def identify(self, token: str | None, now: dt.datetime | None = None) -> Principal | Refusal:
        """The holder of ``token``, or why it is refused."""
        return self.identify_digest(hash_token(token) if token else None, now)

    def identify_digest(self, digest: str | None, now: dt.datetime | None = None) -> Principal | Refusal:
        """The holder of the token whose SHA-256 is ``digest``, or why it is refused: a web page session keeps
        the digest, never the token, and is checked against the file on every request (revoked, expired)."""
        checked = time.monotonic()
        if checked - self._checked >= self.recheck_seconds:
            with self._lock:
                if checked - self._checked >= self.recheck_seconds:
                    self._reload()
                    self._checked = checked
        if self._broken is not None:
            return Refusal("tokens_file_broken")
        who = self._book.get(digest) if digest else None
        if who is None:
            return Refusal("unknown")
        if who.expired(now or _now()):
            return Refusal("expired", who)
        return who

    def verify(self, token: str | None) -> Principal | None:
        """The holder of a valid ``token``; None for a missing, unknown or expired one, or a broken file."""
        found = self.identify(token)
        return found if isinstance(found, Principal) else None
