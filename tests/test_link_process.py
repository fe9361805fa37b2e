"""A large drop is linked in a process of its own (``dibao/link/isolated.py``), so the memory the linkage used goes
back to the system before the rules stage; the result is the linkage of the run's own process, exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dibao.ingest import ingest_drop
from dibao.link import isolated, link_persons, person_records
from dibao.link.keys import numbered_links
from dibao.link.summary import summarise
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao_synth import generate

DAY = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def drop_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("link-process") / "drop"
    generate(households=300, seed=8, out=out, as_of=DAY, formats="mixed")
    return out


def test_the_linkage_in_a_child_process_is_the_linkage_in_process(drop_folder: Path, tmp_path: Path) -> None:
    drop = ingest_drop(drop_folder, run_date=DAY, spill_to=tmp_path / "inputs")
    here = link_persons(person_records(drop))
    there = isolated.link_drop(drop, tmp_path / "link", in_child=True)
    assert (tmp_path / "link" / "links.arrow").is_file()  # written by the child, read back
    theirs_whole = there.result()
    for mine, theirs in ((here.links, theirs_whole.links), (here.review, theirs_whole.review),
                         (here.households, theirs_whole.households)):
        assert mine.schema == theirs.schema and mine.equals(theirs)
    assert there.keys.equals(numbered_links(here.links))  # numbered and counted by the child as here
    assert there.summary == summarise(here)


def test_a_drop_held_in_memory_is_linked_in_process(drop_folder: Path, tmp_path: Path) -> None:
    drop = ingest_drop(drop_folder, run_date=DAY)  # nothing spilled: a child could not read it
    isolated.link_drop(drop, tmp_path / "link", in_child=True)
    assert not (tmp_path / "link").exists()


def test_a_run_linked_in_a_child_publishes_what_a_run_linked_in_process_publishes(
        drop_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_process = run_daily(drop_folder, DAY, RunStore(tmp_path / "here"))
    monkeypatch.setattr(isolated, "IN_PROCESS_UP_TO", 0)  # every drop is "large"
    in_child = run_daily(drop_folder, DAY, RunStore(tmp_path / "there"))
    assert in_child.manifest["content_sha256"] == in_process.manifest["content_sha256"]
    assert in_child.manifest["linkage"] == in_process.manifest["linkage"]
