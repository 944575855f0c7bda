"""Sources from any torch module: :func:`from_module`, and the ``tiny-random-cnn`` test source."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ReprogramError
from . import SOURCES
from .base import Source

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def from_module(
    module: nn.Module,
    *,
    input_size: tuple[int, int, int] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    label_names: list[str] | None = None,
    name: str | None = None,
) -> Source:
    """Wrap any classifier ``module`` (normalised ``[B, C, H, W]`` → logits ``[B, K]``).

    Whatever is not given is read from a timm-style ``module.pretrained_cfg`` when the module
    has one, else defaults to ``input_size=(3, 224, 224)`` and the ImageNet mean/std
    ``(0.485, 0.456, 0.406)`` / ``(0.229, 0.224, 0.225)``. Without ``label_names`` one dummy
    forward of zeros ``[1, *input_size]`` (in eval mode, without gradients) finds ``K`` and the
    names are ``class_0`` … ``class_{K-1}``. ``name`` defaults to ``module:<ClassName>``.

    The module itself is wrapped, not copied: it is put in eval mode and its parameters get
    ``requires_grad=False``.
    """
    cfg = getattr(module, "pretrained_cfg", None)
    cfg = dict(cfg) if isinstance(cfg, dict) else {}
    if input_size is None:
        input_size = tuple(cfg.get("input_size", (3, 224, 224)))
    if mean is None:
        mean = tuple(cfg.get("mean", IMAGENET_MEAN))
    if std is None:
        std = tuple(cfg.get("std", IMAGENET_STD))
    assert input_size is not None
    if len(input_size) != 3 or len(mean) != input_size[0] or len(std) != input_size[0]:
        raise ReprogramError(
            f"input_size must be (C, H, W) with C values of mean and std; got input_size="
            f"{tuple(input_size)}, mean={tuple(mean)}, std={tuple(std)}."
        )
    if label_names is None:
        label_names = [f"class_{i}" for i in range(_count_outputs(module, input_size))]
    return Source(
        module,
        name=name or f"module:{type(module).__name__}",
        input_size=input_size,
        mean=mean,
        std=std,
        label_names=label_names,
    )


def _count_outputs(module: nn.Module, input_size: tuple[int, int, int]) -> int:
    """``K`` from one forward of zeros ``[1, C, H, W]``; the module is left in eval mode."""
    module.eval()
    try:
        param = next(iter(module.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        with torch.no_grad():
            out = module(torch.zeros(1, *input_size, device=device, dtype=dtype))
    except Exception as exc:  # noqa: BLE001 - any failure means the contract is not met
        raise ReprogramError(
            f"{type(module).__name__} does not run on a [1, {', '.join(map(str, input_size))}] "
            f"input ({type(exc).__name__}: {exc}); pass the right input_size."
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ReprogramError(
            f"{type(module).__name__} must return logits [B, K]; it returned {shape}."
        )
    return int(out.shape[1])


def tiny_cnn(num_classes: int = 100, seed: int = 0) -> nn.Module:
    """A deterministic random tiny CNN: ``[B, 3, H, W]`` → logits ``[B, num_classes]``.

    conv 3→8 (stride 2) · BN · ReLU · conv 8→16 (stride 2) · BN · ReLU · global average
    pool · linear 16→``num_classes``. Every parameter and BN buffer (including non-trivial
    running mean/var, so a moved statistic is detectable) is drawn from a local
    ``torch.Generator`` seeded with ``seed``; the global RNG is not touched.
    """
    gen = torch.Generator().manual_seed(seed)
    # Built on the meta device so that default initialisation draws nothing from the global RNG.
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False, device="meta"),
        nn.BatchNorm2d(8, device="meta"),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False, device="meta"),
        nn.BatchNorm2d(16, device="meta"),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes, device="meta"),
    ).to_empty(device="cpu")

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    with torch.no_grad():
        for layer in net:
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(randn(*layer.weight.shape) * math.sqrt(2.0 / fan_in))
            elif isinstance(layer, nn.BatchNorm2d):
                c = layer.num_features
                # built above with track_running_stats=True, so the statistics exist
                assert layer.running_mean is not None and layer.running_var is not None
                assert layer.num_batches_tracked is not None
                layer.weight.copy_(1.0 + 0.1 * randn(c))
                layer.bias.copy_(0.1 * randn(c))
                layer.running_mean.copy_(0.1 * randn(c))
                layer.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                layer.num_batches_tracked.zero_()
            elif isinstance(layer, nn.Linear):
                layer.weight.copy_(randn(*layer.weight.shape) / math.sqrt(layer.in_features))
                layer.bias.copy_(0.01 * randn(layer.out_features))
    return net.eval()


@SOURCES.register(
    "tiny-random-cnn", help="a tiny random CNN (not pre-trained) for tests and smoke runs"
)
def build_tiny_random_cnn() -> Source:
    """``tiny_cnn(100, seed=0)``: pixels ``[B, 3, 32, 32]`` in ``[0, 1]`` → logits ``[B, 100]``."""
    return Source(
        tiny_cnn(num_classes=100, seed=0),
        name="tiny-random-cnn",
        input_size=(3, 32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        label_names=[f"unit_{i}" for i in range(100)],
    )


__all__ = ["build_tiny_random_cnn", "from_module", "tiny_cnn"]
