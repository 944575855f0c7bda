"""Training callbacks: small hook objects with their own checkpointed state (as in Lightning).

A method owns its callbacks: a mapping lists them in :meth:`Mapping.callbacks
<reprogram.mappings.base.Mapping.callbacks>`, a source its diagnostics in
:meth:`Source.diagnostics <reprogram.sources.base.Source.diagnostics>`. A callback also says
what its hooks cost in queries to a black-box source (:meth:`Callback.setup_queries`,
:meth:`Callback.epoch_queries`), so the query budget plans without knowing any method.
Callbacks see the trainer through :class:`TrainerView` only.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class TrainerView(Protocol):
    """What a callback may use of the trainer running it."""

    config: Any  #: the run's :class:`~reprogram.config.RunConfig`
    model: Any  #: the model being trained (program → source → mapping for ``fit``)
    splits: Any  #: the run's :class:`~reprogram.data.PreparedSplits` (test sealed)
    is_main: bool  #: whether this process is the main one (rank 0), which reports progress
    #: the model has no trainable parameter: the state after :meth:`Callback.on_fit_start` is
    #: the only candidate (zero-shot), so a hook that fits something before each epoch fits
    #: it there instead
    trains_nothing: bool

    def source_outputs(self, split: Any) -> torch.Tensor:
        """Source outputs ``[N, K_s]`` of ``split`` at the current program."""
        ...

    def top1_counts(self) -> torch.Tensor:
        """``[K_t, K_s]`` counts of the source's top-1 label per target class on train."""
        ...


Trainer = TrainerView  # the name the hooks' signatures use


class Callback:
    """Hooks the trainer calls; ``state_dict`` is saved in every checkpoint.

    ``initial_candidate``: when a callback sets it, the trainer also validates the state
    before the first epoch (epoch 0) and lets selection pick it.
    """

    name: str = "callback"
    initial_candidate: bool = False

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based) trains."""

    def on_train_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """After epoch ``epoch`` trained, before it is validated."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        """After epoch ``epoch`` trained and validated; ``record`` is its history row."""

    def setup_queries(self, trainer: Trainer) -> int:
        """Queries :meth:`on_fit_start` will send (an upper bound; 0 when already done)."""
        return 0

    def epoch_queries(self, trainer: Trainer) -> int:
        """Queries the per-epoch hooks will send in the next epoch (an upper bound)."""
        return 0

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
