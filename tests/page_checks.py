"""An accessibility check of a page's HTML (WCAG basics that can be read from the markup): the page says its
language is Chinese, has one h1 and a main landmark, every form control has a label (a <label for>, a wrapping
label, or aria-label/aria-labelledby), every image has alt text and every SVG a title, no positive tabindex
(which breaks the reading order), ids are unique, and nothing is loaded from another host or run inline."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

LABELLED_BY_ARIA = ("aria-label", "aria-labelledby")


@dataclass
class _Control:
    tag: str
    id: str | None
    attrs: dict[str, str | None]
    in_label: bool


@dataclass
class PageAudit(HTMLParser):
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.h1 = 0
        self.main = 0
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.controls: list[_Control] = []
        self.label_depth = 0
        self.svg_depth = 0
        self.svg_titled: list[bool] = []
        self.svg_count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "main":
            self.main += 1
        elif tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        elif tag in ("input", "select", "textarea"):
            if a.get("type") not in ("hidden", "submit", "button"):
                self.controls.append(_Control(tag, a.get("id"), a, self.label_depth > 0))
        elif tag == "img" and not a.get("alt"):
            self.problems.append(f"<img src={a.get('src')!r}> has no alt text")
        elif tag == "svg":
            self.svg_depth += 1
            self.svg_count += 1
            self.svg_titled.append(False)
        elif tag == "title" and self.svg_depth:
            self.svg_titled[-1] = True
        elif tag == "script":
            self.problems.append("a <script> element (the pages run no script)")
        elif tag == "link" and (a.get("href") or "").startswith(("http:", "https:", "//")):
            self.problems.append(f"a resource from another host: {a.get('href')}")
        if "style" in a:
            self.problems.append(f"an inline style on <{tag}> (blocked by the pages' CSP)")
        tabindex = a.get("tabindex")
        if tabindex is not None and tabindex.lstrip("-").isdigit() and int(tabindex) > 0:
            self.problems.append(f"<{tag}> has tabindex={tabindex}: a positive tabindex breaks the tab order")
        if any(name.startswith("on") for name in a):
            self.problems.append(f"an inline event handler on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth = max(0, self.label_depth - 1)
        elif tag == "svg" and self.svg_depth:
            self.svg_depth -= 1

    def finish(self) -> list[str]:
        problems = list(self.problems)
        if self.lang != "zh-CN":
            problems.append(f'<html lang="{self.lang}">: expected lang="zh-CN"')
        if self.h1 != 1:
            problems.append(f"{self.h1} <h1> elements: expected exactly one")
        if self.main != 1:
            problems.append(f"{self.main} <main> landmarks: expected one")
        for control in self.controls:
            labelled = (control.in_label or (control.id is not None and control.id in self.label_for)
                        or any(control.attrs.get(k) for k in LABELLED_BY_ARIA))
            if not labelled:
                problems.append(f"<{control.tag} name={control.attrs.get('name')!r}> has no label")
        if not all(self.svg_titled):
            problems.append("an <svg> without a <title>")
        duplicates = sorted({i for i in self.ids if self.ids.count(i) > 1})
        if duplicates:
            problems.append(f"duplicate ids: {duplicates}")
        return problems


def accessibility_problems(html: str) -> list[str]:
    """What is wrong with ``html`` (empty when nothing is)."""
    audit = PageAudit()
    audit.feed(html)
    audit.close()
    return audit.finish()
