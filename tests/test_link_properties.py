"""Linkage invariants, checked on generated data: evidence reaches a person only through a stated piece of evidence.

A record that cannot be linked gets a key of its own; it shares a key only through the same usable ID, a repaired
ID (agreeing name and county, one candidate), the same cross-walked household and name, or the 17-digits-plus-
pinyin rule for a damaged check character. (a), (b) and the evidence audit run on record frames built directly
(``normalise_ids`` / ``normalise_names``, the columns ingestion derives); (c) runs the real ingest → link → rules
path on CSV drops, and checks that strangers' deaths, vehicles and balances change no existing family.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from dibao.ingest import ingest_drop
from dibao.link import link_persons, person_records
from dibao.link.persons import LinkSettings, name_similarity, person_profiles
from dibao.link.records import HOUSEHOLD_FIELD, RECORD_SCHEMA
from dibao.link.repair import repair_candidates
from dibao.normalise.ids import USABLE_STATUSES, IdStatus, expected_check_char, normalise_ids
from dibao.normalise.names import normalise_names
from dibao.rules import Decisions, ParameterSet, RuleSet, decide, load_parameters, load_rules
from tests.conftest import COUNTY_HEADERS, REGISTRY_HEADERS, ROLL_HEADERS, TODAY, make_id, write_csv

USABLE = [s.value for s in USABLE_STATUSES]
REGIONS = ("340402", "340403", "422827")
# Names with homophones (李丽/李力, 张伟/章维), a traditional form (李麗) and a namesake-prone pair (张乐).
NAMES = ("张伟", "章维", "李丽", "李力", "李麗", "王芳", "张乐", "张小明", "张明", "赵刚", "郝秀", "刘洋")
HOUSEHOLD_SOURCES = tuple(HOUSEHOLD_FIELD)
ALL_SOURCES = (*HOUSEHOLD_SOURCES, "bank_assets", "dept_facts")
ID_DAMAGE = ("exact", "old_15", "typo", "swap", "check_char", "cut_16", "cut_17", "bad_date", "bad_format", "blank",
             "junk")


# --- generated record frames ------------------------------------------------------------------------------------

def damage_id(valid: str, kind: str, pos: int, digit: int) -> str:
    """The ID as some file wrote it: exact, upgraded from 15 digits, or damaged in one of the ways data is."""
    p17 = pos % 17
    if kind == "old_15":
        return valid[:6] + valid[8:17] if valid[6:8] == "19" else valid
    if kind == "typo":
        return valid[:p17] + str((int(valid[p17]) + 1 + digit % 9) % 10) + valid[p17 + 1:]
    if kind == "swap":
        p = pos % 16
        if valid[p] == valid[p + 1]:  # swapping equal digits changes nothing: mistype one instead
            return damage_id(valid, "typo", p, digit)
        return valid[:p] + valid[p + 1] + valid[p] + valid[p + 2:]
    if kind == "check_char":
        return valid[:17] + "0123456789X".replace(valid[17], "")[digit % 10]
    if kind == "cut_16":
        return valid[:16]
    if kind == "cut_17":
        return valid[:p17] + valid[p17 + 1:]
    if kind == "bad_date":
        first17 = valid[:10] + "13" + valid[12:17]
        return first17 + expected_check_char(first17)
    if kind == "bad_format":
        return valid[:p17] + "A" + valid[p17 + 1:]
    if kind == "blank":
        return ""
    if kind == "junk":
        return str(10 ** (pos % 12 + 3) + digit)
    return valid


@dataclass(frozen=True)
class Person:
    """A real person of the generated population: one valid ID and a usual name."""

    id: str
    name: str


persons = st.builds(
    lambda region, born, seq, name: Person(make_id(region, born.strftime("%Y%m%d"), f"{seq:03d}"), name),
    st.sampled_from(REGIONS), st.dates(dt.date(1935, 1, 1), dt.date(2024, 12, 31)), st.integers(0, 999),
    st.sampled_from(NAMES),
)


@st.composite
def record_frames(draw: st.DrawFn) -> pl.DataFrame:
    """A drop's person records (``RECORD_SCHEMA``): a few persons, each written in several files and ways."""
    people = draw(st.lists(persons, min_size=1, max_size=6, unique_by=lambda p: p.id))
    n = draw(st.integers(1, 24))
    rows = []
    counters: dict[str, int] = {}
    for _ in range(n):
        person = draw(st.sampled_from(people))
        source = draw(st.sampled_from(ALL_SOURCES))
        kind = draw(st.sampled_from(ID_DAMAGE))
        raw_id = damage_id(person.id, kind, draw(st.integers(0, 40)), draw(st.integers(0, 40)))
        name = draw(st.one_of(st.just(person.name), st.sampled_from(NAMES), st.none()))
        in_household = source in HOUSEHOLD_SOURCES
        household = f"{source}:H{draw(st.integers(0, 3))}" if in_household else None
        county = draw(st.sampled_from((person.id[:6], *REGIONS))) if in_household else None
        counters[source] = counters.get(source, 0) + 1
        if in_household and name is None:  # registry, monitoring and roll require a name
            name = person.name
        rows.append((source, counters[source], raw_id, name, county, household))
    frame = pl.DataFrame(rows, schema={"source": pl.String, "row": pl.UInt32, "id_number": pl.String,
                                       "name": pl.String, "county_code": pl.String, "household": pl.String},
                         orient="row")
    frame = normalise_ids(frame, "id_number", today=TODAY)
    frame = frame.hstack(normalise_names(frame["name"]))
    return frame.select(list(RECORD_SCHEMA)).cast(RECORD_SCHEMA)  # type: ignore[arg-type]


