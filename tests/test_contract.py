"""The published-run contract: declared once (a scan of the package's source), kept by every run, readable in any
run's age, and its JSON columns readable by DuckDB."""

from __future__ import annotations

import ast
import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dibao.ingest import ingest_drop
from dibao.pipeline import run_daily
from dibao.publish import contract
from dibao.publish.contract import PUBLISHED, PublishedRun
from dibao.publish.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dibao"
SAMPLE = ROOT / "data" / "samples" / "drop"
DATE = dt.date(2026, 11, 20)

# Label tables of the contract: code → label.
LABEL_TABLES = {
    "LIST_LABELS": contract.LIST_LABELS, "CHANGE_LABELS": contract.CHANGE_LABELS,
    "METHOD_LABELS": contract.METHOD_LABELS, "HOUSEHOLD_SOURCE_LABELS": contract.HOUSEHOLD_SOURCE_LABELS,
    "FLAG_SUBJECT_LABELS": contract.FLAG_SUBJECT_LABELS, "HOUSEHOLD_KIND_LABELS": contract.HOUSEHOLD_KIND_LABELS,
    "COVERAGE_MEASURES": contract.COVERAGE_MEASURES,
}
VOCABULARIES = {"LISTS": contract.LISTS, "CHANGES": contract.CHANGES, "LINK_METHODS": contract.LINK_METHODS,
                "COVERAGE_LEVELS": contract.COVERAGE_LEVELS}
# Tables keyed by these codes belong in the contract (tables keyed by source stems are the input contract's business,
# e.g. each file's household-number field, so only their labels are looked for).
KEYED_TABLES = ("LIST_LABELS", "CHANGE_LABELS", "METHOD_LABELS", "FLAG_SUBJECT_LABELS", "HOUSEHOLD_KIND_LABELS",
                "COVERAGE_MEASURES")
ALLOWED = {
    # The same words meaning something else: an ID's status (IdStatus.UPGRADED), not a link method.
    ("dibao/normalise/ids.py", "15位升18位"),
    # A rule's outcome (dibao/policy/eligibility.yaml) is a list name; compile.py is being reworked elsewhere, and its
    # ``Outcome`` is to become ``contract.ListName`` then.
    ("dibao/rules/compile.py", "LISTS"),
}


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "publish" / "contract.py")


def _is_dtype(node: ast.expr) -> bool:
    """``pl.String``, ``pl.String()``, ``pl.List(pl.String())``…"""
    if isinstance(node, ast.Call):
        node = node.func
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("pl", "polars") \
        and node.attr[:1].isupper()


def _strings(nodes: list[ast.expr | None]) -> list[str]:
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """Where ``path`` declares what the contract declares: a published schema, a label, a label table, a list of
    codes or a published file name."""
    where = path.relative_to(root).as_posix()
    found = []
    labels = {label: name for name, table in LABEL_TABLES.items() for label in table.values()}
    filenames = {f.filename for f in PUBLISHED.values()}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in labels and (where, node.value) not in ALLOWED:
                found.append(f"{line}: the label {node.value!r} (contract.{labels[node.value]})")
            if node.value in filenames:
                found.append(f"{line}: the file name {node.value!r} (contract.PUBLISHED)")
        elif isinstance(node, ast.Dict):
            keys = set(_strings(node.keys))
            if len(keys) >= 3 and sum(_is_dtype(v) for v in node.values) >= 3:
                for f in PUBLISHED.values():
                    shared = keys & set(f.schema)
                    if len(shared) >= 3 and (keys <= set(f.schema) or len(shared) >= 0.6 * len(f.schema)):
                        found.append(f"{line}: a schema of {f.filename} (contract.{f.name.upper()})")
            if len(keys) >= 2 and all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in node.values):
                for name in KEYED_TABLES:
                    if set(LABEL_TABLES[name]) <= keys:
                        found.append(f"{line}: a table keyed like contract.{name}")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal":
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            for name, codes in VOCABULARIES.items():
                if set(codes) <= set(_strings(list(args))) and (where, name) not in ALLOWED:
                    found.append(f"{line}: the codes of contract.{name}")
    return found


def test_nothing_outside_the_contract_declares_a_published_schema_or_label() -> None:
    found = [v for path in _sources() for v in violations(path)]
    assert not found, "declared outside dibao/publish/contract.py (import it from there):\n" + "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan itself: a re-declared schema, label, label table, code list and file name are each found."""
    (tmp_path / "dibao").mkdir()
    sample = tmp_path / "dibao" / "copy.py"
    sample.write_text(
        'from typing import Literal\nimport polars as pl\n'
        'DIFF = {"list": pl.String(), "subject_id": pl.String(), "county_code": pl.String(), "change": pl.String}\n'
        'SHEET = "应退尽退"\n'
        'METHOD = {"exact": "x", "upgraded_15": "y", "repaired_id": "z", "name_match": "n", "internal": "i"}\n'
        'Kind = Literal["exit", "inclusion", "flag"]\n'
        'PATH = "person_links.parquet"\n', encoding="utf-8")
    found = violations(sample, tmp_path)
    assert [v.split(": ", 1)[1].split(" (")[0].split(" of ")[0] for v in found] == [
        "a schema", "the label '应退尽退'", "a table keyed like contract.METHOD_LABELS",
        "the codes", "the file name 'person_links.parquet'"], found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("contract") / "store"
    return run_daily(SAMPLE, DATE, RunStore(store)).folder


