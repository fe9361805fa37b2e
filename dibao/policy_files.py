"""Where the policy files are read from: a deployment's own rules folder first, else the copy shipped in the package.

The shipped files live in ``dibao/policy/`` as package data, so an installed wheel runs without the source tree.
A province (or a test) points ``--rules DIR`` or ``DIBAO_RULES`` at its own folder; each of the four files it holds
replaces the shipped one, each file it leaves out falls back to the shipped one. A folder that does not exist or
holds none of the four is refused: a mistyped path must not run on the shipped policy unnoticed.
"""

from __future__ import annotations

import atexit
import os
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

from dibao.errors import ConfigError

ENV_VAR = "DIBAO_RULES"
HEADERS = "headers.yaml"
PARAMETERS = "parameters.yaml"
ELIGIBILITY = "eligibility.yaml"
COVERAGE = "coverage.yaml"
FILES = (HEADERS, PARAMETERS, ELIGIBILITY, COVERAGE)

_extracted = ExitStack()  # only used if the package is imported from a zip, where data files have no path
atexit.register(_extracted.close)


def shipped(name: str) -> Path:
    """The path of one shipped policy file (``dibao/policy/NAME``), found through importlib.resources."""
    if name not in FILES:
        raise ValueError(f"{name!r} is not a policy file (one of {', '.join(FILES)})")
    resource = resources.files("dibao").joinpath("policy", name)
    if isinstance(resource, Path):
        return resource
    return _extracted.enter_context(resources.as_file(resource))


def rules_dir_from_env() -> Path | None:
    """The folder named by ``DIBAO_RULES``, or None when it is unset or empty."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value) if value else None


def check_rules_dir(rules_dir: Path) -> None:
    """Refuse a rules folder that does not exist or holds none of the policy files (exit code 3)."""
    if not rules_dir.is_dir():
        raise ConfigError(f"{rules_dir}: rules folder not found (--rules / {ENV_VAR})")
    if not any((rules_dir / name).is_file() for name in FILES):
        raise ConfigError(f"{rules_dir}: the rules folder holds none of {', '.join(FILES)} "
                          f"(--rules / {ENV_VAR}); a file left out falls back to the shipped one, "
                          f"but an empty folder is most likely a wrong path")


def policy_path(name: str, rules_dir: Path | None = None) -> Path:
    """``rules_dir/NAME`` when the folder has that file, else the shipped file."""
    if rules_dir is not None:
        check_rules_dir(rules_dir)
        own = rules_dir / name
        if own.is_file():
            return own
    return shipped(name)
