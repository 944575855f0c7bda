"""Modules the baselines train: feature classifiers, a fine-tuned source, a small CNN."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, cast

import torch
from torch import nn

from ..adapter import Adapted
from ..batching import length_groups
from ..errors import ReprogramError
from ..programs import build_program
from ..programs.base import ImageProgram
from ..programs.text import TextProgram
from ..programs.tokens import TokenConfig
from ..sources import Source
from ..sources.features import last_linear
from ..sources.language import LanguageSource
from ..transforms import featurize


def canvas_resize(
    source: Source, input_shape: tuple[int, ...], canvas_size: int | None
) -> ImageProgram:
    """The ``resize`` program: ``[B, C_t, H, W]`` → ``[B, C_s, S, S]`` pixels, nothing trained."""
    options = {"canvas_size": canvas_size} if canvas_size else {}
    program, _ = build_program("resize", options, input_shape, source.input_size)
    return cast(ImageProgram, program)  # "resize" builds a ResizeProgram


class SourceFeatures(nn.Module):
    """Frozen penultimate features ``[B, D]`` of a source for target images ``[B, C, H, W]``.

    The image is resized to the canvas (as the ``resize`` program does), then the source runs
    in eval mode and the input of its last linear layer is returned.
    """

    def __init__(self, source: Source, input_shape: tuple[int, ...], canvas_size: int | None):
        super().__init__()
        self.source = source
        self.resize = canvas_resize(source, input_shape, canvas_size)
        self.canvas_size = int(self.resize.canvas)
        _, self._classifier = last_linear(source.module)
        self.dim = int(self._classifier.in_features)

    def train(self, mode: bool = True) -> SourceFeatures:
        """Frozen: eval mode whatever is asked."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = self._classifier.register_forward_hook(
            lambda _m, inputs, _out: captured.append(inputs[0])
        )
        try:
            self.source(self.resize(x))
        finally:
            handle.remove()
        return captured[-1].flatten(1)


