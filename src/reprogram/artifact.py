"""Artifact directories: ``config.json``, ``program.safetensors``, ``metrics.json``.

``program.safetensors`` holds the trained program and mapping tensors only; ``config.json``
everything needed to rebuild the model (source name and weight fingerprint, target, program
and mapping with their options and the mapping table, optimizer, seed, versions).
"""

from __future__ import annotations

import importlib
import json
import platform
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import write_atomic
from .errors import ArtifactError

CONFIG = "config.json"
PROGRAM = "program.safetensors"
METRICS = "metrics.json"
FORMAT = "reprogram-artifact-v1"  # a fit: program → frozen source → mapping
BASELINE_FORMAT = "reprogram-baseline-v1"

#: ``Loader(directory, config, source)`` → ``(model, config)``: rebuilds a model from an
#: artifact of one recorded ``format``.
Loader = Callable[[Path, dict[str, Any], Any], tuple[torch.nn.Module, dict[str, Any]]]
_LOADERS: dict[str, Loader] = {}
#: Modules that register loaders, imported by name on first use (as registries load their
#: plugins), so ``load_artifact`` reads any format whatever the caller imported before.
_LOADER_PLUGINS = ("reprogram.model", "reprogram.baselines.base")
_L = TypeVar("_L", bound=Loader)  # a loader, its own signature kept for direct callers


