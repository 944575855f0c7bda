"""``timm:NAME`` — any `timm <https://github.com/huggingface/pytorch-image-models>`_ classifier.

``timm:resnet18`` or ``timm:resnet18.a1_in1k`` builds that timm model with its pretrained
ImageNet weights (downloaded from the Hugging Face hub on first use, then cached by
huggingface_hub). Input size, mean and std come from the model's ``pretrained_cfg``; label
names are the ImageNet class names when the head matches an ImageNet subset (1000 classes →
ImageNet-1k), otherwise ``class_0``, ``class_1`` …

``timm:NAME#weights=PATH`` builds the architecture ``NAME`` with *your own* checkpoint instead
(a model you trained with timm: ``.safetensors``, or a ``.pth``/``.pt``/``.bin`` state dict read
with ``torch.load(..., weights_only=True)``, never unpickling objects); its classifier's
weight sets the classes, named by ``#labels=PATH.txt`` (one name a line) when given. Nothing is
downloaded, so this works offline.

Offline, only weights already in the hub cache load; otherwise the builder raises a
:class:`~reprogram.errors.ReprogramError` naming the offline sources (``efficientnet-lite0``).
When the hub's host name does not resolve, this happens at once (a cached file is loaded
directly) instead of after huggingface_hub's retries (about a minute).

Testing escape hatch (not for real use): with the environment variable
``REPROGRAM_TIMM_RANDOM_INIT=1`` the model is created with ``pretrained=False`` — random
weights, seeded (``torch.manual_seed(0)`` inside a forked RNG, so the global RNG is untouched)
so that two builds have the same fingerprint. This lets the timm path be tested offline.
"""

from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ..errors import ReprogramError
from ..registry import hash_options, options_config
from . import SOURCES
from .base import Source
from .hub import hub_unreachable as _hub_unreachable
from .hub import one_line as _one_line

RANDOM_INIT_ENV = "REPROGRAM_TIMM_RANDOM_INIT"
OFFLINE_SOURCES = ("efficientnet-lite0",)


def _import_timm() -> ModuleType:
    try:
        import timm
    except ImportError:
        raise ReprogramError(
            "timm sources need the `timm` package: "
            "pip install timm (or pip install reprogram[vision])."
        ) from None
    return timm


def _short_names(descriptions: list[str]) -> list[str]:
    """First synonym of each description (``"tabby, tabby cat"`` → ``"tabby"``), made unique.

    A name that occurs more than once (ImageNet-1k has two ``crane`` and two ``maillot``) gets
    its class index appended, e.g. ``"crane (134)"`` and ``"crane (517)"``.
    """
    short = [d.split(",")[0].strip() for d in descriptions]
    counts: dict[str, int] = {}
    for s in short:
        counts[s] = counts.get(s, 0) + 1
    return [f"{s} ({i})" if counts[s] > 1 else s for i, s in enumerate(short)]


@functools.lru_cache(maxsize=4)
def _imagenet_descriptions(subset: str) -> tuple[str, ...]:
    """timm's synonym list of each class of ``subset``, read once per process."""
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo(subset).label_descriptions())


def imagenet_label_names(subset: str = "imagenet-1k") -> list[str]:
    """Short human class names of an ImageNet subset, shipped with timm (no network).

    Returns ``K`` unique names in class-index order (``K = 1000`` for ImageNet-1k), e.g.
    index 281 → ``"tabby"``, 967 → ``"espresso"``.
    """
    _import_timm()
    return _short_names(list(_imagenet_descriptions(subset)))


def imagenet_label_texts(subset: str = "imagenet-1k") -> list[str]:
    """Every synonym of each class of an ImageNet subset, for matching by meaning (timm's
    WordNet lemmas, no network): index 610 → ``"jersey, T-shirt, tee shirt"``."""
    _import_timm()
    return list(_imagenet_descriptions(subset))


def label_names_for(
    model: torch.nn.Module, num_classes: int
) -> tuple[list[str], list[str] | None]:
    """``(names, texts)``: ImageNet's short names and synonym lists when ``num_classes``
    matches an ImageNet subset, else ``class_i`` and no texts."""
    try:
        from timm.data import infer_imagenet_subset

        subset = infer_imagenet_subset(model)
        if subset is not None:
            names = imagenet_label_names(subset)
            if len(names) == num_classes:
                return names, imagenet_label_texts(subset)
    except Exception:  # noqa: BLE001 - names are cosmetic; fall back to generic ones
        pass
    return [f"class_{i}" for i in range(num_classes)], None


