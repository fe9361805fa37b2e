"""The API as caseworkers, analysts and admins meet it: roles, masking, 404 parity, lookups, lists, statistics,
the audit chain, run switching, and a schemathesis property run against the OpenAPI schema.

One module-scoped store of three runs of the sample drop: 2026-11-18 (an "older" run without coverage.parquet),
2026-11-19, and 2026-11-20 without bank_assets (so asset reasons are resolved in its diff).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from dibao.explain import explain
from dibao.normalise.ids import check_id, expected_check_char
from dibao.pipeline import run_daily
from dibao.publish.household import HISTORY_SCHEMA, SPAN_SCHEMA, extend_spans
from dibao.publish.store import RunStore
from dibao.serve.app import create_app
from dibao.serve.audit import AuditLog, query_audit, verify_chain
from dibao.serve.masking import county_names, household_view, mask_id, mask_name, mask_person_key
from dibao.serve.models import Household as HouseholdModel
from dibao.serve.models import HouseholdLookup
from dibao.serve.tokens import Principal, TokenFileError, add_token, load_tokens, revoke_token
from tests.api_limits import UNTHROTTLED

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "samples" / "drop"
DATES = [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
LATEST = DATES[-1]
OWN, OTHER = "340402", "340403"
MASKED_ID = r"^[0-9]{4}\*{10}[0-9X]{4}$"


def build_store(root: Path) -> Path:
    store = root / "store"
    for date in DATES:
        drop = root / f"drop-{date}"
        shutil.copytree(SAMPLE, drop)
        if date == LATEST:
            (drop / "bank_assets.csv").unlink()  # a day without bank results: the operator confirms it
        run_daily(drop, date, RunStore(store), accept_shrink=date == LATEST)
    (store / "runs" / DATES[0].isoformat() / "coverage.parquet").unlink()  # as made before coverage existed
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def tokens(store: Path) -> dict[str, str]:
    tokens_file = store / "tokens.yaml"
    return {
        "admin": add_token(tokens_file, "管理员", "admin", []),
        "cw": add_token(tokens_file, "大通区-经办", "caseworker", [OWN]),
        "cw_other": add_token(tokens_file, "田家庵区-经办", "caseworker", [OTHER]),
        "analyst": add_token(tokens_file, "省厅-分析", "analyst", []),
    }


@pytest.fixture(scope="module")
def app(store: Path, tokens: dict[str, str]) -> FastAPI:
    return create_app(store, store / "tokens.yaml", limits=UNTHROTTLED)  # thousands of calls: tests/api_limits.py


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_frame(store: Path, name: str, date: dt.date = LATEST) -> pl.DataFrame:
    return pl.read_parquet(store / "runs" / date.isoformat() / f"{name}.parquet")


def group_counties(store: Path) -> pl.DataFrame:
    """person_key (ID numbers only) → the set of counties of all households of all their groups."""
    links = run_frame(store, "person_links").filter(pl.col("household_group").is_not_null())
    facts = run_frame(store, "household_facts").select("household_key", "county_code")
    counties = links.select("household", "household_group").unique().join(
        facts, left_on="household", right_on="household_key").group_by("household_group").agg(
        pl.col("county_code").unique().sort().alias("counties"))
    return (links.filter(pl.col("person_key").str.contains(r"^[0-9]{17}[0-9X]$"))
            .join(counties, on="household_group").group_by("person_key")
            .agg(pl.col("counties").list.explode(keep_nulls=False, empty_as_null=False).unique().sort()))


def person_only_in(store: Path, county: str) -> str:
    frame = group_counties(store).filter(pl.col("counties") == pl.lit([county], dtype=pl.List(pl.String)))
    return str(frame.sort("person_key")["person_key"][0])


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys() and body["status"] == status
    assert "Traceback" not in response.text and "SELECT" not in response.text
    return body


# --- service, authentication, roles --------------------------------------------------------------------------


def test_health_needs_no_token_and_names_the_served_run(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "run": LATEST.isoformat()}


PROTECTED = ["/households/DB340402000001", "/candidates", f"/runs/{LATEST}/diff", "/runs", "/coverage",
             "/coverage/trend", "/counts"]


@pytest.mark.parametrize("path", PROTECTED)
def test_missing_or_unknown_token_is_401(client: TestClient, path: str) -> None:
    for headers in ({}, auth("not-a-token"), {"Authorization": "Basic dXNlcjpwYXNz"}):
        body = problem(client.get(path, headers=headers), 401)
        assert "需要有效的访问令牌" in body["detail"] and "bearer token" in body["detail"]  # Chinese, English beside
    assert client.get(path, headers=auth("x")).headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/households/DB340402000001", "/candidates", f"/runs/{LATEST}/diff"])
def test_analyst_gets_403_on_personal_data(client: TestClient, tokens: dict[str, str], path: str) -> None:
    body = problem(client.get(path, headers=auth(tokens["analyst"])), 403)
    assert "统计分析人员只能查看汇总统计" in body["detail"] and "aggregate" in body["detail"]


@pytest.mark.parametrize("path", ["/runs", "/coverage", "/coverage/trend", "/counts"])
def test_analyst_reads_aggregates(client: TestClient, tokens: dict[str, str], path: str) -> None:
    response = client.get(path, headers=auth(tokens["analyst"]))
    assert response.status_code == 200 and isinstance(response.json(), list)


# --- household lookup ------------------------------------------------------------------------------------------


def test_out_of_county_household_is_answered_exactly_like_an_unknown_one(
        client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    cw = auth(tokens["cw"])
    foreign = person_only_in(store, OTHER)
    unknown_first17 = "11010119900101999"
    unknown = unknown_first17 + expected_check_char(unknown_first17)
    a, b = client.get(f"/households/{foreign}", headers=cw), client.get(f"/households/{unknown}", headers=cw)
    problem(a, 404)
    assert a.content == b.content and a.status_code == b.status_code
    assert a.headers["content-type"] == b.headers["content-type"]
    assert a.headers["content-length"] == b.headers["content-length"]
    assert foreign not in a.text
    # the same household is there for its own county's caseworker and for an admin
    assert client.get(f"/households/{foreign}", headers=auth(tokens["cw_other"])).status_code == 200
    assert client.get(f"/households/{foreign}", headers=auth(tokens["admin"])).status_code == 200
    # household numbers: a roll number and a 16-digit registry number of the other county
    facts = run_frame(store, "household_facts")
    roll = facts.filter((pl.col("county_code") == OTHER) & (pl.col("source") == "dibao_roll"))["subject_id"][0]
    registry = facts.filter((pl.col("county_code") == OTHER) & (pl.col("source") == "registry"))["subject_id"][0]
    for known, made_up in ((roll, "DB999999000001"), (registry, "9999990010010001")):
        assert client.get(f"/households/{known}", headers=auth(tokens["admin"])).status_code == 200
        x, y = client.get(f"/households/{known}", headers=cw), client.get(f"/households/{made_up}", headers=cw)
        assert x.status_code == y.status_code and x.content == y.content, (x.text, y.text)


def test_own_county_lookup_shows_full_ids_and_names(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    person = person_only_in(store, OWN)
    body = client.get(f"/households/{person}", headers=auth(tokens["cw"])).json()
    assert body["matched_by"] == "id_number" and body["person_key"] == person and body["run"] == str(LATEST)
    links = run_frame(store, "person_links")
    names = dict(zip(links["person_key"], links["name"], strict=True))
    members = [m for h in body["households"] for m in h["members"]]
    assert person in {m["id_number"] for m in members}
    for h in body["households"]:
        assert h["in_scope"] and h["county_code"] == OWN
        for m in h["members"]:
            if m["id_number"] is not None:
                assert m["id_number"] == m["person_key"] and "*" not in m["id_number"]
                assert m["name"] == names[m["person_key"]]


def test_family_across_counties_shows_only_that_the_other_household_exists(
        client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    """Issue 13 finding 2: the family's household in another county came with its village, income, assets,
    decisions, history and masked member IDs (whose birth dates could be recovered by trying lookups). Now: its
    county and the lists it is on today, nothing personal."""
    mixed = group_counties(store).filter(pl.col("counties").list.contains(OWN) & (pl.col("counties").list.len() > 1))
    if not mixed.height:
        pytest.skip("the sample has no family spanning two counties")
    body = client.get(f"/households/{mixed['person_key'][0]}", headers=auth(tokens["cw"])).json()
    outside = [h for h in body["households"] if not h["in_scope"]]
    assert outside and all(h["county_code"] != OWN for h in outside)
    assert all(h["in_scope"] for h in body["households"] if h["county_code"] == OWN)
    for h in outside:
        assert h["county_name"]
        assert set(h["lists"]) <= {"exit", "inclusion", "flag"} and len(h["list_labels"]) == len(h["lists"])
        assert h["household_id"] is None and h["town"] is None and h["village"] is None
        assert h["head_name"] is None and h["head_id"] is None
        assert h["facts"] == [] and h["decisions"] == [] and h["members"] == [] and h["history"] == []
        assert h["first_seen"] is None and h["grace_start"] is None and h["grace_until"] is None
    # No ID number of the other county's people appears anywhere in the answer, masked or not.
    links = run_frame(store, "person_links").filter(pl.col("household_group") == mixed["household_group"][0])
    text = json.dumps(body, ensure_ascii=False)
    for key in links.filter(~pl.col("person_key").is_in(
            [m["person_key"] for h in body["households"] for m in h["members"]]))["person_key"].unique():
        assert key[-4:] + '"' not in text or key in text
    # An admin still sees everything.
    admin = client.get(f"/households/{mixed['person_key'][0]}", headers=auth(tokens["admin"])).json()
    assert all(h["in_scope"] and h["members"] for h in admin["households"])


def test_a_household_outside_the_callers_counties_is_shown_without_personal_data(store: Path) -> None:
    """The view itself (the samples hold no family across two counties): a real flagged household moved to
    another county is, for a caseworker of OWN, its county and today's lists only."""
    exits = run_frame(store, "exit_candidates")
    found = explain(store / "runs" / LATEST.isoformat(), exits["dibao_household_id"][0])
    roll = next(h for h in found.households if h.source == "dibao_roll")
    household = dataclasses.replace(roll, county_code=OTHER)
    caseworker = Principal("经办", "caseworker", frozenset({OWN}))
    names = county_names(run_frame(store, "coverage"))
    view = HouseholdModel.model_validate(household_view(household, caseworker, names)).model_dump()
    assert view["in_scope"] is False and view["county_code"] == OTHER and view["county_name"] == names[OTHER]
    assert "exit" in view["lists"] and "应退尽退" in view["list_labels"]
    assert set(view["lists"]) <= {"exit", "inclusion", "flag"} and len(view["lists"]) == len(view["list_labels"])
    personal = ("household_id", "town", "village", "head_name", "head_id", "first_seen", "grace_start",
                "grace_until")
    assert all(view[name] is None for name in personal)
    assert view["facts"] == view["decisions"] == view["members"] == view["history"] == []
    text = json.dumps(view, ensure_ascii=False, default=str)
    for member in roll.members:
        for value in (member.name, member.id_number, member.person_key):
            assert not value or value not in text
    inside = household_view(dataclasses.replace(household, county_code=OWN), caseworker, names)
    assert inside["in_scope"] and inside["members"] and inside["household_id"]


