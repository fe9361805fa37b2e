"""The headers every answer of the API carries, errors included (``transport.SecurityHeaders`` adds them, and
``problems.problem_response`` writes them itself, since a 500 is answered outside the middleware stack).

Personal data must not stay in a browser's or proxy's cache (``no-store``), a JSON answer must never be sniffed
into something executable (``nosniff``), an ID number in a URL must not leak to another site through ``Referer``
(``no-referrer``), and no page of the API may be framed. JSON answers get a CSP that allows nothing; the /docs
page gets its own (``dibao/serve/docs.py``: its assets from this server, its one inline script by hash).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": API_CSP,
}
# Sent over HTTPS only (``dibao serve --tls-cert``): a browser then refuses plain HTTP to this host for a year.
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def script_hash(script: str) -> str:
    """A CSP source for one inline script: ``'sha256-…'`` of its exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def page_csp(inline_scripts: Iterable[str]) -> str:
    """The CSP of an HTML page of this server: everything from this origin, inline scripts only by hash, images
    also as data: URIs (the Swagger UI's icons), never framed."""
    hashes = " ".join(script_hash(s) for s in inline_scripts)
    return ("default-src 'self'; " f"script-src 'self' {hashes}".rstrip() + "; "
            "style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
