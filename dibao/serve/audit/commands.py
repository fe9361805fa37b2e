"""``dibao audit``: list entries, find who looked a number up, verify the log, anchor it.

    dibao audit [--store S] [--user U] [--since D] [--until D] [--action A]   # who read what
    dibao audit --find-id 340421199304072971                                  # who looked this number up
    dibao audit --verify [--anchor-dir DIR]                                   # chain, files, latest anchor
    dibao audit anchor [--store S] [--anchor-dir DIR] [--anchor-key FILE]     # write an anchor now

Paths and limits come from ``AuditSettings`` (environment variables, see ``settings``); the options here win.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from dibao.serve.audit.settings import AuditSettings

audit_commands = typer.Typer(help="The audit log: who read which household or list (or tried to); verify; anchor.")
console = Console(width=None if sys.stdout.isatty() else 140)

StoreOption = Annotated[Path, typer.Option("--store", help="Run store folder.")]
AuditDirOption = Annotated[Path | None, typer.Option(
    "--audit-dir", help="Audit folder (default: DIBAO_API_AUDIT or STORE/audit).")]
AnchorDirOption = Annotated[Path | None, typer.Option(
    "--anchor-dir", help="Where anchors are kept (default: DIBAO_AUDIT_ANCHOR or STORE/audit-anchors).")]
AnchorKeyOption = Annotated[Path | None, typer.Option(
    "--anchor-key", help="Anchor key file (default: DIBAO_AUDIT_ANCHOR_KEY or STORE/keys/audit-anchor.key).")]


def _settings(store: Path, audit_dir: Path | None, anchor_dir: Path | None = None,
              anchor_key: Path | None = None) -> AuditSettings:
    from dibao.serve.audit.settings import AuditSettings

    settings = AuditSettings.for_store(store, audit_dir)
    return replace(settings, anchor_dir=anchor_dir or settings.anchor_dir,
                   anchor_key_file=anchor_key or settings.anchor_key_file)


@audit_commands.callback(invoke_without_command=True)
def audit(
    ctx: typer.Context,
    store: StoreOption = Path("store"),
    audit_dir: AuditDirOption = None,
    user: Annotated[str | None, typer.Option("--user", help="Token name.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="YYYY-MM-DD[THH:MM].")] = None,
    until: Annotated[str | None, typer.Option("--until", help="YYYY-MM-DD[THH:MM].")] = None,
    action: Annotated[str | None, typer.Option("--action", help="household, candidates, diff, refused…")] = None,
    find_id: Annotated[str | None, typer.Option(
        "--find-id", help="An ID or household number (any form): the entries that looked it up.")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Check the chain across all files and the log against the latest anchor.")] = False,
    anchor_dir: AnchorDirOption = None,
    anchor_key: AnchorKeyOption = None,
) -> None:
    """Who looked up which household or read which list, or was refused, when, and what they got."""
    if ctx.invoked_subcommand is not None:
        return
    from dibao.serve.audit.query import find_id as entries_for
    from dibao.serve.audit.query import query_audit, verify_log

    settings = _settings(store, audit_dir, anchor_dir, anchor_key)
    if verify:
        result = verify_log(settings)
        for note in result.notes:
            console.print(f"[dim]note:[/] {note}", highlight=False)
        if result.ok:
            console.print(f"[green]intact[/] {result.message()}", highlight=False)
            return
        for problem in result.problems:
            console.print(f"[bold red]TAMPERED[/] {problem}", highlight=False)
        raise typer.Exit(1)
    filters = {"user": user, "since": since, "until": until, "action": action}
    if find_id is not None:
        tag, entries = entries_for(settings, find_id, **filters)
        title = f"audit log {settings.audit_dir}: {len(entries):,} entries for {tag}"
    else:
        entries = query_audit(settings.audit_dir, **filters)
        title = f"audit log {settings.audit_dir} ({len(entries):,} entries)"
    table = Table("seq", "time", "who", "role", "action", "what", "status", "results", title=title,
                  title_justify="left")
    for e in entries:
        what = str(e.get("path", "")) + (f"?{e['query']}" if e.get("query") else "")
        count = e.get("count")
        table.add_row(str(e.get("seq", "")), str(e.get("time", "")), str(e.get("user", "")), str(e.get("role", "")),
                      str(e.get("action", "")), what, str(e.get("status", "")), "-" if count is None else f"{count:,}")
    console.print(table)


@audit_commands.command("anchor")
def anchor(store: StoreOption = Path("store"), audit_dir: AuditDirOption = None, anchor_dir: AnchorDirOption = None,
           anchor_key: AnchorKeyOption = None) -> None:
    """Check the log since the latest anchor, then write its head (entries, hash, file, offset), signed with the
    anchor key, to the anchor folder. Run it from an account the service cannot act as (see the README)."""
    from dibao.serve.audit.anchor import write_anchor

    settings = _settings(store, audit_dir, anchor_dir, anchor_key)
    written = write_anchor(settings)  # AnchorError (a DibaoError) is printed by the CLI, exit 1
    console.print(f"anchored {written.entries:,} entries (head {written.head}, {written.file or '-'} at offset "
                  f"{written.offset:,}) as {written.describe()} in {settings.anchor_dir}", highlight=False)
