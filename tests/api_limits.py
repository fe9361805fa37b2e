"""Limits for tests that are about something else than throttling: the API's own tests call it thousands of times
a minute from one address (schemathesis, concurrent readers), which the default limits refuse by design."""

from __future__ import annotations

from dibao.serve.limits import Limits, limits_from
from dibao.serve.tokens import ROLES

_PLENTY = {"rate": "100000/s", "burst": 100000}

UNTHROTTLED: Limits = limits_from({
    "per_address": _PLENTY,
    "failed_auth": {**_PLENTY, "lockout_seconds": 1},
    "per_token": dict.fromkeys(ROLES, _PLENTY),
    "lookups": dict.fromkeys(ROLES, _PLENTY),
    "lookup_misses": dict.fromkeys(ROLES, _PLENTY),
    "enumeration": {"window_seconds": 60, "not_found": 10**9, "distinct_ids": 10**9},
})
