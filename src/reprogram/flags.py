"""Command-line flags generated from config dataclasses (as transformers' ``HfArgumentParser``).

Each field of a config dataclass is one flag, written once: its name gives ``--the-name``,
its type the parser (``int``, ``float``, ``str``; ``bool`` a switch; ``dict`` a repeatable
``KEY=VALUE``), its default the default and ``metadata["help"]`` the help text. Metadata may
also say ``flag`` (another spelling, e.g. ``--optimizer-opt``), ``invert`` (the switch turns
the field off, e.g. ``--quiet`` for ``progress``) or ``cli=False`` (no flag: set from Python).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from typing import Any

from .errors import ReprogramError

_TYPES = {"int": int, "float": float, "str": str}


def _flag(f: dataclasses.Field) -> str:
    return str(f.metadata.get("flag", "--" + f.name.replace("_", "-")))


def _dest(f: dataclasses.Field) -> str:
    return _flag(f).lstrip("-").replace("-", "_")


def _kind(f: dataclasses.Field) -> str:
    """``int``, ``float``, ``str``, ``bool`` or ``dict`` from the field's annotation."""
    text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    text = text.replace(" | None", "").replace("Optional[", "").rstrip("]").strip()
    if text.startswith("dict"):
        return "dict"
    if text not in (*_TYPES, "bool"):
        raise TypeError(f"field {f.name!r} has type {f.type!r}, which has no flag kind")
    return text


def cli_fields(
    cls: type, skip: Iterable[str] = (), only: Iterable[str] | None = None
) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are flags (not in ``skip``, in ``only`` when given, not
    ``cli=False``)."""
    skipped, wanted = set(skip), None if only is None else set(only)
    return [
        f
        for f in dataclasses.fields(cls)
        if f.name not in skipped
        and (wanted is None or f.name in wanted)
        and f.metadata.get("cli", True) is not False
    ]


def add_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    skip: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    helps: dict[str, str] | None = None,
    required: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> None:
    """Add one flag per field of ``cls`` to ``parser``; ``defaults``/``helps`` override a
    field's default or help for this command, ``required`` fields must be given."""
    defaults, helps, required = dict(defaults or {}), dict(helps or {}), set(required)
    for f in cli_fields(cls, skip, only):
        kind, text = _kind(f), helps.get(f.name, f.metadata.get("help"))
        if kind == "dict":
            parser.add_argument(
                _flag(f), dest=_dest(f), action="append", metavar="K=V", help=text
            )
        elif kind == "bool":
            parser.add_argument(_flag(f), dest=_dest(f), action="store_true", help=text)
        else:
            default = defaults.get(f.name, f.default)
            if default is dataclasses.MISSING:
                default = None
            parser.add_argument(
                _flag(f),
                dest=_dest(f),
                type=_TYPES[kind],
                default=None if f.name in required else default,
                required=f.name in required,
                help=text,
            )


def key_values(items: list[str] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b-c=x"]`` → ``{"a": "1", "b_c": "x"}`` (values stay text)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ReprogramError(f"{flag} takes KEY=VALUE, got {item!r}.")
        out[key.replace("-", "_")] = value
    return out


def from_flags(cls: type, args: argparse.Namespace, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The keyword arguments of ``cls`` that the parsed flags ``args`` give."""
    out: dict[str, Any] = {}
    for f in cli_fields(cls, skip):
        value = getattr(args, _dest(f))
        kind = _kind(f)
        if kind == "dict":
            value = key_values(value, _flag(f))
        elif kind == "bool" and f.metadata.get("invert"):
            value = not value
        out[f.name] = value
    return out


__all__ = ["add_flags", "cli_fields", "from_flags", "key_values"]