def versions() -> dict[str, str]:
    """Library, torch and Python versions for config.json."""
    out = {"torch": torch.__version__, "python": platform.python_version()}
    for pkg in ("reprogram", "timm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    write_atomic(Path(path), lambda tmp: tmp.write_text(text))


def save_program(path: Path, model: torch.nn.Module) -> None:
    """Save the trained tensors (program + mapping) as safetensors, atomically.

    A tensor shared under two names (a language model's input embeddings tied to its output
    layer, fine-tuned whole) is stored once: safetensors refuses shared memory, and the
    metadata's ``tied`` says which name repeats which, for :func:`load_state`.
    """
    adapter = model.adapter_state_dict()  # type: ignore[operator]
    state: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    first: dict[tuple[int, tuple[int, ...], tuple[int, ...]], str] = {}
    for k, v in adapter.items():
        key = (v.data_ptr(), tuple(v.shape), tuple(v.stride()))
        if v.numel() and key in first:
            tied[k] = first[key]
            continue
        first.setdefault(key, k)
        state[k] = v.detach().cpu().contiguous()
    meta = {"format": "reprogram-program-v1", **({"tied": json.dumps(tied)} if tied else {})}
    write_atomic(Path(path), lambda tmp: save_file(state, str(tmp), metadata=meta))


def _load_program(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``program.safetensors``, each one :func:`save_program` stored once
    under its every name again (one read of the file: tensors and metadata)."""
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        tied = json.loads((f.metadata() or {}).get("tied", "{}"))
    return {**state, **{k: state[v] for k, v in tied.items() if v in state}}


def _runs_below(folder: Path) -> str:
    """A hint for a folder that holds runs rather than being one: a bench suite (its
    ``results.json`` and ``runs/``), or any folder with a run somewhere below it."""
    if (folder / "results.json").is_file() and (folder / "runs").is_dir():
        return (f" It is a bench suite's folder: each cell's run is a folder under "
                f"{folder / 'runs'}; give one of those.")
    below = None
    try:  # four levels at most (a bench's task/method/shots/seed): never a whole disk
        for depth in range(1, 5):
            below = next((p.parent for p in folder.glob("*/" * depth + CONFIG)), None)
            if below is not None:
                break
    except OSError:
        return ""
    return f" A run lies below it, e.g. {below}." if below is not None else ""


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON file of an artifact with a clear error when it is missing or broken."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"{path} is missing: {Path(path).parent} is not a complete reprogram artifact "
            f"(it needs {CONFIG}, {PROGRAM} and {METRICS}).{_runs_below(Path(path).parent)}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{what} {path} is not valid JSON ({exc}).") from None


def load_state(directory: Path, model: torch.nn.Module, what: str) -> None:
    """Load ``program.safetensors`` into ``model`` after checking names and shapes.

    ``model.adapter_state_dict()`` says which tensors the file must hold; ``what`` names the
    model in messages (``"full + linear"``, ``"baseline finetune"``).
    """
    path = Path(directory) / PROGRAM
    try:
        state = _load_program(path)
    except FileNotFoundError:
        if Path(directory).resolve().parent.name == "folds":  # see reprogram.selection
            raise ArtifactError(
                f"{directory} is a fold of a k-fold or refit selection: it keeps its scores "
                f"(metrics.json), not its weights; the model is the run above it, "
                f"{Path(directory).resolve().parent.parent}."
            ) from None
        raise ArtifactError(f"{path} is missing; the artifact is incomplete.") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(
            f"{path} cannot be read ({exc}); it is corrupt or truncated. Re-run the training "
            f"command that made it."
        ) from None
    expected = model.adapter_state_dict()  # type: ignore[operator]
    problems = [f"{k} missing" for k in sorted(set(expected) - set(state))]
    problems += [f"{k} unexpected" for k in sorted(set(state) - set(expected))]
    problems += [
        f"{k} is {list(state[k].shape)}, needs {list(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if problems:
        shown = "; ".join(problems[:5]) + ("; …" if len(problems) > 5 else "")
        raise ArtifactError(
            f"{path} does not hold the tensors that {what} needs ({shown}). The file or "
            f"{CONFIG} beside it was changed after training: retrain, or restore both."
        )
    model.load_state_dict(state, strict=False)
    model.eval()


def write_artifact(
    out: Path, config: dict[str, Any], model: torch.nn.Module, metrics: dict[str, Any]
) -> None:
    """Write a finished artifact: ``config.json``, ``program.safetensors``, ``metrics.json``.

    The one writer of every trained model (fits and baselines); ``metrics.json`` comes last,
    so its presence marks a finished run.
    """
    out = Path(out)
    write_json(out / CONFIG, config)
    save_program(out / PROGRAM, model)
    write_json(out / METRICS, metrics)


def register_loader(fmt: str) -> Callable[[_L], _L]:
    """Decorator registering the loader of artifacts whose ``config.json`` has ``format: fmt``
    (a config without ``format`` is read as :data:`FORMAT`)."""

    def deco(loader: _L) -> _L:
        if fmt in _LOADERS:
            raise ValueError(f"artifact format {fmt!r} is registered twice")
        _LOADERS[fmt] = loader
        return loader

    return deco


def load_artifact(
    directory: str | Path, source: Any = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a trained model (reprogrammed or baseline) from its artifact directory.

    The loader is chosen by the ``format`` recorded in ``config.json``.

    Args:
        directory: the ``--out`` of a ``fit`` or ``baseline`` run.
        source: the source module when it is not buildable by name (a Python ``nn.Module``).
    Returns:
        the model (eval mode) and the parsed config.json.
    Raises:
        ArtifactError: missing or corrupt files, an unknown format, or a source whose
            weights differ from the ones the program was trained on.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(
            f"{directory} is not a directory; give the --out folder of a fit or baseline run."
        )
    config = read_json(directory / CONFIG, "the config")
    if not isinstance(config, dict):
        raise ArtifactError(f"{directory / CONFIG} is not a JSON object; it is not ours.")
    fmt = str(config.get("format", FORMAT))
    for module in _LOADER_PLUGINS:
        importlib.import_module(module)
    if fmt not in _LOADERS:
        known = ", ".join(sorted(_LOADERS)) or "none (import reprogram first)"
        raise ArtifactError(
            f"{directory / CONFIG} records format {fmt!r}, which this version of reprogram "
            f"cannot load (known: {known}). Upgrade reprogram, or retrain the model."
        )
    _check_readable(directory / PROGRAM)  # before a loader builds a source (seconds) for it
    return _LOADERS[fmt](directory, config, source)


def _check_readable(path: Path) -> None:
    """Refuse a corrupt or truncated tensor file up front (a missing one is the loader's to
    judge: it names what the artifact lacks). Only the header is read, and checked against the
    file's size: the loader reads the tensors once, later."""
    if not path.exists():
        return
    try:
        with safe_open(str(path), framework="pt"):
            pass
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(
            f"{path} cannot be read ({exc}); it is corrupt or truncated. Re-run the training "
            "command that made it."
        ) from None
