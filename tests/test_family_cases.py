"""Family cases as data: every ``tests/families/*.yaml`` case is a small drop run through ingest, linkage and rules.

Where ``tests/rules/`` states a household's facts and checks the rules, these cases state what the files say —
who the roll lists, who the registry lists, what other departments report — and check the facts and the lists
the engine derives from them: the family that counts, the income that counts, exemptions, deaths, 特困.

A case::

    name: …
    date: 2026-11-20
    people:                         # key → name and birth date; the ID is made from them (county 340402)
      wang: {name: 王芳, born: 1958-03-02}
    roll:                           # 低保家庭编号 → its entry
      DB001: {members: [wang], type: 低保, benefit: 400, assessed: 300,
              # optional: county, area, mode (保障方式), not_covered: [keys], support (供养方式),
              # reviewed (最近核查日期), enrolled, covered_persons
             }
    registry:                       # 户编号 → household (yuan per year): members, wage, other, medical …,
      R001: {members: [wang], wage: 0, other: 3600}   # size, and any income component by its field name
    monitoring: {…}                 # as registry (plus identified, eliminated, eliminated_on)
    dept: [[wang, 机动车, 皖D12345, 小型普通客车]]   # person, item, value, kind (optional), date (optional)
    bank: [[wang, 20000]]
    expect:
      DB001: {fires: […], quiet: […], only: […], facts: {fact: value}, due: {rule: date}}
      R001: {…}                     # a registry/monitoring family by its number
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from dibao.ingest import ingest_drop
from dibao.link import link_persons, person_records
from dibao.rules import Decisions, decide, load_parameters, load_rules
from tests.conftest import make_id, write_csv

CASES_DIR = Path(__file__).parent / "families"
COUNTY = "340402"

ROLL = ["县级区划代码", "乡镇", "行政村", "低保家庭编号", "姓名", "身份证号码", "与户主关系", "城乡类别", "救助类型",
        "月保障金额", "纳入时间", "家庭月人均收入", "保障人数", "保障方式", "是否保障对象", "供养方式", "最近核查日期"]
# registry/monitoring income fields by the contract's Chinese headers (the case uses the short keys)
_INCOME = {"wage": "工资性收入", "other": "其他纯收入", "medical": "医疗自付支出", "education": "教育支出",
           "rehabilitation_spending": "残疾康复支出", "other_rigid_spending": "其他刚性支出",
           "dibao_benefit_income": "低保金", "destitute_benefit_income": "特困供养金",
           "pension_base_income": "基础养老金", "old_age_allowance": "高龄津贴", "special_care_income": "优待抚恤金",
           "family_planning_income": "计划生育奖励扶助金", "scholarship_income": "奖学金",
           "heroism_reward": "见义勇为奖励",
           "assessed_on": "收入核算日期"}
REGISTRY = ["县级区划代码", "乡镇", "行政村", "户编号", "姓名", "证件号码", "与户主关系", "家庭人口数",
            *_INCOME.values()]
MONITORING = ["县级区划代码", "乡镇", "行政村", "户编号", "姓名", "证件号码", "与户主关系", *_INCOME.values(),
              "监测对象类别", "识别纳入时间", "风险是否消除", "风险消除时间"]
DEPT = ["证件号码", "姓名", "数据来源部门", "核对项目", "数值", "类型", "数据日期"]
BANK = ["证件号码", "姓名", "金融机构", "余额", "查询日期"]


def _cases() -> list[Any]:
    return [pytest.param(case, id=f"{path.stem}: {case['name']}")
            for path in sorted(CASES_DIR.glob("*.yaml"))
            for case in yaml.safe_load(path.read_text(encoding="utf-8"))]


def _ids(people: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A valid ID per person from the birth date; sequence numbers keep them distinct."""
    return {key: make_id(p.get("county", COUNTY), str(p["born"]).replace("-", ""), f"{100 + i:03d}")
            for i, (key, p) in enumerate(people.items())}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# Registry and roll are required files: a case without one gets an unrelated household that fires nothing.
_FILLER = {"filler": {"name": "路人甲", "born": "1999-09-09"}}


