"""The household index as files (dibao/publish/family_files.py): the mapped index answers exactly what the index
built in memory answers; a missing or damaged index is rebuilt, never mapped; workers starting together build it
once; the published run is left as published; a store the service cannot write to still gets served.

One module-scoped store of three runs of the sample drop (the last without bank_assets, so lists change and
households have history); each test works on its own copy.
"""

from __future__ import annotations

import datetime as dt
import shutil
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dibao.errors import DibaoError
from dibao.pipeline import run_daily
from dibao.publish import family_files
from dibao.publish.contract import PublishedRun
from dibao.publish.family_files import (
    build_index,
    checked_meta,
    ensure_index,
    index_folder,
    index_home,
    index_key,
    open_index,
    store_runs,
)
from dibao.publish.household import FamilyIndex, history_spans
from dibao.publish.store import RunStore
from dibao.serve.snapshot import RunFiles, load_snapshot

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
DATES = [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("family-files")
    store = root / "store"
    for date in DATES:
        drop = root / f"drop-{date}"
        shutil.copytree(SAMPLE, drop)
        if date == DATES[-1]:
            (drop / "bank_assets.csv").unlink()
        run_daily(drop, date, RunStore(store), accept_shrink=date == DATES[-1])
    open_index(RunStore(store), store_runs(RunStore(store), DATES[-1]))  # for the tests that start from an index
    return store


@pytest.fixture
def store(pristine: Path, tmp_path: Path) -> RunStore:
    """A copy of the runs, without an index."""
    copy = tmp_path / "store"
    shutil.copytree(pristine, copy, ignore=shutil.ignore_patterns(family_files.INDEX_DIR))
    return RunStore(copy)


@pytest.fixture
def indexed(pristine: Path, tmp_path: Path) -> RunStore:
    """A copy of the runs with the index of the latest one."""
    copy = tmp_path / "store"
    shutil.copytree(pristine, copy)
    return RunStore(copy)


def in_memory(store: RunStore, date: dt.date) -> FamilyIndex:
    dates = [d for d in store.published_dates() if d <= date]
    return FamilyIndex.load(PublishedRun(store.run_dir(date)), dates, history_spans(store, dates))


def queries(store: RunStore, date: dt.date) -> list[str]:
    """Every household number and every ID number of the run, and a few that match nothing."""
    run = PublishedRun(store.run_dir(date))
    numbers = run.read("household_facts", ["subject_id"])["subject_id"].unique().sort().to_list()
    ids = run.read("person_links", ["person_key"]).filter(pl.col("person_key").str.contains(r"^[0-9]{17}[0-9X]$"))[
        "person_key"].unique().sort().to_list()
    return [*numbers, *ids, "NO-SUCH-HOUSEHOLD", "110101199001018889"]


def assert_same_views(mapped: FamilyIndex, memory: FamilyIndex, store: RunStore, date: dt.date) -> None:
    assert mapped.sizes == memory.sizes and mapped.run_dates == memory.run_dates
    assert mapped.group_names.to_list() == memory.group_names.to_list()
    for gid in range(memory.sizes["groups"]):
        assert mapped.family((gid,)) == memory.family((gid,)), gid
        assert mapped.counties_of(gid) == memory.counties_of(gid), gid
    for query in queries(store, date):
        assert mapped.lookup(query) == memory.lookup(query), query


def test_mapped_index_answers_what_the_index_in_memory_answers(store: RunStore) -> None:
    runs = store_runs(store, DATES[-1])
    mapped = open_index(store, runs)
    assert isinstance(mapped.id_keys, np.memmap) and isinstance(mapped.number_keys, np.memmap)
    assert any(len(h.history) == len(DATES) and any(day.lists for day in h.history)
               for g in range(mapped.sizes["groups"]) for h in mapped.family((g,)))
    assert_same_views(mapped, in_memory(store, DATES[-1]), store, DATES[-1])


def test_history_extended_from_the_previous_index_equals_history_from_every_run(store: RunStore) -> None:
    for upto in DATES:  # day by day, as the service meets the runs: each index extends the previous one's spans
        runs = store_runs(store, upto)
        if upto != DATES[0]:
            assert family_files._previous_spans(store, runs) is not None
        open_index(store, runs)
    assert_same_views(open_index(store, store_runs(store, DATES[-1])), in_memory(store, DATES[-1]), store,
                      DATES[-1])
    kept = sorted(p.name for p in index_home(store).iterdir() if p.is_dir())
    assert kept == [d.isoformat() for d in DATES[-2:]]  # indexes before the previous run's are removed


def test_missing_index_is_rebuilt(indexed: RunStore) -> None:
    store = indexed
    runs = store_runs(store, DATES[-1])
    folder, _, built = ensure_index(store, runs)
    assert not built
    shutil.rmtree(folder)
    assert ensure_index(store, runs)[2] is True
    assert_same_views(open_index(store, runs), in_memory(store, DATES[-1]), store, DATES[-1])


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "members cut short": ("members.arrow", _truncate),
    "a byte of facts altered": ("facts.arrow", _flip_a_byte),
    "a byte of the ID keys altered": ("id_keys.npy", _flip_a_byte),
    "decisions missing": ("decisions.arrow", Path.unlink),
    "meta missing": ("meta.json", Path.unlink),
    "meta not JSON": ("meta.json", lambda p: p.write_text("{not json", encoding="utf-8")),
    "meta of another key": ("meta.json", lambda p: p.write_text(p.read_text().replace('"key": "', '"key": "x'))),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_rebuilt_not_mapped(indexed: RunStore, damage: str) -> None:
    store = indexed
    runs = store_runs(store, DATES[-1])
    folder, _, _ = ensure_index(store, runs)
    name, harm = DAMAGE[damage]
    harm(folder / name)
    with pytest.raises(family_files.DamagedIndex):
        checked_meta(folder, index_key(runs))
    assert ensure_index(store, runs)[2] is True
    checked_meta(folder, index_key(runs))  # whole again
    assert_same_views(open_index(store, runs), in_memory(store, DATES[-1]), store, DATES[-1])


def _start_worker(root: str) -> bool:
    """A worker starting (in its own process): whether it built the index itself."""
    store = RunStore(Path(root))
    return ensure_index(store, store_runs(store, store.published_dates()[-1]))[2]


def test_workers_starting_together_build_once(store: RunStore) -> None:
    with ProcessPoolExecutor(max_workers=3, mp_context=get_context("spawn")) as pool:
        built = list(pool.map(_start_worker, [str(store.root)] * 3))
    assert sorted(built) == [False, False, True]
    runs = store_runs(store, DATES[-1])
    home = index_folder(store, runs).parent
    assert [p.name for p in home.iterdir()] == [index_key(runs)]  # no second copy, no half-written folder
    checked_meta(index_folder(store, runs), index_key(runs))


def test_the_published_run_is_left_as_published(store: RunStore) -> None:
    def listing() -> dict[str, bytes]:
        return {str(p.relative_to(store.runs_dir)): p.read_bytes() for p in sorted(store.runs_dir.rglob("*"))
                if p.is_file()}

    before = listing()
    open_index(store, store_runs(store, DATES[-1]))
    assert listing() == before  # no file added to or changed in any run folder (manifest, content hash, files)
    assert store.published_dates() == DATES
    assert index_home(store).parent == store.root and index_home(store) != store.runs_dir
    for path in index_home(store).rglob("*"):  # names and ID numbers: owner-only, whatever the caller's umask
        assert path.stat().st_mode & 0o077 == 0, path


def test_an_index_is_not_built_for_runs_that_changed_meanwhile(store: RunStore) -> None:
    with pytest.raises(DibaoError, match="changed"):
        build_index(store, DATES[-1], index_key(store_runs(store, DATES[-2])))


def test_a_store_the_service_cannot_write_to_is_indexed_in_memory(store: RunStore) -> None:
    index_home(store).write_text("not a folder", encoding="utf-8")  # the index folder cannot be made
    snapshot = load_snapshot(RunFiles(store), DATES[-1])
    assert not isinstance(snapshot.index.id_keys, np.memmap)
    assert_same_views(snapshot.index, in_memory(store, DATES[-1]), store, DATES[-1])
