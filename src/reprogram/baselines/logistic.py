"""``linear-probe`` and ``pixels-logreg``: logistic regression on fixed features.

``linear-probe`` uses the frozen source's penultimate features of the resized image,
``pixels-logreg`` the raw pixels (the scikit-learn classifier an image user would try
first). Features are computed once per split; the inverse regularisation strength ``C`` is
chosen on the validation split from a grid (ties go to the stronger regularisation); the
test split is featurised and scored once, after that choice.

The chosen scikit-learn model is folded into a float32 ``nn.Linear`` (standardisation
included) and every reported accuracy is computed through that module, so ``reprogram
eval`` reproduces ``test_accuracy`` exactly.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import FitResult
from ..errors import DataError
from ..evaluate import score
from ..probe import fit_probe
from ..tasks import CLASSIFICATION
from . import BASELINES
from .base import Baseline, BaselineConfig, BaselineRun, BuildContext, fitted_once, test_once
from .models import FeatureClassifier, PixelFeatures, SourceFeatures


@dataclass
class LogisticOptions:
    """Options of the logistic-regression baselines."""

    c_grid: str = field(
        default="0.0001,0.001,0.01,0.1,1,10,100",
        metadata={"help": "comma-separated inverse regularisation strengths tried on validation"},
    )
    max_iter: int = field(default=1000, metadata={"help": "L-BFGS iterations per fit"})

    def __post_init__(self) -> None:
        try:
            values = [float(v) for v in str(self.c_grid).split(",") if v.strip()]
        except ValueError:
            raise ValueError(
                f"c_grid must be comma-separated numbers, got {self.c_grid!r}"
            ) from None
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"c_grid needs positive numbers, got {self.c_grid!r}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}")

    @property
    def cs(self) -> list[float]:
        return sorted(float(v) for v in str(self.c_grid).split(",") if v.strip())


class LogisticBaseline(Baseline):
    """Logistic regression on fixed features with ``C`` chosen on validation."""

    pixels: bool = False

    def build(self, ctx: BuildContext) -> nn.Module:
        source, input_shape, num_classes, canvas_size = (
            ctx.source,
            ctx.input_shape,
            ctx.num_classes,
            ctx.canvas_size,
        )
        if self.pixels:
            return FeatureClassifier(PixelFeatures(input_shape), num_classes, None)
        assert source is not None
        features = SourceFeatures(source, input_shape, canvas_size)
        return FeatureClassifier(features, num_classes, source.num_parameters)

    def fix_penalty(self, config: BaselineConfig, chosen: dict[str, float]) -> BaselineConfig:
        options = {**config.method_options, "c_grid": repr(chosen["C"])}
        return dataclasses.replace(config, method_options=options)

    def train(self, run: BaselineRun) -> FitResult:
        cfg, splits, model = run.config, run.splits, run.model
        assert isinstance(model, FeatureClassifier)
        classes = torch.unique(splits.train.y)
        if len(classes) < 2:
            raise DataError(
                f"baseline {cfg.method!r} fits logistic regression, which needs training "
                f"examples of at least 2 classes; this target's training split has only class "
                f"{splits.class_names[int(classes[0])]!r}. Give a target with two or more classes."
            )
        show = cfg.progress and sys.stderr.isatty()
        start = time.perf_counter()
        batch = cfg.eval_batch_size
        f_train = model.features(splits.train.x, batch, "features (train)" if show else None)
        f_val = model.features(splits.val.x, batch, "features (val)" if show else None)
        fitted = fit_probe(
            f_train,
            splits.train.y,
            f_val,
            splits.val.y,
            splits.num_classes,
            self.options.cs,
            self.options.max_iter,
            verbose=cfg.progress,
        )
        with torch.no_grad():
            model.head.weight.copy_(fitted.weight)
            model.head.bias.copy_(fitted.bias)
        train_seconds = time.perf_counter() - start
        val = CLASSIFICATION.summary(score(model.head, f_val, splits.val.y, batch))
        artifact = dict(run.artifact_config)
        artifact["baseline"] = {**artifact["baseline"], "selected_C": fitted.c}
        return fitted_once(
            run,
            model,
            val=val,
            test=test_once(run, model, show),  # C is chosen: the test split, once
            seconds=train_seconds,
            selection="C with the best validation accuracy (ties: smaller C); test once",
            artifact=artifact,
            selected={"C": fitted.c},
            candidates=fitted.candidates,
        )


class LinearProbe(LogisticBaseline):
    needs_source = True


class PixelsLogReg(LogisticBaseline):
    needs_source = False
    pixels = True


@BASELINES.register(
    "linear-probe",
    config=LogisticOptions,
    help="logistic regression on the frozen source's penultimate features (C chosen on val)",
)
def build_linear_probe(options: LogisticOptions) -> LinearProbe:
    return LinearProbe(options)


@BASELINES.register(
    "pixels-logreg",
    config=LogisticOptions,
    help="scikit-learn logistic regression on raw pixels (C chosen on val); no source",
)
def build_pixels_logreg(options: LogisticOptions) -> PixelsLogReg:
    return PixelsLogReg(options)