def _write(folder: Path, case: dict[str, Any]) -> None:
    people = {**case["people"], **_FILLER}
    ids = _ids(people)
    case = {**case, "roll": case.get("roll") or {"DB999": {"members": ["filler"], "assessed": 100}},
            "registry": case.get("registry") or {"R999": {"members": ["filler"], "wage": 0, "other": 20000}}}
    rows = []
    for number, entry in case.get("roll", {}).items():
        not_covered = set(entry.get("not_covered", []))
        for i, key in enumerate(entry["members"]):
            rows.append([entry.get("county", COUNTY), "洛河镇", "新庄村", number, people[key]["name"], ids[key],
                         "户主" if i == 0 else "家庭成员", entry.get("area", "农村"), entry.get("type", "低保"),
                         _text(entry.get("benefit", 400)), _text(entry.get("enrolled", "2024-01-10")),
                         _text(entry.get("assessed", 300)), _text(entry.get("covered_persons", "")),
                         _text(entry.get("mode", "")), "否" if key in not_covered else "",
                         _text(entry.get("support", "")), _text(entry.get("reviewed", "2026-06-01"))])
    write_csv(folder / "dibao_roll.csv", ROLL, rows)
    for stem, headers in (("registry", REGISTRY), ("monitoring", MONITORING)):
        rows = []
        for number, hh in case.get(stem, {}).items():
            for i, key in enumerate(hh["members"]):
                row = [hh.get("county", COUNTY), "洛河镇", "新庄村", number, people[key]["name"], ids[key],
                       "户主" if i == 0 else "家庭成员"]
                if stem == "registry":
                    row.append(_text(hh.get("size", "")))
                row += [_text(hh.get(k)) for k in _INCOME]
                if stem == "monitoring":
                    row += [hh.get("category", "脱贫不稳定户"), _text(hh.get("identified", "2024-03-01")),
                            _text(hh.get("eliminated", "否")), _text(hh.get("eliminated_on"))]
                rows.append(row)
        if rows or stem == "registry":
            write_csv(folder / f"{stem}.csv", headers, rows)
    if case.get("dept"):
        write_csv(folder / "dept_facts.csv", DEPT, [
            [ids[f[0]], people[f[0]]["name"], "部门", f[1], _text(f[2]), _text(f[3] if len(f) > 3 else ""),
             _text(f[4] if len(f) > 4 else "2026-11-01")] for f in case["dept"]])
    if case.get("bank"):
        write_csv(folder / "bank_assets.csv", BANK, [[ids[b[0]], people[b[0]]["name"], "农商银行", _text(b[1]),
                                                      "2026-11-01"] for b in case["bank"]])
    write_csv(folder / "counties.csv", ["县级区划代码", "县名", "农村户籍人口"], [[COUNTY, "大通区", "120000"]])


def run_case(case: dict[str, Any], folder: Path) -> Decisions:
    folder.mkdir()
    _write(folder, case)
    date = case["date"] if isinstance(case["date"], dt.date) else dt.date.fromisoformat(case["date"])
    drop = ingest_drop(folder, run_date=date)
    parameters = load_parameters()
    return decide(drop, link_persons(person_records(drop)).links, date, parameters, load_rules(parameters))


@pytest.mark.parametrize("case", _cases())
def test_family_case(case: dict[str, Any], tmp_path: Path) -> None:
    decided = run_case(case, tmp_path / "drop")
    for subject, expect in case["expect"].items():
        facts = decided.facts.filter(pl.col("subject_id") == subject)
        assert facts.height >= 1, f"no household {subject} in the facts"
        fired = set(decided.decisions.filter(pl.col("subject_id") == subject)["rule_id"])
        assert set(expect.get("fires", [])) <= fired, f"{subject}: expected {expect['fires']}, fired {sorted(fired)}"
        assert not set(expect.get("quiet", [])) & fired, f"{subject}: must stay quiet {expect['quiet']}: {fired}"
        if "only" in expect:
            assert fired == set(expect["only"]), f"{subject}: fired {sorted(fired)}"
        row = facts.row(0, named=True)
        for name, value in expect.get("facts", {}).items():
            got = row[name]
            if isinstance(value, float | int) and not isinstance(value, bool) and got is not None:
                assert got == pytest.approx(value), f"{subject}.{name}: {got} != {value}"
            else:
                assert _text(got) == _text(value), f"{subject}.{name}: {got!r} != {value!r}"
        for rule_id, due in expect.get("due", {}).items():
            decision = decided.decisions.filter((pl.col("subject_id") == subject) & (pl.col("rule_id") == rule_id))
            assert str(decision["due_date"][0]) == str(due), f"{subject}.{rule_id} due {decision['due_date'][0]}"
        for rule_id, figures in expect.get("figures", {}).items():
            decision = decided.decisions.filter((pl.col("subject_id") == subject) & (pl.col("rule_id") == rule_id))
            actual = json.loads(decision["figures"][0])
            for name, value in figures.items():
                assert actual[name] == (pytest.approx(value) if isinstance(value, float | int) else value), name