def linked(records: pl.DataFrame) -> pl.DataFrame:
    """Records side by side with their links (same order: ``link_persons`` returns one row per record)."""
    note(records.write_csv())  # a falsifying example, readable
    links = link_persons(records).links
    assert links.height == records.height and links["person_key"].null_count() == 0
    return records.select(pl.exclude("source", "row", "id_status", "household")).hstack(links)


def _one_edit(a: str, b: str) -> bool:
    """One substituted character, or two neighbours swapped (the edits ``repair`` tries)."""
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                              and a[diff[1]] == b[diff[0]])


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(record_frames())
def test_a_different_valid_ids_never_share_a_person_key(records: pl.DataFrame) -> None:
    """(a) A usable ID is its own key, and a key never stands for two usable IDs."""
    links = linked(records)
    usable = links.filter(pl.col("id_status").is_in(USABLE))
    assert (usable["person_key"] == usable["id_norm"]).all()
    per_key = usable.group_by("person_key").agg(pl.col("id_norm").n_unique().alias("ids"))
    assert (per_key["ids"] == 1).all()
    # …and no other record joins a usable ID's key without saying how.
    known = set(usable["person_key"])
    joined = links.filter(pl.col("person_key").is_in(list(known)) & ~pl.col("id_status").is_in(USABLE))
    assert set(joined["method"]) <= {"repaired_id", "name_match"}


@PROPERTY
@given(record_frames())
def test_b_an_unusable_id_without_a_household_shares_its_key_with_nobody(records: pl.DataFrame) -> None:
    """(b) No household, no usable ID: a key of its own, unless a repair or the 17-digit rule says otherwise."""
    links = linked(records)
    sizes = links.group_by("person_key").len()
    first17 = pl.when(pl.col("id_status") == IdStatus.BAD_CHECK_DIGIT.value).then(
        pl.col("id_norm").str.slice(0, 17) + pl.lit(":") + pl.col("name_pinyin"))
    internal = links.filter(pl.col("method") == "internal").with_columns(first17.alias("d"))
    partners = internal.drop_nulls("d").group_by("d").len().filter(pl.col("len") > 1)["d"]
    alone = internal.filter(pl.col("household").is_null() & ~pl.col("d").is_in(partners.to_list()).fill_null(False))
    assert alone.join(sizes, on="person_key")["len"].to_list() == [1] * alone.height
    repaired = links.filter(pl.col("household").is_null() & (pl.col("method") == "repaired_id"))
    known = set(links.filter(pl.col("id_status").is_in(USABLE))["id_norm"])
    for row in repaired.iter_rows(named=True):  # a handful of rows per example: fine in a test
        assert row["person_key"] in known and _one_edit(row["id_norm"], row["person_key"])
    homeless = links.filter(pl.col("household").is_null() & ~pl.col("id_status").is_in(USABLE))
    assert homeless["method"].is_in(["internal", "repaired_id"]).all()