def test_every_published_file_is_as_the_contract_says(run: Path) -> None:
    published = {p.name for p in run.glob("*.parquet")}
    assert published == {f.filename for f in PUBLISHED.values()}
    for f in PUBLISHED.values():
        schema = dict(pl.read_parquet_schema(run / f.filename))
        if f.more_columns is None:
            assert schema == f.schema, f.filename
        else:
            assert {c: schema[c] for c in f.schema} == f.schema, f.filename
        frame = pl.read_parquet(run / f.filename)
        assert frame.height == frame.unique(list(f.key)).height, f"{f.filename}: {f.key} is not unique"
    assert (run / contract.MANIFEST_FILE).is_file() and (run / contract.WORKLISTS_DIR).is_dir()


def test_the_three_lists_share_subject_id_and_county_name(run: Path) -> None:
    counties = dict(ingest_drop(SAMPLE, run_date=DATE).frame_or_empty("counties")
                    .select("county_code", "county_name").iter_rows())
    for name, f in contract.LIST_FILES.items():
        frame = pl.read_parquet(run / f.filename)
        assert frame.height
        assert frame["subject_id"].to_list() == frame[contract.LIST_HOUSEHOLD_COLUMN[name]].to_list()
        assert frame["county_name"].to_list() == [counties.get(c) for c in frame["county_code"]]


def test_figures_and_parameters_are_json_duckdb_reads(run: Path) -> None:
    con = duckdb.connect()
    try:
        for f, column in ((contract.EXIT_CANDIDATES, "figures"), (contract.INCLUSION_CANDIDATES, "figures"),
                          (contract.FLAGS, "figures"), (contract.DECISIONS, "figures"),
                          (contract.DECISIONS, "parameters")):
            path = (run / f.filename).as_posix()
            ((rows, valid),) = con.execute(f"SELECT count(*), count(*) FILTER (WHERE json_valid({column})) "
                                           f"FROM '{path}'").fetchall()
            assert rows and rows == valid, (f.filename, column)
        income = con.sql(
            "SELECT dibao_household_id, figures->'$.income_above_standard'->>'$.per_capita_income' AS income "
            f"FROM '{(run / contract.EXIT_CANDIDATES.filename).as_posix()}' "
            "WHERE list_contains(reasons, 'income_above_standard')").pl()
    finally:
        con.close()
    exits = pl.read_parquet(run / contract.EXIT_CANDIDATES.filename)
    expected = {r["dibao_household_id"]: str(json.loads(r["figures"])["income_above_standard"]["per_capita_income"])
                for r in exits.filter(pl.col("reasons").list.contains("income_above_standard")).iter_rows(named=True)}
    assert income.height and dict(income.iter_rows()) == expected


def test_an_older_run_reads_with_todays_columns(run: Path, tmp_path: Path) -> None:
    old = tmp_path / "2026-01-05"
    shutil.copytree(run, old)
    exits = pl.read_parquet(old / contract.EXIT_CANDIDATES.filename)
    exits.drop("subject_id", "county_name", "grace_start").write_parquet(old / contract.EXIT_CANDIDATES.filename)
    pl.read_parquet(old / contract.COVERAGE.filename).drop("run_date").write_parquet(old / contract.COVERAGE.filename)
    (old / contract.LINK_REVIEW.filename).unlink()
    reader = PublishedRun(old)
    read = reader.read(contract.EXIT_CANDIDATES)
    assert read.schema == pl.Schema(contract.EXIT_CANDIDATES.schema)
    assert read["subject_id"].to_list() == exits["dibao_household_id"].to_list()  # derived from the older column
    assert read["county_name"].null_count() == read["grace_start"].null_count() == read.height  # null
    assert reader.read(contract.COVERAGE)["run_date"].unique().to_list() == [dt.date(2026, 1, 5)]
    assert reader.read(contract.LINK_REVIEW).schema == pl.Schema(contract.LINK_REVIEW.schema)
    assert reader.read(contract.LINK_REVIEW).is_empty()
    assert reader.read("exit_candidates", ["county_name", "subject_id"]).columns == ["county_name", "subject_id"]
    assert reader.scan(contract.EXIT_CANDIDATES).filter(pl.col("subject_id") == exits["dibao_household_id"][0]) \
        .collect().height == 1
    facts = reader.read(contract.HOUSEHOLD_FACTS)  # further, configured columns are kept
    assert facts.columns[:5] == list(contract.HOUSEHOLD_FACTS.schema) and "per_capita_income" in facts.columns