class PixelFeatures(nn.Module):
    """Raw pixels as features: ``[B, C, H, W]`` → ``[B, C·H·W]``."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.dim = int(torch.Size(input_shape).numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class FeatureClassifier(Adapted):
    """A linear classifier on fixed features: ``head(featurizer(x))``, ``[B, ...]`` → ``[B, K]``.

    Only ``head`` is trained and saved; the featurizer is rebuilt (the frozen source, or the
    identity on pixels).
    """

    def __init__(
        self, featurizer: nn.Module, num_classes: int, source_parameters: int | None
    ) -> None:
        super().__init__()
        self.featurizer = featurizer
        self.head = nn.Linear(int(featurizer.dim), num_classes)  # type: ignore[arg-type]
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self._source_parameters = source_parameters
        self.canvas_size = getattr(featurizer, "canvas_size", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.featurizer(x))

    @torch.no_grad()
    def features(
        self, x: torch.Tensor, batch_size: int, progress: str | None = None
    ) -> torch.Tensor:
        """Features ``[N, D]`` of inputs ``[N, ...]``, computed in chunks of ``batch_size``.

        The chunks start at 0 exactly as :func:`reprogram.evaluate.score` takes images and
        series, so a head scored on these features gives bit for bit what the whole model
        gives (token ids, which ``score`` reads longest first, are featurized row by row by
        the sequence peers' featurizers, so their chunks do not matter).
        """
        return featurize(self.featurizer, x, batch_size, self.head.in_features, progress)

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(("head." + k, v) for k, v in self.head.state_dict().items())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.head.parameters())

    def source_parameters(self) -> int | None:
        return self._source_parameters


def start_at_mean(head: nn.Linear, y_train: torch.Tensor) -> None:
    """A new linear ``head`` (outputs ``[B, H]``) starts at the training targets' mean: its
    bias ← ``y_train`` ``[N]`` or ``[N, H]`` averaged over rows (regression targets)."""
    mean = y_train.to(torch.float32).reshape(len(y_train), -1).mean(0)
    with torch.no_grad():
        head.bias.copy_(mean.expand_as(head.bias))


class FinetunedSource(Adapted):
    """A trainable copy of a source with a new linear head: every weight is trained.

    ``[B, C_t, H, W]`` target images → resize to the canvas → the source's normalisation →
    its body (classifier removed) → ``head`` → scores ``[B, K]``. Batch-norm statistics
    update in training mode, as in ordinary fine-tuning. The original source is not touched.
    """

    # buffers: the source's normalisation
    _scale: torch.Tensor
    _shift: torch.Tensor

    def __init__(
        self,
        source: Source,
        input_shape: tuple[int, ...],
        num_classes: int,
        canvas_size: int | None,
    ) -> None:
        super().__init__()
        self.resize = canvas_resize(source, input_shape, canvas_size)
        self.canvas_size = int(self.resize.canvas)
        body = copy.deepcopy(source.module)
        name, classifier = last_linear(body)
        parent_name, _, child = name.rpartition(".")
        setattr(body.get_submodule(parent_name) if parent_name else body, child, nn.Identity())
        for p in body.parameters():
            p.requires_grad_(True)
        self.body = body
        self.head = nn.Linear(classifier.in_features, num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if source._scale is None or source._shift is None:
            raise ReprogramError(
                f"fine-tuning needs a source with its input normalisation (mean/std); "
                f"{source.name} has none."
            )
        self.register_buffer("_scale", source._scale.clone(), persistent=False)
        self.register_buffer("_shift", source._shift.clone(), persistent=False)
        self.channels_last = source.channels_last
        self._source_parameters = source.num_parameters

    def start_regression(self, y_train: torch.Tensor) -> None:
        start_at_mean(self.head, y_train)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.resize(x) * self._scale + self._shift
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        return self.head(self.body(z).flatten(1))

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(
            (k, v) for k, v in self.state_dict().items() if k.startswith(("body.", "head."))
        )

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def source_parameters(self) -> int:
        return self._source_parameters


class FromScratch(Adapted):
    """A model trained whole from random initialisation: every tensor is saved, no source."""

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(self.state_dict())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def source_parameters(self) -> None:
        return None


class SmallCNN(FromScratch):
    """A small CNN for images trained from scratch: ``[B, C, H, W]`` → ``[B, K]``.

    Three 3×3 conv · batch-norm · ReLU blocks (``width``, 2·``width``, 4·``width`` channels;
    2×2 max-pooling after the first two), global average pooling, dropout and a linear
    layer. About 94k parameters at ``width`` 32 for grey inputs.
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, width: int = 32, dropout: float = 0.2
    ) -> None:
        super().__init__()
        c = int(input_shape[0])

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.net = nn.Sequential(
            *block(c, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(4 * width, num_classes),
        )
        self.canvas_size = None

    def start_regression(self, y_train: torch.Tensor) -> None:
        start_at_mean(cast(nn.Linear, self.net[-1]), y_train)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SeriesFCN(FromScratch):
    """The FCN of Wang et al. (2017) at half width, for series ``[B, 1, L]`` → scores ``[B, K]``.

    Three 1-D conv · batch-norm · ReLU blocks (kernels 8, 5, 3; ``2·width``, ``4·width``,
    ``2·width`` channels, length kept), global average pooling over each series' valid
    (non-NaN) positions, dropout and a linear layer. NaN padding at the end of shorter series
    enters the convolutions as zeros and is left out of the pooling. About 67k parameters at
    ``width`` 32.
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, width: int = 32, dropout: float = 0.2
    ) -> None:
        super().__init__()
        channels = (int(input_shape[0]), 2 * width, 4 * width, 2 * width)
        layers: list[nn.Module] = []
        for cin, cout, k in zip(channels[:-1], channels[1:], (8, 5, 3), strict=True):
            layers += [nn.ConstantPad1d(((k - 1) // 2, k // 2), 0.0)]  # "same" length
            layers += [nn.Conv1d(cin, cout, k, bias=False), nn.BatchNorm1d(cout), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels[-1], num_classes)
        self.canvas_size = None

    def start_regression(self, y_train: torch.Tensor) -> None:
        start_at_mean(self.head, y_train)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        valid = (~torch.isnan(x)).all(1, keepdim=True).to(x.dtype)  # [B, 1, L]
        h = self.body(torch.nan_to_num(x, nan=0.0))  # [B, C, L]
        pooled = (h * valid).sum(-1) / valid.sum(-1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


class SequenceCNN(FromScratch):
    """A small model for token sequences trained from scratch: ids ``[B, L]`` → ``[B, K]``.

    A learned embedding of the target's symbols (``width`` wide, id 0 the padding), read by
    :class:`SeriesFCN` as ``width`` channels, with each row's padding left out of its pooling.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        symbols: int,
        num_classes: int,
        width: int = 32,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(symbols + 1, width, padding_idx=0)
        self.fcn = SeriesFCN((width, int(input_shape[0])), num_classes, width, dropout)
        self.canvas_size = None

    def start_regression(self, y_train: torch.Tensor) -> None:
        self.fcn.start_regression(y_train)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.embed(ids).transpose(1, 2)  # [B, width, L]
        return self.fcn(e.masked_fill((ids == 0).unsqueeze(1), float("nan")))


class LiveText(TextProgram):
    """The ``text`` spelling read from a model's own input embeddings as they train (the
    embedding module is held unregistered: it belongs to the model being fine-tuned)."""

    def bind_source(self, source: Source) -> None:
        super().bind_source(source)
        model: Any = source.module
        object.__setattr__(self, "_live", model.get_input_embeddings())

    def embeddings(self) -> torch.Tensor:
        live: Any = self._live
        return cast(torch.Tensor, live.weight)


class FinetunedLanguageModel(Adapted):
    """A trainable copy of a language source with a new linear head: every weight trained.

    Token ids ``[B, L]`` → each symbol spelled as the ``text`` program spells it, read from
    the copy's own (trained) input embeddings → the copy → its pooled states (or the last
    position's state, for a causal LM) → ``head`` → scores ``[B, K]``. The original source
    is not touched.
    """

    def __init__(
        self, source: Any, vocabulary: list[str], input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        super().__init__()
        if not isinstance(source, LanguageSource):
            raise ReprogramError(
                f"fine-tuning a sequence target needs a language source; {source.name} is not one."
            )
        lm = LanguageSource(
            copy.deepcopy(source.module), source.tokenizer, name=source.name, output="hidden"
        )
        for p in lm.module.parameters():
            p.requires_grad_(True)
        self.lm = lm
        self.spell = LiveText(TokenConfig("".join(vocabulary)), input_shape, source.input_size)
        self.spell.bind_source(lm)
        self.head = nn.Linear(lm.width, num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.canvas_size = None
        self._source_parameters = source.num_parameters

    def start_regression(self, y_train: torch.Tensor) -> None:
        start_at_mean(self.head, y_train)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.lm(self.spell(ids)))

    def row_groups(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """Rows of similar length: the language model's rows do not interact (layer norms,
        no batch statistics), and the spelling cuts each batch to its longest row."""
        return length_groups(x)

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict(
            (k, v) for k, v in self.state_dict().items() if k.startswith(("lm.", "head."))
        )

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def source_parameters(self) -> int:
        return self._source_parameters