@PROPERTY
@given(record_frames())
def test_every_shared_key_is_backed_by_the_evidence_it_states(records: pl.DataFrame) -> None:
    """Each method's ``evidence`` is true of the record, and each kind of internal key is formed as it says."""
    links = linked(records)
    s = LinkSettings()
    by_id = links.filter(pl.col("method").is_in(["exact", "upgraded_15", "repaired_id"]))
    group_persons = set(by_id.select("household_group", "person_key").drop_nulls().iter_rows())
    own_persons = set(by_id.select("household", "person_key").drop_nulls().iter_rows())
    owners = links.filter((pl.col("method") == "internal") & pl.col("evidence").list.contains("household")
                          & (pl.col("id_status") == IdStatus.BAD_CHECK_DIGIT.value))
    owned = set(owners.select(pl.col("id_norm").str.slice(0, 17) + ":" + pl.col("name_pinyin"),
                              "person_key").drop_nulls().iter_rows())
    sizes = dict(links.group_by("person_key").len().iter_rows())
    # Names some source household lists for two persons: no ``H:`` key may be formed from them in that group.
    shared_names = set(links.drop_nulls(["household", "name"]).group_by("household_group", "household", "name")
                       .agg(pl.col("person_key").n_unique().alias("n")).filter(pl.col("n") > 1)
                       .select("household_group", "name").iter_rows())
    for r in links.iter_rows(named=True):
        ev, key, method = r["evidence"], r["person_key"], r["method"]
        if method in ("exact", "upgraded_15"):
            assert r["id_status"] in USABLE and key == r["id_norm"] and ev[0] == "id"
        elif method == "repaired_id":
            assert _one_edit(r["id_norm"], key) and any(e.startswith("id_one_edit:") for e in ev)
            assert r["name"] is not None and ({"name", "name_pinyin"} & set(ev))
            assert ("county" in ev) == (r["county_code"] is not None)
            assert r["score"] >= s.repair_name_min
        elif method == "name_match":
            assert r["household"] is not None and ev[0] == "household" and r["name"] is not None
            assert (r["household_group"], key) in group_persons  # a person of its own cross-walked household…
            assert (r["household"], key) not in own_persons  # …not already listed in its own household
        else:
            assert method == "internal" and ev[0] == f"id_{r['id_status']}"
            if key.startswith("R:"):
                assert key == f"R:{r['source']}:{r['row']}" and sizes[key] == 1 and ev == [ev[0]]
            elif "household" in ev:
                assert key == f"H:{r['household_group']}:{r['name']}"
                assert (r["household_group"], r["name"]) not in shared_names
            elif key.startswith("D:"):
                assert key == f"D:{r['id_norm'][:17]}:{r['name_pinyin']}" and "id_first17" in ev
            else:  # the household key of a record sharing its first 17 digits and the name's sound
                assert "id_first17" in ev and (f"{r['id_norm'][:17]}:{r['name_pinyin']}", key) in owned


def test_link_persons_on_no_records() -> None:
    empty = pl.DataFrame(schema=RECORD_SCHEMA)
    result = link_persons(empty)
    assert result.links.is_empty() and result.review.is_empty()


# --- (c) the whole path: strangers' facts change no family -----------------------------------------------------

