"""Guards against a broken drop: a file that suddenly lost most of its rows must not make yesterday's cases
look resolved.

A county export that went wrong (an apostrophe before every code, a truncated transfer, the wrong sheet) can
still load: its rows are rejected one by one, or only a part of the file arrives. Published as it is, the next
diff would report every open case as resolved. So each file's accepted rows are compared with the previous
published run; a file that fell by more than the allowed share (or disappeared) stops the run and publishes
nothing, unless the operator confirms the drop with ``--accept-shrink`` (recorded in the manifest).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dibao.errors import DibaoError
from dibao.ingest import Drop

DEFAULT_MAX_SHRINK = 0.2  # a file may lose at most 20% of its accepted rows from one run to the next


@dataclass(frozen=True)
class Shrink:
    """One input file's accepted rows, today against the previous run."""

    stem: str
    previous_rows: int
    rows: int

    @property
    def share_lost(self) -> float:
        return 1 - self.rows / self.previous_rows if self.previous_rows else 0.0

    def describe(self) -> str:
        today = "今日缺失" if self.rows == 0 else f"今日 {self.rows:,} 行"
        english = "missing today" if self.rows == 0 else f"{self.rows:,}"
        return (f"{self.stem}: 上次运行接受 {self.previous_rows:,} 行，{today}，减少 {self.share_lost:.0%} "
                f"(accepted rows {self.previous_rows:,} → {english}, −{self.share_lost:.0%})")


class DropShrank(DibaoError):
    """Some input file lost more of its rows than allowed since the previous run."""

    exit_code = 5

    def __init__(self, shrinks: list[Shrink], max_shrink: float) -> None:
        self.shrinks = shrinks
        lines = "\n".join(f"  - {s.describe()}" for s in shrinks)
        super().__init__(
            f"与上次运行相比，输入文件行数骤减，未发布任何结果 (compared with the previous run, input files lost more "
            f"than {max_shrink:.0%} of their rows; nothing was published):\n{lines}\n"
            "请检查导出文件；若确属正常，可加 --accept-shrink 运行 (check the exports; if the drop is right, run "
            "again with --accept-shrink)")


def shrinks(drop: Drop, previous_manifest: dict[str, Any] | None, max_shrink: float) -> list[Shrink]:
    """Files whose accepted rows fell by more than ``max_shrink`` since the previous run (or that are gone)."""
    if not previous_manifest:
        return []
    found = []
    for stem, before in sorted(previous_manifest.get("inputs", {}).items()):
        previous_rows = int(before.get("rows_accepted", 0))
        today = drop.files.get(stem)
        shrink = Shrink(stem, previous_rows, today.rows_accepted if today else 0)
        if previous_rows and shrink.share_lost > max_shrink:
            found.append(shrink)
    return found


def guard_summary(found: list[Shrink], max_shrink: float, accepted: bool) -> dict[str, Any]:
    """What the manifest records of the guard."""
    return {"max_shrink": max_shrink, "accept_shrink": accepted,
            "shrunk": [asdict(s) | {"share_lost": round(s.share_lost, 4)} for s in found]}
