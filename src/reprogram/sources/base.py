"""The frozen source model as reprogram sees it.

A :class:`Source` wraps any ``torch.nn.Module`` classifier. An image source takes pixels in
``[0, 1]`` (``[B, 3, H, W]``), applies the model's own normalisation (read from its pretrained
config, never hard-coded by callers), and returns logits ``[B, K_s]``. A source without
``mean``/``std`` (an audio source: waveforms ``[B, T]``) passes its input through unchanged.
Its parameters never receive gradients and it stays in eval mode, also while the program
around it trains.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ..callbacks import Callback


class Source(nn.Module):
    """A frozen classifier with its input contract and label names.

    ``outputs`` is ``"logits"`` (class scores, named by ``label_names``) or ``"features"``
    (a ``features:`` source: penultimate features, which label-reading mappings refuse).

    Args:
        module: the classifier; maps normalised ``[B, C, H, W]`` to logits ``[B, K_s]``.
        name: the name that rebuilds it (``efficientnet-lite0``, ``timm:resnet18`` …).
        input_size: ``(C, H, W)`` the model was trained at (``(T,)`` for a waveform source).
        mean, std: per-channel normalisation of its pretrained config; ``None`` (both) for
            sources that take their input as it is (no normalisation).
        label_names: one name per output (``K_s`` of them).
        label_texts: a longer text per output for matching by meaning (the ``semantic``
            mapping; ImageNet sources give every synonym, ``"jersey, T-shirt, tee shirt"``);
            the label names when omitted.
    """

    outputs: str = "logits"
    #: ``"weights"``: a white box (gradients flow); a query-only source says ``"query"``.
    access: str = "weights"
    # buffers: ``[1, C, 1, 1]`` normalisation as ``x * _scale + _shift``; both None without it
    _scale: torch.Tensor | None
    _shift: torch.Tensor | None

    def __init__(
        self,
        module: nn.Module,
        *,
        name: str,
        input_size: tuple[int, ...],
        mean: tuple[float, ...] | None,
        std: tuple[float, ...] | None,
        label_names: list[str],
        label_texts: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.module = module
        self.name = name
        self.input_size = tuple(int(v) for v in input_size)
        self.mean_values = None if mean is None else tuple(float(v) for v in mean)
        self.std_values = None if std is None else tuple(float(v) for v in std)
        self.label_names = list(label_names)
        self.label_texts = list(label_texts) if label_texts is not None else list(label_names)
        if len(self.label_texts) != len(self.label_names):
            raise ValueError("give one label text per label name")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither (no normalisation)")
        if mean is None or std is None:
            self.register_buffer("_scale", None, persistent=False)
            self.register_buffer("_shift", None, persistent=False)
        else:
            c = self.input_size[0]
            scale = (1.0 / torch.tensor(std)).view(1, c, 1, 1)
            shift = (-torch.tensor(mean) / torch.tensor(std)).view(1, c, 1, 1)
            self.register_buffer("_scale", scale, persistent=False)
            self.register_buffer("_shift", shift, persistent=False)
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.module.eval()
        # Channels-last convolutions are ~1.5x faster on CPU for image models; a no-op for
        # modules without 4-D weights.
        self.channels_last = len(self.input_size) == 3
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)
        self._fingerprint: str | None = None

    def train(self, mode: bool = True) -> Source:
        """Keep the source in eval mode whatever is asked (its statistics never move)."""
        return super().train(False)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K_s]`` for pixels ``[B, C, H, W]`` in ``[0, 1]`` (or raw inputs)."""
        if self._scale is None:
            return self.module(pixels)
        assert self._shift is not None  # both or neither (checked in __init__)
        # In place on the fresh product: one full-size buffer fewer (mul's backward does not
        # need its output, so autograd allows it).
        x = (pixels * self._scale).add_(self._shift)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.module(x)

    def fingerprint(self) -> str:
        """SHA-256 over parameter and buffer names, shapes and bytes (computed once)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for key, tensor in sorted(self.module.state_dict().items()):
                t = tensor.detach().cpu().contiguous()
                h.update(key.encode())
                h.update(str(tuple(t.shape)).encode())
                h.update(str(t.dtype).encode())
                raw = t.detach().cpu().reshape(-1).view(torch.uint8).numpy()
                h.update(raw.tobytes() if t.numel() else b"")
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def diagnostics(self) -> list[Callback]:
        """Callbacks a ``fit`` on this source runs by default (``--no-diagnostics`` drops
        them); none for most sources."""
        return []

    def spec(self) -> dict[str, object]:
        """What config.json records about the source."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint(),
            "input_size": list(self.input_size),
            "mean": None if self.mean_values is None else list(self.mean_values),
            "std": None if self.std_values is None else list(self.std_values),
            "num_classes": self.num_classes,
            "parameters": self.num_parameters,
        }