BANK_HEADERS = ["证件号码", "姓名", "金融机构", "余额", "查询日期"]
DEPT_HEADERS = ["证件号码", "姓名", "数据来源部门", "核对项目", "数值", "数据日期"]
FATHER = make_id(birth="19700101", seq="011")
MOTHER = make_id(birth="19720202", seq="022")
CHILD = make_id(birth="20150303", seq="031")
WANG = make_id(birth="19700505", seq="342")
ZHAO = make_id(birth="19650606", seq="051")
HAO = make_id(birth="19790831", seq="820")
MOTHER_TYPO = MOTHER[:14] + str((int(MOTHER[14]) + 3) % 10) + MOTHER[15:]  # bad check digit → repaired
WANG_TYPO = WANG[:15] + str((int(WANG[15]) + 4) % 10) + WANG[16:]
HAO_ROLL = HAO[:17] + ("1" if HAO[17] != "1" else "2")  # check character damaged, nobody has the valid ID
HAO_BANK = HAO[:17] + ("3" if HAO[17] != "3" else "4")
BASE_IDS = (FATHER, MOTHER, CHILD, WANG, ZHAO, HAO)
LISTED_IDS = (FATHER, MOTHER, CHILD, WANG, ZHAO)  # HAO's valid ID is in no file: only two damaged forms are
DAMAGED_BASE_IDS = (MOTHER_TYPO, WANG_TYPO, HAO_ROLL, HAO_BANK)
BASE_NAMES = ("张伟", "李丽", "张小明", "张欣", "王芳", "赵刚", "赵小红", "郝秀")
# Strangers' names: far from every base name in characters and sound, so no repair may rightly take them.
STRANGERS = ("欧阳娜娜", "上官婉儿", "慕容复", "令狐冲", "端木蓉", "尉迟恭")


def reg(household: str, name: str, id_number: str, relation: str = "户主") -> list[str]:
    return ["340402", "洛河镇", "新庄村", household, name, id_number, relation, "脱贫户", "2019", "3000", "3",
            "6000", "1200", "0", "0"]


def roll(household: str, name: str, id_number: str) -> list[str]:
    return ["340402", "洛河镇", "新庄村", household, name, id_number, "户主", "农村", "低保", "420", "2023-05-01",
            "300", "3"]


REGISTRY = [reg("H1", "张伟", FATHER), reg("H1", "李丽", MOTHER, "配偶"), reg("H1", "张小明", CHILD, "之子"),
            reg("H2", "王芳", WANG), reg("H3", "赵刚", ZHAO), reg("H3", "赵小红", ZHAO[:16], "之女")]
ROLL = [roll("DB1", "张伟", FATHER), roll("DB1", "李丽", MOTHER_TYPO), roll("DB1", "张欣", ""),
        roll("DB1", "张小明", ""), roll("DB2", "王芳", WANG), roll("DB3", "赵刚", ZHAO), roll("DB3", "郝秀", HAO_ROLL)]
BANK = [[FATHER, "张伟", "邮储银行", "5000", "2026-11-01"], [WANG_TYPO, "王芳", "农业银行", "2000", "2026-11-01"],
        [HAO_BANK, "郝秀", "农业银行", "1000", "2026-11-01"], [ZHAO, "", "农业银行", "300", "2026-11-01"]]
DEPT = [[ZHAO, "赵刚", "公安", "机动车", "小型轿车", "2026-10-01"],
        [MOTHER, "李丽", "残联", "残疾等级", "二级", "2026-10-01"]]
DEPT_ITEMS = (("死亡", "2026-10-01"), ("机动车", "小型轿车"), ("不动产", "2"), ("工资收入", "9000"), ("财政供养", "是"),
              ("残疾等级", "一级"), ("工商登记", "存续"))
BALANCES = ("900000", "250000", "1")


