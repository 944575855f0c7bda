"""``lora`` and ``bitfit``: parameter-efficient fine-tuning of an image source, with a new head.

Both start from a copy of the source, as ``finetune`` does (target images resized to the
canvas, the source's normalisation, its body with the classifier removed, a new linear head
initialised at zero), but train only a small part of it:

* ``lora`` (Hu et al. 2022, through Hugging Face PEFT): a low-rank update ``B·A`` of rank
  ``rank``, scaled by ``alpha / rank``, beside each dense ``nn.Conv2d`` (``groups=1``,
  dilation 1, zero padding) and ``nn.Linear`` that the source's forward calls. Grouped and
  depthwise convolutions are left out: PEFT needs the rank divisible by the groups there,
  and its update would mix channels the layer keeps apart.
* ``bitfit`` (Ben Zaken et al. 2022): every bias and every normalisation layer's affine
  weight and bias.

Everything else stays as in the source, batch-norm running statistics included: the body
runs in eval mode whatever the trainer asks (LoRA's own dropout follows the training mode).
The artifact holds only the trained tensors (LoRA's ``lora_A``/``lora_B`` or the biases and
norm parameters, and the head); loading rebuilds the copy, re-attaches the LoRA layers the
same way and loads them, so ``reprogram eval`` reproduces the test accuracy exactly (the
LoRA weights are never merged into the layers).

Same epochs budget, batch size, validation selection and early stopping as ``fit``; Adam,
``--lr`` default 1e-3.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ReprogramError
from ..sources import Source
from . import BASELINES
from .base import BuildContext, GradientBaseline
from .models import FinetunedSource

#: The pip extra that installs PEFT (``peft==0.21.2``).
PEFT_EXTRA = "vision"
#: Layer kinds the ``layers`` option of ``lora`` names.
LORA_LAYERS: dict[str, tuple[type[nn.Module], ...]] = {
    "all": (nn.Conv2d, nn.Linear),
    "conv": (nn.Conv2d,),
    "linear": (nn.Linear,),
}
#: Normalisation layers whose affine parameters ``bitfit`` trains.
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # batch and instance norm
    nn.GroupNorm,
    nn.LayerNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def import_peft() -> Any:
    """The ``peft`` module, or a :class:`ReprogramError` saying how to install it."""
    try:
        import peft  # lazy: an optional extra, needed only by the lora baseline
    except ImportError:
        raise ReprogramError(
            f"the lora baseline needs Hugging Face PEFT: pip install 'reprogram[{PEFT_EXTRA}]' "
            f"(or pip install peft==0.21.2)."
        ) from None
    return peft


@dataclass
class LoraOptions:
    """Options of the ``lora`` baseline."""

    rank: int = field(default=8, metadata={"help": "rank r of each low-rank update B·A"})
    alpha: float | None = field(
        default=None,
        metadata={"help": "updates are scaled by alpha / rank (default: alpha = rank, scale 1)"},
    )
    dropout: float = field(
        default=0.0, metadata={"help": "dropout on the input of each LoRA update (training only)"}
    )
    layers: str = field(
        default="all",
        metadata={"help": "layers that get an update: all (Conv2d and Linear), conv or linear"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"rank must be a positive integer, got {self.rank!r}")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.layers not in LORA_LAYERS:
            raise ValueError(f"layers must be one of {', '.join(LORA_LAYERS)}, got {self.layers!r}")


class PartlyTrainedSource(FinetunedSource):
    """A copy of a source with a new linear head, of which only some tensors train.

    ``[B, C_t, H, W]`` target images → resize to the canvas → the source's normalisation →
    the copy's body (classifier removed) → ``head`` → scores ``[B, K]``, as in
    :class:`FinetunedSource`; but the body starts frozen, stays in eval mode (its batch-norm
    statistics never move) and subclasses choose what in it trains. The trained tensors
    (``requires_grad``, head included) are what the artifact holds.
    """

    def __init__(
        self,
        source: Source,
        input_shape: tuple[int, ...],
        num_classes: int,
        canvas_size: int | None,
    ) -> None:
        super().__init__(source, input_shape, num_classes, canvas_size)
        self.body.requires_grad_(False)
        self.body.eval()
        self.input_shape = tuple(int(s) for s in input_shape)

    def train(self, mode: bool = True) -> PartlyTrainedSource:
        """The head (and any trained module's own dropout) in ``mode``; the body in eval."""
        super().train(mode)
        self.body.train(False)
        return self

    @torch.no_grad()
    def dry_run(self, watch: dict[str, nn.Module] | None = None) -> set[str]:
        """One eval-mode forward of a zero image ``[1, *input_shape]``; the names in ``watch``
        whose module ran. A :class:`ReprogramError` when the forward fails."""
        ran: set[str] = set()
        handles = [
            module.register_forward_hook(lambda *_args, name=name: ran.add(name))
            for name, module in (watch or {}).items()
        ]
        was_training = self.training
        self.train(False)
        try:
            self(torch.zeros(1, *self.input_shape))
        except Exception as exc:  # noqa: BLE001 - any failure means the copy cannot run
            raise ReprogramError(
                f"the adapted copy of the source does not run ({type(exc).__name__}: {exc})."
            ) from None
        finally:
            for handle in handles:
                handle.remove()
            self.train(was_training)
        return ran

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        trained = {name for name, p in self.named_parameters() if p.requires_grad}
        return OrderedDict((k, v) for k, v in self.state_dict().items() if k in trained)


class LoraSource(PartlyTrainedSource):
    """A source copy with PEFT LoRA updates on its dense convolutions and linear layers.

    ``adapted`` lists the body's layers that got an update (dotted names); only their
    ``lora_A``/``lora_B`` tensors and the head train.
    """

    def __init__(
        self,
        source: Source,
        input_shape: tuple[int, ...],
        num_classes: int,
        canvas_size: int | None,
        options: LoraOptions,
    ) -> None:
        peft = import_peft()
        super().__init__(source, input_shape, num_classes, canvas_size)
        candidates = {
            name: module
            for name, module in self.body.named_modules()
            if name and lora_can_adapt(module, LORA_LAYERS[options.layers])
        }
        self.adapted = sorted(self.dry_run(candidates))  # layers the forward really calls
        if not self.adapted:
            kinds = {"all": "nn.Conv2d or nn.Linear", "conv": "nn.Conv2d", "linear": "nn.Linear"}
            raise ReprogramError(
                f"lora: source {source.name!r} has no layer LoRA can adapt (layers="
                f"{options.layers}: a {kinds[options.layers]} that its forward calls, besides "
                f"the classifier; convolutions need groups=1, dilation 1 and zero padding). "
                f"Try --method bitfit or --method finetune."
            )
        config = peft.LoraConfig(
            r=options.rank,
            lora_alpha=options.alpha if options.alpha is not None else options.rank,
            lora_dropout=options.dropout,
            target_modules="(?:" + "|".join(re.escape(n) for n in self.adapted) + ")",
            bias="none",
        )
        try:
            peft.inject_adapter_in_model(config, self.body)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise ReprogramError(f"lora: PEFT could not adapt {source.name!r} ({exc}).") from None
        for name, p in self.body.named_parameters():
            p.requires_grad_(".lora_A." in name or ".lora_B." in name)
        self.dry_run()  # the adapted copy still runs
        self.train(True)

    def train(self, mode: bool = True) -> LoraSource:
        """As :meth:`PartlyTrainedSource.train`, with LoRA's dropout in ``mode``."""
        super().train(mode)
        for module in self.body.modules():
            dropout = getattr(module, "lora_dropout", None)
            if isinstance(dropout, nn.ModuleDict):
                dropout.train(mode)
        return self


def lora_can_adapt(module: nn.Module, kinds: tuple[type[nn.Module], ...]) -> bool:
    """Whether PEFT's LoRA reproduces ``module``'s geometry: an ``nn.Linear``, or a dense
    ``nn.Conv2d`` (``groups=1``, dilation 1, zero padding), of the given ``kinds``."""
    if not isinstance(module, kinds):
        return False
    if isinstance(module, nn.Conv2d):
        dense = module.groups == 1 and all(d == 1 for d in module.dilation)
        return dense and module.padding_mode == "zeros"
    return True


class BitFitSource(PartlyTrainedSource):
    """A source copy of which only the biases and the normalisation layers' affine weights
    and biases train (with the head)."""

    def __init__(
        self,
        source: Source,
        input_shape: tuple[int, ...],
        num_classes: int,
        canvas_size: int | None,
    ) -> None:
        super().__init__(source, input_shape, num_classes, canvas_size)
        norms = [m for m in self.body.modules() if isinstance(m, NORM_LAYERS)]
        for p in (p for m in norms for p in m.parameters(recurse=False)):
            p.requires_grad_(True)
        for name, p in self.body.named_parameters():
            if name.rpartition(".")[2] == "bias":
                p.requires_grad_(True)
        if not any(p.requires_grad for p in self.body.parameters()):
            raise ReprogramError(
                f"bitfit: source {source.name!r} has no biases and no normalisation layers, so "
                f"only the head would train; use --method linear-probe for that."
            )
        self.train(True)


class Lora(GradientBaseline):
    needs_source = True
    default_lr = 1e-3

    def build(self, ctx: BuildContext) -> nn.Module:
        assert ctx.source is not None
        return LoraSource(
            ctx.source, ctx.input_shape, ctx.num_classes, ctx.canvas_size, self.options
        )


class BitFit(GradientBaseline):
    needs_source = True
    default_lr = 1e-3

    def build(self, ctx: BuildContext) -> nn.Module:
        assert ctx.source is not None
        return BitFitSource(ctx.source, ctx.input_shape, ctx.num_classes, ctx.canvas_size)


@BASELINES.register(
    "lora",
    config=LoraOptions,
    help="PEFT LoRA (rank 8) on the source's dense convs and linears, new head (Adam, lr 1e-3)",
)
def build_lora(options: LoraOptions) -> Lora:
    return Lora(options)


@BASELINES.register(
    "bitfit",
    help="only the source's biases and norm-layer affines trained, new head (Adam, lr 1e-3)",
)
def build_bitfit(options: None) -> BitFit:
    return BitFit(options)
