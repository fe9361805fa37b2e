"""Owner-only files: the run store, the tokens file and the audit log hold names, ID numbers and incomes of poor
families (个人信息保护法), so no other account on the machine may read them.

Two layers, because files are created in many places (Polars writing Parquet, DuckDB spilling, xlsxwriter in
spawned worker processes, SQLite, a child process building the household index) and none of them takes a mode:

* the process umask is ``0o077`` wherever dibao writes personal data — the ``dibao`` command line, the daily run
  (``RunStore.lock``), the API (``create_app``). Files are then created ``0600`` and folders ``0700`` whatever
  umask the shell, cron or systemd gave; child processes inherit it (spawn and subprocess both do).
* the roots are created ``0700`` explicitly, and a root found readable by others (a store made by an older dibao,
  or copied with ``cp -r``) is fixed on open — with everything below it — and a warning is logged.

Hard links (work lists carried to the next run) share their file's mode: fixing the tree once fixes both.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

OWNER_ONLY_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = 0o077  # group and other permission bits

log = logging.getLogger("dibao.files")


def owner_only_process() -> int:
    """Set the process umask to ``0o077`` for good (entry points); returns the previous one."""
    return os.umask(OWNER_ONLY_UMASK)


@contextlib.contextmanager
def owner_only_umask() -> Iterator[None]:
    """Umask ``0o077`` for the duration (a library call such as a run); the previous one afterwards."""
    previous = os.umask(OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def _restrict(path: Path) -> bool:
    """Remove group and other permissions from one path (symlinks are left alone); True when it changed."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & _OTHERS:
        return False
    os.chmod(path, stat.S_IMODE(st.st_mode) & ~_OTHERS)
    return True


def _restrict_tree(root: Path) -> int:
    changed = 0
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile (a sweep, a replaced run)
                changed += _restrict(Path(folder) / name)
    return changed


def private_dir(path: Path, *, what: str = "folder", tree: bool = False) -> Path:
    """Create ``path`` ``0700`` (missing parents with the umask's mode), or make an existing one owner-only.

    An existing folder that others could read is fixed with a warning; with ``tree`` everything below it is made
    owner-only too (a store from before this rule). A folder this account does not own cannot be fixed: the
    warning says so and the caller goes on (reading a store someone else keeps private is their business).
    """
    existed = path.exists()
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if not _restrict(path):
            return path
        below = _restrict_tree(path) if tree else 0
    except PermissionError as exc:
        log.warning("%s %s 可被其他用户读取，且无法更改 (%s %s is readable by other users and cannot be made "
                    "owner-only: %s)", what, path, what, path, exc.strerror)
        return path
    if existed:
        extra = f" and {below} paths below it" if below else ""
        log.warning("%s %s 原权限 %04o 允许其他用户读取个人信息，已改为仅属主可访问 (%s %s had mode %04o, readable by "
                    "other users; made it%s owner-only)", what, path, mode, what, path, mode, extra)
    return path


def private_file(path: Path, *, what: str = "file") -> None:
    """Make an existing file owner-only (``0600``-style), with a warning when it was not; a missing file: nothing."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        changed = _restrict(path)
    except FileNotFoundError:
        return
    except PermissionError as exc:
        log.warning("%s %s 可被其他用户读取，且无法更改 (%s %s is readable by other users and cannot be made "
                    "owner-only: %s)", what, path, what, path, exc.strerror)
        return
    if changed:
        log.warning("%s %s 原权限 %04o 允许其他用户读取，已改为仅属主可读写 (%s %s had mode %04o; made it owner-only)",
                    what, path, mode, what, path, mode)


def secure_service_files(store: Path, tokens_file: Path, audit_dir: Path) -> None:
    """What the API does first: umask ``0o077`` for the process (the household index, throttle state and audit
    entries it writes), and the store, tokens file and audit folder made owner-only if they are not."""
    owner_only_process()
    private_dir(store, what="store", tree=True)
    private_file(tokens_file, what="tokens file")
    private_dir(audit_dir, what="audit folder", tree=True)
