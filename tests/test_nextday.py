"""The next morning's drop (``dibao_synth.nextday``): two consecutive daily runs and what changed between them."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl
import pytest

from benchmarks.accuracy import score
from dibao.ingest import ingest_drop
from dibao.ingest.read import decode_text
from dibao.normalise.ids import check_id
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao_synth import generate
from dibao_synth.nextday import Change, NextDaySummary, describe, main, next_day

DAY1, DAY2 = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
HOUSEHOLDS, GENERATOR_SEED = 400, 5


@dataclass(frozen=True)
class Days:
    root: Path
    summary: NextDaySummary
    run1: Path
    run2: Path

    @property
    def day1(self) -> Path:
        return self.root / "day1"

    @property
    def day2(self) -> Path:
        return self.root / "day2"

    def read(self, run: Path, name: str) -> pl.DataFrame:
        return pl.read_parquet(run / f"{name}.parquet")


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Days:
    root = tmp_path_factory.mktemp("nextday")
    generate(households=HOUSEHOLDS, seed=GENERATOR_SEED, out=root / "day1", as_of=DAY1)
    summary = next_day(root / "day1", root / "day2", seed=1, truth=root / "day1_truth")
    store = RunStore(root / "store")
    run_daily(root / "day1", DAY1, store)
    run_daily(root / "day2", DAY2, store)
    return Days(root, summary, store.run_dir(DAY1), store.run_dir(DAY2))


def _raw(path: Path) -> pl.DataFrame:
    """A file's values exactly as written (nothing trimmed), whatever its format."""
    data = path.read_bytes()
    if path.suffix == ".csv":
        text, _ = decode_text(path, data, None)
        return pl.read_csv(io.BytesIO(text.encode()), infer_schema=False)
    if path.suffix == ".xlsx":
        return fastexcel.read_excel(data).load_sheet(0, dtypes="string").to_polars()
    return pl.read_parquet(path)


def _change(summary: NextDaySummary, kind: str) -> Change:
    change = summary.change(kind)
    assert change is not None, (kind, summary.skipped)
    return change


def test_summary_names_the_dates_and_each_change(days: Days) -> None:
    s = days.summary
    assert (s.day1, s.day2) == (DAY1, DAY2)
    assert {c.kind for c in s.changes} >= {"death", "income_rise", "new_monitored"}
    assert s.truth_out == days.root / "day2_truth"
    text = "\n".join(describe(s))
    for c in s.changes:
        assert c.household_id in text and c.expected in text


def test_death_is_a_new_member_deceased_exit_candidate(days: Days) -> None:
    """The one member of a one-person family dies: every covered member is dead, the benefit stops."""
    death = _change(days.summary, "death")
    household = death.household_id
    assert days.read(days.run1, "household_facts").filter(
        (pl.col("subject_type") == "roll") & (pl.col("subject_id") == household))["members"].item() == 1
    assert household not in days.read(days.run1, "exit_candidates")["dibao_household_id"].to_list()
    exits = days.read(days.run2, "exit_candidates").filter(pl.col("dibao_household_id") == household)
    assert exits["reasons"].to_list() == [["member_deceased"]]
    diff = days.read(days.run2, "diff").filter((pl.col("list") == "exit") & (pl.col("subject_id") == household))
    assert diff["change"].to_list() == ["added"]
    # The fact itself: the last dept_facts row, with the person's real ID and name.
    (name, id_number), = death.persons
    last = _raw(days.summary.changed_files["dept_facts"]).row(-1)
    assert last == (id_number, name, "公安局", "死亡", DAY2.isoformat(), None, DAY2.isoformat())  # no 类型
    truth = pl.read_parquet(days.root / "day1_truth" / "persons.parquet")
    assert truth.filter(pl.col("id_number") == id_number)["name"].to_list() == [name]


