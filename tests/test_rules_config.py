"""Parameter and rule files: every mistake a province can make is refused naming the file and the key or rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from dibao.errors import ConfigError
from dibao.rules.compile import compile_condition, load_rules
from dibao.rules.params import DEFAULT_PARAMETERS_PATH, load_parameters


def _write_params(tmp_path: Path, mutate: object) -> Path:
    doc = yaml.safe_load(DEFAULT_PARAMETERS_PATH.read_text(encoding="utf-8"))
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "parameters.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _standard(doc: dict) -> list[dict]:  # type: ignore[type-arg]
    return doc["parameters"]["dibao_standard"]["values"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["parameters"]["grace_months"].update(unit="moons"),
         "parameters.grace_months.unit: unknown unit 'moons'"),
        (lambda d: _standard(d).append({"county_code": "340402", "area": "农村", "from": dt.date(2025, 1, 1),
                                        "value": 700}),
         "parameters.dibao_standard: dates for 340402 农村 are not sorted"),
        (lambda d: (_standard(d)[0].update(until=dt.date(2026, 8, 1)),
                    _standard(d).insert(1, {"county_code": "340402", "area": "农村", "from": dt.date(2026, 7, 1),
                                            "value": 800})),
         "parameters.dibao_standard: dates for 340402 农村 overlap"),
        (lambda d: _standard(d)[0].pop("area"), "parameters.dibao_standard.values[0]: needs area"),
        (lambda d: d["parameters"]["grace_months"]["values"][0].update(county_code="340402"),
         "parameters.grace_months.values[0]: must not have county_code"),
    ],
)
def test_parameter_file_mistakes(tmp_path: Path, mutate: object, message: str) -> None:
    path = _write_params(tmp_path, mutate)
    with pytest.raises(ConfigError) as info:
        load_parameters(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_county_without_a_value_in_force_is_refused_naming_the_key() -> None:
    parameters = load_parameters()
    with pytest.raises(ConfigError, match=r"parameters.dibao_standard: no value in force on 2025-12-31 "
                                          r"for county 340402 area 城市"):
        parameters.resolve(dt.date(2025, 12, 31), ["340402"])
    with pytest.raises(ConfigError, match="for county 999999"):
        parameters.resolve(dt.date(2026, 11, 20), ["999999"])


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("per_capita_incom > dibao_standard", "unknown name 'per_capita_incom'"),
        ("per_capita_income > (SELECT max(x) FROM t)", "is not allowed in a condition"),
        ("upper(area) = '农村'", "function UPPER is not allowed"),
        ("facts.members > 1", "write plain fact or parameter names"),
        ("members >", "is not valid SQL"),
    ],
)
def test_rule_conditions_are_whitelisted(condition: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_condition("my_rule", condition, set(load_parameters().parameters), Path("rules.yaml"))
    assert "rules.yaml: rule my_rule:" in str(info.value) and message in str(info.value)


def test_shipped_rules_compile_and_transpile_to_spark() -> None:
    rules = load_rules(load_parameters())
    assert len(rules.rules) >= 18
    for rule in rules.rules:
        spark = rule.to_dialect("spark")
        assert spark and "duckdb" not in spark.lower()
        assert rule.facts_read, rule.id


def test_a_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    rules = yaml.safe_load((DEFAULT_PARAMETERS_PATH.parent / "eligibility.yaml").read_text(encoding="utf-8"))
    rules["rules"].append(dict(rules["rules"][0]))
    path = tmp_path / "eligibility.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="rule income_above_standard: defined twice"):
        load_rules(load_parameters(), path)
