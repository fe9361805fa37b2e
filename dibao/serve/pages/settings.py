"""How long a web page session lasts and how large a page is: configuration with documented defaults.

| variable | default | what |
|---|---|---|
| ``DIBAO_UI_SESSION_IDLE_MINUTES`` | 30 | a session unused this long ends (log in again) |
| ``DIBAO_UI_SESSION_HOURS`` | 10 | a session ends this long after log-in whatever its use (one working day) |
| ``DIBAO_UI_PAGE_SIZE`` | 50 | rows per page of a work list and of a run's changes |

A session never outlives its token: a revoked or expired token ends every session made with it at the next page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dibao.errors import ConfigError

_ENV = {"idle_minutes": "DIBAO_UI_SESSION_IDLE_MINUTES", "hours": "DIBAO_UI_SESSION_HOURS",
        "page_size": "DIBAO_UI_PAGE_SIZE"}


@dataclass(frozen=True)
class PageSettings:
    idle_minutes: int = 30
    hours: int = 10
    page_size: int = 50

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PageSettings:
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, variable in _ENV.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                raise ConfigError(f"{variable}={text!r} must be a whole number above 0")
            values[name] = int(text)
        settings = cls(**values)
        if settings.page_size > 500:
            raise ConfigError(f"{_ENV['page_size']}={settings.page_size}: at most 500 (the API's largest page)")
        return settings

    @property
    def idle_seconds(self) -> float:
        return self.idle_minutes * 60.0

    @property
    def lifetime_seconds(self) -> float:
        return self.hours * 3600.0
