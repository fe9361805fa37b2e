"""ID numbers and household numbers never stand in the audit log in clear: each is replaced by a keyed hash,
``[id:<32 hex>]`` = HMAC-SHA256(key, the number in canonical form), cut to 128 bits.

Canonical form: what ``dibao.normalise.ids.clean_id_text`` makes of it (NFKC, invisible characters, spaces and
separators removed, x → X), and an old 15-digit ID number upgraded to its 18 digits, so an investigator who types
the number in any of these forms (``dibao audit --find-id``) gets the same hash. Without the key, a hash cannot be
tested against guessed numbers (a plain hash of an 18-digit ID could be, by trying every birth date and serial).

What is replaced: the whole ``{id}`` of ``/households/{id}``, and anywhere else in a path or query any run of
letters and digits (with the separators people type) that holds 10 digits or more: ID numbers (15/18),
household numbers (``DB340402000001``, 16-digit registry numbers). Dates (8 digits) and county codes (6) stay.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote_plus

from dibao.normalise.ids import clean_id_text, expected_check_char
from dibao.serve.audit.keys import key_from_file

HOUSEHOLDS = "/households/"
ID_DIGITS = 10  # a run with this many digits may be an ID or household number
_SEPARATORS = "\\s\\-.'’‘`\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
_TAG = re.compile(r"\[id:[0-9a-f]{32}\]")
# A hash already in the text is matched first, so that its hex digits are never taken for a number.
_TOKEN = re.compile(f"{_TAG.pattern}|[0-9A-Za-z]+(?:[{_SEPARATORS}]+[0-9A-Za-z]+)*")
# Routes under /households/ that are not a number; a query parameter that is a number whole (POST lookup body).
NOT_NUMBERS = frozenset({"lookup"})
NUMBER_PARAMETERS = frozenset({"id"})


def id_key(text: str) -> str:
    """The canonical form a number is hashed in."""
    cleaned = clean_id_text(text) or ""
    if len(cleaned) == 15 and cleaned.isdigit():
        first17 = cleaned[:6] + "19" + cleaned[6:]
        return first17 + expected_check_char(first17)
    return cleaned


def cut(text: str, limit: int, *, total: int | None = None) -> str:
    """``text`` of at most ``limit`` characters, saying how long it was when it was cut."""
    total = len(text) if total is None else total
    if total <= limit and len(text) <= limit:
        return text
    return f"{text[:limit]}…[cut; {total} chars]"


class IdHasher:
    """Replaces numbers in request paths and queries by their keyed hashes."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> IdHasher:
        return cls(key_from_file(path, create=create))

    def tag(self, number: str) -> str:
        digest = hmac.new(self._key, id_key(number).encode("utf-8"), hashlib.sha256).hexdigest()
        return f"[id:{digest[:32]}]"

    def scrub(self, text: str, limit: int, *, total: int | None = None) -> str:
        """``text`` with every ID-like run hashed, cut to ``limit`` characters (``total``: its length before an
        earlier cut). Only the first ``4 × limit`` characters are looked at; a run cut off there is hashed if it
        holds any digit, since its digits may be the start of a number."""
        total = len(text) if total is None else total
        window = text[:limit * 4]
        was_cut = total > len(window)
        head = unicodedata.normalize("NFKC", window)

        def replace(match: re.Match[str]) -> str:
            token = match.group(0)
            if token.startswith("[id:"):
                return token
            digits = sum(ch.isdigit() for ch in token)
            at_cut = was_cut and match.end() == len(head)
            return self.tag(token) if digits >= ID_DIGITS or (at_cut and digits) else token

        return cut(_TOKEN.sub(replace, head), limit, total=total)

    def scrub_path(self, path: str, limit: int) -> str:
        """A request path for the log: the looked-up number of ``/households/{id}`` hashed whole."""
        if path.startswith(HOUSEHOLDS) and path[len(HOUSEHOLDS):] not in NOT_NUMBERS | {""}:
            number = path[len(HOUSEHOLDS):]
            shown = HOUSEHOLDS + self.tag(number[:limit * 4])
            return shown if len(number) <= limit * 4 else f"{shown}…[cut; {len(path)} chars]"
        return self.scrub(path, limit)

    def scrub_query(self, query: str, limit: int) -> str:
        """A query string for the log: percent-escapes decoded first (an ID may be sent escaped), ``id=`` hashed
        whole, then scrubbed."""
        raw = query[:limit * 12]
        parts = []
        for part in raw.split("&"):
            key, equals, value = (unquote_plus(p, errors="replace") for p in part.partition("="))
            parts.append(f"{key}{equals}{self.tag(value)}" if key in NUMBER_PARAMETERS and value
                         else f"{key}{equals}{value}")
        decoded = "&".join(parts)
        return self.scrub(decoded, limit, total=len(decoded) + len(query) - len(raw))


def tags_in(text: str) -> list[str]:
    """The ID hashes in a logged text."""
    return _TAG.findall(text)
