"""MkDocs hook: the table of ``FitConfig``'s settings in the API reference, written from the
dataclass's own fields (name, default, flag, help), so the page cannot drift from the code.

A page asks for it with the line ``<!-- settings: FitConfig -->``.
"""

from __future__ import annotations

import dataclasses

MARKER = "<!-- settings: FitConfig -->"


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:
        return f"`{f.default_factory()!r}`"
    return "required"


def _table() -> str:
    from reprogram import FitConfig

    rows = ["| setting | default | flag | what it sets |", "|---|---|---|---|"]
    for f in dataclasses.fields(FitConfig):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        if f.metadata.get("invert"):
            flag = f.metadata.get("flag", flag)
        shown = "(Python only)" if f.metadata.get("cli", True) is False else f"`{flag}`"
        what = str(f.metadata.get("help", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{f.name}` | {_default(f)} | {shown} | {what} |")
    return "\n".join(rows)


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, _table())
