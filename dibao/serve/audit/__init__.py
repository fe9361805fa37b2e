"""The audit log: who read which household or work list, or tried to, when, and what they got.

| module | what |
|---|---|
| ``log`` | the writer: hash-chained JSON lines, whole or nothing, rotated by size, reopened when replaced |
| ``files`` | the folder's files (``audit.jsonl``, rotated ``audit.NNNNNN.jsonl``, ``audit.lock``) |
| ``verify`` | the chain checked across all files |
| ``anchor`` | the head written elsewhere, signed with a key the service never reads; checked by ``verify_log`` |
| ``ids`` | ID and household numbers replaced by keyed hashes (``[id:…]``) |
| ``recorder``, ``middleware`` | what the service writes per request, bounded, with a budget for anonymous ones |
| ``settings``, ``keys``, ``query`` | where everything lives and its limits; key files; reading entries back |

The API has no endpoint that changes the log. Details and the threat model: dibao/serve/README.md, "Audit log".
"""

from __future__ import annotations

from dibao.serve.audit.log import GENESIS, AuditLog, AuditWriteError, line_hash
from dibao.serve.audit.query import find_id, query_audit, verify_log
from dibao.serve.audit.settings import AuditSettings
from dibao.serve.audit.verify import check_chain, verify_chain

__all__ = ["GENESIS", "AuditLog", "AuditSettings", "AuditWriteError", "check_chain", "find_id", "line_hash",
           "query_audit", "verify_chain", "verify_log"]
