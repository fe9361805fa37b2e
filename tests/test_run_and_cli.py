"""The daily job as the operator meets it: `dibao ingest`, `dibao run`, publishing, exit codes, the store lock."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from dibao.cli import app
from dibao.publish.store import RunStore
from tests.conftest import ROLL_HEADERS, roll_rows, write_csv

Build = Callable[..., Path]
runner = CliRunner()


def _bad_roll(f: Path) -> Path:
    rows = [*roll_rows(), list(roll_rows()[0])]
    rows[1][3], rows[1][9] = "DB002", "-1"
    return write_csv(f / "dibao_roll.csv", ROLL_HEADERS, rows)


def test_ingest_prints_a_table_per_file(drop: Build) -> None:
    result = runner.invoke(app, ["ingest", str(drop(dibao_roll=_bad_roll))])
    assert result.exit_code == 0, result.output
    assert "registry.csv" in result.output and "gb18030" in result.output
    assert "金额为负数 1" in result.output
    assert "bank_assets absent" in result.output


def test_run_publishes_rejected_rows_and_manifest(drop: Build, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = runner.invoke(app, ["run", "--inputs", str(drop(dibao_roll=_bad_roll)), "--date", "2026-11-20",
                                 "--store", str(store)])
    assert result.exit_code == 0, result.output
    run = store / "runs" / "2026-11-20"
    rejected = pl.read_parquet(run / "rejected.parquet")
    assert rejected.select("source", "row", "field", "value").rows() == [("dibao_roll", 2, "monthly_benefit", "-1")]
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["run_date"] == "2026-11-20"
    assert manifest["inputs"]["dibao_roll"]["rows_rejected"] == 0  # an optional amount: the field is cleared
    assert manifest["inputs"]["dibao_roll"]["fields_cleared"] == 1
    assert manifest["inputs"]["dibao_roll"]["cleared_by_reason"] == {"negative_amount": 1}
    assert manifest["inputs"]["registry"]["encoding"] == "gb18030"
    assert len(manifest["inputs"]["registry"]["sha256"]) == 64
    assert "asset test" in manifest["skipped"]["bank_assets"]
    assert manifest["rules"]["headers"]["version"]
    assert not [p for p in (store / "runs").iterdir() if p.name.startswith(".")]


def test_a_faulty_drop_publishes_nothing_and_exits_2(drop: Build, tmp_path: Path) -> None:
    store = tmp_path / "store"
    folder = drop()
    assert runner.invoke(app, ["run", "--inputs", str(folder), "--date", "2026-11-19",
                               "--store", str(store)]).exit_code == 0
    (folder / "counties.csv").unlink()
    result = runner.invoke(app, ["run", "--inputs", str(folder), "--date", "2026-11-20", "--store", str(store)])
    assert result.exit_code == 2
    assert "counties.*: required file is missing" in result.output
    assert RunStore(store).published_dates()[-1].isoformat() == "2026-11-19"
    assert not (store / "runs" / "2026-11-20").exists()


def test_same_inputs_same_content_hash_and_replace_is_explicit(drop: Build, tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["run", "--inputs", str(drop(dibao_roll=_bad_roll)), "--date", "2026-11-20", "--store", str(store)]
    assert runner.invoke(app, args).exit_code == 0
    first = json.loads((store / "runs/2026-11-20/manifest.json").read_text())["content_sha256"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "already published" in refused.output
    assert runner.invoke(app, [*args, "--replace"]).exit_code == 0
    second = json.loads((store / "runs/2026-11-20/manifest.json").read_text())["content_sha256"]
    assert first == second


def test_a_second_run_on_a_locked_store_refuses_with_75(drop: Build, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with RunStore(store).lock():
        result = runner.invoke(app, ["run", "--inputs", str(drop()), "--date", "2026-11-20", "--store", str(store)])
    assert result.exit_code == 75
    assert "another dibao run holds this store" in result.output


def test_leftovers_of_a_killed_run_are_swept_under_the_lock(drop: Build, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "runs" / ".incoming-2026-11-20-999").mkdir(parents=True)
    assert runner.invoke(app, ["run", "--inputs", str(drop()), "--date", "2026-11-20",
                               "--store", str(store)]).exit_code == 0
    assert sorted(p.name for p in (store / "runs").iterdir()) == ["2026-11-20"]


def test_bad_date_and_bad_encoding_option_are_usage_errors(drop: Build, tmp_path: Path) -> None:
    folder = str(drop())
    assert runner.invoke(app, ["run", "--inputs", folder, "--date", "2026-13-01", "--store", str(tmp_path)]
                         ).exit_code == 64  # EX_USAGE: 2 means "the drop has file faults"
    result = runner.invoke(app, ["ingest", folder, "--encoding", "registry"])
    assert result.exit_code == 64 and "STEM=ENCODING" in result.output


def test_the_committed_sample_drop_ingests_cleanly(tmp_path: Path) -> None:
    samples = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
    if not samples.is_dir():  # generated by `make samples`; committed with the repository
        raise AssertionError("data/samples/drop is missing: run `make samples` and commit it")
    shutil.copytree(samples, tmp_path / "drop")
    result = runner.invoke(app, ["ingest", str(tmp_path / "drop")])
    assert result.exit_code == 0, result.output
    for stem in ("registry", "monitoring", "dibao_roll", "bank_assets", "dept_facts", "counties", "relatives"):
        assert stem in result.output
