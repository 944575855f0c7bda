"""``Adapted``: what the trainer and the artifact writer need of any trained model.

Reprogrammed models and every baseline's model derive from it, so the engine calls methods
instead of probing for attributes or testing classes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from .accelerator import to_model
from .batching import length_order, restore
from .errors import DataError


class Adapted(nn.Module):
    """A module part of which is trained (the adapter) while the rest stays frozen.

    ``spec`` (set by the builder, the trainer and the artifact loader) holds the settings
    ``config.json`` records: program, mapping, target (its ``task``) and seed.
    """

    spec: dict[str, Any]

    def predict(self, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Predictions for target inputs ``x`` ``[N, ...]`` (images ``[N, C_t, H_t, W_t]``,
        series ``[N, 1, L]``, token ids ``[N, L]``): the target classes ``[N]`` (int64) for a
        classification target; for a regression target (``task`` ``regression`` in the
        settings) the predicted values, float32 ``[N]`` for one output and ``[N, K]`` for
        several (a forecast's ``H`` steps, on the training rows' normalised scale: ``reprogram
        predict`` writes them on the data's own)."""
        target = getattr(self, "spec", {}).get("target", {})
        regression = target.get("task") == "regression"
        scores = self._scores(x, batch_size)
        if regression:
            values = torch.cat(scores) if scores else torch.empty(0, len(target["class_names"]))
            return values[:, 0] if values.shape[1] == 1 else values
        out = [s.argmax(-1) for s in scores]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def predict_proba(self, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Class probabilities ``[N, K]`` (float32, rows summing to 1) for target inputs ``x``
        ``[N, ...]`` of a classification target: the softmax of the model's scores (logits,
        or log-probabilities, which it leaves as they are).

        Raises:
            DataError: the model predicts values (a regression target).
        """
        target = getattr(self, "spec", {}).get("target", {})
        if target.get("task") == "regression":
            raise DataError("this model predicts values (a regression target), not class "
                            "probabilities; use predict().")
        scores = self._scores(x, batch_size)
        k = len(target.get("class_names", [])) or 0
        return torch.cat(scores).softmax(-1) if scores else torch.empty(0, k)

    def _scores(self, x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
        """The model's outputs for ``x`` in batches of ``batch_size``, float32 on the CPU, in
        ``x``'s row order (token ids are read longest first)."""
        if not isinstance(x, torch.Tensor):
            raise DataError(
                f"predict takes a tensor [N, ...]; got a {type(x).__name__}. Wrap it with "
                "torch.tensor(...), or encode sequences with reprogram.encode_sequences(model, "
                "texts)."
            )
        was_training = self.training
        self.eval()
        order = length_order(x)  # token ids: longest first, so a batch pads little
        rows = x if order is None else x[order]
        with torch.no_grad():
            scores = [
                self(to_model(self, rows[i : i + batch_size])).float().cpu()
                for i in range(0, len(rows), batch_size)
            ]
        self.train(was_training)
        return [restore(torch.cat(scores), order)] if order is not None else scores

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """The tensors training changes: what ``program.safetensors`` holds."""
        raise NotImplementedError

    def trainable_parameters(self) -> int:
        """Number of adapted scalars."""
        raise NotImplementedError

    def source_parameters(self) -> int | None:
        """Number of scalars in the frozen source model (``None``: there is none)."""
        return None

    def before_box(self) -> list[nn.Parameter] | None:
        """Parameters whose values reach a black-box source (zeroth-order optimizers estimate
        only those from queries); ``None`` when no black box is involved."""
        return None

    def scores_untrained(self) -> bool:
        """Whether the model as built is worth scoring without training (``--epochs 0``
        zero-shot: a fixed label table such as ``semantic``'s). Default: no."""
        return False

    def row_groups(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """How a training batch ``x`` ``[B, ...]`` may be read in sub-batches (index tensors
        covering every row once), for a model whose rows do not interact in the forward pass
        (no batch statistics): the trainer then sums their losses weighted by size, the
        batch's mean loss and gradient, at less padding. ``None`` (the default): read the
        batch whole."""
        return None

    def penalty(self) -> torch.Tensor | None:
        """A term the trainer adds to the training loss (a regulariser the adapter's parts
        ask for, e.g. an L1 on a program's coefficients); ``None``: nothing to add."""
        return None

    def start_regression(self, y_train: torch.Tensor) -> None:
        """Called once before a regression target trains from scratch, with the training
        targets ``[N]`` (or ``[N, H]``): a model whose new head starts at zero moves it to
        their mean, so the first epochs are not spent learning the offset. Default: nothing
        (programs with ``init=probe`` fit their start; forecasters read normalised windows)."""

    def finalize_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config.json`` at the end of training: add what training decided (e.g. a mapping
        table). Returns the (updated) config."""
        return config