def _check_name(timm: ModuleType, name: str, need_weights: bool) -> None:
    """Raise a ReprogramError with close matches if ``name`` is not a known timm model/tag."""
    from timm.models import split_model_name_tag

    arch, tag = split_model_name_tag(name)
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join('timm:' + c for c in close)}?" if close else ""
        raise ReprogramError(
            f"timm has no model named {arch!r}.{hint} "
            'List the names with `python -c "import timm; print(timm.list_models())"`.'
        )
    if tag or need_weights:
        tagged = [p for p in timm.list_pretrained() if p.split(".")[0] == arch]
        if tag and name not in tagged:
            choices = ", ".join("timm:" + p for p in tagged) or "none"
            raise ReprogramError(
                f"timm model {arch!r} has no pretrained weights tagged {tag!r}; "
                f"the tagged weights are: {choices}."
            )
        if need_weights and not tagged:
            raise ReprogramError(
                f"timm model {arch!r} has no pretrained weights, and a source must be "
                f"pre-trained. Pick a model that timm.list_pretrained() lists, or an offline "
                f"source: {', '.join(OFFLINE_SOURCES)}."
            )


def _cached_weights_file(name: str) -> str | None:
    """Path of ``name``'s pretrained weights in the local Hugging Face cache, if there."""
    try:
        import huggingface_hub
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name)
    except Exception:  # noqa: BLE001 - no cfg / no hub client: nothing cached to find
        return None
    if cfg is None or not cfg.hf_hub_id:
        return None
    files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
    for filename in [*files, "model.safetensors", "pytorch_model.bin"]:
        path = huggingface_hub.try_to_load_from_cache(cfg.hf_hub_id, filename)
        if isinstance(path, str):
            return path
    return None


def _offline_error(name: str, reason: str) -> ReprogramError:
    return ReprogramError(
        f"the pretrained weights of timm:{name} could not be downloaded; this machine may be "
        "offline (or the Hugging Face hub unreachable). Sources that work offline: "
        f"{', '.join(OFFLINE_SOURCES)}. Reason: {reason}"
    )


@dataclass
class TimmOptions:
    """Options of ``timm:NAME`` (after ``#``)."""

    weights: str = field(
        default="",
        metadata={
            "help": "your own checkpoint of this architecture (.safetensors, or a "
            ".pth/.pt/.bin state dict, read without unpickling objects); its head sets the "
            "classes"
        },
    )
    labels: str = field(
        default="",
        metadata={"help": "with weights: a text file naming the checkpoint's classes, one a line"},
    )
    size: int = field(
        default=0,
        metadata={
            "help": "the input side the model was trained at, in pixels (default: the "
            "architecture's pretrained_cfg)"
        },
    )

    def __post_init__(self) -> None:
        if self.size < 0 or self.size == 1:
            raise ValueError(f"size must be at least 2 pixels (0: the default), got {self.size}")


