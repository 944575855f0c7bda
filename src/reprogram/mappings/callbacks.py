"""The callbacks that mappings declare (:meth:`Mapping.callbacks`): count-based remapping
(FLM/ILM) and the ``linear`` mapping's probe warm start and closed-form ridge head."""

from __future__ import annotations

from typing import Any

import torch

from ..callbacks import Callback, Trainer
from ..probe import fit_probe
from ..ridge import fit_ridge_loo
from .side import side_features


class RemapCallback(Callback):
    """Refits a count-based mapping (FLM once, ILM before every epoch) at the current program.

    With nothing to train (e.g. ``text`` + ``flm`` on a language model's next-token logits: a
    verbalizer chosen by frequency), the one fit happens before the start is scored, which is
    then the only candidate. State: how many target classes changed source label at each refit
    (epoch 0: that fit).
    """

    name = "remap"

    def __init__(self) -> None:
        self.changes: list[dict[str, int]] = []

    @staticmethod
    def _due(trainer: Trainer) -> bool:
        mapping = trainer.model.mapping
        once = mapping.remap == "once" and not bool(mapping.fitted)
        return mapping.remap == "every_epoch" or once

    def setup_queries(self, trainer: Trainer) -> int:
        """A count pass over the training split when nothing trains and the fit is due."""
        return len(trainer.splits.train) if trainer.trains_nothing and self._due(trainer) else 0

    def epoch_queries(self, trainer: Trainer) -> int:
        """A count pass over the training split when a refit is due."""
        return len(trainer.splits.train) if self._due(trainer) else 0

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.trains_nothing:
            self.on_epoch_start(trainer, 0)

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        mapping = trainer.model.mapping
        if self._due(trainer):
            counts = trainer.top1_counts()
            changed = mapping.calibrate(counts)
            self.changes.append({"epoch": epoch, "changed": changed})

    def state_dict(self) -> dict[str, Any]:
        return {"changes": list(self.changes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.changes = list(state.get("changes", []))


class ProbeInitCallback(Callback):
    """Warm start of the ``linear`` mapping (``init=probe``), as in LP-FT.

    Before the first epoch, fits a logistic regression on the source logits of the training
    split at the initial program, with ``C`` chosen by cross-validation on the training split
    (the validation split stays unseen, so it can judge the start fairly), and loads it into
    the mapping. The starting point becomes selection candidate "epoch 0", so training the
    program can only be chosen when validation says it helps. State: the chosen ``C`` and
    the candidates (a resumed run does not refit).
    """

    name = "probe_init"
    initial_candidate = True

    def __init__(self) -> None:
        self.fitted: dict[str, Any] = {}

    def setup_queries(self, trainer: Trainer) -> int:
        """The probe's fit reads the training and validation splits once."""
        return 0 if self.fitted else len(trainer.splits.train) + len(trainer.splits.val)

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.fitted:
            return
        model, splits = trainer.model, trainer.splits
        f_train, f_val = trainer.source_outputs(splits.train), trainer.source_outputs(splits.val)
        if splits.task == "regression":
            self.fitted = _ridge_start(model.mapping.linear, f_train, splits.train.y)
            return
        fit = fit_probe(
            f_train,
            splits.train.y,
            f_val,
            splits.val.y,
            splits.num_classes,
            select="cv",
            seed=trainer.config.seed,
        )
        with torch.no_grad():
            model.mapping.linear.weight.copy_(fit.weight)
            model.mapping.linear.bias.copy_(fit.bias)
        self.fitted = {
            "C": fit.c,
            "select": fit.select,
            "cv_accuracy": fit.score,
            "val_accuracy": fit.val_accuracy,
            "candidates": fit.candidates,
        }

    def state_dict(self) -> dict[str, Any]:
        return dict(self.fitted)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fitted = dict(state)


def _ridge_start(layer: torch.nn.Linear, features: torch.Tensor, y: torch.Tensor) -> dict:
    """``init=probe`` for a regression target: ridge regression on standardised features,
    the penalty by leave-one-out on the training split (scikit-learn's ``RidgeCV``), folded
    into ``layer`` ``[1, D]``. Returns the record kept as the callback's state."""
    import numpy as np
    from sklearn.linear_model import RidgeCV

    x = features.double().numpy()
    mean, std = x.mean(0), x.std(0) + 1e-8
    alphas = np.logspace(-3, 4, 15)
    fit = RidgeCV(alphas=alphas).fit((x - mean) / std, y.double().numpy())
    weight = fit.coef_ / std
    bias = float(fit.intercept_) - float((weight * mean).sum())
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype).view(1, -1))
        layer.bias.fill_(bias)
    return {"alpha": float(fit.alpha_), "select": "leave-one-out on train (ridge regression)"}


