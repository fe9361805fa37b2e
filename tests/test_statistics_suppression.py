"""Issue 13 item 7 against the real app: /counts served 35 of 43 county × reason cells holding 1–2 households,
coverage cells with a denominator of 2, and comparing two dates revealed one death. Now an analyst gets every
figure below the minimum cell size withheld (null, ``suppressed: true``), with complements so the totals cannot
give it back; a caseworker gets their own counties exact; an admin everything exact.

Two runs of the sample drop: 2026-11-19, and 2026-11-20 without bank results (asset reasons resolved), so cells
change between the dates.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dibao.errors import ConfigError
from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.serve.app import create_app
from dibao.serve.statistics_tables import QUANTITIES, Disclosure, DisclosurePolicy
from dibao.serve.suppression import Group
from dibao.serve.tokens import add_token
from tests.test_suppression import recomputable

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
DAY1, DAY2 = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
OWN = "340402"
K = 5


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("statistics")
    store = root / "store"
    for date in (DAY1, DAY2):
        drop = root / f"drop-{date}"
        shutil.copytree(SAMPLE, drop)
        if date == DAY2:
            (drop / "bank_assets.csv").unlink()
        run_daily(drop, date, RunStore(store), accept_shrink=date == DAY2)
    return store


@pytest.fixture(scope="module")
def tokens(store: Path) -> dict[str, str]:
    tokens_file = store / "tokens.yaml"
    return {"admin": add_token(tokens_file, "管理员", "admin", []),
            "analyst": add_token(tokens_file, "省厅-分析", "analyst", []),
            "cw": add_token(tokens_file, "大通区-经办", "caseworker", [OWN])}


@pytest.fixture(scope="module")
def app(store: Path, tokens: dict[str, str]) -> FastAPI:
    return create_app(store, store / "tokens.yaml")


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def get(client: TestClient, token: str, path: str) -> list[dict[str, Any]]:
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def key(row: dict[str, Any]) -> tuple[str, str | None, str]:
    return row["list"], row["county_code"], row["reason"]


# --- /counts ---------------------------------------------------------------------------------------------------


def test_counts_served_small_cells_and_now_withhold_them(client: TestClient, tokens: dict[str, str]) -> None:
    exact = get(client, tokens["admin"], "/counts")
    small = [r for r in exact if 0 < r["count"] < K]
    assert len(small) > len(exact) / 2, "the sample has the finding's shape: most cells hold 1–4 households"
    shown = {key(r): r for r in get(client, tokens["analyst"], "/counts")}
    for row in small:
        assert shown[key(row)]["count"] is None and shown[key(row)]["suppressed"] is True
    for row in shown.values():
        assert (row["count"] is None) == row["suppressed"]
        assert row["count"] is None or row["count"] >= K


def test_counts_margins_do_not_give_a_withheld_cell_back(client: TestClient, tokens: dict[str, str]) -> None:
    """Each county row and reason column of each list has no withheld cell or at least two, and no withheld cell
    follows from the published cells and the (assumed known) row, column and list totals."""
    exact = {key(r): r["count"] for r in get(client, tokens["admin"], "/counts")}
    shown = {key(r): r for r in get(client, tokens["analyst"], "/counts")}
    for name in {k[0] for k in exact}:
        counties = sorted({k[1] for k in exact if k[0] == name}, key=str)
        reasons = sorted({k[2] for k in exact if k[0] == name})
        cells = [(name, c, r) for c in counties for r in reasons]
        index = {cell: i for i, cell in enumerate(cells)}
        withheld = frozenset(index[k] for k, row in shown.items() if k[0] == name and row["suppressed"])
        groups = [Group(tuple(index[(name, c, r)] for r in reasons)) for c in counties]
        groups += [Group(tuple(index[(name, c, r)] for c in counties)) for r in reasons]
        groups.append(Group(tuple(range(len(cells)))))
        for group in groups:
            if group.constrains:
                assert sum(1 for c in group.members if c in withheld) != 1, (name, group)
        assert recomputable(groups, withheld) == set()
        for cell in cells:  # every published cell is exact; a withheld complement may be an empty cell
            row = shown.get(cell)
            if row is not None and not row["suppressed"]:
                assert row["count"] == exact[cell]
            if row is None:
                assert cell not in exact


def test_a_caseworker_sees_their_own_county_exact_and_no_neighbour_through_it(
        client: TestClient, tokens: dict[str, str]) -> None:
    exact = {key(r): r["count"] for r in get(client, tokens["admin"], "/counts")}
    shown = {key(r): r for r in get(client, tokens["cw"], "/counts")}
    own = {k: v for k, v in exact.items() if k[1] == OWN}
    assert own and all(shown[k]["count"] == v and not shown[k]["suppressed"] for k, v in own.items())
    assert any(r["suppressed"] for k, r in shown.items() if k[1] != OWN)
    for k, row in shown.items():
        if k[1] != OWN and row["count"] is not None:
            assert row["count"] >= K
    # Their own cells are published to them: the others must stay hidden given those too.
    for name in {k[0] for k in exact}:
        counties = sorted({k[1] for k in exact if k[0] == name}, key=str)
        reasons = sorted({k[2] for k in exact if k[0] == name})
        index = {(c, r): i for i, (c, r) in enumerate((c, r) for c in counties for r in reasons)}
        withheld = frozenset(index[(k[1], k[2])] for k, row in shown.items() if k[0] == name and row["suppressed"])
        groups = [Group(tuple(index[(c, r)] for r in reasons)) for c in counties]
        groups += [Group(tuple(index[(c, r)] for c in counties)) for r in reasons]
        assert recomputable(groups, withheld) == set()


def test_an_admin_gets_every_count_exact(client: TestClient, tokens: dict[str, str], store: Path) -> None:
    rows = get(client, tokens["admin"], "/counts")
    flags = pl.read_parquet(store / "runs" / DAY2.isoformat() / "flags.parquet")
    assert sum(r["count"] for r in rows if r["list"] == "flag") == flags.height
    assert not any(r["suppressed"] for r in rows)


def test_comparing_two_dates_sees_no_small_cell_on_either(client: TestClient, tokens: dict[str, str]) -> None:
    """Differencing two dates: a cell below the threshold on either date is withheld on that date."""
    for date in (DAY1, DAY2):
        exact = {key(r): r["count"] for r in get(client, tokens["admin"], f"/counts?date={date}")}
        shown = {key(r): r for r in get(client, tokens["analyst"], f"/counts?date={date}")}
        for k, v in exact.items():
            if 0 < v < K:
                assert shown[k]["count"] is None, (date, k)
    day1 = {key(r) for r in get(client, tokens["admin"], f"/counts?date={DAY1}")}
    day2 = {key(r) for r in get(client, tokens["admin"], f"/counts?date={DAY2}")}
    assert day1 != day2, "the two dates differ (asset reasons resolved on the second)"


# --- /coverage -------------------------------------------------------------------------------------------------


def cov_key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return row["run_date"], row["level"], row["area_code"], row["measure"]


def test_coverage_with_a_denominator_of_2_is_withheld(client: TestClient, tokens: dict[str, str],
                                                      store: Path) -> None:
    coverage = pl.read_parquet(store / "runs" / DAY2.isoformat() / "coverage.parquet")
    tiny = coverage.filter((pl.col("denominator") > 0) & (pl.col("denominator") < K))
    assert tiny.height, "the sample has the finding: coverage cells with a denominator below 5"
    shown = {cov_key(r): r for r in get(client, tokens["analyst"], "/coverage")}
    for row in tiny.iter_rows(named=True):
        got = shown[(str(DAY2), row["level"], row["area_code"], row["measure"])]
        assert got["denominator"] is None and got["rate"] is None and got["suppressed"]
        assert {"denominator", "rate"} <= set(got["suppressed_fields"])
    for row in shown.values():
        for field in ("numerator", "denominator"):
            assert row[field] is None or not 0 < row[field] < K, row
        if row["numerator"] is None or row["denominator"] is None:
            assert row["rate"] is None and "rate" in row["suppressed_fields"]
        assert row["suppressed"] == bool(row["suppressed_fields"])
        assert all(row[f] is None for f in row["suppressed_fields"])


def test_coverage_levels_do_not_give_a_withheld_county_back(client: TestClient, tokens: dict[str, str]) -> None:
    """Per quantity, city = sum of its counties and province = sum of its cities: every such group has no
    withheld cell or at least two (counting the total), and nothing withheld follows from the levels."""
    shown = get(client, tokens["analyst"], "/coverage")
    cells: dict[tuple[str, str, str], int] = {}
    withheld: set[int] = set()
    for row in shown:
        numerator, denominator = QUANTITIES[row["measure"]]
        for quantity, field in ((numerator, "numerator"), (denominator, "denominator")):
            index = cells.setdefault((quantity, row["level"], row["area_code"]), len(cells))
            if field in row["suppressed_fields"]:
                withheld.add(index)
    groups: dict[int, list[int]] = {}
    for (quantity, level, area), i in cells.items():
        parent = {"county": ("city", area[:4] + "00"), "city": ("province", area[:2] + "0000")}.get(level)
        if parent and (quantity, *parent) in cells:
            groups.setdefault(cells[(quantity, *parent)], []).append(i)
    hierarchy = [Group(tuple(members), total=total) for total, members in groups.items()]
    for group in hierarchy:
        assert sum(1 for c in group.cells() if c in withheld) != 1, group
    assert recomputable(hierarchy, frozenset(withheld)) == set()


def test_coverage_filters_do_not_change_what_is_withheld(client: TestClient, tokens: dict[str, str]) -> None:
    whole = get(client, tokens["analyst"], "/coverage")
    counties = get(client, tokens["analyst"], "/coverage?level=county")
    assert counties == [r for r in whole if r["level"] == "county"]
    one = get(client, tokens["analyst"], f"/coverage?area={OWN}")
    assert one == [r for r in whole if r["area_code"] == OWN]


def test_trend_is_each_dates_table(client: TestClient, tokens: dict[str, str]) -> None:
    trend = get(client, tokens["analyst"], "/coverage/trend")
    for date in (DAY1, DAY2):
        alone = {cov_key(r): r for r in get(client, tokens["analyst"], f"/coverage?date={date}")}
        assert {cov_key(r): r for r in trend if r["run_date"] == str(date)} == alone
    assert any(r["suppressed"] for r in trend)


def test_caseworker_and_admin_coverage(client: TestClient, tokens: dict[str, str], store: Path) -> None:
    admin = get(client, tokens["admin"], "/coverage")
    coverage = pl.read_parquet(store / "runs" / DAY2.isoformat() / "coverage.parquet")
    assert len(admin) == coverage.height and not any(r["suppressed"] for r in admin)
    exact = {cov_key(r): r for r in admin}
    for row in get(client, tokens["cw"], "/coverage"):
        if row["level"] == "county" and row["area_code"] == OWN:
            assert row == exact[cov_key(row)]


# --- configuration and schema ----------------------------------------------------------------------------------


def test_threshold_and_exact_roles_are_configuration(app: FastAPI, client: TestClient,
                                                     tokens: dict[str, str]) -> None:
    default = app.state.disclosure
    try:
        app.state.disclosure = Disclosure(DisclosurePolicy.from_environment({"DIBAO_API_MIN_CELL": "1"}))
        assert not any(r["suppressed"] for r in get(client, tokens["analyst"], "/counts"))
        app.state.disclosure = Disclosure(DisclosurePolicy.from_environment({"DIBAO_API_MIN_CELL": "10"}))
        assert all(r["count"] is None or r["count"] >= 10 for r in get(client, tokens["analyst"], "/counts"))
        app.state.disclosure = Disclosure(DisclosurePolicy.from_environment(
            {"DIBAO_API_EXACT_ROLES": "analyst,admin"}))
        assert not any(r["suppressed"] for r in get(client, tokens["analyst"], "/coverage"))
    finally:
        app.state.disclosure = default
    assert DisclosurePolicy.from_environment({}) == DisclosurePolicy(5, frozenset({"admin"}))
    for bad in ({"DIBAO_API_MIN_CELL": "five"}, {"DIBAO_API_MIN_CELL": "0"}, {"DIBAO_API_EXACT_ROLES": "boss"}):
        with pytest.raises(ConfigError):
            DisclosurePolicy.from_environment(bad)


def test_openapi_says_what_may_be_withheld(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    count = schemas["CountRow"]["properties"]
    assert {"type": "null"} in count["count"]["anyOf"] and count["suppressed"]["type"] == "boolean"
    coverage = schemas["CoverageRow"]["properties"]
    assert coverage["suppressed_fields"]["items"]["enum"] == ["numerator", "denominator", "rate"]
