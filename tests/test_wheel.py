"""An installed wheel runs the daily job: the policy files travel as package data, not beside the source tree.

Built and installed without network: the wheel from a copy of the tree with the dev venv's setuptools
(``--no-build-isolation``), installed ``--no-deps --no-index`` into a fresh venv that sees the dev venv's
already-installed dependencies through a ``.pth`` file, then run from a folder outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "drop"


def _copy_source(target: Path) -> None:
    """The files git would commit (tracked or new, not ignored): no venv, caches, demo output or benchmark data."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():  # a file deleted in the work tree is still listed until the index changes
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)


def _run(args: list[str | Path], cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, cwd=cwd, env=env)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _clean_env() -> dict[str, str]:
    """The environment without anything that would point the installed package back at this tree."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DIBAO_RULES", "VIRTUAL_ENV")}


def test_the_installed_wheel_publishes_a_run_on_the_samples(tmp_path: Path) -> None:
    # Build from a copy, so the build leaves no build/ or egg-info in the working tree.
    source = tmp_path / "source"
    _copy_source(source)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
          "--check-build-dependencies", "--quiet", "-w", dist, source])
    (wheel,) = dist.glob("dibao-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        policy = sorted(n for n in archive.namelist() if n.startswith("dibao/policy/"))
    assert policy == [f"dibao/policy/{name}" for name in
                      ("coverage.yaml", "eligibility.yaml", "headers.yaml", "parameters.yaml")]

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (purelib / "dibao_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel])

    work = tmp_path / "elsewhere"
    shutil.copytree(SAMPLES, work / "drop")
    env = _clean_env()
    where = _run([python, "-c", "import dibao.policy_files as p; print(p.shipped('eligibility.yaml'))"],
                 cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(purelib), where  # the wheel's copy, not the source tree's
    _run([venv / "bin" / "dibao", "run", "--inputs", "drop", "--date", "2026-11-20", "--store", "store"],
         cwd=work, env=env)
    manifest = json.loads((work / "store" / "runs" / "2026-11-20" / "manifest.json").read_text(encoding="utf-8"))
    assert {manifest["rules"][k]["from"] for k in ("headers", "parameters", "eligibility", "coverage")} == {"shipped"}
    assert manifest["decisions"]["exit_candidates"] > 0