def test_income_rise_opens_a_grace_period(days: Days) -> None:
    rise = _change(days.summary, "income_rise")
    household = rise.household_id
    assert household not in days.read(days.run1, "exit_candidates")["dibao_household_id"].to_list()
    exits = days.read(days.run2, "exit_candidates").filter(pl.col("dibao_household_id") == household)
    assert exits["reasons"].to_list() == [["income_above_standard"]]
    assert exits["grace_until"].to_list() == [dt.date(2027, 5, 19)]  # six months from the first day seen
    diff = days.read(days.run2, "diff").filter((pl.col("list") == "exit") & (pl.col("subject_id") == household))
    assert diff["change"].to_list() == ["added"]
    # The engine's per-capita income lands 2–10 % above the standard (it was below yesterday).
    facts = {run: days.read(run, "household_facts").filter(
        (pl.col("subject_type") == "roll") & (pl.col("subject_id") == household))["per_capita_income"].item()
        for run in (days.run1, days.run2)}
    standard = rise.figures["standard"]
    assert facts[days.run1] < standard
    assert 1.02 <= facts[days.run2] / standard <= 1.10
    assert facts[days.run2] == pytest.approx(rise.figures["pcm_after"], abs=0.01)


def test_wage_rise_is_consistent_on_every_member_row(days: Days) -> None:
    rise = _change(days.summary, "income_rise")
    assert rise.related_households
    for key in rise.related_households:  # registry and/or monitoring entry of the family
        stem, household = key.split(":", 1)
        before = _raw(next(days.day1.glob(f"{stem}.*")))
        after = _raw(days.summary.changed_files[stem])
        rows = after.filter(pl.col("户编号") == household)
        assert rows.height == len(rise.persons)
        assert rows["工资性收入"].unique().to_list() == [str(int(rise.figures["wage_after"]))]
        assert before.filter(pl.col("户编号") == household)["工资性收入"].unique().to_list() == [
            str(int(rise.figures["wage_before"]))]


def test_new_monitored_household_is_an_inclusion_candidate(days: Days) -> None:
    new = _change(days.summary, "new_monitored")
    household = new.household_id
    assert household not in days.read(days.run1, "inclusion_candidates")["household_id"].to_list()
    inclusion = days.read(days.run2, "inclusion_candidates").filter(pl.col("household_id") == household)
    assert inclusion.height == 1
    assert "income_below_standard" in inclusion["reasons"][0] and inclusion["source"][0] == "monitoring"
    diff = days.read(days.run2, "diff").filter(
        (pl.col("list") == "inclusion") & (pl.col("subject_id") == household))
    assert diff["change"].to_list() == ["added"]

    monitoring = _raw(days.summary.changed_files["monitoring"])
    rows = monitoring.tail(len(new.persons))
    assert 2 <= rows.height <= 4 and rows["户编号"].unique().to_list() == [household]
    assert rows["监测对象类别"].unique().to_list() == ["突发严重困难户"]
    assert rows["识别纳入时间"].unique().to_list() == [DAY2.isoformat()]
    assert rows["风险是否消除"].unique().to_list() == ["否"]
    assert rows["与户主关系"][0] == "户主"
    assert len(household) == 16 and household[:6] == rows["县级区划代码"][0]
    assert new.figures["pcm"] < 0.65 * new.figures["standard"]
    links = days.read(days.run2, "person_links")
    for name, id_number in new.persons:
        assert check_id(id_number).usable and len(name) >= 2
        # the new persons are in no other file: only their monitoring rows carry their ID
        assert links.filter(pl.col("person_key") == id_number)["source"].to_list() == ["monitoring"]
    existing = pl.read_parquet(days.root / "day1_truth" / "persons.parquet")["id_number"]
    assert not set(existing.to_list()) & {i for _, i in new.persons}


def test_vehicle_sale_resolves_the_exit_candidate(days: Days) -> None:
    sold = days.summary.change("vehicle_sold")
    if sold is None:
        pytest.skip(f"no household qualified: {days.summary.skipped}")
    before = days.read(days.run1, "exit_candidates").filter(pl.col("dibao_household_id") == sold.household_id)
    assert before["reasons"].to_list() == [["vehicle_owned"]]
    assert sold.household_id not in days.read(days.run2, "exit_candidates")["dibao_household_id"].to_list()
    diff = days.read(days.run2, "diff").filter(
        (pl.col("list") == "exit") & (pl.col("subject_id") == sold.household_id))
    assert diff["change"].to_list() == ["resolved"]