def write_drop(folder: Path, bank: list[list[str]], dept: list[list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "registry.csv", REGISTRY_HEADERS, REGISTRY, "gb18030")
    write_csv(folder / "dibao_roll.csv", ROLL_HEADERS, ROLL)
    write_csv(folder / "counties.csv", COUNTY_HEADERS, [["340402", "大通区", "120000"]])
    write_csv(folder / "bank_assets.csv", BANK_HEADERS, bank)
    write_csv(folder / "dept_facts.csv", DEPT_HEADERS, dept)
    return folder


@lru_cache(maxsize=1)
def _rules() -> tuple[ParameterSet, RuleSet]:
    parameters = load_parameters()
    return parameters, load_rules(parameters)


def run(folder: Path) -> tuple[pl.DataFrame, Decisions]:
    """ingest → link → rules, the calls of ``pipeline.run_daily``."""
    parameters, rules = _rules()
    drop = ingest_drop(folder)
    links = link_persons(person_records(drop)).links
    return links, decide(drop, links, TODAY, parameters, rules)


def comparable(decided: Decisions) -> dict[str, pl.DataFrame]:
    """What a family is told: its facts, the fired rules and the three lists, in a fixed order."""
    frames = {"facts": decided.facts, "decisions": decided.decisions, "exit": decided.exit_candidates,
              "inclusion": decided.inclusion_candidates, "flags": decided.flags}
    return {name: f.sort([c for c, t in f.schema.items() if not isinstance(t, pl.List)])
            for name, f in frames.items()}


@lru_cache(maxsize=1)
def base_run() -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    folder = write_drop(Path(tempfile.mkdtemp(prefix="dibao-base-")), BANK, DEPT)
    try:
        links, decided = run(folder)
        return links, comparable(decided)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_base_drop_exercises_every_link_method() -> None:
    links, outputs = base_run()
    methods = set(links["method"])
    assert {"exact", "repaired_id", "name_match", "internal"} <= methods
    keys = links["person_key"].to_list()
    assert any(k.startswith("H:") for k in keys)  # the keys an unusable bank ID once fell into
    hao = links.filter(pl.col("name") == "郝秀")["person_key"]
    assert hao.n_unique() == 1 and hao[0].startswith("H:")  # the 17-digit rule joins the roll and bank records
    assert outputs["facts"].height == 6  # H1, H2, H3 and DB1, DB2, DB3


def test_stranger_names_are_far_from_every_base_name() -> None:
    """A guard on the generator: a stranger's name must not rightly pass a repair against a base person."""
    a = pl.Series([s for s in STRANGERS for _ in BASE_NAMES])
    b = pl.Series(list(BASE_NAMES) * len(STRANGERS))
    pa, pb = normalise_names(a), normalise_names(b)
    sim, _ = name_similarity(pa["name_norm"], pb["name_norm"], pa["name_pinyin"], pb["name_pinyin"], 0.95)
    assert float(np.max(sim)) < LinkSettings().repair_name_min


@st.composite
def stranger_ids(draw: st.DrawFn) -> tuple[str, bool]:
    """(ID, whether the name must be a stranger's): IDs of nobody in the base drop, some one edit from it."""
    kind = draw(st.sampled_from(("damaged", "fresh", "near_damaged", "unrepairable")))
    base = draw(st.sampled_from(BASE_IDS))
    pos, digit = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    if kind == "fresh":  # a valid ID of another region: several digits from every base ID, any name
        born = draw(st.dates(dt.date(1935, 1, 1), dt.date(2024, 12, 31)))
        return make_id("110101", born.strftime("%Y%m%d"), f"{draw(st.integers(0, 999)):03d}"), False
    if kind == "near_damaged":  # the valid ID one check character from a base record's damaged ID
        damaged = draw(st.sampled_from(DAMAGED_BASE_IDS))
        return damaged[:17] + expected_check_char(damaged[:17]), True
    if kind == "unrepairable":  # too short or not digits: nothing can repair it, so any name, a base name too
        return damage_id(base, draw(st.sampled_from(("cut_16", "cut_17", "bad_format", "junk"))), pos, digit), False
    damage = draw(st.sampled_from(("typo", "swap", "check_char", "bad_date")))
    return damage_id(base, damage, pos, digit), True


@st.composite
def stranger_rows(draw: st.DrawFn) -> tuple[str, int, list[str]]:
    """(file, insertion point, row): a bank balance or a department fact of somebody not in the base drop."""
    raw_id, stranger = draw(stranger_ids())
    assert raw_id not in LISTED_IDS
    names = STRANGERS if stranger else (*STRANGERS, *BASE_NAMES)
    name = draw(st.one_of(st.sampled_from(names), st.just("")))
    at = draw(st.integers(0, 20))
    if draw(st.booleans()):
        return "bank", at, [raw_id, name, "某银行", draw(st.sampled_from(BALANCES)), "2026-11-01"]
    item, value = draw(st.sampled_from(DEPT_ITEMS))
    return "dept", at, [raw_id, name, "某部门", item, value, "2026-10-01"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stranger_rows(), min_size=1, max_size=8))
