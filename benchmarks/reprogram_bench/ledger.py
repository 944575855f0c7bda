"""A suite directory's table accumulates: what earlier invocations recorded stays in it.

``runs/`` (one artifact per cell) is not committed, so a suite's ``results.json`` is the only
record of cells run earlier. :func:`open_ledger` reads it before a new invocation runs its
cells; :meth:`Ledger.rows` then gives the earlier rows with this invocation's finished ones
in place (a cell run again replaces its record), and the merged settings and commands, so
``--shots 8,32`` today and ``--shots all`` tomorrow make one table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprogram.errors import ReprogramError


@dataclass
class Ledger:
    """Earlier rows by cell key, the merged settings and every command that contributed."""

    recorded: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    commands: list[str]
    key_of: Callable[[dict[str, Any]], str] = field(repr=False)

    def rows(self, finished: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The recorded rows, each replaced by this invocation's row of the same cell, then
        this invocation's new cells, in the order they finished."""
        merged = dict(self.recorded)
        merged.update((self.key_of(r), r) for r in finished)
        return list(merged.values())

    def finished_earlier(self, key: str, metrics: Path) -> dict[str, Any] | None:
        """The recorded row of cell ``key`` when its run folder is gone (a clean clone: the
        cell finished in an earlier invocation and is not run again), else None."""
        return None if metrics.exists() else self.recorded.get(key)

    def meta(self) -> dict[str, Any]:
        """``command`` (this invocation's) and ``commands`` (all, oldest first)."""
        return {"command": self.commands[-1], "commands": list(self.commands)}


def _union(old: Any, new: Any) -> Any:
    """Lists: the old entries, then the new ones not among them; anything else: the new."""
    if isinstance(old, list) and isinstance(new, list):
        return old + [v for v in new if v not in old]
    return new


def open_ledger(
    out: Path,
    settings: dict[str, Any],
    command: str,
    key_of: Callable[[dict[str, Any]], str],
    shared: Sequence[str],
    runs_cells: bool = True,
    defaults: dict[str, Any] | None = None,
) -> Ledger:
    """What ``out/results.json`` recorded, merged with this invocation's ``settings``.

    Args:
        out: the suite directory.
        settings: this invocation's settings (lists are unioned with the recorded ones).
        command: this invocation's command line.
        key_of: a row's cell key.
        shared: settings every cell of one table must share (a clash is refused).
        runs_cells: False for ``--report-only``: its command ran nothing, so it is not
            listed among the table's commands (when earlier ones are).
        defaults: what a setting was before the suite recorded it (a suite directory
            written before ``select`` was a setting ran every cell under ``holdout``).
    Raises:
        ReprogramError: results.json is unreadable, or was written with other ``shared``
            settings.
    """
    path = out / "results.json"
    if not path.exists():
        return Ledger({}, dict(settings), [command], key_of)
    try:
        previous = json.loads(path.read_text())
        old_settings = {**(defaults or {}), **previous["meta"]["settings"]}
        old_rows = previous["rows"]
        old_commands = previous["meta"].get("commands") or [previous["meta"]["command"]]
        recorded = {key_of(r): r for r in old_rows}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReprogramError(
            f"{path} is unreadable ({type(exc).__name__}: {exc}); move it away to start the "
            "table afresh."
        ) from None
    check_shared(out, {k: v for k, v in old_settings.items() if k in settings}, settings, shared)
    merged = {k: _union(old_settings.get(k), v) for k, v in settings.items()}
    commands = [c for c in old_commands if c != command]
    if runs_cells or not commands:
        commands.append(command)
    return Ledger(recorded, merged, commands, key_of)


def command_lines(meta: dict[str, Any]) -> list[str]:
    """Markdown lines naming the command (or every command) that filled a table."""
    commands = meta.get("commands") or [meta["command"]]
    if len(commands) == 1:
        return [f"Command: `{commands[0]}`  "]
    return ["Commands (each ran the cells it names; a rerun skips finished cells):", "",
            *(f"- `{c}`" for c in commands), ""]


def check_shared(out: Path, earlier: dict[str, Any], now: dict[str, Any],
                 shared: Sequence[str]) -> None:
    """Refuse a suite directory whose recorded ``shared`` settings differ from this call's.

    Raises:
        ReprogramError: naming each clashing setting, then and now.
    """
    clash = [k for k in shared if earlier.get(k) != now.get(k)]
    if clash:
        were = ", ".join(f"{k}={earlier.get(k)!r}" for k in clash)
        asks = ", ".join(f"{k}={now.get(k)!r}" for k in clash)
        raise ReprogramError(
            f"suite directory {out} was run with {were}; this call asks {asks}. Its finished "
            "cells would be reused as if they matched: use another --out (or the same "
            "settings)."
        )
