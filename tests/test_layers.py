"""The layering contract: each module imports only from its own layer or the ones below.

core < components < model < engine < api < cli (``shared/DESIGN.md``, "Layers"). Checked on
the source text (imports inside functions and under ``TYPE_CHECKING`` count too), so it
needs nothing installed beyond the standard library. Also: no import cycle among modules,
and no import of a library module inside a function unless the line says why (``# lazy:``),
since such imports are how cycles hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "reprogram"

#: Layer of each module, by the longest matching dotted prefix (under ``reprogram.``).
LAYERS: dict[str, int] = {
    # core: errors, registry, configs, artifact I/O, the callback protocol
    "errors": 0,
    "registry": 0,
    "config": 0,
    "artifact": 0,
    "adapter": 0,
    "callbacks": 0,
    "checkpoint": 0,
    "atomic": 0,
    "accelerator": 0,
    "batching": 0,
    "runtime": 0,
    "packages": 0,
    "tasks": 0,
    "log": 0,
    "figures": 0,
    # components: sources, programs, mappings, optimizers, data, transforms, black boxes
    "sources": 1,
    "programs": 1,
    "mappings": 1,
    "optim": 1,
    "data": 1,
    "transforms": 1,
    "forecast": 1,
    "blackbox": 1,
    "probe": 1,
    "ridge": 1,
    "evaluate": 1,
    "diagnostics": 1,
    "output_cache": 1,
    # model: program → frozen source → mapping, built and saved without the trainer
    "model": 2,
    # engine: the trainer, the query budget, pictures of a finished run
    "train": 3,
    "blackbox.budget": 3,
    "plots": 3,
    # api: fit, baselines, selection, prediction, serving
    "api": 4,
    "selection": 4,
    "baselines": 4,
    "predict": 4,
    "recipes": 4,
    "blackbox.app": 4,
    "blackbox.server": 4,
    "blackbox.commands": 4,
    "": 4,  # the package itself (``import reprogram``): the public facade
    # cli
    "cli": 5,
    "__main__": 5,
}
NAMES = ["core", "components", "model", "engine", "api", "cli"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".") or p == ""), key=len)
    return LAYERS[best]


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> set[str]:
    """Library modules (relative to ``reprogram``) that ``node`` in ``module`` imports."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if module else []
            if MODULES[module].name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
            target = "reprogram" + ("." + target if target else "")
        else:
            target = node.module or ""
        for alias in node.names:
            full = f"{target}.{alias.name}"
            names.append(full if full.removeprefix("reprogram.") in MODULES else target)
    found = set()
    for name in names:
        if name != "reprogram" and not name.startswith("reprogram."):
            continue
        rel = name.removeprefix("reprogram").removeprefix(".")
        while rel and rel not in MODULES:
            rel = rel.rpartition(".")[0]
        if rel != module:
            found.add(rel)
    return found


def _imports() -> dict[str, list[tuple[str, int, bool, str]]]:
    """module → [(imported module, line, inside a function, source line + the one above)]."""
    out: dict[str, list[tuple[str, int, bool, str]]] = {}
    for module, path in MODULES.items():
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        inner: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner.update(
                    id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))
                )
        rows = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                start = node.lineno - 1  # with the comments and imports just above it
                while start > 0 and lines[start - 1].strip().startswith(("#", "from ", "import ")):
                    start -= 1
                context = "\n".join(lines[start : node.end_lineno])
                for target in _resolve(module, node):
                    rows.append((target, node.lineno, id(node) in inner, context))
        out[module] = rows
    return out


IMPORTS = _imports()


def test_every_module_has_a_layer() -> None:
    assert "train" in MODULES and "cli" in MODULES  # the walk found the package
    for module in MODULES:
        assert 0 <= layer(module) < len(NAMES), module


def test_layers_import_only_downward() -> None:
    bad = [
        f"{m} ({NAMES[layer(m)]}) imports {t} ({NAMES[layer(t)]}) at line {line}"
        for m, rows in IMPORTS.items()
        for t, line, _, _ in rows
        if t and layer(t) > layer(m)
    ]
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def _cycles() -> list[list[str]]:
    graph = {m: sorted({t for t, *_ in rows}) for m, rows in IMPORTS.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert _cycles() == []


def test_no_unexplained_import_inside_a_function() -> None:
    hidden = [
        f"{m}:{line} imports {t or 'reprogram'}"
        for m, rows in IMPORTS.items()
        for t, line, inner, context in rows
        if inner and "# lazy:" not in context
    ]
    assert not hidden, (
        "library imports inside functions (move them to the top, or say '# lazy: why'):\n"
        + "\n".join(sorted(hidden))
    )


def test_the_checker_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The contract can fail: an upward import planted in a core module is reported."""
    fake = dict(IMPORTS)
    fake["errors"] = [*fake["errors"], ("train", 1, False, "from .train import Trainer")]
    monkeypatch.setattr(__import__(__name__), "IMPORTS", fake, raising=False)
    globals()["IMPORTS"] = fake
    try:
        with pytest.raises(AssertionError, match="errors \\(core\\) imports train"):
            test_layers_import_only_downward()
    finally:
        globals()["IMPORTS"] = _imports()
