"""Training callbacks: small hook objects with their own checkpointed state (as in Lightning)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .train import Trainer


class Callback:
    """Hooks the trainer calls; ``state_dict`` is saved in every checkpoint."""

    name: str = "callback"

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based) trains."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        """After epoch ``epoch`` trained and validated; ``record`` is its history row."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class RemapCallback(Callback):
    """Refits a count-based mapping (FLM once, ILM before every epoch) at the current program.

    State: how many target classes changed source label at each refit.
    """

    name = "remap"

    def __init__(self) -> None:
        self.changes: list[dict[str, int]] = []

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        mapping = trainer.model.mapping
        if mapping.remap == "every_epoch" or (mapping.remap == "once" and not bool(mapping.fitted)):
            counts = trainer.top1_counts()
            changed = mapping.calibrate(counts)
            self.changes.append({"epoch": epoch, "changed": changed})

    def state_dict(self) -> dict[str, Any]:
        return {"changes": list(self.changes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.changes = list(state.get("changes", []))
