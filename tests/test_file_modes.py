"""Issue 13 item 6: published runs were world-readable (folders 0755, files 0644) — every name, ID and income on
the machine. Now the store, the tokens file and the audit log are owner-only (folders 0700, files 0600) whatever
umask the shell gave, and a store that others can read is fixed when it is opened, with a warning."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import polars as pl
import pytest

from dibao.pipeline import run_daily
from dibao.private_files import private_dir
from dibao.publish.store import RunStore
from tests.real_server import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "samples" / "drop"
DATE = dt.date(2026, 11, 20)
LOOSE = 0o022  # the usual shell umask: files 0644, folders 0755


def modes_not_owner_only(root: Path) -> list[str]:
    """Every path below ``root`` (and ``root``) that is not a 0700 folder or a 0600 file."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        expected = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if mode != expected:
            wrong.append(f"{oct(mode)} {path.relative_to(root.parent)}")
    return wrong


def _dibao(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "dibao", *args], cwd=ROOT, capture_output=True, text=True,
                          umask=LOOSE, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_run_token_and_served_request_under_umask_022_leave_only_owner_only_paths(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _dibao("run", "--inputs", str(SAMPLE), "--date", DATE.isoformat(), "--store", str(store))
    worklists = store / "runs" / DATE.isoformat() / "worklists"
    assert any(worklists.rglob("*.xlsx")), "the work lists (written by spawned workers) are part of the check"
    assert (store / "cache").is_dir(), "the run's cache is part of the check"
    token = _dibao("token", "add", "大通区-经办", "--role", "caseworker", "--county", "340402",
                   "--store", str(store)).stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dibao", "serve", "--store", str(store), "--port", str(port)]
    with serving(command, tmp_path / "server.log", base, umask=LOOSE, start_seconds=60):
        exits = pl.read_parquet(store / "runs" / DATE.isoformat() / "exit_candidates.parquet")
        household = exits.filter(pl.col("county_code") == "340402")["dibao_household_id"][0]
        answer = httpx.get(f"{base}/households/{household}", headers={"Authorization": f"Bearer {token}"},
                           timeout=30)
        assert answer.status_code == 200, answer.text
    assert (store / "audit").is_dir() and any((store / "audit").iterdir()), "the audit log is part of the check"
    assert modes_not_owner_only(store) == []


def test_a_library_run_is_owner_only_and_gives_the_umask_back(tmp_path: Path) -> None:
    """``run_daily`` called from a script (no CLI): the store's lock sets the umask while the run writes."""
    previous = os.umask(LOOSE)
    try:
        run_daily(SAMPLE, DATE, RunStore(tmp_path / "store"))
        assert os.umask(LOOSE) == LOOSE, "the caller's umask is restored after the run"
    finally:
        os.umask(previous)
    assert modes_not_owner_only(tmp_path / "store") == []


def test_a_store_others_can_read_is_made_owner_only_when_opened(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    run_daily(SAMPLE, DATE, RunStore(store))
    for path in [store, *store.rglob("*")]:  # as an older dibao (or cp -r) left it
        path.chmod(0o755 if path.is_dir() else 0o644)
    with caplog.at_level(logging.WARNING, logger="dibao.files"), RunStore(store).lock():
        pass
    assert modes_not_owner_only(store) == []
    assert any("owner-only" in r.getMessage() and "0755" in r.getMessage() for r in caplog.records)


def test_private_dir_keeps_an_owner_only_folder_quiet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dibao.files"):
        private_dir(tmp_path / "a" / "b")
        private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert not caplog.records
