"""Issue 13, findings 1 and 8 at the HTTP-server level: a real ``python -m dibao.serve`` on 127.0.0.1 (as in
tests/test_api_process.py). A flood of anonymous 60 KB paths leaves the audit log bounded; a URL over 64 KB, a
20 MB ``Authorization`` header and a malformed request are answered as problem+json, quickly and without the
request being processed; the refusals are in the audit log. Loops are bounded in count and time."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dibao.pipeline import run_daily
from dibao.publish.store import RunStore
from dibao.serve.audit import query_audit, verify_chain
from dibao.serve.tokens import add_token
from tests.real_server import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
DATE = dt.date(2026, 11, 20)
Server = tuple[str, Path, dict[str, str]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("audit-process")
    store = root / "store"
    run_daily(ROOT / "data" / "samples" / "drop", DATE, RunStore(store))
    tokens = {"cw": add_token(store / "tokens.yaml", "cw", "caseworker", ["340402"])}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dibao.serve", "--store", str(store), "--host", "127.0.0.1", "--port", str(port)]
    env = {"DIBAO_AUDIT_ANONYMOUS_PER_SECOND": "5", "DIBAO_AUDIT_ANONYMOUS_BURST": "100"}
    with serving(command, root / "server.log", base, env=env, start_seconds=60):
        yield base, store, tokens


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


def audit_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "audit").glob("audit*.jsonl"))


def raw_exchange(base: str, request: bytes, *, chunk: int = 65536, seconds: float = 20) -> tuple[bytes, float]:
    """Send ``request`` over a plain socket (what a client that does not wait would do), then read the answer."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=seconds) as s:
        try:
            for start in range(0, len(request), chunk):
                s.sendall(request[start:start + chunk])
        except OSError:
            pass  # the server answered and stopped reading: the answer is still there to read
        answer = b""
        try:
            while data := s.recv(65536):
                answer += data
        except OSError:
            pass
    return answer, time.monotonic() - started


def test_a_flood_of_anonymous_60kb_paths_leaves_the_log_bounded(server: Server) -> None:
    base, store, _ = server
    before = audit_bytes(store)
    started = time.monotonic()
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(751):  # the finding: 751 requests added 43 MiB
            assert_problem(client.get("/households/" + "9" * 60_000), 414)
            assert time.monotonic() - started < 120, "flood took too long"
        assert client.get("/health").json()["status"] == "ok"
    grown = audit_bytes(store) - before
    assert grown < 150_000, grown
    assert verify_chain(store / "audit")[0]
    refused = [e for e in query_audit(store / "audit") if e["action"] == "refused"]
    assert refused and all(e["status"] == 414 and "9" * 20 not in json.dumps(e) for e in refused)


def test_a_url_over_64kb_is_problem_json_414(server: Server) -> None:
    base, _, _ = server
    # plain-text "400 Invalid HTTP request received." before (httpx itself refuses to send so long a URL)
    answer, seconds = raw_exchange(base, b"GET /households/" + b"9" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 ") and b"content-type: application/problem+json" in head, answer[:300]
    assert "URL is too long" in json.loads(body)["detail"] and seconds < 10


def test_a_20mb_authorization_header_is_refused_quickly_and_not_processed(server: Server) -> None:
    base, store, _ = server
    # The flood above spent the anonymous requests' audit budget (5 entries a second here): a refusal sent the
    # instant after it is counted into a ``suppressed`` entry, not written on its own. Let the budget refill.
    time.sleep(1.0)
    seen = len(query_audit(store / "audit"))
    started = time.monotonic()
    response = httpx.get(f"{base}/households/DB340402000001", timeout=30,
                         headers={"Authorization": "Bearer " + "a" * 20_000_000})
    elapsed = time.monotonic() - started
    body = assert_problem(response, 431)
    assert "headers too large" in str(body["detail"])
    assert elapsed < 10, elapsed  # 5.5 s to be read whole and answered 401 before
    new = query_audit(store / "audit")[seen:]
    assert [(e["action"], e["status"]) for e in new if e["action"] != "suppressed"] == [("refused", 431)]

    answer, seconds = raw_exchange(base, b"GET /households/DB1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                   + b"a" * 20_000_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ") and b"application/problem+json" in answer, answer[:200]
    assert seconds < 10


def test_a_malformed_request_is_problem_json_400(server: Server) -> None:
    base, _, _ = server
    answer, _ = raw_exchange(base, b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/problem+json" in head, answer[:300]
    assert json.loads(body)["status"] == 400


def test_a_lookup_after_the_refusals_still_works(server: Server) -> None:
    base, store, tokens = server
    with httpx.Client(base_url=base, timeout=10) as client:
        response = client.get("/households/DB340402000001", headers={"Authorization": f"Bearer {tokens['cw']}"})
    assert response.status_code in (200, 404)
    assert verify_chain(store / "audit")[0]
