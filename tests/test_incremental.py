"""Incremental days (``dibao/publish/cache.py``): a day on unchanged inputs reuses the cached ingest and linkage,
and publishes exactly what a full run on a fresh store publishes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import dibao
from dibao import policy_files
from dibao.headers import load_header_table
from dibao.ingest import ingest_drop
from dibao.pipeline import RunResult, run_daily
from dibao.publish import cache as cache_module
from dibao.publish.cache import RunCache, date_span
from dibao.publish.store import RunStore
from dibao_synth import generate

DAY1 = dt.date(2026, 11, 20)
DAYS = [DAY1 + dt.timedelta(days=i) for i in range(4)]


@dataclasses.dataclass
class Drops:
    day1: Path  # days 1 and 2: the same files
    day3: Path  # the roll changed (one row fewer)
    day4: Path  # the roll changed again


def _drop_roll_line(src: Path, out: Path, keep_lines: int) -> Path:
    shutil.copytree(src, out)
    roll = next(out.glob("dibao_roll.*"))
    lines = roll.read_bytes().splitlines(keepends=True)
    roll.write_bytes(b"".join(lines[:keep_lines]))
    return out


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> Drops:
    root = tmp_path_factory.mktemp("incremental")
    generate(households=300, seed=5, out=root / "day1", as_of=DAY1, formats="csv")
    lines = len(next((root / "day1").glob("dibao_roll.*")).read_bytes().splitlines())
    return Drops(root / "day1", _drop_roll_line(root / "day1", root / "day3", lines - 1),
                 _drop_roll_line(root / "day1", root / "day4", lines - 2))


def _run(store: Path, inputs: Path, date: dt.date, **kwargs: Any) -> RunResult:
    return run_daily(inputs, date, RunStore(store), **kwargs)


def _inputs_of(drops: Drops) -> list[Path]:
    return [drops.day1, drops.day1, drops.day3, drops.day4]


@pytest.fixture(scope="module")
def full_runs(drops: Drops, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """content_sha256 of each day run on a fresh store without any cache."""
    store = tmp_path_factory.mktemp("full") / "store"
    hashes = [_run(store, inputs, day, cache=False).manifest["content_sha256"]
              for inputs, day in zip(_inputs_of(drops), DAYS, strict=True)]
    assert not (store / "cache").exists()
    return hashes


def test_days_reuse_the_cache_and_publish_what_a_full_run_publishes(drops: Drops, full_runs: list[str],
                                                                    tmp_path: Path) -> None:
    store = tmp_path / "store"
    results = [_run(store, inputs, day) for inputs, day in zip(_inputs_of(drops), DAYS, strict=True)]
    caches = [{k: v for k, v in r.manifest["cache"].items() if k != "link_key"} for r in results]
    stems = set(results[0].manifest["inputs"])
    groups = caches[0]["rules"]["groups"]
    assert caches[0] == {"inputs": dict.fromkeys(sorted(stems), "miss"), "linkage": "computed",
                         "rules": {"from": "computed", "groups_recomputed": groups, "groups": groups},
                         "discarded": {}}
    assert all(cache["discarded"] == {} for cache in caches)  # nothing damaged: nothing set aside
    assert caches[1]["inputs"] == dict.fromkeys(sorted(stems), "hit") and caches[1]["linkage"] == "reused"
    # The reused linkage's counts come with it (not counted again) and are the counts of day 1's.
    assert results[1].manifest["linkage"] == results[0].manifest["linkage"]
    assert results[1].manifest["linkage"]["persons"] > 0
    # Same inputs, the next day: the rules stage starts from day 1 and recomputes the few households the date
    # changes (birthdays, 服刑 end dates); the day counts of the others are brought up to date in place.
    assert caches[1]["rules"]["from"] == DAYS[0].isoformat()
    assert caches[1]["rules"]["groups_recomputed"] < 0.05 * groups
    assert caches[2]["inputs"] == {s: "miss" if s == "dibao_roll" else "hit" for s in sorted(stems)}
    assert caches[2]["linkage"] == "computed"  # the roll is person-level: relinked
    assert caches[2]["rules"]["from"] == "computed"
    assert results[1].manifest["inputs"]["registry"]["cache"] == "hit"
    assert [r.manifest["content_sha256"] for r in results] == full_runs
    # Every published file is byte for byte the same, not only the hash over them.
    fresh = tmp_path / "fresh"
    _run(fresh, drops.day1, DAYS[0], cache=False)
    for name, info in results[0].manifest["files"].items():
        assert json.loads((fresh / "runs" / DAYS[0].isoformat() / "manifest.json").read_text(
            encoding="utf-8"))["files"][name]["sha256"] == info["sha256"]


def test_a_cached_file_is_rebuilt_exactly(drops: Drops, tmp_path: Path) -> None:
    headers = load_header_table(policy_files.policy_path(policy_files.HEADERS, None))
    full = ingest_drop(drops.day1, headers=headers, run_date=DAY1, keep_raw=True)
    writer = RunCache.for_store(tmp_path, headers)
    ingest_drop(drops.day1, headers=headers, run_date=DAY1, cache=writer)
    reader = RunCache.for_store(tmp_path, headers)
    cached = ingest_drop(drops.day1, headers=headers, run_date=DAY1 + dt.timedelta(days=1), cache=reader,
                         keep_raw=True)
    assert set(reader.ingest_status.values()) == {"hit"}
    assert list(cached.files) == list(full.files)
    for stem, f in full.files.items():
        c = cached.files[stem]
        for frame, again in ((f.accepted, c.accepted), (f.rejected, c.rejected), (f.data_notes, c.data_notes),
                             (f.raw.frame, c.raw.frame)):
            assert frame.schema == again.schema
            assert frame.equals(again)  # same values in the same row order
        assert (c.column_map, c.notes, c.rows_read, c.fields_cleared) == (f.column_map, f.notes, f.rows_read,
                                                                          f.fields_cleared)
        raw_fields = [x.name for x in dataclasses.fields(f.raw) if x.name not in ("frame", "row_lines")]
        assert {n: getattr(c.raw, n) for n in raw_fields} == {n: getattr(f.raw, n) for n in raw_fields}


def test_a_run_does_not_read_back_the_text_it_would_let_go(drops: Drops, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A hit without ``keep_raw`` loads neither the text as read nor its line numbers (at province scale that was
    a second day's whole ingest peak), yet counts the rows read as the first day did."""
    headers = load_header_table(policy_files.policy_path(policy_files.HEADERS, None))
    full = ingest_drop(drops.day1, headers=headers, run_date=DAY1, cache=RunCache.for_store(tmp_path, headers))
    read: list[str] = []
    real_read_frame = cache_module._read_frame

    def recording(folder: Path, name: str, meta: dict[str, Any]) -> pl.DataFrame:
        read.append(name)
        return real_read_frame(folder, name, meta)

    monkeypatch.setattr(cache_module, "_read_frame", recording)
    reader = RunCache.for_store(tmp_path, headers)
    cached = ingest_drop(drops.day1, headers=headers, run_date=DAY1, cache=reader)
    assert set(reader.ingest_status.values()) == {"hit"}
    assert read and not {"raw.parquet", "row_lines.parquet"} & set(read)
    for stem, f in full.files.items():
        c = cached.files[stem]
        assert (c.rows_read, c.raw.frame.height, c.raw.headers) == (f.rows_read, 0, f.raw.headers)
        assert c.accepted.equals(f.accepted)


