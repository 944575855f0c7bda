"""Label mappings: source outputs ``[B, K_s]`` → target scores ``[B, K_t]``.

Target scores are used with cross-entropy (they are logits or log-probabilities). A mapping
that is fitted from counts of source top-1 predictions per target class (FLM, ILM) declares
``remap`` and implements :meth:`Mapping.calibrate`; its
:class:`~reprogram.mappings.callbacks.RemapCallback` calls it with the count matrix at the
current program. A mapping lists the callbacks it needs in :meth:`Mapping.callbacks`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..callbacks import Callback


class Mapping(nn.Module):
    """Base class. ``remap``: ``"never"``, ``"once"`` (before training) or ``"every_epoch"``."""

    remap: Literal["never", "once", "every_epoch"] = "never"
    #: Whether the mapping reads source outputs as class labels (a ``features:`` source has
    #: none; only mappings that learn a layer on any outputs, such as ``linear``, accept it).
    reads_labels: bool = True
    #: Whether :meth:`forward` also takes the target inputs (``forward(logits, inputs)``),
    #: after :meth:`bind_inputs` has been given their shape.
    reads_inputs: bool = False
    #: Whether the mapping scores classes meaningfully before any training (a table fixed
    #: when it is built: ``semantic``, ``verbalizer``, ``random``), so ``--epochs 0`` scores
    #: the model as built (zero-shot) instead of refusing an untrained start.
    scores_untrained: bool = False
    #: Whether the mapping can answer a value to regress (a learned layer: ``linear``,
    #: ``horizon``); a mapping that scores classes from source labels cannot.
    predicts_values: bool = False

    def __init__(self, num_source: int, num_target: int) -> None:
        super().__init__()
        self.num_source = int(num_source)
        self.num_target = int(num_target)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """Target scores ``[B, K_t]`` from source logits ``[B, K_s]``."""
        raise NotImplementedError

    def callbacks(self) -> list[Callback]:
        """Training hooks this mapping needs (fresh objects; their state is checkpointed)."""
        return []

    def bind_inputs(self, input_shape: tuple[int, ...]) -> None:
        """Prepare for target inputs of ``input_shape`` (one example); most mappings ignore it."""

    def bind_names(self, source_names: list[str], target_names: list[str]) -> None:
        """Prepare from the source's label names and the target's class names (at fit time
        only; what it decides must live in buffers, which the artifact saves). Most mappings
        ignore it."""

    def calibrate(self, counts: torch.Tensor) -> int:
        """Refit from ``counts`` ``[K_t, K_s]``; returns how many target classes changed."""
        raise NotImplementedError(f"{type(self).__name__} is not fitted from counts")

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        """Per target class, the source labels that serve it (for config.json and plots)."""
        raise NotImplementedError


class GroupedMapping(Mapping):
    """Each target class owns ``m`` source labels (``groups`` ``[K_t, m]``, a saved buffer); its
    score is the log of their mean source probability: ``log mean softmax(logits)[groups]``."""

    groups: torch.Tensor  # buffer [K_t, m]

    def __init__(self, num_source: int, num_target: int, m: int) -> None:
        super().__init__(num_source, num_target)
        if m * num_target > num_source:
            raise ValueError(
                f"{num_target} classes × {m} labels each needs {m * num_target} source labels; "
                f"the source has {num_source}: lower labels_per_class"
            )
        self.register_buffer("groups", torch.zeros(num_target, m, dtype=torch.long))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits, dim=-1)
        return torch.log(probs[:, self.groups].mean(-1).clamp_min(1e-12))

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        return [
            {"source_indices": row.tolist(), "source_labels": [label_names[i] for i in row]}
            for row in self.groups
        ]


def greedy_one_to_one(counts: torch.Tensor) -> torch.Tensor:
    """FLM's greedy assignment: repeatedly take the largest count, one source label per class.

    Args:
        counts: ``[K_t, K_s]`` how often target class ``t`` was predicted as source label ``s``.
    Returns:
        ``[K_t]`` source index assigned to each target class (ties → lowest indices).
    """
    k_t, k_s = counts.shape
    if k_s < k_t:
        raise ValueError(f"one-to-one mapping needs at least {k_t} source labels, got {k_s}")
    work = counts.to(torch.float64).clone()
    assigned = torch.full((k_t,), -1, dtype=torch.long)
    for _ in range(k_t):
        flat = int(torch.argmax(work))
        t, s = divmod(flat, k_s)
        assigned[t] = s
        work[t, :] = -1.0
        work[:, s] = -1.0
    return assigned
