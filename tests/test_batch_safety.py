"""Crash safety and concurrency with real processes: kill -9 mid-run, two runs on one store."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dibao.publish.store import RunStore
from dibao_synth import generate


def _dibao(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dibao", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def big_drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A drop large enough that a run takes a few seconds, so it can be killed in the middle."""
    root = tmp_path_factory.mktemp("safety")
    generate(households=6_000, seed=5, out=root / "drop", truth_out=root / "truth", formats="csv",
             as_of=dt.date(2026, 11, 20))
    return root / "drop"


def _published(store: Path) -> dict[str, str]:
    runs = RunStore(store)
    return {d.isoformat(): json.loads((runs.run_dir(d) / "manifest.json").read_text())["content_sha256"]
            for d in runs.published_dates()}


@pytest.mark.parametrize("kill_after", [0.6, 1.6, 2.6])
def test_a_run_killed_at_any_moment_leaves_the_previous_run_and_the_next_succeeds(
        big_drop: Path, tmp_path: Path, kill_after: float) -> None:
    store = tmp_path / "store"
    first = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-19", "--store", str(store))
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    before = _published(store)

    victim = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-20", "--store", str(store))
    time.sleep(kill_after)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)

    after = _published(store)
    assert after["2026-11-19"] == before["2026-11-19"]  # the previous run is untouched
    if "2026-11-20" in after:  # the run finished before the kill: then it is complete
        assert (store / "runs/2026-11-20/exit_candidates.parquet").is_file()
    retry = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-20", "--store", str(store), "--replace")
    assert retry.wait(timeout=300) == 0, retry.stderr.read() if retry.stderr else ""
    assert sorted(p.name for p in (store / "runs").iterdir()) == ["2026-11-19", "2026-11-20"]  # leftovers swept


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_run_killed_while_writing_its_work_lists_leaves_no_worker_behind(big_drop: Path, tmp_path: Path) -> None:
    """The work-list workers end with the run: killed outright (kill -9, the out-of-memory killer), a run left
    them waiting on a pipe for ever, each holding an interpreter and part of a province's rows."""
    victim = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-20", "--store", str(tmp_path / "store"))
    workers: set[int] = set()
    deadline = time.monotonic() + 240
    while not workers and victim.poll() is None and time.monotonic() < deadline:
        workers = {pid for pid in _children(victim.pid) if b"spawn_main" in _cmdline(pid)}
        time.sleep(0.02)
    assert workers, "the run ended before its work-list workers were seen"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "work-list workers outlived the killed run"


def test_a_run_on_a_busy_store_refuses_or_waits(big_drop: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with RunStore(store).lock():  # another run holds the store
        refused = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-20", "--store", str(store))
        assert refused.wait(timeout=120) == 75
        assert b"another dibao run holds this store" in (refused.stderr.read() if refused.stderr else b"")
        waiting = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-20", "--store", str(store),
                         "--wait", "300")
        time.sleep(3)
        assert waiting.poll() is None  # still waiting for the lock
    assert waiting.wait(timeout=300) == 0
    assert set(_published(store)) == {"2026-11-20"}


def test_two_real_runs_at_once_are_serialised_and_never_corrupt(big_drop: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-19", "--store", str(store))
    lock = store / ".lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        time.sleep(0.02)  # the first run holds the store…
    second = _dibao("run", "--inputs", str(big_drop), "--date", "2026-11-20", "--store", str(store),
                    "--wait", "300")  # …so the second queues behind it
    assert [first.wait(timeout=300), second.wait(timeout=300)] == [0, 0]
    assert json.loads((store / "runs/2026-11-20/manifest.json").read_text())["previous_run"] == "2026-11-19"
    assert set(_published(store)) == {"2026-11-19", "2026-11-20"}
    assert sorted(p.name for p in (store / "runs").iterdir()) == ["2026-11-19", "2026-11-20"]
