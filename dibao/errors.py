"""Errors the operator sees. Each carries a message that names the file (and column, key or row) at fault."""

from __future__ import annotations


class DibaoError(Exception):
    """Base class: a fault the operator can act on; the CLI prints the message without a traceback."""

    exit_code = 1


class ConfigError(DibaoError):
    """A policy file (rules, parameters, header aliases, coverage) is malformed, or its folder is wrong."""

    exit_code = 3


class FileFault(DibaoError):
    """A whole input file cannot be loaded (missing column, numeric IDs, unreadable encoding…).

    Nothing of a drop with a file fault is published: a half-loaded drop would make wrong decisions.
    """

    exit_code = 2

    def __init__(self, file: str, reason: str, column: str | None = None) -> None:
        self.file = file
        self.column = column
        self.reason = reason
        where = f"{file}, column {column!r}" if column else file
        super().__init__(f"{where}: {reason}")


class DropFault(DibaoError):
    """One or more files of a drop have file-level faults; all of them are listed."""

    exit_code = 2

    def __init__(self, faults: list[FileFault]) -> None:
        self.faults = faults
        lines = "\n".join(f"  - {f}" for f in faults)
        super().__init__(f"the drop cannot be loaded ({len(faults)} file fault(s)):\n{lines}")


class StoreBusy(DibaoError):
    """Another run holds the store's lock."""

    exit_code = 75  # EX_TEMPFAIL: a scheduler may retry later


class UsageFault(DibaoError):
    """The command line is wrong (a date not written YYYY-MM-DD, an unknown option): nothing was run."""

    exit_code = 64  # EX_USAGE: distinct from 2 (the drop has file faults), so a scheduler can tell them apart
