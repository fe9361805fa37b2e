"""Every ```sh block of README.md runs as written against a fresh demo store, so the examples cannot rot.

The demo store is built the way ``make demo`` builds it: the sample drop published for 2026-11-20, and the next
day's drop (made from it by the nextday generator) for 2026-11-21. Each block then runs in bash (``set -e``) from
the repository root on its own copy of that store, with the README's paths pointed into a temporary folder:
``.venv/bin/`` → this interpreter's bin folder, ``.demo/`` → the copy, ``/tmp/`` → a private temporary folder,
and in a block that starts ``dibao serve``, port 8000 → a free port on 127.0.0.1. A block preceded by an HTML
comment ``<!-- not run … -->`` is skipped (``make demo`` / ``make test`` themselves).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SAMPLES = ROOT / "data" / "samples" / "drop"
NEXTDAY_MODULE = "dibao_synth.nextday"  # as the Makefile's demo target calls it
DEMO_DAYS = ("2026-11-20", "2026-11-21")
_NOT_RUN = re.compile(r"^<!--\s*not run\b.*-->$")
_PATHS = re.compile(r"\.venv/bin/|\.demo/|/tmp/")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    script: str
    run: bool

    @property
    def name(self) -> str:
        first = next(line for line in self.script.splitlines() if line.strip())
        return f"README.md:{self.line} {first.split('#')[0].strip()[:60]}"


def sh_blocks(text: str) -> list[Block]:
    """The ```sh blocks of ``text``; one whose fence has ``<!-- not run … -->`` on the line above is not run."""
    blocks = []
    for match in re.finditer(r"(?m)^```sh[ \t]*\n(.*?)^```[ \t]*$", text, re.DOTALL):
        line_above = text[:match.start()].rstrip().rsplit("\n", 1)[-1].strip()
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, match.group(1), not _NOT_RUN.match(line_above)))
    return blocks


BLOCKS = sh_blocks(README.read_text(encoding="utf-8"))


def _run(args: list[str | Path], cwd: Path = ROOT) -> None:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False,
                            env=_env())
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DIBAO_RULES"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``.demo`` as ``make demo`` leaves it: ``store/`` with the two demo days, and ``day2/``, the second drop."""
    folder = tmp_path_factory.mktemp("demo")
    store = folder / "store"
    _run([BIN / "dibao", "run", "--inputs", SAMPLES, "--date", DEMO_DAYS[0], "--store", store])
    _run([sys.executable, "-m", NEXTDAY_MODULE, SAMPLES, folder / "day2", "--seed", "1"])
    _run([BIN / "dibao", "run", "--inputs", folder / "day2", "--date", DEMO_DAYS[1], "--store", store])
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def localise(script: str, demo: Path, tmp: Path) -> str:
    """The README's paths pointed at this test's folders (one pass, so a replaced path is never replaced again)."""
    targets = {".venv/bin/": f"{BIN}/", ".demo/": f"{demo}/", "/tmp/": f"{tmp}/"}
    script = _PATHS.sub(lambda m: targets[m.group(0)], script)
    if "dibao serve" in script:
        script = re.sub(r"\b8000\b", str(_free_port()), script)
    return script


def test_the_readme_has_examples_to_run() -> None:
    assert sum(b.run for b in BLOCKS) >= 3
    assert [b for b in BLOCKS if not b.run] and all("make " in b.script for b in BLOCKS if not b.run)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.run], ids=lambda b: b.name)
def test_readme_block_runs(block: Block, demo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "demo"
    shutil.copytree(demo, copy)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    script = "set -eo pipefail\n" + localise(block.script, copy, private_tmp)
    # Its own session, so that whatever the block starts (a server) is ended with it, even when it fails.
    proc = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    assert proc.returncode == 0, f"{block.name} exited {proc.returncode}:\n{script}\n---\n{output}"
