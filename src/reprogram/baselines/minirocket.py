"""``minirocket``: aeon's MiniRocket transform and a linear classifier, the time-series peer.

MiniRocket (Dempster et al., KDD 2021) turns a series into ~10,000 PPV features of fixed
dilated convolutions whose biases are quantiles of convolution outputs on training series.
The transform is fitted on the training split only; a ridge classifier (``classifier=ridge``,
the paper's choice; ``alpha`` from a grid) or a logistic regression (``classifier=logistic``,
``C`` from a grid) is then fitted on standardised features, with the regularisation chosen on
the validation split (ties go to the stronger regularisation). The test split is transformed
and scored once, after that choice.

Unequal lengths: the valid (non-NaN) part of every series is linearly resampled to the
target's padded length ``L`` (at least 9, MiniRocket's kernel length) before the transform.

Artifact: MiniRocket's fitted parameters (dilations, features per dilation, biases, channel
combinations) and the classifier folded into a float32 ``nn.Linear`` on the raw features are
saved as tensors in ``program.safetensors``; loading rebuilds the transform from them, so
``reprogram eval`` reproduces ``test_accuracy`` exactly. No pickle.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..config import FitResult
from ..errors import ReprogramError
from ..evaluate import score
from ..probe import fit_probe, fold_logistic
from ..tasks import CLASSIFICATION
from ..transforms import TRANSFORMS
from ..transforms.minirocket import MiniRocketFeatureOptions
from . import BASELINES
from .base import Baseline, BaselineConfig, BaselineRun, BuildContext, fitted_once, test_once
from .models import FeatureClassifier


def _grid(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{name} needs positive numbers, got {text!r}")
    return sorted(values)


@dataclass
class RidgeHeadOptions:
    """The linear head shared by the kernel-transform baselines (MiniRocket, Hydra, ...)."""

    classifier: str = field(default="ridge", metadata={"help": "ridge | logistic"})
    alphas: str = field(
        default=",".join(f"{a:.6g}" for a in np.logspace(-3, 3, 10)),
        metadata={"help": "ridge penalties tried on validation (comma-separated)"},
    )
    c_grid: str = field(
        default="0.0001,0.001,0.01,0.1,1,10,100",
        metadata={"help": "logistic inverse penalties tried on validation"},
    )

    def __post_init__(self) -> None:
        if self.classifier not in ("ridge", "logistic"):
            raise ValueError(f"classifier must be ridge or logistic, got {self.classifier!r}")
        _grid(self.alphas, "alphas")
        _grid(self.c_grid, "c_grid")


@dataclass
class MiniRocketOptions(MiniRocketFeatureOptions, RidgeHeadOptions):
    """Options of the ``minirocket`` baseline: the transform's and the head's."""


class KernelTransformClassifier(FeatureClassifier):
    """Kernel-transform features → linear head: ``[B, 1, L]`` → scores ``[B, K]``.

    Saves the transform's fitted parameters (``featurizer.*``) and the head (``head.*``).
    """

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        state = OrderedDict(("featurizer." + k, v) for k, v in self.featurizer.state_dict().items())
        state.update(super().adapter_state_dict())
        return state


def fit_ridge(
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    f_val: torch.Tensor,
    y_val: torch.Tensor,
    num_classes: int,
    alphas: list[float],
) -> tuple[torch.Tensor, torch.Tensor, float, list[dict[str, float]]]:
    """One-vs-rest ridge regression on ±1 targets for each penalty; the best on validation.

    Features are standardised with training statistics; one eigendecomposition serves every
    penalty (the ``N × N`` kernel when there are fewer examples than features). Ties in
    validation accuracy go to the larger penalty.

    Returns:
        weight ``[K, D]`` and bias ``[K]`` acting on raw features, the chosen ``alpha`` and
        every candidate's validation accuracy.
    """
    x = f_train.double().numpy()
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-8] = 1.0
    z = (x - mean) / std
    zv = (f_val.double().numpy() - mean) / std
    classes = np.unique(y_train.numpy())
    targets = np.where(y_train.numpy()[:, None] == classes[None, :], 1.0, -1.0)
    offset = targets.mean(0)
    yc = targets - offset
    if len(z) <= z.shape[1]:
        values, vectors = np.linalg.eigh(z @ z.T)
        projected = vectors.T @ yc
    else:
        values, vectors = np.linalg.eigh(z.T @ z)
        projected = vectors.T @ (z.T @ yc)
    values = np.clip(values, 0.0, None)
    candidates: list[dict[str, float]] = []
    best: tuple[float, float, np.ndarray] | None = None
    for alpha in sorted(alphas, reverse=True):
        solved = vectors @ (projected / (values + alpha)[:, None])
        coef = z.T @ solved if len(z) <= z.shape[1] else solved  # [D, K]
        predicted = classes[np.argmax(zv @ coef + offset, axis=1)]
        acc = float((predicted == y_val.numpy()).mean())
        candidates.append({"alpha": float(alpha), "val_accuracy": acc})
        if best is None or acc > best[0]:
            best = (acc, float(alpha), coef)
    assert best is not None, "alphas must not be empty"
    w, b = fold_logistic(best[2].T, offset, classes, mean, std, num_classes)
    return w, b, best[1], sorted(candidates, key=lambda c: c["alpha"])


class KernelTransformBaseline(Baseline):
    """A fixed random-kernel transform of univariate series, fitted on train, + a linear head.

    Subclasses set ``name`` (the registered method) and ``title`` (the method's name in
    prose) and implement :meth:`make_features`; the featurizer offers ``fit(x, seed)`` on
    training series ``[N, 1, L]``, ``dim`` and ``length``. The head's penalty is chosen on
    validation; the test split is scored once, afterwards.
    """

    needs_source = False
    name: str
    title: str

    def make_features(self, length: int) -> nn.Module:
        """The unfitted transform registered under this baseline's name, with its options."""
        return TRANSFORMS.get(self.name).builder(self.options, length)

    def build(self, ctx: BuildContext) -> nn.Module:
        input_shape, num_classes = ctx.input_shape, ctx.num_classes
        if len(input_shape) != 2 or input_shape[0] != 1:
            raise ReprogramError(
                f"{self.name} classifies univariate time series [1, L]; this target's inputs "
                f"have shape {tuple(input_shape)} (use linear-probe or scratch for images; "
                "composition-forest, scratch or finetune for sequences)."
            )
        return KernelTransformClassifier(self.make_features(int(input_shape[1])), num_classes, None)

    def _fit_head(
        self, f_train: torch.Tensor, f_val: torch.Tensor, run: BaselineRun
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float], list[dict[str, float]]]:
        splits, opts = run.splits, self.options
        if opts.classifier == "ridge":
            alphas = _grid(opts.alphas, "alphas")
            w, b, alpha, candidates = fit_ridge(
                f_train, splits.train.y, f_val, splits.val.y, splits.num_classes, alphas
            )
            return w, b, {"alpha": alpha}, candidates
        cs = _grid(opts.c_grid, "c_grid")
        fitted = fit_probe(f_train, splits.train.y, f_val, splits.val.y, splits.num_classes, cs)
        return fitted.weight, fitted.bias, {"C": fitted.c}, fitted.candidates

    def fix_penalty(self, config: BaselineConfig, chosen: dict[str, float]) -> BaselineConfig:
        key = "alphas" if "alpha" in chosen else "c_grid"
        value = chosen.get("alpha", chosen.get("C"))
        options = {**config.method_options, key: repr(value)}
        return dataclasses.replace(config, method_options=options)

    def train(self, run: BaselineRun) -> FitResult:
        cfg, splits, model = run.config, run.splits, run.model
        assert isinstance(model, KernelTransformClassifier)
        start = time.perf_counter()
        model.featurizer.fit(splits.train.x, seed=cfg.seed)  # type: ignore[operator]
        batch = cfg.eval_batch_size
        f_train = model.features(splits.train.x, batch)
        # A refit's final run validates on its training series (the same Split): reuse them.
        same = splits.val.x is splits.train.x
        f_val = f_train if same else model.features(splits.val.x, batch)
        weight, bias, selected, candidates = self._fit_head(f_train, f_val, run)
        with torch.no_grad():
            model.head.weight.copy_(weight)
            model.head.bias.copy_(bias)
        seconds = time.perf_counter() - start
        # The head on the features already computed, in the same chunks as score(model, x):
        # the same numbers without transforming the validation series a second time.
        val = CLASSIFICATION.summary(score(model.head, f_val, splits.val.y, batch))
        artifact = dict(run.artifact_config)
        artifact["baseline"] = {**artifact["baseline"], "selected": selected}
        return fitted_once(
            run,
            model,
            val=val,
            # the transform and the penalty are chosen: the test split, once
            test=test_once(run, model, cfg.progress and sys.stderr.isatty()),
            seconds=seconds,
            selection=f"{self.options.classifier} penalty with the best validation accuracy "
            f"(ties: stronger penalty); {self.title} fitted on train; test once",
            artifact=artifact,
            selected=selected,
            candidates=candidates,
            features=model.featurizer.dim,
            series_length=model.featurizer.length,
        )


class MiniRocketBaseline(KernelTransformBaseline):
    name = "minirocket"
    title = "MiniRocket"


@BASELINES.register(
    "minirocket",
    config=MiniRocketOptions,
    help="time series: aeon's MiniRocket features + ridge (penalty chosen on val); no source",
)
def build_minirocket(options: MiniRocketOptions) -> MiniRocketBaseline:
    return MiniRocketBaseline(options)
