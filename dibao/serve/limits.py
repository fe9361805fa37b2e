"""How fast a client may call the API: the limits ``dibao serve --limits FILE`` reads (YAML), with safe defaults.

Every field is optional; a file overrides the defaults key by key (a role set to ``null`` has no limit there)::

    per_address:   {rate: 10/s, burst: 40}    # every request from one client address (IPv6: its /64)
    failed_auth:   {rate: 5/min, burst: 5, lockout_seconds: 900}  # bad tokens from one address, then a lockout
    per_token:                                # every authenticated request, per token
      caseworker:  {rate: 5/s, burst: 60}
      analyst:     {rate: 5/s, burst: 60}
      admin:       {rate: 10/s, burst: 100}
    lookups:                                  # household lookups (GET /households/{id}, POST /households/lookup)
      caseworker:  {rate: 2/s, burst: 30}
      admin:       {rate: 5/s, burst: 60}
    lookup_misses:                            # lookups answered 404 or 422 (nothing found, malformed ID)
      caseworker:  {rate: 60/h, burst: 20}
      admin:       {rate: 600/h, burst: 100}
    enumeration:   {window_seconds: 60, not_found: 10, distinct_ids: 30}  # warn + audit above these

A rate is ``N/s``, ``N/min`` or ``N/h``; ``burst`` is how many may come at once after a quiet spell (the bucket's
size). Why these numbers: a caseworker looks up households one at a time by hand; 20 misses in a row and then one
a minute stops recovering a masked ID number by trying candidates (about 1,700 tries on average) — it would take
about a day, and every try is in the audit log.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dibao.errors import ConfigError
from dibao.serve.tokens import ROLES

_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|sec|second|min|minute|h|hour)\s*$")
_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


class LimitsFileError(ConfigError):
    """The limits file is malformed; the message names the field (the CLI prints it, exit code 3)."""


@functools.lru_cache(maxsize=256)
def per_second(rate: str) -> float:
    """``"2/s"`` → 2.0, ``"5/min"`` → 0.0833…, ``"60/h"`` → 0.0166…"""
    match = _RATE.match(rate)
    if match is None:
        raise ValueError(f"rate {rate!r}: expected N/s, N/min or N/h (e.g. 2/s)")
    value = float(match.group(1)) / _SECONDS[match.group(2)]
    if value <= 0:
        raise ValueError(f"rate {rate!r}: must be above zero")
    return value


class Bucket(BaseModel):
    """A token bucket: ``burst`` requests at once, refilled at ``rate``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rate: str = Field(description="N/s, N/min or N/h")
    burst: int = Field(ge=1, description="requests allowed at once after a quiet spell")

    @field_validator("rate")
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        per_second(value)
        return value

    @property
    def per_second(self) -> float:
        return per_second(self.rate)


class FailedAuth(Bucket):
    lockout_seconds: float = Field(gt=0, description="how long an address that ran out of tries is refused")


class Enumeration(BaseModel):
    """When a token's lookups look like someone trying candidates: a log warning and an audit entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    window_seconds: float = Field(gt=0)
    not_found: int = Field(ge=1, description="lookups answered 404/422 within the window")
    distinct_ids: int = Field(ge=1, description="different IDs or numbers looked up within the window")


class Limits(BaseModel):
    """Every limit the server applies (see the module docstring for the file format and defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    per_address: Bucket
    failed_auth: FailedAuth
    per_token: dict[str, Bucket | None]
    lookups: dict[str, Bucket | None]
    lookup_misses: dict[str, Bucket | None]
    enumeration: Enumeration

    @field_validator("per_token", "lookups", "lookup_misses")
    @classmethod
    def _known_roles(cls, value: dict[str, Bucket | None]) -> dict[str, Bucket | None]:
        unknown = sorted(set(value) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
        return value


DEFAULTS: dict[str, Any] = {
    "per_address": {"rate": "10/s", "burst": 40},
    "failed_auth": {"rate": "5/min", "burst": 5, "lockout_seconds": 900},
    "per_token": {"caseworker": {"rate": "5/s", "burst": 60}, "analyst": {"rate": "5/s", "burst": 60},
                  "admin": {"rate": "10/s", "burst": 100}},
    "lookups": {"caseworker": {"rate": "2/s", "burst": 30}, "admin": {"rate": "5/s", "burst": 60}},
    "lookup_misses": {"caseworker": {"rate": "60/h", "burst": 20}, "admin": {"rate": "600/h", "burst": 100}},
    "enumeration": {"window_seconds": 60, "not_found": 10, "distinct_ids": 30},
}


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merged(base[key], value)
        else:
            out[key] = value
    return out


def limits_from(override: dict[str, Any] | None = None) -> Limits:
    """The defaults with ``override`` laid over them key by key."""
    try:
        return Limits.model_validate(_merged(DEFAULTS, override or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise LimitsFileError(f"limits: {problems}") from None


def load_limits(path: Path | None) -> Limits:
    """The limits in ``path`` (YAML) over the defaults; the defaults alone when ``path`` is None."""
    if path is None:
        return limits_from()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LimitsFileError(f"{path}: cannot read the limits file: {exc}") from exc
    if not isinstance(doc, dict):
        raise LimitsFileError(f"{path}: expected a mapping (per_address, failed_auth, per_token, …)")
    try:
        return limits_from(doc)
    except LimitsFileError as exc:
        raise LimitsFileError(f"{path}: {exc}") from None
