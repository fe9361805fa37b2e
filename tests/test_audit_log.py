"""The audit log on its own (dibao/serve/audit/): whole-or-nothing entries, rotation with one chain across files,
reopening a removed file, keyed hashes of numbers, the anonymous budget, and anchors that catch a cut, rewritten
or deleted log. The API side (what a request writes) is tests/test_audit_api.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dibao.serve.audit import AuditLog, AuditSettings, AuditWriteError, find_id, query_audit, verify_chain, verify_log
from dibao.serve.audit.anchor import ANCHORS, AnchorError, anchor_after_run, write_anchor
from dibao.serve.audit.files import ACTIVE, log_files, rotated_files
from dibao.serve.audit.ids import IdHasher, tags_in
from dibao.serve.audit.log import GENESIS, line_hash
from dibao.serve.audit.recorder import AuditRecorder, TokenBucket
from dibao.serve.audit.settings import AuditSettingsError
from tests.conftest import make_id


def entry(log: AuditLog, i: int, **extra: Any) -> dict[str, object]:
    return log.append(user=f"u{i}", role="caseworker", action="household", path=f"/households/[id:{i:032x}]",
                      query="", status=200, count=1, **extra)


def audit_settings(tmp_path: Path, **overrides: Any) -> AuditSettings:
    return AuditSettings.for_store(tmp_path / "store", environ={}, **overrides)


def rehash(path: Path) -> None:
    """Re-chain a file after editing it, as someone covering their tracks would."""
    prev = GENESIS
    out = []
    for raw in path.read_bytes().splitlines():
        record = json.loads(raw)
        record["prev"] = prev
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        prev = line_hash(line)
        out.append(line + b"\n")
    path.write_bytes(b"".join(out))


# --- the chain ---------------------------------------------------------------------------------------------


def test_an_edited_removed_or_inserted_entry_is_named_by_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    for i in range(5):
        entry(log, i)
    log.close()
    path = tmp_path / "audit" / ACTIVE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert verify_chain(tmp_path / "audit") == (True, verify_chain(tmp_path / "audit")[1])

    path.write_text("".join([*lines[:2], lines[2].replace('"count":1', '"count":0'), *lines[3:]]), encoding="utf-8")
    ok, message = verify_chain(tmp_path / "audit")
    assert not ok and message.startswith("line 4 of audit.jsonl: does not chain"), message

    path.write_text("".join([*lines[:3], lines[1], *lines[3:]]), encoding="utf-8")
    ok, message = verify_chain(tmp_path / "audit")
    assert not ok and message.startswith("line 4 of audit.jsonl: sequence number is 2, expected 4"), message

    path.write_text("".join(lines[1:]), encoding="utf-8")  # the first entry removed
    ok, message = verify_chain(tmp_path / "audit")
    assert not ok and "entries 1–1 are missing" in message


def test_rotation_carries_the_chain_across_files_and_a_missing_file_is_a_gap(tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    log = AuditLog(audit_dir, max_file_bytes=4096)
    for i in range(60):
        entry(log, i)
    log.close()
    rotated = rotated_files(audit_dir)
    assert len(rotated) >= 3
    assert all(path.stat().st_size <= 4096 for path in log_files(audit_dir))
    ok, message = verify_chain(audit_dir)
    assert ok and message.startswith(f"60 entries in {len(rotated) + 1} file(s)"), message
    assert [e["seq"] for e in query_audit(audit_dir)] == list(range(1, 61))
    first_of_second = json.loads(rotated[1][1].read_bytes().splitlines()[0])
    last_of_first = rotated[0][1].read_bytes().splitlines()[-1]
    assert first_of_second["prev"] == line_hash(last_of_first)  # the chain goes on in the next file

    middle = rotated[1][1]
    kept = middle.read_bytes()
    middle.unlink()
    ok, message = verify_chain(audit_dir)
    assert not ok and message.startswith(f"gap between {rotated[0][1].name}"), message
    middle.write_bytes(kept)

    rotated[0][1].unlink()  # the oldest file gone: a fault, unless retention removed it
    ok, message = verify_chain(audit_dir)
    assert not ok and "are missing" in message
    ok, message = verify_chain(audit_dir, pruning_allowed=True)
    assert ok, message


def test_keep_files_bounds_the_folder_and_verify_accepts_retention(tmp_path: Path) -> None:
    settings_ = audit_settings(tmp_path, max_file_bytes=4096, keep_files=2)
    log = AuditLog(settings_.audit_dir, max_file_bytes=4096, keep_files=2)
    for i in range(200):
        entry(log, i)
    log.close()
    assert len(rotated_files(settings_.audit_dir)) == 2
    assert sum(p.stat().st_size for p in log_files(settings_.audit_dir)) <= 3 * 4096
    result = verify_log(settings_)
    assert result.ok, result.message()
    assert any("retention" in note for note in result.notes)


# --- whole entries or none -----------------------------------------------------------------------------------


def test_a_short_write_leaves_the_log_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = AuditLog(tmp_path / "audit")
    entry(log, 0)
    path = tmp_path / "audit" / ACTIVE
    size = path.stat().st_size
    real_write = os.write

    def half(fd: int, data: bytes) -> int:  # a nearly full disk: only part of the line fits
        return real_write(fd, data[: len(data) // 2])

    with monkeypatch.context() as patched:
        patched.setattr(os, "write", half)
        with pytest.raises(AuditWriteError, match="short write"):
            entry(log, 1)
    assert path.stat().st_size == size  # cut back: no half entry
    assert verify_chain(tmp_path / "audit")[0]
    written = entry(log, 2)
    assert written["seq"] == 2
    ok, message = verify_chain(tmp_path / "audit")
    assert ok and message.startswith("2 entries"), message


def test_a_line_cut_by_a_crash_is_removed_by_the_next_entry(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    entry(log, 0)
    path = tmp_path / "audit" / ACTIVE
    with path.open("ab") as fh:
        fh.write(b'{"seq":2,"time":"2026-')  # power cut mid-write
    ok, message = verify_chain(tmp_path / "audit")
    assert not ok and "incomplete last line" in message
    later = AuditLog(tmp_path / "audit")  # the restarted server
    written = entry(later, 1)
    assert written["seq"] == 2 and written["repaired_bytes"] == len(b'{"seq":2,"time":"2026-')
    assert verify_chain(tmp_path / "audit")[0]


def test_a_removed_or_replaced_log_is_reopened_and_the_loss_shows(tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    log = AuditLog(audit_dir)
    for i in range(3):
        entry(log, i)
    (audit_dir / ACTIVE).unlink()
    written = entry(log, 3)
    assert (audit_dir / ACTIVE).exists() and written["seq"] == 4
    assert [e["seq"] for e in query_audit(audit_dir)] == [4]  # not written into the removed file
    ok, message = verify_chain(audit_dir)
    assert not ok and "entries 1–3 are missing" in message

    replacement = tmp_path / "other.jsonl"
    replacement.write_bytes(b"")
    os.replace(replacement, audit_dir / ACTIVE)
    entry(log, 4)
    assert [e["seq"] for e in query_audit(audit_dir)] == [5]


def test_concurrent_writers_keep_one_chain_through_rotation(tmp_path: Path) -> None:
    import threading

    logs = [AuditLog(tmp_path / "audit", max_file_bytes=8192) for _ in range(3)]  # as three workers would

    def write(log: AuditLog, n: int) -> None:
        for i in range(60):
            entry(log, n * 100 + i)

    threads = [threading.Thread(target=write, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok, message = verify_chain(tmp_path / "audit")
    assert ok and message.startswith("180 entries"), message
    assert len(rotated_files(tmp_path / "audit")) >= 2


def test_a_synced_entry_is_durable_before_append_returns_and_concurrent_entries_share_a_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: every ``sync=True`` append returns only after an fdatasync that began once its line was in the
    file, and threads waiting together share flushes instead of queueing one flush each."""
    import threading
    import time

    log = AuditLog(tmp_path / "audit", max_file_bytes=16384)  # rotations on the way: a descriptor swap syncs too
    durable_up_to = [0]  # bytes of the active file covered by the last finished flush
    flushes = [0]
    guard = threading.Lock()
    real_fdatasync = os.fdatasync

    def active_inode() -> int | None:
        try:
            return (tmp_path / "audit" / ACTIVE).stat().st_ino
        except FileNotFoundError:  # between a rotation's rename and the new active file
            return None

    def slow_fdatasync(fd: int) -> None:  # a disk flush takes a while: others write meanwhile
        size = os.fstat(fd).st_size
        time.sleep(0.004)
        real_fdatasync(fd)
        with guard:
            flushes[0] += 1
            durable_up_to[0] = size if os.fstat(fd).st_ino == active_inode() else 0

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    failures: list[str] = []

    def write(n: int) -> None:
        try:
            write_entries(n)
        except BaseException as exc:  # a thread's error fails the test, not only a warning after it
            with guard:
                failures.append(f"writer {n}: {exc!r}")

    def write_entries(n: int) -> None:
        for i in range(25):
            written = entry(log, n * 100 + i, sync=True)
            try:
                raw = (tmp_path / "audit" / ACTIVE).read_bytes()
            except FileNotFoundError:  # rotated away since: the sealed file was synced when it was retired
                raw = b""
            line = json.dumps(written, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            end = raw.find(line)
            with guard:
                if end >= 0 and end + len(line) > durable_up_to[0]:  # still in the active file, yet not flushed
                    failures.append(f"entry {written['seq']} returned before a flush covered it")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert verify_chain(tmp_path / "audit")[0]
    assert flushes[0] < 200 * 0.75, f"{flushes[0]} flushes for 200 entries: no grouping"


def test_entries_awaited_on_an_event_loop_are_flushed_before_their_wait_ends_and_share_flushes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The event-loop form of the group commit (``append(defer_to=…)``, then ``await durable``): the entry is in the
    file at once; the wait ends only after an fdatasync that began once the entry was written; many lookups in
    flight share flushes; entries nobody asked to sync are never waited for."""
    import asyncio
    import time

    log = AuditLog(tmp_path / "audit")
    flushed_through: list[int] = []  # the highest entry written when each flush began
    real_fdatasync = os.fdatasync

    def slow_fdatasync(fd: int) -> None:
        began_with = log.head[0]
        time.sleep(0.003)
        real_fdatasync(fd)
        flushed_through.append(began_with)

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)

    async def lookup(i: int) -> None:
        await asyncio.sleep(0.001 * (i % 7))
        tickets: list[int] = []
        written = entry(log, i, sync=True, defer_to=tickets)
        unsynced = entry(log, 1000 + i, defer_to=tickets)  # sync not asked: no ticket
        seq = written["seq"]
        assert isinstance(seq, int) and tickets == [seq] and unsynced["seq"] == seq + 1
        line = json.dumps(written, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        assert line in (tmp_path / "audit" / ACTIVE).read_bytes()  # in the file before anyone waits
        await log.durable(tickets[0])
        assert max(flushed_through) >= seq, "wait ended before a flush covered the entry"

    async def many() -> None:
        await asyncio.gather(*(lookup(i) for i in range(60)))

    asyncio.run(many())
    log.close()
    assert verify_chain(tmp_path / "audit")[0]
    assert len(flushed_through) < 60 * 0.75, f"{len(flushed_through)} flushes for 60 awaited entries: no grouping"


def test_a_failed_flush_fails_every_lookup_waiting_on_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    log = AuditLog(tmp_path / "audit")

    def broken_disk(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken_disk)

    async def lookup(i: int) -> str:
        tickets: list[int] = []
        entry(log, i, sync=True, defer_to=tickets)
        try:
            await log.durable(tickets[0])
        except AuditWriteError as exc:
            return f"refused: {exc}"
        return "answered"

    async def many() -> list[str]:
        return await asyncio.gather(*(lookup(i) for i in range(5)))

    outcomes = asyncio.run(many())
    monkeypatch.undo()
    log.close()
    assert all(o.startswith("refused") and "not made durable" in o for o in outcomes), outcomes


# --- numbers hashed --------------------------------------------------------------------------------------------


def test_a_number_hashes_the_same_in_any_form_and_only_with_the_key(tmp_path: Path) -> None:
    ids = IdHasher(b"k" * 32)
    canonical = make_id()  # 18 digits
    forms = [canonical, canonical.lower(), f" {canonical[:6]} {canonical[6:14]}-{canonical[14:]} ",
             canonical.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")), f"\u202d{canonical}\u202c"]
    assert len({ids.tag(f) for f in forms}) == 1
    old = canonical[:6] + canonical[8:17]  # the same person's 15-digit ID
    assert ids.tag(old) == ids.tag(canonical)
    assert IdHasher(b"j" * 32).tag(canonical) != ids.tag(canonical)
    assert ids.tag("DB340402000001") == ids.tag("db340402000001") != ids.tag("DB340402000002")

    assert ids.scrub_path(f"/households/{canonical}", 256) == f"/households/{ids.tag(canonical)}"
    assert ids.scrub_path("/households/DB1", 256) == f"/households/{ids.tag('DB1')}"
    assert ids.scrub_path("/runs/2026-11-20/diff", 256) == "/runs/2026-11-20/diff"  # dates stay
    assert ids.scrub_query("county=340402&type=exit", 256) == "county=340402&type=exit"  # county codes stay
    scrubbed = ids.scrub_query(f"township=%E5%A4%A7{canonical}&x=3404021980%2D0101123", 256)
    assert canonical not in scrubbed and "3404021980" not in scrubbed and scrubbed.startswith("township=大")
    assert len(ids.scrub_path("/households/" + "9" * 60_000, 256)) < 400
    assert len(ids.scrub("/x/" + "9" * 60_000, 256)) < 400


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789０１２３４５６７８９ -./=&?abcXx大\u200b%"), max_size=3000))
def test_no_run_of_ten_digits_survives_scrubbing(text: str) -> None:
    ids = IdHasher(b"k" * 32)
    for scrubbed in (ids.scrub(text, 256), ids.scrub_path(text, 256), ids.scrub_query(text, 256)):
        plain = re.sub(r"\[id:[0-9a-f]{32}\]", "", scrubbed)
        digits_per_run = [sum(c.isdigit() for c in m.group(0))
                          for m in re.finditer(r"[0-9A-Za-z]+(?:[\s\-.'’‘`\u200b]+[0-9A-Za-z]+)*", plain)]
        assert max(digits_per_run, default=0) < 10, scrubbed
        assert len(scrubbed) <= 256 + 40


def test_find_id_lists_the_entries_that_looked_a_number_up(tmp_path: Path) -> None:
    settings_ = audit_settings(tmp_path)
    recorder = AuditRecorder(settings_)
    person, other = make_id(), make_id(seq="456")
    recorder.record(user="cw", role="caseworker", action="household", path=f"/households/{person}", query="",
                    status=200, count=1, served=True)
    recorder.record(user="cw", role="caseworker", action="household", path=f"/households/{other}", query="",
                    status=404)
    recorder.record(user=None, role=None, action="household", path=f"/households/{person.lower()}", query="",
                    status=401)
    recorder.close()
    text = (settings_.audit_dir / ACTIVE).read_text(encoding="utf-8")
    assert person not in text and other not in text and person[:12] not in text
    assert len(tags_in(text)) == 3
    tag, found = find_id(settings_, f"{person[:6]} {person[6:]}")
    assert [(e["user"], e["status"]) for e in found] == [("cw", 200), (None, 401)]
    assert all(tag in e["path"] for e in found)
    assert (settings_.hmac_key_file.stat().st_mode & 0o777) == 0o600
    assert settings_.hmac_key_file.parent != settings_.audit_dir


# --- the anonymous budget ------------------------------------------------------------------------------------


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert [bucket.take() for _ in range(2)] == [True, False]


def test_anonymous_floods_are_counted_not_written(tmp_path: Path) -> None:
    now = [0.0]
    recorder = AuditRecorder(audit_settings(tmp_path, anonymous_per_second=1.0, anonymous_burst=5),
                             clock=lambda: now[0])
    for _ in range(1000):
        recorder.record(user=None, role=None, action="refused", path="/households/" + "9" * 2000, query="",
                        status=414)
    recorder.record(user="cw", role="caseworker", action="household", path="/households/x", query="", status=404)
    now[0] = 10.0
    recorder.record(user=None, role=None, action="coverage", path="/coverage", query="", status=401)
    recorder.close()
    entries = query_audit(recorder.settings.audit_dir)
    assert [(e["action"], e["count"]) for e in entries] == [
        *[("refused", None)] * 5, ("suppressed", 995), ("household", None), ("coverage", None)]
    assert max(len(json.dumps(e, ensure_ascii=False)) for e in entries) < 1000


# --- anchors ---------------------------------------------------------------------------------------------------


def logged(tmp_path: Path, n: int, **overrides: Any) -> AuditSettings:
    settings_ = audit_settings(tmp_path, **overrides)
    log = AuditLog(settings_.audit_dir, max_file_bytes=settings_.max_file_bytes)
    for i in range(n):
        entry(log, i)
    log.close()
    return settings_


def test_an_anchor_catches_a_cut_log(tmp_path: Path) -> None:
    settings_ = logged(tmp_path, 10)
    anchor = write_anchor(settings_)
    assert (anchor.entries, anchor.file, anchor.number) == (10, ACTIVE, 1)
    assert verify_log(settings_).ok
    path = settings_.audit_dir / ACTIVE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:7]))
    assert verify_chain(settings_.audit_dir)[0]  # a shorter chain is still a chain…
    result = verify_log(settings_)
    assert not result.ok and "ends at entry 7" in result.message() and "recorded 10" in result.message()
    with pytest.raises(AnchorError, match="entries 8–10 were removed"):
        write_anchor(settings_)


def test_an_anchor_catches_a_rewritten_and_rehashed_log(tmp_path: Path) -> None:
    settings_ = logged(tmp_path, 10)
    write_anchor(settings_)
    path = settings_.audit_dir / ACTIVE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines[:4], lines[4].replace('"user":"u4"', '"user":"someone"'), *lines[5:]]),
                    encoding="utf-8")
    rehash(path)
    assert verify_chain(settings_.audit_dir)[0]  # re-hashed: the chain alone cannot tell
    result = verify_log(settings_)
    assert not result.ok and "entry 10 is not the one" in result.message() and "rewritten" in result.message()


@pytest.mark.parametrize("how", ["deleted", "emptied", "folder removed"])
def test_an_anchor_catches_a_deleted_log(tmp_path: Path, how: str) -> None:
    settings_ = logged(tmp_path, 4)
    write_anchor(settings_)
    path = settings_.audit_dir / ACTIVE
    if how == "deleted":
        path.unlink()
    elif how == "emptied":
        path.write_bytes(b"")
    else:
        import shutil

        shutil.rmtree(settings_.audit_dir)
    result = verify_log(settings_)
    assert not result.ok and "missing or empty" in result.message(), result.message()


def test_anchors_themselves_cannot_be_forged_or_removed_unnoticed(tmp_path: Path) -> None:
    settings_ = logged(tmp_path, 3)
    write_anchor(settings_)
    anchors = settings_.anchor_dir / ANCHORS
    record = json.loads(anchors.read_bytes())
    record["entries"] = 1  # pretend less was ever logged
    anchors.write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = verify_log(settings_)
    assert not result.ok and "signature does not match" in result.message()
    anchors.unlink()
    result = verify_log(settings_)
    assert not result.ok and "have been removed" in result.message()
    assert settings_.anchor_key_file.parent != settings_.audit_dir
    assert (settings_.anchor_key_file.stat().st_mode & 0o777) == 0o600


def test_anchoring_goes_on_from_the_last_anchor_across_rotation(tmp_path: Path) -> None:
    settings_ = logged(tmp_path, 5, max_file_bytes=4096)
    assert write_anchor(settings_).entries == 5
    log = AuditLog(settings_.audit_dir, max_file_bytes=4096)
    for i in range(5, 80):
        entry(log, i)
    log.close()
    assert len(rotated_files(settings_.audit_dir)) >= 2
    second = write_anchor(settings_)
    assert (second.number, second.entries) == (2, 80)
    assert verify_log(settings_).ok
    # An old file rewritten and re-hashed on its own no longer chains to the next file: the full check says so
    # (the daily anchor checks only what came after the previous anchor).
    oldest, following = (path for _, path in rotated_files(settings_.audit_dir)[:2])
    oldest.write_text(oldest.read_text(encoding="utf-8").replace('"user":"u1"', '"user":"x"'), encoding="utf-8")
    rehash(oldest)
    result = verify_log(settings_)
    assert not result.ok
    assert f"line 1 of {following.name}: does not chain to the last entry of {oldest.name}" in result.message()
    # re-hashed to the end, the chain holds again, but the anchored head no longer matches
    chained = b"".join(p.read_bytes() for p in log_files(settings_.audit_dir))
    for path in log_files(settings_.audit_dir):
        path.unlink()
    (settings_.audit_dir / ACTIVE).write_bytes(chained)
    rehash(settings_.audit_dir / ACTIVE)
    assert verify_chain(settings_.audit_dir)[0]
    result = verify_log(settings_)
    assert not result.ok and "entry 80 is not the one anchor #2" in result.message()
    with pytest.raises(AnchorError, match="rewritten"):
        write_anchor(settings_)


def test_the_daily_run_anchor_never_raises_and_skips_a_store_without_a_log(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    assert anchor_after_run(store) is None and not (store / "audit-anchors").exists()
    settings_ = logged(tmp_path, 2)
    assert settings_.audit_dir == store / "audit"
    anchor = anchor_after_run(store)
    assert anchor is not None and anchor.entries == 2
    (settings_.audit_dir / ACTIVE).unlink()
    assert anchor_after_run(store) is None
    assert "missing or empty" in caplog.text


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {"DIBAO_AUDIT_MAX_FILE_BYTES": "1048576", "DIBAO_AUDIT_KEEP_FILES": "12", "DIBAO_AUDIT_FSYNC": "all",
           "DIBAO_AUDIT_ANCHOR": str(tmp_path / "elsewhere"), "DIBAO_AUDIT_ANCHOR_KEY": str(tmp_path / "k.key")}
    got = AuditSettings.for_store(tmp_path / "store", environ=env)
    assert (got.max_file_bytes, got.keep_files, got.fsync) == (1048576, 12, "all")
    assert got.anchor_dir == tmp_path / "elsewhere" and got.audit_dir == tmp_path / "store" / "audit"
    defaults = AuditSettings.for_store(tmp_path / "store", environ={})
    assert (defaults.keep_files, defaults.fsync, defaults.max_file_bytes) == (None, "served", 64 * 1024 * 1024)
    for bad in ({"DIBAO_AUDIT_FSYNC": "sometimes"}, {"DIBAO_AUDIT_MAX_FILE_BYTES": "10"},
                {"DIBAO_AUDIT_ANONYMOUS_PER_SECOND": "-1"}):
        with pytest.raises(AuditSettingsError):
            AuditSettings.for_store(tmp_path, environ=bad)
