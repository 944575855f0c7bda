"""``reprogram list``: the registered components of each kind, or one entry in detail.

Each kind (sources, targets, programs, ...) is one registry; an entry is shown with its help
line and option names, or alone with each option's type, default and help and the flag that
sets it. :data:`KINDS` is the command's choices.
"""

from __future__ import annotations

import argparse
import shlex
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..registry import Registry

KINDS = ("sources", "targets", "programs", "mappings", "optimizers", "baselines", "recipes")


def cmd_list(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from .. import baselines, data, mappings, optim, programs, recipes, sources

    registries: dict[str, Registry[Any]] = {
        "recipes": recipes.RECIPES,
        "baselines": baselines.BASELINES,
        "sources": sources.SOURCES,
        "targets": data.TARGETS,
        "programs": programs.PROGRAMS,
        "mappings": mappings.MAPPINGS,
        "optimizers": optim.OPTIMIZERS,
    }
    registry = registries[args.kind]
    if args.name:
        return _list_one(registry, args.name)
    rows = []
    for e in registry:
        if e.prefix:  # the help text of a prefix entry starts with what follows the prefix
            word, _, rest = e.help.partition(" ")
            rows.append((e.name + word, rest, e.name))
        else:
            rows.append((e.name, e.help, e.name))
        if e.tags:  # what kind of thing it is (a target's task kind)
            name, text, key = rows[-1]
            rows[-1] = (name, f"{text} [{', '.join(sorted(e.tags))}]", key)
    width = max(len(name) for name, _, _ in rows)
    for name, text, key in rows:
        print(f"{name.ljust(width)}  {text}")
        options = registry.options(key)
        if options:
            print(" " * (width + 2) + "options: " + ", ".join(o.name for o in options))
    what = "the flags it sets" if args.kind == "recipes" else "its options"
    if args.kind == "programs":
        print(
            "\nWithout --program (auto), fit picks from the input shapes: resize-pad for images "
            "on an image source,\nseries-image for series on an image source, waveform for "
            "series on an audio source."
        )
    print(f"\n`reprogram list {args.kind} NAME` shows one entry and {what}.")
    return 0


# The command-line flag that passes options to each kind of component.
OPTION_FLAGS = {
    "program": "--program-opt",
    "mapping": "--mapping-opt",
    "optimizer": "--optimizer-opt",
    "baseline": "--method-opt",
}


def _list_one(registry: Any, name: str) -> int:
    """Print one entry's help and each option with its type, default and help text."""
    entry = registry.lookup(name)
    if entry.prefix:  # its help starts with what follows the prefix, e.g. "NAME any UCR set"
        word, _, rest = entry.help.partition(" ")
        print(f"{entry.name}{word}: {rest}")
    else:
        print(f"{entry.name}: {entry.help}")
    if registry.kind == "recipe":
        # lazy: the library loads torch; `reprogram --help` stays fast
        from ..recipes import command_line

        words = command_line(entry.builder())
        print("reprogram fit --target TARGET " + " ".join(shlex.quote(w) for w in words))
        return 0
    options = registry.options(entry.name)
    if not options:
        print("  takes no options")
        return 0
    example = f"{options[0].name}={options[0].default}"
    flag = OPTION_FLAGS.get(registry.kind)
    where = f"on the command line: {flag} {example} (repeatable)" if flag else ""
    if registry.kind == "baseline":
        where += f"; in bench method strings: {entry.name}:{example},..."
    elif registry.kind in ("program", "mapping"):
        where += f"; in bench method strings: PROGRAM+MAPPING:{example},..."
    where = where or f"after the name: {entry.name}{'…' if entry.prefix else ''}#{example}"
    print(f"options ({where.lstrip('; ')}):")
    for o in options:
        print(f"  {o.name}  ({o.type}, default {o.default})")
        if o.help:
            print(
                textwrap.fill(o.help, width=96, initial_indent="      ", subsequent_indent="      ")
            )
    return 0
