"""A deployment's own rules folder (`--rules DIR` / DIBAO_RULES): its files replace the shipped ones, one by one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from dibao import policy_files
from dibao.cli import app
from dibao.errors import ConfigError
from dibao.rules.params import DEFAULT_PARAMETERS_PATH

Build = Callable[..., Path]
runner = CliRunner()


def test_the_shipped_files_are_package_data_beside_the_code() -> None:
    for name in policy_files.FILES:
        path = policy_files.shipped(name)
        assert path.is_file() and path.parent.name == "policy" and path.parent.parent.name == "dibao"
    assert policy_files.shipped(policy_files.PARAMETERS) == DEFAULT_PARAMETERS_PATH


def test_a_file_the_folder_lacks_falls_back_to_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "parameters.yaml").write_text("version: x\n", encoding="utf-8")
    assert policy_files.policy_path("parameters.yaml", tmp_path) == tmp_path / "parameters.yaml"
    assert policy_files.policy_path("eligibility.yaml", tmp_path) == policy_files.shipped("eligibility.yaml")
    assert policy_files.policy_path("eligibility.yaml") == policy_files.shipped("eligibility.yaml")


def test_a_wrong_folder_is_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rules folder not found"):
        policy_files.policy_path("headers.yaml", tmp_path / "missing")
    with pytest.raises(ConfigError, match="holds none of"):
        policy_files.policy_path("headers.yaml", tmp_path)


def _own_parameters(folder: Path, standard: int) -> Path:
    """A rules folder holding only parameters.yaml: the shipped one with 340402's rural standard changed."""
    doc: dict[str, Any] = yaml.safe_load(DEFAULT_PARAMETERS_PATH.read_text(encoding="utf-8"))
    doc["version"] = "county-test-1"
    for value in doc["parameters"]["dibao_standard"]["values"]:
        if value["county_code"] == "340402" and value["area"] == "农村":
            value["value"] = standard
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parameters.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return folder


def _rural_standard(run: Path) -> float:
    params = pl.read_parquet(run / "parameters_in_force.parquet")
    row = params.filter((pl.col("county_code") == "340402") & (pl.col("area") == "农村"))
    return float(row["dibao_standard"][0])


@pytest.mark.parametrize("how", ["option", "environment"])
def test_run_reads_the_deployments_parameters_and_records_where_each_file_came_from(
        drop: Build, tmp_path: Path, how: str) -> None:
    rules = _own_parameters(tmp_path / "province-rules", 999)
    store = tmp_path / "store"
    args = ["run", "--inputs", str(drop()), "--date", "2026-11-20", "--store", str(store)]
    if how == "option":
        result = runner.invoke(app, [*args, "--rules", str(rules)])
    else:
        result = runner.invoke(app, args, env={policy_files.ENV_VAR: str(rules)})
    assert result.exit_code == 0, result.output
    run = store / "runs" / "2026-11-20"
    assert _rural_standard(run) == 999
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["rules"]
    assert manifest["parameters"] == {"file": "parameters.yaml", "version": "county-test-1",
                                      "from": str(rules / "parameters.yaml")}
    assert {manifest[k]["from"] for k in ("headers", "eligibility", "coverage")} == {"shipped"}


def test_without_a_folder_the_shipped_policy_runs(drop: Build, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = runner.invoke(app, ["run", "--inputs", str(drop()), "--date", "2026-11-20", "--store", str(store)],
                           env={policy_files.ENV_VAR: ""})
    assert result.exit_code == 0, result.output
    assert _rural_standard(store / "runs" / "2026-11-20") == 760


def test_ingest_reads_the_folders_header_table_and_a_bad_folder_exits_3(drop: Build, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "headers.yaml").write_text("version: 1\nfields: {no_such_field: [某列]}\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(drop()), "--rules", str(rules)])
    assert result.exit_code == 3 and "headers.yaml" in result.output
    missing = runner.invoke(app, ["run", "--inputs", str(drop()), "--date", "2026-11-20",
                                  "--store", str(tmp_path / "store"), "--rules", str(tmp_path / "nowhere")])
    assert missing.exit_code == 3 and "rules folder not found" in missing.output
    assert not (tmp_path / "store" / "runs").exists()