class RidgeHeadCallback(Callback):
    """The ``linear`` mapping's ``head=ridge``: a closed-form layer at every program state.

    Before the first epoch and after each epoch's training (before its validation), refits
    the mapping as a ridge classifier on the source outputs of the training split at the
    current program, penalty by leave-one-out on that split (:func:`reprogram.ridge.fit_ridge_loo`).
    The program trains by gradient through the frozen layer in between. The untrained
    program with its ridge layer is selection candidate epoch 0, so validation decides
    whether training the program helped. State: the penalty chosen at each refit (and, in a
    run that does not validate, the fixed epoch's leave-one-out accuracy ``loo_accuracy``).

    A mapping with side features (``side=minirocket``) gets its transform fitted on the
    training split before the first refit (a resumed run restores it from the checkpoint);
    the training split's side features are computed once and set beside the source outputs
    at every refit.
    """

    name = "ridge_head"
    initial_candidate = True

    def __init__(self) -> None:
        self.fits: list[dict[str, float]] = []
        self._side_train: Any = None  # the training split's side features [N, F], not state

    def _features(self, trainer: Trainer) -> Any:
        train, mapping = trainer.splits.train, trainer.model.mapping
        outputs = trainer.source_outputs(train)
        side = mapping.side
        if side is None:
            return outputs
        if self._side_train is None:
            self._side_train = side_features(side, train.x)
        return torch.cat([outputs, self._side_train.to(outputs)], dim=1)

    def _refit(self, trainer: Trainer, epoch: int) -> None:
        splits, mapping, cfg = trainer.splits, trainer.model.mapping, trainer.config
        # a run that validates nothing (a refit's final run) gets the chosen epoch's
        # leave-one-out accuracy on the training examples instead: the estimate it has
        estimate = not cfg.score_val and epoch == cfg.select_epoch
        fit = fit_ridge_loo(
            self._features(trainer), splits.train.y, splits.num_classes, accuracy=estimate
        )
        with torch.no_grad():
            mapping.linear.weight.copy_(fit.weight)
            mapping.linear.bias.copy_(fit.bias)
        self.fits = [f for f in self.fits if f["epoch"] != epoch]  # a resumed epoch refits
        record = {"epoch": epoch, "alpha": fit.alpha, "loo_error": fit.loo_error}
        if fit.loo_accuracy is not None:
            record["loo_accuracy"] = fit.loo_accuracy
        self.fits.append(record)

    def setup_queries(self, trainer: Trainer) -> int:
        """The first fit reads the training split."""
        return 0 if self.fits else len(trainer.splits.train)

    def epoch_queries(self, trainer: Trainer) -> int:
        """The refit after each epoch's training reads the training split."""
        return len(trainer.splits.train)

    def on_fit_start(self, trainer: Trainer) -> None:
        if not self.fits:  # a resumed run restores the layer (and side) from its checkpoint
            side = trainer.model.mapping.side
            if side is not None:
                side.fit(trainer.splits.train.x, seed=trainer.config.seed)
            self._refit(trainer, 0)

    def on_train_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        self._refit(trainer, epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"fits": [dict(f) for f in self.fits]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fits = [dict(f) for f in state.get("fits", [])]
