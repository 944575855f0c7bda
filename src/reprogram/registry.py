"""One small registry per kind of component (sources, targets, programs, mappings, optimizers).

An entry is a name, a builder and (optionally) a config dataclass whose fields carry help
text in ``metadata["help"]``. A new method is one module with one ``@REGISTRY.register``.
Names may also be *prefixes* (``timm:``, ``npz:``) whose builders receive the rest of the name.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import ReprogramError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered component: ``builder(**kwargs)`` makes it; ``config`` types its options."""

    name: str
    builder: Callable[..., T]
    help: str = ""
    config: type | None = None
    prefix: bool = False
    tags: frozenset[str] = frozenset()  # what kind of thing it is (a target: "regression")


@dataclass(frozen=True)
class Option:
    """One option of a component: ``name=value`` on the command line."""

    name: str
    type: str
    default: Any
    help: str


@dataclass
class Registry(Generic[T]):
    """Name → builder table for one kind of component (e.g. ``"program"``)."""

    kind: str
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    _plugins: tuple[str, ...] = ()

    def register(
        self,
        name: str,
        *,
        help: str = "",
        config: type | None = None,
        prefix: bool = False,
        tags: tuple[str, ...] = (),
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``builder`` under ``name`` (``prefix=True`` for ``name:REST``);
        ``tags`` say what kind of thing it is without building it (a target's task kind)."""

        def deco(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            text = help or next(iter((builder.__doc__ or "").strip().splitlines()), "")
            self._entries[name] = Entry(name, builder, text, config, prefix, frozenset(tags))
            return builder

        return deco

    def _load_plugins(self) -> None:
        for module in self._plugins:
            importlib.import_module(module)

    def resolve(self, name: str) -> tuple[Entry[T], str | None]:
        """Find the entry for ``name``; for a prefix entry also return the rest of the name."""
        self._load_plugins()
        if name in self._entries and not self._entries[name].prefix:
            return self._entries[name], None
        base, hash_, tail = name.partition("#")
        entry = self._entries.get(base)
        if hash_ and entry is not None and not entry.prefix and entry.config is not None:
            return entry, hash_ + tail  # NAME#key=value options of an entry with a config
        for entry in self._entries.values():
            if entry.prefix and name.startswith(entry.name):
                rest = name[len(entry.name) :]
                if not rest:
                    example = entry.help.split()[0] if entry.help else "NAME"
                    raise ReprogramError(
                        f"{self.kind} {name!r} needs something after {entry.name!r} "
                        f"(for example {entry.name}{example})."
                    )
                return entry, rest
        choices = self.names()
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ReprogramError(
            f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {', '.join(choices)} "
            f"(run `reprogram list {self.kind}s`)."
        )

    def create(self, name: str) -> T:
        """Build the component named ``name``: a prefix entry (``ucr:``, ``timm:``) gets the
        rest of the name (``Coffee``, ``resnet18``); ``NAME#key=value#…`` gets its config
        built from those options; a plain name no argument."""
        entry, rest = self.resolve(name)
        if entry.prefix:
            return entry.builder(rest)
        if rest is not None:
            return entry.builder(self.build_config(entry.name, hash_options(name, rest)))
        return entry.builder()

    def lookup(self, name: str) -> Entry[T]:
        """Like :meth:`get`, but a prefix entry may also be named by its prefix (``ucr:``)."""
        self._load_plugins()
        return self._entries.get(name) or self.get(name)

    def get(self, name: str) -> Entry[T]:
        """The entry registered under ``name`` (prefix entries match ``prefix...``)."""
        return self.resolve(name)[0]

    def names(self) -> list[str]:
        """All registered names; prefix entries are shown as ``prefix…``."""
        self._load_plugins()
        return [e.name + ("…" if e.prefix else "") for e in self._entries.values()]

    def __iter__(self) -> Iterator[Entry[T]]:
        self._load_plugins()
        return iter(list(self._entries.values()))

    def options(self, name: str) -> list[Option]:
        """The options ``name`` takes (empty when it takes none), in declaration order.

        ``name`` may be a registered name itself (``ucr:``) or a name it resolves (``ucr:Coffee``).
        """
        entry = self.lookup(name)
        if entry.config is None:
            return []
        out = []
        for f in dataclasses.fields(entry.config):
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = None
            typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            out.append(Option(f.name, typ, default, f.metadata.get("help", "")))
        return out

    def build_config(self, name: str, options: dict[str, Any] | None = None) -> Any:
        """Instantiate the config dataclass of ``name`` from ``options`` (strings are converted)."""
        entry = self.get(name)
        options = dict(options or {})
        if entry.config is None:
            if options:
                raise ReprogramError(
                    f"{self.kind} {name!r} takes no options, got {sorted(options)}."
                )
            return None
        return options_config(entry.config, options, self.kind, name, entry.name)


def options_config(
    config: type, options: dict[str, Any], kind: str, name: str, listed: str | None = None
) -> Any:
    """``config(**options)`` with command-line strings converted to the fields' types;
    a :class:`ReprogramError` naming ``kind`` ``name`` for unknown or bad options."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ReprogramError(
            f"{kind} {name!r} has no option {', '.join(unknown)}; "
            f"its options are: {', '.join(fields) or 'none'} "
            f"(run `reprogram list {kind}s {listed or name}` for what each one does)."
        )
    kwargs = {k: _convert(v, fields[k], kind, name) for k, v in options.items()}
    try:
        return config(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ReprogramError(f"bad options for {kind} {name!r}: {exc}") from None


def hash_options(name: str, rest: str) -> dict[str, str]:
    """``#key=value#key=value`` (the end of ``name``) → ``{key: value}``; ``-`` in keys
    reads as ``_``."""
    options: dict[str, str] = {}
    for part in rest.split("#")[1:]:
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ReprogramError(
                f"{name!r}: options after '#' are key=value (e.g. #depth=6), got {part!r}."
            )
        options[key.strip().replace("-", "_")] = value.strip()
    return options


def _convert(value: Any, f: dataclasses.Field, kind: str, name: str) -> Any:
    """Turn a command-line string into the type the config field declares."""
    if not isinstance(value, str):
        return value
    typ = str(f.type)
    if value.lower() in {"none", "null"} and "None" in typ:
        return None
    try:
        if typ.startswith("bool"):
            if value.lower() in {"1", "true", "yes", "on"}:
                return True
            if value.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if typ.startswith("int"):
            return int(value)
        if typ.startswith("float"):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
    except ValueError:
        raise ReprogramError(
            f"option {f.name}={value!r} of {kind} {name!r} is not a valid {typ}."
        ) from None
    return value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (``{}`` for ``None``)."""
    return {} if config is None else dataclasses.asdict(config)