#: Keys under which training scripts nest a state dict in a checkpoint.
_NESTED = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path``: safetensors, or ``torch.load(weights_only=True)`` (tensors
    and plain containers only), unwrapped from a training checkpoint's ``state_dict``/``model``
    entry and from DataParallel's ``module.`` prefix."""
    if not path.is_file():
        raise ReprogramError(f"timm: #weights={path} is not a file.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - safetensors, zip, pickle and OS errors
        raise ReprogramError(
            f"timm: #weights={path} could not be read as weights ({_one_line(exc)}). Save a "
            "state dict: safetensors.torch.save_file(model.state_dict(), 'model.safetensors'), "
            "or torch.save(model.state_dict(), 'model.pth') (a whole pickled model is refused)."
        ) from None
    for key in _NESTED:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ReprogramError(
            f"timm: #weights={path} holds no state dict (names → tensors); save "
            "model.state_dict()."
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _own_model(timm: ModuleType, arch: str, options: TimmOptions) -> tuple[torch.nn.Module, int]:
    """``arch`` built with the checkpoint ``options.weights``; returns it and its classes."""
    path = Path(options.weights).expanduser()
    state = _read_state(path)
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)  # names the classifier, without building the model
    head: Any = getattr(cfg, "classifier", None) or ""
    head = head[0] if isinstance(head, (list, tuple)) else str(head)
    weight = state.get(f"{head}.weight")
    if weight is None or weight.dim() != 2:
        raise ReprogramError(
            f"timm: #weights={path} has no classifier {head}.weight [K, features] of timm:"
            f"{arch}; is it a checkpoint of another architecture? (its first keys: "
            f"{', '.join(list(state)[:4])})"
        )
    classes = int(weight.shape[0])
    with torch.random.fork_rng(devices=[]):
        model = timm.create_model(arch, pretrained=False, num_classes=classes)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ReprogramError(
            f"timm: #weights={path} does not fit timm:{arch} ({len(missing)} weights missing, "
            f"e.g. {', '.join(missing[:3]) or '-'}; {len(unexpected)} unexpected, e.g. "
            f"{', '.join(unexpected[:3]) or '-'}); name the architecture it was trained as."
        )
    return model, classes


def _label_file(path: str, classes: int) -> list[str]:
    """Class names from a text file, one a line, ``classes`` of them."""
    try:
        names = [line.strip() for line in Path(path).expanduser().read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ReprogramError(f"timm: #labels={path} could not be read ({exc}).") from None
    names = [n for n in names if n]
    if len(names) != classes:
        raise ReprogramError(
            f"timm: #labels={path} names {len(names)} classes, but the checkpoint's head has "
            f"{classes}; give one name a line, in the head's order."
        )
    return names


@SOURCES.register(
    "timm:",
    prefix=True,
    config=TimmOptions,
    help="NAME any timm model; pretrained weights download when online; "
    "NAME#weights=PATH your own checkpoint of it",
)
def build_timm_source(name: str) -> Source:
    """Build ``timm:NAME`` with pretrained weights (or seeded random ones, see module docs),
    or ``timm:NAME#weights=PATH`` with your own.

    The returned :class:`Source` maps pixels ``[B, 3, H, W]`` in ``[0, 1]`` to logits
    ``[B, K]``, with ``(3, H, W)`` = ``pretrained_cfg["input_size"]``.
    """
    timm = _import_timm()
    arch, hash_, rest = name.partition("#")
    options: TimmOptions = options_config(
        TimmOptions, hash_options(name, hash_ + rest), "source", f"timm:{name}", "timm:"
    )
    if options.labels and not options.weights:
        raise ReprogramError(
            f"timm:{name}: #labels names the classes of your own checkpoint; give #weights too."
        )
    if options.weights:
        _check_name(timm, arch, need_weights=False)
        model, classes = _own_model(timm, arch, options)
        return _source(model, name, _label_file(options.labels, classes) if options.labels
                       else None, options.size)
    random_init = os.environ.get(RANDOM_INIT_ENV, "").strip().lower() in {"1", "true", "yes"}
    _check_name(timm, arch, need_weights=not random_init)
    # Model init draws random numbers; keep the caller's global RNG where it was.
    with torch.random.fork_rng(devices=[]):
        if random_init:
            torch.manual_seed(0)
            model = timm.create_model(arch, pretrained=False)
        else:
            unreachable = _hub_unreachable()
            cached = _cached_weights_file(arch) if unreachable else None
            if unreachable and cached is None:
                raise _offline_error(arch, unreachable)
            overlay = {"file": cached} if cached else None
            try:
                model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=overlay)
            except Exception as exc:  # noqa: BLE001 - hub/httpx/OS errors share no base
                raise _offline_error(arch, _one_line(exc)) from None
    return _source(model, name, None, options.size)


def _source(model: torch.nn.Module, name: str, labels: list[str] | None, size: int) -> Source:
    """``model`` as the source ``timm:name``: input size (``size`` × ``size`` when given),
    mean and std from its ``pretrained_cfg``; ``labels``, else ImageNet's names when the head
    matches, else ``class_i``."""
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    input_size = tuple(cfg.get("input_size", (3, 224, 224)))
    if size:
        input_size = (input_size[0], size, size)
    mean = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(cfg.get("std", (0.229, 0.224, 0.225)))
    num_classes = int(getattr(model, "num_classes", 0) or cfg.get("num_classes", 0))
    if num_classes <= 0:
        raise ReprogramError(f"timm:{name} has no classifier head; a source must output logits.")
    names, texts = (labels, None) if labels else label_names_for(model, num_classes)
    return Source(
        model,
        name=f"timm:{name}",
        input_size=input_size,
        mean=mean,
        std=std,
        label_names=names,
        label_texts=texts,
    )
