"""Artifact directories: ``config.json``, ``program.safetensors``, ``metrics.json``.

``program.safetensors`` holds the trained program and mapping tensors only; ``config.json``
everything needed to rebuild the model (source name and weight fingerprint, target, program
and mapping with their options and the mapping table, optimizer, seed, versions).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ArtifactError
from .mappings import build_mapping
from .model import ReprogrammedModel
from .programs import build_program
from .sources import Source, build_source
from .sources.features import with_program_views

CONFIG = "config.json"
PROGRAM = "program.safetensors"
METRICS = "metrics.json"
BASELINE_FORMAT = "reprogram-baseline-v1"


def versions() -> dict[str, str]:
    """Library, torch and Python versions for config.json."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"torch": torch.__version__, "python": platform.python_version()}
    for pkg in ("reprogram", "timm"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def save_program(path: Path, model: torch.nn.Module) -> None:
    """Save the trained tensors (program + mapping) as safetensors, atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    adapter = model.adapter_state_dict()  # type: ignore[operator]
    state = {k: v.detach().cpu().contiguous() for k, v in adapter.items()}
    save_file(state, str(tmp), metadata={"format": "reprogram-program-v1"})
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON file of an artifact with a clear error when it is missing or broken."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"{path} is missing: {Path(path).parent} is not a complete reprogram artifact "
            f"(it needs {CONFIG}, {PROGRAM} and {METRICS})."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{what} {path} is not valid JSON ({exc}).") from None


def check_source(config: dict[str, Any], source: Source | None, directory: Path) -> Source:
    """The source an artifact was trained on: built by name (or ``source``), fingerprint checked.

    Raises:
        ArtifactError: the config lacks the source fields, or the weights differ.
    """
    try:
        src_name, fingerprint = config["source"]["name"], str(config["source"]["fingerprint"])
    except (KeyError, TypeError) as exc:
        what = f"lacks field {exc}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        raise ArtifactError(f"{directory / CONFIG} {what}; it is not ours.") from None
    if source is None:
        source = build_source(src_name)
    if source.fingerprint() != fingerprint:
        raise ArtifactError(
            f"this artifact was trained on source {src_name!r} with weights "
            f"{fingerprint[:12]}…, but the source given has weights "
            f"{source.fingerprint()[:12]}… ({source.name}). A program only works with the exact "
            f"model it was trained for: load it with that model."
        )
    return source


def load_state(directory: Path, model: torch.nn.Module, what: str) -> None:
    """Load ``program.safetensors`` into ``model`` after checking names and shapes.

    ``model.adapter_state_dict()`` says which tensors the file must hold; ``what`` names the
    model in messages (``"full + linear"``, ``"baseline finetune"``).
    """
    path = Path(directory) / PROGRAM
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; the artifact is incomplete.") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(
            f"{path} cannot be read ({exc}); it is corrupt or truncated. Re-run the training "
            f"command that made it."
        ) from None
    expected = model.adapter_state_dict()  # type: ignore[operator]
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in state):
        raise ArtifactError(
            f"{path} does not hold the tensors that {what} needs "
            f"(expected {sorted(expected)}, found {sorted(state)})."
        )
    model.load_state_dict(state, strict=False)
    model.eval()


def load_artifact(
    directory: str | Path, source: Source | None = None
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a trained model (reprogrammed or baseline) from its artifact directory.

    Args:
        directory: the ``--out`` of a ``fit`` or ``baseline`` run.
        source: the source module when it is not buildable by name (a Python ``nn.Module``).
    Returns:
        the model (eval mode) and the parsed config.json.
    Raises:
        ArtifactError: missing or corrupt files, or a source whose weights differ from the
            ones the program was trained on.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(
            f"{directory} is not a directory; give the --out folder of a fit or baseline run."
        )
    config = read_json(directory / CONFIG, "the config")
    if isinstance(config, dict) and config.get("format") == BASELINE_FORMAT:
        from .baselines import load_baseline

        return load_baseline(directory, config, source=source)
    try:
        prog_cfg, map_cfg = config["program"], config["mapping"]
        input_shape = tuple(config["target"]["input_shape"])
        num_classes = len(config["target"]["class_names"])
    except (KeyError, TypeError) as exc:
        what = f"lacks field {exc}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        raise ArtifactError(f"{directory / CONFIG} {what}; it is not ours.") from None
    source = check_source(config, source, directory)
    program, _ = build_program(
        prog_cfg["name"], prog_cfg["options"], input_shape, source.input_size
    )
    source = with_program_views(source, program)
    mapping, _ = build_mapping(map_cfg["name"], map_cfg["options"], source.num_classes, num_classes)
    mapping.bind_inputs(input_shape)  # side features of the raw target, if any
    model = ReprogrammedModel(source, program, mapping)
    load_state(directory, model, f"{prog_cfg['name']} + {map_cfg['name']}")
    return model, config
