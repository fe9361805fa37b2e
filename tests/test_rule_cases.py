"""Rule cases as data: every ``tests/rules/*.yaml`` case is one test.

A case gives a household's facts (anything not given takes the neutral default below: a clean, covered roll
household of county 340402, rural), a run date, optionally its own parameter file, and what must happen:
``fires`` (these rules fire, among others), ``quiet`` (these must not), ``only`` (exactly these fire),
``figures`` (values the trace must carry), ``parameters`` (values in force) and ``grace_until``.
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
from dibao.rules.params import load_parameters

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
    "risk_eliminated": False,
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
    if row["subject_type"] == "household" and "source" not in given:
        row["source"] = "registry"
    return pl.DataFrame([row], schema={f.name: _POLARS_TYPES[f.type] for f in FACTS})


@pytest.mark.parametrize("case", _cases())
def test_rule_case(case: dict[str, Any]) -> None:
    parameters = load_parameters(CASES_DIR / case["parameters_file"]) if "parameters_file" in case \
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
    if "grace_until" in expect:
        exits = exit_candidates(decisions, rules, params, date)
        got = exits["grace_until"][0] if exits.height else None
        want = expect["grace_until"]
        assert (str(got) if got else None) == (str(want) if want else None)