@pytest.mark.parametrize("kind", ["exit_head", "inclusion_head", "roll_number", "registry_number",
                                  "monitoring_number", "repaired_id"])
def test_lookup_gives_what_dibao_explain_gives(client: TestClient, app: FastAPI, store: Path,
                                               tokens: dict[str, str], kind: str) -> None:
    """One household view: `dibao explain` (which loads only the query's groups) and the API (the whole run,
    indexed) build the same ``Family``, and the API serves exactly that to an admin."""
    facts = run_frame(store, "household_facts")
    query = {
        "exit_head": lambda: run_frame(store, "exit_candidates").filter(
            pl.col("head_id").str.contains(r"^[0-9]{17}[0-9X]$"))["head_id"][0],
        "inclusion_head": lambda: run_frame(store, "inclusion_candidates").filter(
            pl.col("head_id").str.contains(r"^[0-9]{17}[0-9X]$"))["head_id"][-1],
        "roll_number": lambda: run_frame(store, "decisions").filter(pl.col("subject_type") == "roll")[
            "subject_id"][0],
        "registry_number": lambda: facts.filter(pl.col("source") == "registry")["subject_id"][3],
        "monitoring_number": lambda: facts.filter(pl.col("source") == "monitoring")["subject_id"][2],
        "repaired_id": lambda: run_frame(store, "person_links").filter(
            (pl.col("method") == "repaired_id") & pl.col("household_group").is_not_null())["person_key"][0],
    }[kind]()
    explained = explain(store / "runs" / LATEST.isoformat(), query)
    indexed = app.state.snapshots.snapshot.index.lookup(query)
    assert indexed is not None and explained == indexed
    assert explained.households and all(len(h.history) == len(DATES) for h in explained.households)
    body = client.get(f"/households/{query}", headers=auth(tokens["admin"])).json()
    admin = Principal("管理员", "admin")
    served = HouseholdLookup.model_validate({
        "run": explained.run, "matched_by": explained.matched_by, "person_key": explained.person_key,
        "households": [household_view(h, admin, county_names(run_frame(store, "coverage")))
                       for h in explained.households]})
    assert body == json.loads(served.model_dump_json(by_alias=True))


