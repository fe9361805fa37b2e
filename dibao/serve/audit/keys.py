"""Secret keys kept in files: 32 random bytes, hex, mode 0600 in a 0700 folder, made on first use.

Two keys, two files, on purpose: the ID-hash key (the service reads it to hash IDs in entries, investigators to
find them) and the anchor key (only ``dibao audit anchor`` and ``--verify`` read it, never the service).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from dibao.errors import DibaoError


class KeyFileError(DibaoError):
    """A key file that is missing (and may not be made here) or unreadable."""


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {path} cannot be read: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"key file {path} does not hold a hex key") from None
    if len(key) < 16:
        raise KeyFileError(f"key file {path} holds a key of {len(key)} bytes; at least 16 are needed")
    return key


def key_from_file(path: Path, *, create: bool = True) -> bytes:
    """The key in ``path``; when there is none and ``create``, a new random one, written so that two processes
    starting at once end up with the same key (made aside, then linked into place only if still absent)."""
    if path.exists() or not create:
        return read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    return read_key(path)