def test_the_lists_change_exactly_as_planned(days: Days) -> None:
    expected = {("inclusion" if c.kind == "new_monitored" else "exit", c.household_id,
                 "resolved" if c.kind == "vehicle_sold" else "added") for c in days.summary.changes}
    diff = days.read(days.run2, "diff").filter(pl.col("list") != "flag")
    assert set(diff.select("list", "subject_id", "change").iter_rows()) == expected


def test_unchanged_files_are_byte_identical_and_changed_ones_keep_their_form(days: Days) -> None:
    s = days.summary
    assert set(s.changed_files) == {stem for c in s.changes for stem in c.files}
    day1 = {p.name: p for p in days.day1.iterdir()}
    day2 = {p.name: p for p in days.day2.iterdir()}
    assert set(day1) == set(day2)  # same names: same formats
    for name, path in day1.items():
        stem = path.stem
        if stem not in s.changed_files:
            assert path.read_bytes() == day2[name].read_bytes(), name
            continue
        assert s.changed_files[stem] == day2[name]
        if path.suffix == ".csv":  # same encoding (a BOM stays a BOM)
            assert decode_text(path, path.read_bytes(), None)[1] == decode_text(
                day2[name], day2[name].read_bytes(), None)[1]
        before, after = _raw(path), _raw(day2[name])
        assert before.columns == after.columns  # header spelling
        # every row of day 1 is still there, as written, apart from the rows the changes touched
        touched = {c.household_id for c in s.changes} | {k.split(":", 1)[1] for c in s.changes
                                                         for k in c.related_households}
        sold = {i for c in s.changes if c.kind == "vehicle_sold" for _, i in c.persons}
        if "户编号" in before.columns:
            keep = ~pl.col("户编号").is_in(list(touched))
        else:
            keep = ~(pl.col("证件号码").is_in(list(sold)) & (pl.col("核对项目") == "机动车")) & ~(
                (pl.col("核对项目") == "死亡") & (pl.col("数据日期") == DAY2.isoformat()))
        assert before.filter(keep).equals(after.filter(keep)), name
        rise = _change(s, "income_rise")
        expected = {
            "registry": len(rise.persons) * any(k.startswith("registry:") for k in rise.related_households),
            "monitoring": len(rise.persons) * any(k.startswith("monitoring:") for k in rise.related_households)
            + len(_change(s, "new_monitored").persons),
            "dept_facts": 1,  # the death
        }
        assert after.height - after.filter(keep).height == expected[stem], stem
    assert set(s.copied_files) == {n for n, p in day1.items() if p.stem not in s.changed_files}


def test_day_two_ingests_without_new_faults(days: Days) -> None:
    one, two = ingest_drop(days.day1), ingest_drop(days.day2)
    assert two.notes == one.notes
    assert {s: f.rejected.height for s, f in two.files.items()} == {s: f.rejected.height for s, f in one.files.items()}
    for stem, f in two.files.items():
        assert f.notes == one.files[stem].notes, stem
    added = {"monitoring": len(_change(days.summary, "new_monitored").persons)}
    dept = sum(1 for c in days.summary.changes if c.kind == "death") - sum(
        1 for c in days.summary.changes if c.kind == "vehicle_sold")
    added["dept_facts"] = dept
    for stem, f in two.files.items():
        assert f.accepted.height == one.files[stem].accepted.height + added.get(stem, 0), stem


