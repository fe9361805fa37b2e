"""Rule cases as data: every ``tests/rules/*.yaml`` case is one test.

A case gives a household's facts (anything not given takes the neutral default below: a clean, covered roll
household of county 340402, rural), a run date, optionally a parameter file (the parameters it names replace the
shipped ones), and what must happen:
``fires`` (these rules fire, among others), ``quiet`` (these must not), ``only`` (exactly these fire),
``figures`` (values the trace must carry), ``parameters`` (values in force), ``grace_until``, ``due``
(a rule's due date: {rule: date}) and ``detail`` ({rule: text the explanation must contain}).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from dibao.rules.catalog import FACTS
from dibao.rules.compile import load_rules
from dibao.rules.decisions import exit_candidates
from dibao.rules.evaluate import evaluate_rules
from dibao.rules.params import DEFAULT_PARAMETERS_PATH, ParameterSet, load_parameters

CASES_DIR = Path(__file__).parent / "rules"
_POLARS_TYPES: dict[str, pl.DataType] = {
    "text": pl.String(), "int": pl.Int32(), "number": pl.Float64(), "bool": pl.Boolean(), "date": pl.Date(),
}
DEFAULTS: dict[str, Any] = {
    "subject_type": "roll", "subject_id": "T1", "source": "dibao_roll", "county_code": "340402", "area": "农村",
    "members": 1, "covered": True, "monitored": False, "assistance_type": "低保", "monthly_benefit": 420.0,
    "assessed_income": 300.0, "income_source": "registry", "gross_income": 3600.0, "rigid_spending": 0.0,
    "annual_net_income": 3600.0, "per_capita_income": 300.0, "per_capita_income_year": 3600.0,
    "dept_wage_monthly": 0.0, "bank_data": True, "financial_assets": 0.0, "per_capita_assets": 0.0,
    "risk_eliminated": False, "coverage_mode": "整户保", "family_basis": "roll", "income_basis": "family",
    "income_household_members": 1, "covered_persons": 1, "living_covered_members": 1, "dept_data": True,
    "covered_severe_condition_members": 0, "last_review_date": "2026-06-01", "review_cycle_months": 12,
    "next_review_date": "2027-06-01", "days_past_review": -193, "able_to_work_members": 1,
    # unknown unless a case gives them (a household with no death, no minor, no elimination date)
    "days_past_death_recheck": None, "days_to_minor_adult": None, "income_figures_age_months": None,
}


def _cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


def _facts(given: dict[str, Any]) -> pl.DataFrame:
    unknown = set(given) - {f.name for f in FACTS}
    assert not unknown, f"case names facts that do not exist: {unknown}"
    row = {f.name: given.get(f.name, DEFAULTS.get(f.name, 0 if f.type in ("int", "number") else None))
           for f in FACTS}
    if row["subject_type"] == "household":
        row["source"] = given.get("source", "registry")
        for name in ("coverage_mode", "family_basis", "covered_persons", "living_covered_members",
                     "last_review_date", "review_cycle_months", "next_review_date", "days_past_review"):
            if name not in given:
                row[name] = None
        row["family_basis"] = given.get("family_basis", "household")
    for f in FACTS:
        if f.type == "date" and isinstance(row[f.name], str):
            row[f.name] = dt.date.fromisoformat(row[f.name])
    return pl.DataFrame([row], schema={f.name: _POLARS_TYPES[f.type] for f in FACTS})


def case_parameters(name: str, tmp_path: Path) -> ParameterSet:
    """The shipped parameters with the case file's parameters put in their place (a case names only what it
    changes)."""
    shipped = yaml.safe_load(DEFAULT_PARAMETERS_PATH.read_text(encoding="utf-8"))
    changed = yaml.safe_load((CASES_DIR / name).read_text(encoding="utf-8"))
    shipped["parameters"].update(changed["parameters"])
    shipped["version"] = changed["version"]
    path = tmp_path / "parameters.yaml"
    path.write_text(yaml.safe_dump(shipped, allow_unicode=True), encoding="utf-8")
    return load_parameters(path)


@pytest.mark.parametrize("case", _cases())
def test_rule_case(case: dict[str, Any], tmp_path: Path) -> None:
    parameters = case_parameters(case["parameters_file"], tmp_path) if "parameters_file" in case \
        else load_parameters()
    rules = load_rules(parameters)
    date = case["date"] if isinstance(case["date"], dt.date) else dt.date.fromisoformat(case["date"])
    facts = _facts(case["household"])
    params = parameters.resolve(date, facts["county_code"].to_list())
    decisions = evaluate_rules(facts, params, rules, parameters)
    fired = set(decisions["rule_id"])
    expect = case["expect"]

    known = {r.id for r in rules.rules}
    for key in ("fires", "quiet", "only"):
        assert set(expect.get(key, [])) <= known, f"unknown rule ids in {key}"
    assert set(expect.get("fires", [])) <= fired, f"expected to fire: {expect['fires']}, fired: {sorted(fired)}"
    assert not set(expect.get("quiet", [])) & fired, f"must stay quiet: {expect['quiet']}, fired: {sorted(fired)}"
    if "only" in expect:
        assert fired == set(expect["only"]), f"fired {sorted(fired)}"
    for rule_id, figures in expect.get("figures", {}).items():
        row = decisions.filter(pl.col("rule_id") == rule_id).row(0, named=True)
        actual = json.loads(row["figures"])
        for name, value in figures.items():
            assert actual[name] == pytest.approx(value), f"{rule_id}.{name}"
    for name, value in expect.get("parameters", {}).items():
        assert params.filter(pl.col("area") == facts["area"][0])[name][0] == pytest.approx(value), name
    for rule_id, due in expect.get("due", {}).items():
        row = decisions.filter(pl.col("rule_id") == rule_id).row(0, named=True)
        assert str(row["due_date"]) == str(due), f"{rule_id} due {row['due_date']}"
    for rule_id, text in expect.get("detail", {}).items():
        row = decisions.filter(pl.col("rule_id") == rule_id).row(0, named=True)
        assert text in row["detail"], f"{rule_id}: {row['detail']!r} lacks {text!r}"
    if "grace_until" in expect:
        exits = exit_candidates(decisions, rules, params, date)
        got = exits["grace_until"][0] if exits.height else None
        want = expect["grace_until"]
        assert (str(got) if got else None) == (str(want) if want else None)
