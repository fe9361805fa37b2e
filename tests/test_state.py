"""State across daily runs: 渐退 grace periods start, carry and end; first_seen carries; diffs; refusals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from dibao.errors import DibaoError
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from tests.conftest import COUNTY_HEADERS, REGISTRY_HEADERS, ROLL_HEADERS, county_rows, make_id, write_csv

# Rural 340402: standard 760 yuan/person/month. Per-capita monthly income = (wages × 0.8 − the roll's own benefit,
# which a registry figure without a 低保金 column is taken to include: 120 × 12) / 12 / members.
BELOW, ABOVE = 21000, 26000  # two members: 640 and 806.67 yuan per person per month
HOUSEHOLDS = {  # roll household → its registry household and two members
    "DB1": ("H1", [("张伟", make_id(birth="19700101", seq="011")), ("李丽", make_id(birth="19720202", seq="022"))]),
    "DB2": ("H2", [("王强", make_id(birth="19650505", seq="031")), ("赵敏", make_id(birth="19680606", seq="042"))]),
    "DB3": ("H3", [("刘洋", make_id(birth="19800808", seq="051")), ("陈静", make_id(birth="19820909", seq="062"))]),
}


def _drop(folder: Path, wages: dict[str, int], vehicle_for: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    registry, roll = [], []
    for db, (hh, members) in HOUSEHOLDS.items():
        for i, (name, id_number) in enumerate(members):
            relation = "户主" if i == 0 else "配偶"
            registry.append(["340402", "洛河镇", "新庄村", hh, name, id_number, relation, "脱贫户", "2019", "8000", "2",
                             str(wages[db]), "0", "0", "0"])
            roll.append(["340402", "洛河镇", "新庄村", db, name, id_number, relation, "农村", "低保", "120",
                         "2023-05-01", "700", "2"])
    write_csv(folder / "registry.csv", REGISTRY_HEADERS, registry, "gb18030")
    write_csv(folder / "dibao_roll.csv", ROLL_HEADERS, roll)
    write_csv(folder / "counties.csv", COUNTY_HEADERS, county_rows())
    facts = folder / "dept_facts.csv"
    facts.unlink(missing_ok=True)
    if vehicle_for:
        owner = HOUSEHOLDS[vehicle_for][1][0]
        write_csv(facts, ["证件号码", "姓名", "数据来源部门", "核对项目", "数值", "车辆类型", "数据日期"],
                  [[owner[1], owner[0], "交通运输局", "机动车", "皖D12345", "小型普通客车", "2026-10-01"]])
    return folder


def _day(tmp_path: Path, store: Path, date: str, wages: dict[str, int], **kw: object) -> tuple[pl.DataFrame, ...]:
    drop = _drop(tmp_path / f"drop-{date}", wages, vehicle_for="DB3")
    result = run_daily(drop, dt.date.fromisoformat(date), RunStore(store), **kw)  # type: ignore[arg-type]
    exits = pl.read_parquet(result.folder / "exit_candidates.parquet")
    diff = pl.read_parquet(result.folder / "diff.parquet")
    flags = pl.read_parquet(result.folder / "flags.parquet")
    return exits, diff, flags


def _row(exits: pl.DataFrame, household: str) -> dict[str, object] | None:
    rows = exits.filter(pl.col("dibao_household_id") == household)
    return rows.row(0, named=True) if rows.height else None


def test_grace_period_starts_carries_and_ends(tmp_path: Path) -> None:
    store = tmp_path / "store"
    d = dt.date.fromisoformat

    exits, diff, _ = _day(tmp_path, store, "2026-11-01", {"DB1": BELOW, "DB2": BELOW, "DB3": BELOW})
    assert _row(exits, "DB1") is None and _row(exits, "DB2") is None

    # Day 2: both raise their income. The grace period starts today.
    exits, diff, _ = _day(tmp_path, store, "2026-11-02", {"DB1": ABOVE, "DB2": ABOVE, "DB3": BELOW})
    row = _row(exits, "DB1")
    assert row is not None and row["reasons"] == ["income_above_standard"]
    assert (row["first_seen"], row["grace_start"], row["grace_until"]) == (d("2026-11-02"), d("2026-11-02"),
                                                                            d("2027-05-01"))
    assert diff.filter((pl.col("subject_id") == "DB1") & (pl.col("list") == "exit"))["change"].to_list() == ["added"]

    # Day 3: DB1 still above: carried, not restarted. DB2 fell back below: resolved, its grace ends early.
    exits, diff, _ = _day(tmp_path, store, "2026-11-03", {"DB1": ABOVE, "DB2": BELOW, "DB3": BELOW})
    row = _row(exits, "DB1")
    assert row is not None and (row["grace_start"], row["grace_until"]) == (d("2026-11-02"), d("2027-05-01"))
    assert _row(exits, "DB2") is None
    resolved = diff.filter((pl.col("subject_id") == "DB2") & (pl.col("list") == "exit"))
    assert resolved["change"].to_list() == ["resolved"] and resolved["date"][0] == d("2026-11-03")
    assert diff.filter(pl.col("subject_id") == "DB1").is_empty()  # nothing changed for DB1

    # The grace period's last day: still in grace. The day after: ended, still an exit candidate.
    exits, _, _ = _day(tmp_path, store, "2027-05-01", {"DB1": ABOVE, "DB2": BELOW, "DB3": BELOW})
    row = _row(exits, "DB1")
    assert row is not None and row["grace_until"] == d("2027-05-01") and row["first_seen"] == d("2026-11-02")
    exits, _, _ = _day(tmp_path, store, "2027-05-02", {"DB1": ABOVE, "DB2": BELOW, "DB3": BELOW})
    row = _row(exits, "DB1")
    assert row is not None and row["grace_until"] == d("2027-05-01")  # past: the grace period is over

    # DB2 rises again later: a new grace period, from the new first day.
    exits, _, _ = _day(tmp_path, store, "2027-05-03", {"DB1": ABOVE, "DB2": ABOVE, "DB3": BELOW})
    row = _row(exits, "DB2")
    assert row is not None and row["grace_start"] == d("2027-05-03")


def test_a_second_reason_stops_grace_and_first_seen_carries_for_flags_too(tmp_path: Path) -> None:
    store = tmp_path / "store"
    d = dt.date.fromisoformat
    exits, _, _ = _day(tmp_path, store, "2026-11-01", {"DB1": BELOW, "DB2": BELOW, "DB3": ABOVE})
    row = _row(exits, "DB3")
    assert row is not None and set(row["reasons"]) == {"income_above_standard", "vehicle_owned"}  # type: ignore[arg-type]
    assert row["grace_until"] is None and row["grace_start"] == d("2026-11-01")
    exits, diff, _ = _day(tmp_path, store, "2026-11-05", {"DB1": BELOW, "DB2": BELOW, "DB3": ABOVE})
    row = _row(exits, "DB3")
    assert row is not None and row["first_seen"] == d("2026-11-01")
    assert diff.is_empty()


def test_an_earlier_date_is_refused_unless_rebuilding(tmp_path: Path) -> None:
    store = tmp_path / "store"
    wages = {"DB1": BELOW, "DB2": ABOVE, "DB3": BELOW}
    _day(tmp_path, store, "2026-11-01", wages)
    _day(tmp_path, store, "2026-11-03", wages)
    with pytest.raises(DibaoError, match="Use --rebuild"):
        _day(tmp_path, store, "2026-11-02", wages)
    _day(tmp_path, store, "2026-11-02", wages, rebuild=True)
    assert [x.isoformat() for x in RunStore(store).published_dates()] == ["2026-11-01", "2026-11-02"]
    manifest = json.loads((store / "runs/2026-11-02/manifest.json").read_text())
    assert manifest["removed_later_runs"] == ["2026-11-03"] and manifest["previous_run"] == "2026-11-01"


def test_the_same_day_rerun_publishes_identical_content(tmp_path: Path) -> None:
    store = tmp_path / "store"
    wages = {"DB1": BELOW, "DB2": ABOVE, "DB3": ABOVE}
    _day(tmp_path, store, "2026-11-01", wages)
    _day(tmp_path, store, "2026-11-02", wages)
    first = json.loads((store / "runs/2026-11-02/manifest.json").read_text())["content_sha256"]
    _day(tmp_path, store, "2026-11-02", wages, replace=True)
    again = json.loads((store / "runs/2026-11-02/manifest.json").read_text())
    assert again["content_sha256"] == first
    assert "diff.parquet" in again["files"] and "exit_candidates.parquet" in again["files"]


def test_a_previous_run_published_before_subject_id_and_county_name_still_carries(tmp_path: Path) -> None:
    """The day after an upgrade: yesterday's lists lack today's columns; the contract's reader fills them."""
    store = tmp_path / "store"
    d = dt.date.fromisoformat
    wages = {"DB1": ABOVE, "DB2": BELOW, "DB3": ABOVE}
    _day(tmp_path, store, "2026-11-01", wages)
    run = store / "runs" / "2026-11-01"
    for name, added in (("exit_candidates", ["subject_id", "county_name", "grace_start"]),
                        ("inclusion_candidates", ["subject_id", "county_name"]), ("flags", ["county_name"])):
        path = run / f"{name}.parquet"
        pl.read_parquet(path).drop(added).write_parquet(path)
    exits, diff, _ = _day(tmp_path, store, "2026-11-02", wages)
    row = _row(exits, "DB1")
    assert row is not None and row["first_seen"] == d("2026-11-01") and row["subject_id"] == "DB1"
    assert row["county_name"] == "大通区"
    assert row["grace_start"] == d("2026-11-02")  # yesterday's start is unknown: today's is kept
    assert diff.is_empty()
