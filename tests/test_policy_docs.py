"""docs/POLICY.md is the policy reference the shipped rules point at, and the repository needs nothing outside it.

Every rule and parameter names its document and links to its own section; every link of the page resolves; and
no file of the repository points at a path a user of the repository does not have.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from dibao.policy_files import ELIGIBILITY, PARAMETERS, shipped

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "docs" / "POLICY.md"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (not - or _), spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors() -> set[str]:
    text = POLICY.read_text(encoding="utf-8")
    return {github_anchor(m.group(1)) for m in re.finditer(r"(?m)^#{1,6} (.+)$", text)}


def _references() -> list[tuple[str, str]]:
    rules = yaml.safe_load(shipped(ELIGIBILITY).read_text(encoding="utf-8"))["rules"]
    parameters = yaml.safe_load(shipped(PARAMETERS).read_text(encoding="utf-8"))["parameters"]
    return [(r["id"], r["reference"]) for r in rules] + [(name, p["reference"]) for name, p in parameters.items()]


@pytest.mark.parametrize(("key", "reference"), _references())
def test_each_rule_and_parameter_links_its_own_section(key: str, reference: str) -> None:
    assert reference.endswith(f"docs/POLICY.md#{key}"), reference
    assert key in _anchors(), f"docs/POLICY.md has no section {key}"
    cited = reference.removesuffix(f"docs/POLICY.md#{key}").strip(" ;")
    assert cited, f"{key}: the reference names no document"


def test_every_link_inside_the_page_resolves() -> None:
    links = set(re.findall(r"\]\(#([^)]+)\)", POLICY.read_text(encoding="utf-8")))
    assert links and not links - _anchors(), sorted(links - _anchors())


def test_no_file_points_outside_the_repository() -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    outside = ("DOMAIN" + ".md", "../" + "shared")  # spelled apart so that this file does not match itself
    found = []
    for name in filter(None, listed):
        path = ROOT / name
        if not path.is_file():
            continue  # listed by git but removed in the work tree
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if any(s in line for s in outside)]
    assert not found, found