def _entries(store: Path, kind: str = "ingest") -> set[str]:
    folder = store / "cache" / kind
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")} if folder.is_dir() else set()


def test_a_changed_header_table_or_engine_invalidates_the_cache(drops: Drops, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    _run(store, drops.day1, DAYS[0])
    # A rules folder whose headers.yaml differs (here only its version): every file is read again.
    rules = tmp_path / "rules"
    rules.mkdir()
    text = policy_files.shipped(policy_files.HEADERS).read_text(encoding="utf-8")
    (rules / policy_files.HEADERS).write_text(text.replace("\nversion: ", "\nversion: local-", 1), encoding="utf-8")
    second = _run(store, drops.day1, DAYS[1], rules_dir=rules)
    assert set(second.manifest["cache"]["inputs"].values()) == {"miss"}
    # The files were read again and gave the same records: the linkage is keyed by those, so it is reused.
    assert second.manifest["cache"]["linkage"] == "reused"
    # Another engine version: every file is read again.
    monkeypatch.setattr(dibao, "__version__", "999.0")
    cache_module.code_hash.cache_clear()
    try:
        third = _run(store, drops.day1, DAYS[2], rules_dir=rules)
    finally:
        monkeypatch.undo()
        cache_module.code_hash.cache_clear()
    assert set(third.manifest["cache"]["inputs"].values()) == {"miss"}
    # An encoding override is part of the key too.
    fourth = _run(store, drops.day1, DAYS[3], rules_dir=rules, encodings={"registry": "utf-8"})
    assert fourth.manifest["cache"]["inputs"]["registry"] == "miss"
    assert fourth.manifest["cache"]["inputs"]["counties"] == "hit"


@pytest.mark.parametrize("damage", ["parquet", "meta", "truncated", "link", "rules"])
def test_a_damaged_cache_entry_is_ignored_and_recomputed(drops: Drops, full_runs: list[str], tmp_path: Path,
                                                         damage: str) -> None:
    store = tmp_path / "store"
    _run(store, drops.day1, DAYS[0])
    registry = next(p for p in (store / "cache" / "ingest").iterdir() if p.name.startswith("registry-"))
    if damage == "parquet":
        data = bytearray((registry / "accepted.parquet").read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte: the checksum disagrees
        (registry / "accepted.parquet").write_bytes(bytes(data))
    elif damage == "meta":
        (registry / "meta.json").write_text("{not json", encoding="utf-8")
    elif damage == "truncated":
        (registry / "rejected_rows.parquet").write_bytes((registry / "rejected_rows.parquet").read_bytes()[:20])
    elif damage == "link":
        link = next((store / "cache" / "link").iterdir())
        (link / "links.parquet").write_bytes(b"PAR1 not really")
    else:
        rules = next((store / "cache" / "rules").iterdir())
        (rules / "day_facts.parquet").write_bytes(b"PAR1 not really")
    second = _run(store, drops.day1, DAYS[1])
    expected = "hit" if damage in ("link", "rules") else "miss"
    assert second.manifest["cache"]["inputs"]["registry"] == expected
    # A recomputed registry gives the same records, so the (sound) linkage entry still serves; a damaged one not.
    assert second.manifest["cache"]["linkage"] == ("computed" if damage == "link" else "reused")
    # A damaged rules entry is recomputed in full; an intact one serves whenever the inputs are the same.
    assert second.manifest["cache"]["rules"]["from"] == ("computed" if damage == "rules" else DAYS[0].isoformat())
    assert second.manifest["content_sha256"] == full_runs[1]
    # The manifest names the entry that was set aside, and why: damage, not a silent miss.
    kind = {"link": "link/", "rules": "rules/"}.get(damage, "ingest/registry-")
    reasons = [why for entry, why in second.manifest["cache"]["discarded"].items() if entry.startswith(kind)]
    assert len(reasons) == 1 and ("checksum differs" in reasons[0] or damage == "meta"), reasons
    # The damaged entry was replaced by a sound one: the next day hits again.
    third = _run(store, drops.day1, DAYS[2])
    assert third.manifest["cache"]["inputs"]["registry"] == "hit"
    assert third.manifest["cache"]["linkage"] == "reused"


def test_the_cache_keeps_only_what_the_last_two_runs_used(drops: Drops, tmp_path: Path) -> None:
    store = tmp_path / "store"
    for inputs, day in zip(_inputs_of(drops)[:3], DAYS[:3], strict=True):
        _run(store, inputs, day)
    first_roll = {e for e in _entries(store) if e.startswith("dibao_roll-")}
    assert len(first_roll) == 2  # day 1-2's roll (used by day 2) and day 3's
    assert len(_entries(store, "link")) == 2
    _run(store, drops.day4, DAYS[3])
    rolls = {e for e in _entries(store) if e.startswith("dibao_roll-")}
    assert len(rolls) == 2 and rolls != first_roll  # day 1-2's roll is gone, day 3's and day 4's remain
    assert len(_entries(store)) == 8 and len(_entries(store, "link")) == 2


def test_the_run_date_matters_only_through_birth_dates(drops: Drops) -> None:
    headers = load_header_table(policy_files.policy_path(policy_files.HEADERS, None))
    drop = ingest_drop(drops.day1, headers=headers, run_date=DAY1)
    start, end = date_span(drop.files["registry"], DAY1)
    births = drop.files["registry"].accepted["id_birth_date"].drop_nulls()
    assert start == births.max() and start <= DAY1 <= end
    # An ID born after the run date (bad_date today) ends the span the day before it becomes a real birth date.
    roll = drop.files["dibao_roll"]
    row = roll.accepted.head(1).with_columns(pl.lit("11010120270305001X").alias("id_number"))
    later = dataclasses.replace(roll, in_memory=pl.concat([roll.accepted, row]))
    assert date_span(later, DAY1)[1] == dt.date(2027, 3, 4)


def test_linkage_files_of_an_unchanged_day_are_the_previous_runs(drops: Drops, full_runs: list[str],
                                                                 tmp_path: Path) -> None:
    """Same cached linkage → the previous run's person_links/household_links/link_review are reused (hard-linked),
    after checking them against its manifest; a previous file that no longer matches is written afresh."""
    store = tmp_path / "store"
    _run(store, drops.day1, DAYS[0])
    runs = store / "runs"
    _run(store, drops.day1, DAYS[1])
    for name in ("person_links.parquet", "household_links.parquet", "link_review.parquet"):
        assert (runs / DAYS[1].isoformat() / name).stat().st_ino == (runs / DAYS[0].isoformat() / name).stat().st_ino
    assert (runs / DAYS[1].isoformat() / "household_facts.parquet").stat().st_ino != \
        (runs / DAYS[0].isoformat() / "household_facts.parquet").stat().st_ino
    # Someone altered day 2's person_links after publishing: day 3 (same inputs) does not carry the altered file on.
    altered = runs / DAYS[1].isoformat() / "review_copy.parquet"
    shutil.copyfile(runs / DAYS[1].isoformat() / "person_links.parquet", altered)
    (runs / DAYS[1].isoformat() / "person_links.parquet").unlink()
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (runs / DAYS[1].isoformat() / "person_links.parquet").write_bytes(bytes(data))
    third = _run(store, drops.day1, DAYS[2])
    day3 = runs / DAYS[2].isoformat()
    assert (day3 / "person_links.parquet").stat().st_ino != (runs / DAYS[1].isoformat() / "person_links.parquet"
                                                             ).stat().st_ino
    assert third.manifest["files"]["person_links.parquet"]["sha256"] == \
        json.loads((runs / DAYS[0].isoformat() / "manifest.json").read_text(encoding="utf-8")
                   )["files"]["person_links.parquet"]["sha256"]