def _x_id(store: Path) -> str:
    links = run_frame(store, "person_links")
    return str(links.filter(pl.col("person_key").str.contains(r"^[0-9]{17}X$") & pl.col("household").is_not_null()
                            & (pl.col("person_key").str.slice(6, 2) == "19"))["person_key"][0])


def test_id_lookup_accepts_messy_formatting(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    person = _x_id(store)
    admin = auth(tokens["admin"])
    expected = client.get(f"/households/{person}", headers=admin).json()["households"]
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in person[:17]) + "ｘ"
    old15 = person[:6] + person[8:17]  # the 15-digit form of someone born in the 1900s
    for messy in (f" {person[:6]} {person[6:14]} {person[14:].lower()} ", f"{person[:6]}-{person[6:14]}-{person[14:]}",
                  full_width, person.lower(), old15):
        body = client.get(f"/households/{messy}", headers=admin).json()
        assert body["person_key"] == person, messy
        assert body["households"] == expected


def test_household_number_lookup(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    roll = run_frame(store, "exit_candidates")["dibao_household_id"][0]
    body = client.get(f"/households/{roll}", headers=auth(tokens["admin"])).json()
    assert body["matched_by"] == "household_id" and body["person_key"] is None
    assert roll in {h["household_id"] for h in body["households"]}
    lower = client.get(f"/households/{roll.lower()}", headers=auth(tokens["admin"])).json()
    assert lower["households"] == body["households"]


def test_malformed_id_number_is_422_saying_what_is_wrong(client: TestClient, tokens: dict[str, str]) -> None:
    first17 = "34040219800101123"
    good = expected_check_char(first17)
    wrong = "0" if good != "0" else "1"
    bad_date17 = "34040219801301123"  # month 13
    cases = {
        first17 + wrong: "bad_check_digit",
        first17: "bad_length",  # 17 characters
        bad_date17 + expected_check_char(bad_date17): "bad_date",
    }
    for query, status in cases.items():
        body = problem(client.get(f"/households/{query}", headers=auth(tokens["cw"])), 422)
        assert body["id_status"] == status and body["title"] == "证件号码有误 (Invalid ID number)"
        assert body["detail"] == check_id(query).problem()
        assert "证件号码" in body["detail"] or "校验位" in body["detail"]  # Chinese first, English beside
    assert "check digit is" in problem(client.get(f"/households/{first17 + wrong}", headers=auth(tokens["admin"])),
                                       422)["detail"]


def test_unknown_valid_id_and_unknown_number_are_404(client: TestClient, tokens: dict[str, str]) -> None:
    first17 = "11010119900101888"
    for query in (first17 + expected_check_char(first17), "NO-SUCH-HOUSEHOLD"):
        body = problem(client.get(f"/households/{query}", headers=auth(tokens["admin"])), 404)
        assert query not in body["detail"]


def test_history_across_runs(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    resolved = run_frame(store, "diff").filter((pl.col("list") == "exit") & (pl.col("change") == "resolved"))
    assert resolved.height, "the run without bank data should resolve asset reasons"
    household = resolved["subject_id"][0]
    body = client.get(f"/households/{household}", headers=auth(tokens["admin"])).json()
    roll = next(h for h in body["households"] if h["household_id"] == household)
    history = {e["run_date"]: e["lists"] for e in roll["history"]}
    assert list(history) == [d.isoformat() for d in DATES]
    exits = [entry for entry in history[DATES[1].isoformat()] if entry["list"] == "exit"]
    assert len(exits) == 1 and exits[0]["reasons"]
    assert exits[0]["first_seen"] == DATES[0].isoformat()  # carried from the first run
    assert all(entry["list"] != "exit" for entry in history[LATEST.isoformat()])


def test_history_spans_collapse_consecutive_runs() -> None:
    def part(*rows: tuple[str, str, list[str]]) -> pl.DataFrame:
        return pl.DataFrame(
            [{"household_key": k, "list": name, "reasons": r, "reason_labels": r, "first_seen": dt.date(2026, 1, 1),
              "grace_until": None} for k, name, r in rows], schema=HISTORY_SCHEMA)

    spans = pl.DataFrame(schema=SPAN_SCHEMA)
    days = [part(("roll:A", "exit", ["vehicle_owned"]), ("registry:B", "flag", ["edge_family"])),
            part(("roll:A", "exit", ["vehicle_owned"])),
            part(),
            part(("roll:A", "exit", ["vehicle_owned"]), ("roll:A", "flag", ["relative_not_filed"])),
            part(("roll:A", "exit", ["vehicle_owned", "member_deceased"]))]
    for index, day in enumerate(days):
        spans = extend_spans(spans, day, index)
    got = sorted(spans.select("household_key", "list", "reasons", "start", "end").rows())
    assert got == [
        ("registry:B", "flag", ["edge_family"], 0, 0),
        ("roll:A", "exit", ["vehicle_owned"], 0, 1),
        ("roll:A", "exit", ["vehicle_owned"], 3, 3),  # off the list on day 2: a new episode
        ("roll:A", "exit", ["vehicle_owned", "member_deceased"], 4, 4),  # reasons changed: a new span
        ("roll:A", "flag", ["relative_not_filed"], 3, 3),
    ]


# --- work lists ------------------------------------------------------------------------------------------------


def test_candidates_for_a_caseworker_are_their_counties_masked(client: TestClient, store: Path,
                                                              tokens: dict[str, str]) -> None:
    for kind, name in (("exit", "exit_candidates"), ("inclusion", "inclusion_candidates"), ("flag", "flags")):
        body = client.get(f"/candidates?type={kind}&size=500", headers=auth(tokens["cw"])).json()
        expected = run_frame(store, name).filter(pl.col("county_code") == OWN)
        assert body["total"] == expected.height and len(body["items"]) == expected.height
        for item in body["items"]:
            assert item["county_code"] == OWN
            if item["head_id"]:
                assert pl.Series([item["head_id"]]).str.contains(MASKED_ID).item(), item["head_id"]
            if item["head_name"]:
                assert item["head_name"] == mask_name(item["head_name"]) and "*" in item["head_name"]
    other = client.get(f"/candidates?county={OTHER}", headers=auth(tokens["cw"])).json()
    assert other["total"] == 0 and other["items"] == []


def test_candidates_for_an_admin_are_complete_and_in_full(client: TestClient, store: Path,
                                                          tokens: dict[str, str]) -> None:
    exits = run_frame(store, "exit_candidates")
    body = client.get("/candidates?type=exit&size=500", headers=auth(tokens["admin"])).json()
    assert body["total"] == exits.height
    heads = dict(zip(exits["dibao_household_id"], exits["head_id"], strict=True))
    for item in body["items"]:
        assert item["head_id"] == heads[item["subject_id"]]
        assert isinstance(item["figures"], dict) and set(item["reasons"]) <= set(item["figures"])


def test_candidates_pagination_and_sorting(client: TestClient, tokens: dict[str, str]) -> None:
    admin = auth(tokens["admin"])
    first = client.get("/candidates?type=flag&size=7&sort=subject_id", headers=admin).json()
    seen: list[tuple[str, str]] = []
    for page in range(1, first["total"] // 7 + 2):
        body = client.get(f"/candidates?type=flag&size=7&page={page}&sort=subject_id", headers=admin).json()
        assert body["page"] == page and body["size"] == 7 and body["total"] == first["total"]
        seen.extend((i["subject_id"], i["reasons"][0]) for i in body["items"])
    assert len(seen) == first["total"] == len(set(seen))
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)
    beyond = client.get(f"/candidates?type=flag&size=7&page={first['total'] // 7 + 5}", headers=admin).json()
    assert beyond["items"] == [] and beyond["total"] == first["total"]
    towns = [i["town"] for i in client.get("/candidates?type=inclusion&size=500&sort=town", headers=admin)
             .json()["items"]]
    assert towns == sorted(towns)
    newest = client.get(f"/candidates?type=exit&size=500&sort=-first_seen&date={DATES[1]}", headers=admin).json()
    firsts = [i["first_seen"] for i in newest["items"]]
    assert firsts == sorted(firsts, reverse=True)


def test_candidates_filters(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    admin = auth(tokens["admin"])
    exits = run_frame(store, "exit_candidates")
    reason = exits.explode("reasons")["reasons"].value_counts(sort=True)["reasons"][0]
    body = client.get(f"/candidates?type=exit&reason={reason}&size=500", headers=admin).json()
    assert body["total"] == exits.filter(pl.col("reasons").list.contains(reason)).height > 0
    assert all(reason in i["reasons"] for i in body["items"])
    flags = run_frame(store, "flags")
    town, county, code = flags.select("town", "county_code", "code").row(0)
    body = client.get(f"/candidates?type=flag&county={county}&township={town}&reason={code}",
                      headers=admin).json()
    assert body["total"] == flags.filter((pl.col("town") == town) & (pl.col("code") == code)
                                         & (pl.col("county_code") == county)).height > 0
    assert client.get("/candidates?type=exit&county=ABC", headers=admin).status_code == 422
    assert client.get("/candidates?type=nope", headers=admin).status_code == 422
    assert client.get("/candidates?size=501", headers=admin).status_code == 422


def test_candidates_of_an_earlier_run_and_of_no_run(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    admin = auth(tokens["admin"])
    body = client.get(f"/candidates?type=exit&date={DATES[1]}&size=500", headers=admin).json()
    assert body["run"] == str(DATES[1]) and body["total"] == run_frame(store, "exit_candidates", DATES[1]).height
    problem(client.get("/candidates?date=2020-01-01", headers=admin), 404)
    problem(client.get("/candidates?date=not-a-date", headers=admin), 422)


# --- runs, diff, statistics ------------------------------------------------------------------------------------


def test_runs_lists_every_run_with_counts(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    runs = client.get("/runs", headers=auth(tokens["analyst"])).json()
    assert [r["date"] for r in runs] == [d.isoformat() for d in DATES]
    assert [r["served"] for r in runs] == [False, False, True]
    manifest = RunStore(store).manifest(LATEST)
    assert runs[-1]["counts"]["exit_candidates"] == manifest["decisions"]["exit_candidates"]  # type: ignore[index]
    assert runs[-1]["previous_run"] == str(DATES[1]) and runs[-1]["summary"] == manifest["summary"]
    assert "bank_assets" in runs[-1]["skipped"]


def test_diff_filters_scope_and_masks(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    diff = run_frame(store, "diff")
    admin = client.get(f"/runs/{LATEST}/diff?size=500", headers=auth(tokens["admin"])).json()
    assert admin["total"] == diff.height
    resolved = client.get(f"/runs/{LATEST}/diff?list=exit&change=resolved&size=500",
                          headers=auth(tokens["admin"])).json()
    assert resolved["total"] == diff.filter((pl.col("list") == "exit") & (pl.col("change") == "resolved")).height
    assert all(i["change_label"] == "已解决" and i["list_label"] == "应退尽退" for i in resolved["items"])
    mine = client.get(f"/runs/{LATEST}/diff?size=500", headers=auth(tokens["cw"])).json()
    assert mine["total"] == diff.filter(pl.col("county_code") == OWN).height
    assert {i["county_code"] for i in mine["items"]} <= {OWN}
    assert client.get(f"/runs/{LATEST}/diff?county={OTHER}", headers=auth(tokens["cw"])).json()["total"] == 0
    problem(client.get("/runs/2020-01-01/diff", headers=auth(tokens["admin"])), 404)
    problem(client.get("/runs/yesterday/diff", headers=auth(tokens["admin"])), 422)


def test_coverage_by_level_area_and_date(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    analyst = auth(tokens["analyst"])
    coverage = run_frame(store, "coverage")
    rows = client.get("/coverage", headers=analyst).json()
    assert len(rows) == coverage.height
    counties = client.get("/coverage?level=county&area=340402", headers=analyst).json()
    assert counties and {(r["level"], r["area_code"]) for r in counties} == {("county", "340402")}
    rural = next(r for r in counties if r["measure"] == "rural_dibao_coverage")
    assert rural["rate"] == pytest.approx(rural["numerator"] / rural["denominator"])
    assert rural["run_date"] == str(LATEST)
    assert client.get(f"/coverage?date={DATES[0]}", headers=analyst).json() == []  # an older run: no coverage file
    assert client.get(f"/coverage?date={DATES[1]}&level=province", headers=analyst).json()
    problem(client.get("/coverage?level=village", headers=analyst), 422)
    problem(client.get("/coverage?date=2020-01-01", headers=analyst), 404)


def test_coverage_trend_across_runs(client: TestClient, tokens: dict[str, str]) -> None:
    analyst = auth(tokens["analyst"])
    trend = client.get("/coverage/trend?measure=rural_dibao_coverage&level=province&area=340000",
                       headers=analyst).json()
    assert [r["run_date"] for r in trend] == [str(DATES[1]), str(LATEST)]  # the oldest run has no coverage
    assert all(r["measure"] == "rural_dibao_coverage" and r["area_code"] == "340000" for r in trend)
    assert client.get("/coverage/trend?measure=no_such_measure", headers=analyst).json() == []


def test_counts_are_aggregates(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    rows = client.get("/counts", headers=auth(tokens["admin"])).json()  # exact (an analyst's: tests/test_statistics_*)
    exits = run_frame(store, "exit_candidates")
    assert sum(r["count"] for r in rows if r["list"] == "exit") == exits["reasons"].list.len().sum()
    assert all(set(r) == {"county_code", "list", "reason", "reason_label", "count", "suppressed"} for r in rows)
    assert all(r["suppressed"] is False for r in rows)


# --- errors -----------------------------------------------------------------------------------------------------


def test_every_error_is_problem_json_without_internals(store: Path, tokens: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(store, store / "tokens.yaml", store / "audit-errors")
    with TestClient(app, raise_server_exceptions=False) as c:
        problem(c.get("/no/such/endpoint"), 404)
        problem(c.post("/health"), 405)

        def broken(date: dt.date) -> dict[str, Any]:
            raise RuntimeError("SELECT * FROM secret_table -- Traceback")

        monkeypatch.setattr(app.state.snapshots.files, "manifest", broken)
        body = problem(c.get("/runs", headers=auth(tokens["admin"])), 500)
        assert "secret" not in json.dumps(body)


def test_no_published_run_yet(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    admin = add_token(tokens_file, "a", "admin", [])
    with TestClient(create_app(tmp_path / "empty", tokens_file)) as c:
        assert c.get("/health").json() == {"status": "ok", "run": None}
        problem(c.get("/households/DB1", headers=auth(admin)), 503)
        assert c.get("/runs", headers=auth(admin)).json() == []
        assert c.get("/coverage", headers=auth(admin)).json() == []


# --- audit -------------------------------------------------------------------------------------------------------


def test_reads_are_audited_and_the_chain_verifies(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    cw = auth(tokens["cw"])
    person = person_only_in(store, OWN)
    before = dt.datetime.now(dt.UTC)
    client.get(f"/households/{person}", headers=cw)
    client.get("/candidates?type=flag&size=3", headers=cw)
    client.get(f"/runs/{LATEST}/diff?size=2", headers=cw)
    client.get("/households/NO-SUCH", headers=cw)
    client.get("/candidates", headers=auth(tokens["analyst"]))
    client.get("/coverage", headers=auth(tokens["analyst"]))  # aggregates: not audited
    audit_dir = store / "audit"
    mine = query_audit(audit_dir, user="大通区-经办", since=before)
    assert [(e["action"], e["status"]) for e in mine] == [
        ("household", 200), ("candidates", 200), ("diff", 200), ("household", 404)]
    assert mine[0]["count"] >= 1 and mine[0]["role"] == "caseworker"
    # the number looked up is kept as its keyed hash only (tests/test_audit_api.py: --find-id finds it)
    assert mine[0]["path"].startswith("/households/[id:") and person not in json.dumps(mine, ensure_ascii=False)
    assert mine[1]["query"] == "type=flag&size=3" and mine[1]["count"] <= 3
    denied = query_audit(audit_dir, user="省厅-分析", since=before)
    assert [(e["action"], e["status"]) for e in denied] == [("candidates", 403)]
    assert query_audit(audit_dir, action="diff", since=before, until=dt.datetime.now(dt.UTC)) == [mine[2]]
    ok, message = verify_chain(audit_dir)
    assert ok, message


def test_tampering_with_the_audit_log_is_detected(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    for i in range(5):
        log.append(user=f"u{i}", role="caseworker", action="household", path=f"/households/{i}", query="",
                   status=200, count=1)
    log.close()
    path = tmp_path / "audit" / "audit.jsonl"
    assert verify_chain(tmp_path / "audit")[0]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)

    path.write_text("".join([*lines[:2], lines[2].replace('"count":1', '"count":0'), *lines[3:]]), encoding="utf-8")
    ok, message = verify_chain(tmp_path / "audit")
    assert not ok and message.startswith("line 4")  # line 3 was edited: line 4 no longer chains to it

    path.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")
    ok, message = verify_chain(tmp_path / "audit")
    assert not ok and message.startswith("line 2")

    path.write_text("".join(lines), encoding="utf-8")
    assert verify_chain(tmp_path / "audit")[0]
    reopened = AuditLog(tmp_path / "audit")  # a restarted server continues the chain
    reopened.append(user="u5", role="admin", action="diff", path="/runs/x/diff", query="", status=200, count=0)
    reopened.close()
    assert verify_chain(tmp_path / "audit") == (True, verify_chain(tmp_path / "audit")[1])
    assert len(query_audit(tmp_path / "audit")) == 6


def test_concurrent_appends_keep_the_chain(tmp_path: Path) -> None:
    logs = [AuditLog(tmp_path / "audit") for _ in range(3)]  # as three worker processes would

    def write(log: AuditLog, n: int) -> None:
        for i in range(50):
            log.append(user=f"w{n}", role="admin", action="household", path="/", query=str(i), status=200)

    threads = [threading.Thread(target=write, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok, message = verify_chain(tmp_path / "audit")
    assert ok, message
    assert message.startswith("150 entries")


# --- tokens and masking --------------------------------------------------------------------------------------


def test_tokens_file_keeps_only_hashes(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    token = add_token(tokens_file, "张三", "caseworker", ["340402", "340403"])
    text = tokens_file.read_text(encoding="utf-8")
    assert token not in text and len(token) >= 40
    assert (tokens_file.stat().st_mode & 0o777) == 0o600
    (principal,) = load_tokens(tokens_file).values()
    assert principal.name == "张三" and principal.counties == {"340402", "340403"}
    with pytest.raises(TokenFileError):
        add_token(tokens_file, "张三", "admin", [])
    with pytest.raises(TokenFileError):
        add_token(tokens_file, "李四", "caseworker", [])
    with pytest.raises(TokenFileError):
        add_token(tokens_file, "李四", "superuser", [])
    with pytest.raises(TokenFileError):
        add_token(tokens_file, "李四", "caseworker", ["3404"])
    assert revoke_token(tokens_file, "张三") and not revoke_token(tokens_file, "张三")
    assert load_tokens(tokens_file) == {}


def test_tokens_added_or_revoked_while_serving(client: TestClient, store: Path, tokens: dict[str, str]) -> None:
    tokens_file = store / "tokens.yaml"
    late = add_token(tokens_file, "后来的分析", "analyst", [])
    deadline = time.monotonic() + 5
    while client.get("/runs", headers=auth(late)).status_code != 200:
        assert time.monotonic() < deadline, "a new token must work without a restart"
        time.sleep(0.2)
    revoke_token(tokens_file, "后来的分析")
    while client.get("/runs", headers=auth(late)).status_code != 401:
        assert time.monotonic() < deadline + 5, "a revoked token must stop working"
        time.sleep(0.2)


def test_masking() -> None:
    assert mask_id("340402198001011234") == "3404**********1234"
    assert mask_id("34040280010112") == "3404******0112"
    assert mask_name("张三") == "张*" and mask_name("王小明") == "王**"
    assert mask_name("欧阳娜娜") == "欧阳**" and mask_name("欧阳") == "欧*"
    assert mask_name("买买提·艾力") == "买**·**"
    assert mask_person_key("H:registry:4290050110050001:秦晓") == "H:registry:4290050110050001:秦*"
    assert mask_person_key("R:registry:12") == "R:registry:12"


def test_fast_id_check_agrees_with_check_id() -> None:
    import random

    from dibao.normalise.ids import usable_id_fast

    rng = random.Random(7)
    for _ in range(100):
        first17 = f"{rng.choice(['340402', '110101', '429005', '990426'])}{rng.randint(1890, 2030)}" \
                  f"{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}{rng.randint(0, 999):03d}"
        for candidate in (first17 + expected_check_char(first17), first17 + rng.choice("0123456789X")):
            checked = check_id(candidate)
            assert usable_id_fast(candidate) == (checked.id if checked.usable else None), candidate


# --- run switching --------------------------------------------------------------------------------------------


def test_a_newer_run_is_served_without_restart_or_failed_request(store: Path, tokens: dict[str, str],
                                                                 tmp_path: Path) -> None:
    live = tmp_path / "live"
    (live / "runs").mkdir(parents=True)
    shutil.copytree(store / "runs" / DATES[1].isoformat(), live / "runs" / DATES[1].isoformat())
    app = create_app(live, store / "tokens.yaml", tmp_path / "audit", refresh_seconds=0.1, limits=UNTHROTTLED)
    person = person_only_in(store, OWN)
    failures: list[str] = []
    seen: set[str] = set()
    served: list[int] = []
    stop = threading.Event()
    with TestClient(app) as c:
        assert c.get("/health").json()["run"] == str(DATES[1])

        def hammer() -> None:
            while not stop.is_set():
                for path in ("/health", f"/households/{person}", "/candidates?size=5"):
                    r = c.get(path, headers=auth(tokens["cw"]))
                    served.append(r.status_code)
                    if r.status_code != 200:
                        failures.append(f"{path}: {r.status_code} {r.text[:200]}")
                    elif path == "/health":
                        seen.add(r.json()["run"])

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        source = store / "runs" / LATEST.isoformat()

        def write(folder: Path) -> None:
            shutil.copytree(source, folder, dirs_exist_ok=True)

        with RunStore(live).lock():
            RunStore(live).publish(LATEST, write)  # exactly as the daily run publishes: rename into place
        deadline = time.monotonic() + 30
        while c.get("/health").json()["run"] != str(LATEST):
            assert time.monotonic() < deadline, "the newer run was not picked up"
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join()
        assert not failures, failures[:5]
        assert len(served) > 50
        assert seen == {str(DATES[1]), str(LATEST)}
        assert c.get("/runs", headers=auth(tokens["admin"])).json()[-1]["served"]
        body = c.get(f"/households/{person}", headers=auth(tokens["cw"])).json()
        assert body["run"] == str(LATEST) and len(body["households"][0]["history"]) == 2


# --- property-based: the OpenAPI schema, every operation, no 5xx ---------------------------------------------
# (schemathesis strategies with plain hypothesis: its lazy pytest loader does not run under pytest 9)

OPERATIONS = ["GET /health", "GET /households/{id}", "POST /households/lookup", "GET /candidates", "GET /runs",
              "GET /runs/{date}/diff", "GET /coverage", "GET /coverage/trend", "GET /counts"]


def test_every_operation_is_fuzzed(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    assert sorted(f"{method.upper()} {path}" for path in schema for method in schema[path]) == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("operation_name", OPERATIONS)
def test_openapi_property_no_server_errors(app: FastAPI, client: TestClient, tokens: dict[str, str],
                                           operation_name: str, mode: GenerationMode) -> None:
    method, path = operation_name.split(" ")
    if mode is GenerationMode.NEGATIVE and path in ("/health", "/runs"):
        pytest.skip("no parameters to make invalid")
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode, headers=auth(tokens["admin"])))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def no_server_error(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    no_server_error()
