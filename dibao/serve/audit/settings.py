"""Where the audit log, its keys and its anchors live, and its limits: defaults beside the store, each one
settable by an environment variable (the service, ``dibao audit`` and the daily run read the same ones).
``DIBAO_AUDIT_FSYNC``: ``served`` fdatasyncs the entry of a request about to return personal data before it is
sent, ``all`` every entry, ``none`` leaves it to the OS. Anonymous entries over the rate are counted in one
``suppressed`` entry (``recorder``).

| variable | default | what |
|---|---|---|
| ``DIBAO_API_AUDIT`` | ``STORE/audit`` | the audit folder (``audit.jsonl`` and its rotated files) |
| ``DIBAO_AUDIT_HMAC_KEY`` | ``STORE/keys/audit-hmac.key`` | key of the ID hashes in entries (the service reads it) |
| ``DIBAO_AUDIT_MAX_FILE_BYTES`` | 67108864 (64 MiB) | size at which ``audit.jsonl`` is rotated |
| ``DIBAO_AUDIT_KEEP_FILES`` | all | rotated files kept; older ones are deleted (0 or unset: keep all) |
| ``DIBAO_AUDIT_FSYNC`` | ``served`` | ``served``: sync the entry of a request that returns personal data |
| ``DIBAO_AUDIT_ANONYMOUS_PER_SECOND`` | 5 | entries a second (per process) for requests without a valid token |
| ``DIBAO_AUDIT_ANONYMOUS_BURST`` | 100 | how many such entries may be written at once before that rate applies |
| ``DIBAO_AUDIT_ANCHOR`` | ``STORE/audit-anchors`` | where ``dibao audit anchor`` (and the daily run) write anchors |
| ``DIBAO_AUDIT_ANCHOR_KEY`` | ``STORE/keys/audit-anchor.key`` | key that signs anchors; the service never reads it |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from dibao.errors import ConfigError

ENV_AUDIT_DIR = "DIBAO_API_AUDIT"
ENV_HMAC_KEY = "DIBAO_AUDIT_HMAC_KEY"
ENV_MAX_FILE_BYTES = "DIBAO_AUDIT_MAX_FILE_BYTES"
ENV_KEEP_FILES = "DIBAO_AUDIT_KEEP_FILES"
ENV_FSYNC = "DIBAO_AUDIT_FSYNC"
ENV_ANONYMOUS_PER_SECOND = "DIBAO_AUDIT_ANONYMOUS_PER_SECOND"
ENV_ANONYMOUS_BURST = "DIBAO_AUDIT_ANONYMOUS_BURST"
ENV_ANCHOR_DIR = "DIBAO_AUDIT_ANCHOR"
ENV_ANCHOR_KEY = "DIBAO_AUDIT_ANCHOR_KEY"

FsyncPolicy = Literal["served", "all", "none"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("served", "all", "none")
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
# One entry's text fields (path, query, user…) are cut to this many characters, so an entry stays under ~2 KB.
FIELD_CHARS = 256


class AuditSettingsError(ConfigError):
    """An audit setting in the environment that cannot be used."""


@dataclass(frozen=True)
class AuditSettings:
    """Everything the audit log's writer, reader and anchors need to know."""

    audit_dir: Path
    hmac_key_file: Path
    anchor_dir: Path
    anchor_key_file: Path
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    keep_files: int | None = None  # None: keep every rotated file
    fsync: FsyncPolicy = "served"
    anonymous_per_second: float = 5.0
    anonymous_burst: int = 100
    field_chars: int = FIELD_CHARS

    @classmethod
    def for_store(cls, store: Path, audit_dir: Path | None = None, *,
                  environ: Mapping[str, str] | None = None, **overrides: Any) -> AuditSettings:
        """Settings of the store ``store``: ``audit_dir`` (else ``DIBAO_API_AUDIT``, else ``STORE/audit``), the
        rest from the environment or the defaults; ``overrides`` win over both."""
        env = os.environ if environ is None else environ
        keys = store / "keys"
        settings = cls(
            audit_dir=audit_dir or _path(env, ENV_AUDIT_DIR) or store / "audit",
            hmac_key_file=_path(env, ENV_HMAC_KEY) or keys / "audit-hmac.key",
            anchor_dir=_path(env, ENV_ANCHOR_DIR) or store / "audit-anchors",
            anchor_key_file=_path(env, ENV_ANCHOR_KEY) or keys / "audit-anchor.key",
            max_file_bytes=_int(env, ENV_MAX_FILE_BYTES, DEFAULT_MAX_FILE_BYTES, minimum=4096),
            keep_files=_int(env, ENV_KEEP_FILES, 0, minimum=0) or None,
            fsync=_fsync(env.get(ENV_FSYNC, "served")),
            anonymous_per_second=_float(env, ENV_ANONYMOUS_PER_SECOND, 5.0),
            anonymous_burst=_int(env, ENV_ANONYMOUS_BURST, 100, minimum=1),
        )
        return replace(settings, **overrides) if overrides else settings


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    return Path(value) if value else None


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise AuditSettingsError(f"{name}={text!r} is not a whole number") from None
    if value < minimum:
        raise AuditSettingsError(f"{name}={value} is below the minimum {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise AuditSettingsError(f"{name}={text!r} is not a number") from None
    if value <= 0:
        raise AuditSettingsError(f"{name}={value} must be above 0")
    return value


def _fsync(text: str) -> FsyncPolicy:
    for policy in FSYNC_POLICIES:
        if text.strip() == policy:
            return policy
    raise AuditSettingsError(f"{ENV_FSYNC}={text!r}: use one of {', '.join(FSYNC_POLICIES)}")