def test_truth_is_updated_beside_the_new_drop(days: Days) -> None:
    truth1, truth2 = days.root / "day1_truth", days.root / "day2_truth"
    s = days.summary
    households = pl.read_parquet(truth2 / "households.parquet")
    summary = json.loads((truth2 / "summary.json").read_text(encoding="utf-8"))
    assert summary["as_of"] == DAY2.isoformat() and summary["next_day"]["day2"] == DAY2.isoformat()
    assert (truth2 / "relatives.parquet").read_bytes() == (truth1 / "relatives.parquet").read_bytes()

    def row(**where: str) -> dict[str, object]:
        (k, v), = where.items()
        return households.filter(pl.col(k) == v).row(0, named=True)

    assert row(dibao_household_id=_change(s, "death").household_id)["deceased_member"]
    raised = row(dibao_household_id=_change(s, "income_rise").household_id)
    assert raised["income_above_standard"] and not raised["eligible"] and raised["income_band"] == "just_above"
    new = row(monitoring_household_id=_change(s, "new_monitored").household_id)
    assert new["missed_eligible"] and new["in_monitoring"] and not new["on_roll"]
    assert households.height == pl.read_parquet(truth1 / "households.parquet").height + 1

    # Records stay numbered like the files: each clean record's row holds its person's true ID.
    records = pl.read_parquet(truth2 / "records.parquet")
    persons = pl.read_parquet(truth2 / "persons.parquet").select("person_uid", pl.col("id_number").alias("true"))
    for stem in ("dept_facts", "monitoring"):
        frame = _raw(days.summary.changed_files[stem]).with_row_index("row", offset=1)
        assert records.filter(pl.col("source") == stem).height == frame.height == summary["rows"][stem]
        clean = records.filter((pl.col("source") == stem) & pl.col("id_noise").is_null()).join(
            persons, on="person_uid").join(frame.select(pl.col("row").cast(pl.Int64), "证件号码"), on="row")
        assert clean.height and (clean["true"] == clean["证件号码"]).all(), stem

    # Scored against the updated truth, day 2 is as accurate as day 1 against its own.
    for run, truth in ((days.run1, truth1), (days.run2, truth2)):
        results = score(run, truth)
        for name in ("exit (应退尽退)", "inclusion (应保尽保)"):
            assert results[name]["precision"] == 1.0 and results[name]["recall"] == 1.0, (run, name, results[name])


def test_same_seed_same_day_without_truth_and_from_the_command_line(days: Days, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(days.day1), str(tmp_path / "again"), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"({DAY1}) → " in printed and f"({DAY2})" in printed and "member_deceased" in printed
    for path in days.day2.iterdir():  # chosen from the drop alone: the truth folder changes nothing
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name
    assert not (tmp_path / "again_truth").exists()
    other = next_day(days.day1, tmp_path / "other", seed=2)
    assert [c.household_id for c in other.changes] != [c.household_id for c in days.summary.changes]
    with pytest.raises(ValueError, match="another folder"):
        next_day(days.day1, days.day1)


def test_a_file_not_laid_out_as_one_table_is_refused_not_rewritten(days: Days, tmp_path: Path) -> None:
    """Ingestion reads past a title row; a rewrite would drop it, so the file is refused (nothing is written)."""
    drop = tmp_path / "titled"
    drop.mkdir()
    for path in days.day1.iterdir():
        (drop / path.name).write_bytes(path.read_bytes())
    registry = drop / "registry.csv"
    registry.write_bytes("建档立卡人口信息表,,,,\n".encode("gb18030") + registry.read_bytes())
    assert ingest_drop(drop).files["registry"].raw.header_line == 2
    with pytest.raises(ValueError, match=r"registry\.csv: cannot be rewritten as written"):
        next_day(drop, tmp_path / "day2", seed=1)
    assert not (tmp_path / "day2").exists()


@pytest.mark.parametrize("formats", ["csv", "parquet"])
def test_other_formats_are_rewritten_in_kind(tmp_path: Path, formats: str) -> None:
    generate(households=300, seed=8, out=tmp_path / "day1", as_of=DAY1, formats=formats)
    summary = next_day(tmp_path / "day1", tmp_path / "day2", seed=3, truth=tmp_path / "day1_truth")
    assert {c.kind for c in summary.changes} >= {"death", "income_rise", "new_monitored"}
    suffix = ".csv" if formats == "csv" else ".parquet"
    assert all(p.suffix == suffix for p in summary.changed_files.values())
    for path in (tmp_path / "day1").iterdir():
        if path.stem not in summary.changed_files:
            assert path.read_bytes() == (tmp_path / "day2" / path.name).read_bytes()
    one, two = ingest_drop(tmp_path / "day1"), ingest_drop(tmp_path / "day2")
    assert {s: f.rejected.height for s, f in two.files.items()} == {s: f.rejected.height for s, f in one.files.items()}
    monitoring = _raw(summary.changed_files["monitoring"])
    assert monitoring.tail(1)["户编号"].item() == _change(summary, "new_monitored").household_id