def test_c_strangers_change_no_existing_household(extra: list[tuple[str, int, list[str]]]) -> None:
    """(c) Deaths, vehicles and balances of unknown persons leave every family's facts and decisions as they were."""
    bank, dept = [list(r) for r in BANK], [list(r) for r in DEPT]
    for file, at, row in extra:
        rows = bank if file == "bank" else dept
        rows.insert(at % (len(rows) + 1), row)
    folder = write_drop(Path(tempfile.mkdtemp(prefix="dibao-strangers-")), bank, dept)
    try:
        links, decided = run(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _, expected = base_run()
    for name, frame in comparable(decided).items():
        assert frame.equals(expected[name]), name
    strangers = links.filter(pl.col("source").is_in(["bank_assets", "dept_facts"])
                             & pl.col("name").is_in(list(STRANGERS)))
    family_keys = set(links.filter(pl.col("household").is_not_null())["person_key"])
    assert not set(strangers["person_key"]) & family_keys


# --- the reported cases, exactly --------------------------------------------------------------------------------

def _with_extra(tmp_path: Path, bank: list[list[str]], dept: list[list[str]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    links, decided = run(write_drop(tmp_path / "drop", [*BANK, *bank], [*DEPT, *dept]))
    return links, decided.facts.sort("subject_type", "subject_id", "source")


def test_a_death_with_a_16_digit_id_of_an_unknown_person_marks_no_family(tmp_path: Path) -> None:
    links, facts = _with_extra(tmp_path, [], [["3404021958070412", "孙某", "民政", "死亡", "2026-10-01", "2026-10-01"]])
    assert facts["deceased_members"].sum() == 0
    death = links.filter((pl.col("source") == "dept_facts") & (pl.col("name") == "孙某")).row(0, named=True)
    assert death["person_key"] == f"R:dept_facts:{death['row']}" and death["evidence"] == ["id_bad_length"]


def test_a_900000_balance_with_a_17_digit_id_changes_no_family_assets(tmp_path: Path) -> None:
    _, base = base_run()
    _, facts = _with_extra(tmp_path, [["34040219580704123", "钱某", "某银行", "900000", "2026-11-01"]], [])
    assert facts["financial_assets"].to_list() == base["facts"]["financial_assets"].to_list()
    assert facts.equals(base["facts"])


@settings(max_examples=30, deadline=None)
@given(seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=40), batch=st.integers(1, 50),
       data=st.data())
def test_repair_candidates_are_the_same_whatever_the_batch(seeds: list[int], batch: int,
                                                           data: st.DataObject) -> None:
    """A province's bad IDs are expanded a batch at a time (bounded memory): every batch size gives the
    candidates of one expansion, records in their order."""
    known = [make_id(birth=f"19{50 + seed % 50}0{1 + seed % 9}1{seed % 10}", seq=f"{seed % 1000:03d}")
             for seed in seeds]
    bad_ids = []
    for valid in known:
        position = data.draw(st.integers(0, 16))
        digit = str((int(valid[position]) + data.draw(st.integers(1, 9))) % 10)
        bad_ids.append(valid[:position] + digit + valid[position + 1:])  # one typed digit wrong
    bad = pl.DataFrame({"rid": pl.Series(range(len(bad_ids)), dtype=pl.UInt32), "id_clean": bad_ids})
    whole = repair_candidates(bad, pl.Series(known), batch=10**9)
    assert repair_candidates(bad, pl.Series(known), batch=batch).equals(whole)
    for rid, valid in enumerate(known):  # each mistyped ID finds the ID it came from
        assert whole.filter((pl.col("rid") == rid) & (pl.col("candidate") == valid)).height == 1


def _known_one_edit_away(bad_id: str, known: set[str]) -> list[tuple[str, str]]:
    """The definition, in text: every digit replaced by every digit, the check character by every digit or X,
    every neighbour pair swapped; the variants that differ from the ID, are known and have an ID's shape (an X
    swapped in among the digits is no ID), (candidate, edit) in order."""
    variants = [("digit_typo", bad_id[:p] + c + bad_id[p + 1:]) for p in range(17) for c in "0123456789"]
    variants += [("check_digit", bad_id[:17] + c) for c in "0123456789X"]
    variants += [("digit_swap", bad_id[:p] + bad_id[p + 1] + bad_id[p] + bad_id[p + 2:]) for p in range(17)]
    return [(variant, edit) for edit, variant in variants
            if variant != bad_id and variant in known and variant[:17].isdigit()]


_ID_TEXT = st.builds(lambda digits, check: digits + check,
                     st.text("0123456789", min_size=17, max_size=17), st.sampled_from("0123456789X"))


@settings(max_examples=60, deadline=None)
@given(bad_ids=st.lists(_ID_TEXT, min_size=1, max_size=8), strangers=st.lists(_ID_TEXT, max_size=5),
       data=st.data())
def test_repair_candidates_are_exactly_the_known_ids_one_edit_away(bad_ids: list[str], strangers: list[str],
                                                                   data: st.DataObject) -> None:
    """The integer expansion finds what the text definition finds, in the same order: near neighbours of every
    kind (a wrong digit, a wrong check character, two neighbours swapped, the check character swapped with the
    last digit), IDs ending in X, IDs with repeated digits, and strangers."""
    known = set(strangers)
    for bad_id in bad_ids:
        for _ in range(data.draw(st.integers(0, 4))):
            position = data.draw(st.integers(0, 17))
            if data.draw(st.booleans()) and position < 17:  # a swap with the next character
                known.add(bad_id[:position] + bad_id[position + 1] + bad_id[position] + bad_id[position + 2:])
            else:
                alphabet = "0123456789X" if position == 17 else "0123456789"
                known.add(bad_id[:position] + data.draw(st.sampled_from(alphabet)) + bad_id[position + 1:])
    bad = pl.DataFrame({"rid": pl.Series(range(len(bad_ids)), dtype=pl.UInt32), "id_clean": bad_ids})
    found = repair_candidates(bad, pl.Series(sorted(known), dtype=pl.String), batch=data.draw(st.integers(1, 9)))
    expected = [(rid, candidate, edit) for rid, bad_id in enumerate(bad_ids)
                for candidate, edit in _known_one_edit_away(bad_id, known)]
    assert found.rows() == expected


def test_repair_candidates_reject_an_id_of_another_shape() -> None:
    bad = pl.DataFrame({"rid": pl.Series([0], dtype=pl.UInt32), "id_clean": ["34040219580704123"]})
    with pytest.raises(ValueError, match="17 digits"):
        repair_candidates(bad, pl.Series(["340402195807041234"]))


@PROPERTY
@given(record_frames(), st.integers(2, 9))
def test_profiles_are_the_same_in_any_number_of_parts(records: pl.DataFrame, parts: int) -> None:
    """A province's profiles are grouped in parts by a hash of the person key (bounded memory): every person's
    usual name, pinyin, counties, birth date and sex come out as from one group-by over all the records."""
    exact = (records.filter(pl.col("id_status").is_in(USABLE)).rename({"id_norm": "person"})
             .select("person", "name_norm", "name_pinyin", "county_code", "id_birth_date", "id_sex"))

    def comparable(profiles: pl.DataFrame) -> pl.DataFrame:
        return profiles.with_columns(pl.col("p_counties").list.sort()).sort("person")

    whole = comparable(person_profiles(exact, parts=1))
    assert comparable(person_profiles(exact, parts)).equals(whole)
    assert whole["person"].n_unique() == whole.height == exact["person"].n_unique()
