"""The baseline runner: same splits, seeds, epochs, selection and artifact as ``fit``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from ..adapter import Adapted
from ..artifact import BASELINE_FORMAT, load_state, register_loader, versions, write_artifact
from ..callbacks import Callback
from ..config import BaselineConfig, FitResult, settings_of
from ..data import PreparedSplits, TargetData
from ..data.checks import check_writable_dir
from ..errors import ArtifactError, ReprogramError
from ..evaluate import roc_auc, score
from ..model import check_source, target_fields
from ..programs.base import check_side
from ..registry import Registry
from ..selection import kfold_run
from ..sources import Source, build_source
from ..tasks import named, task_of
from ..train import (
    Job,
    discard_replaced,
    load_run_data,
    prepare_out,
    run_job,
    target_spec,
    training_spec,
)

BASELINES: Registry[Baseline] = Registry(
    "baseline",
    _plugins=(
        "reprogram.baselines.logistic",
        "reprogram.baselines.finetune",
        "reprogram.baselines.parameter_efficient",
        "reprogram.baselines.scratch",
        "reprogram.baselines.minirocket",
        "reprogram.baselines.hydra",
        "reprogram.baselines.sequence",
        "reprogram.baselines.forecast",
    ),
)


class BuildContext(NamedTuple):
    """What :meth:`Baseline.build` gets: the frozen source (``None`` for methods without one),
    one target input's shape, the number of classes, the image side the source sees and a
    sequence target's symbols."""

    source: Source | None
    input_shape: tuple[int, ...]
    num_classes: int
    canvas_size: int | None = None
    vocabulary: list[str] | None = None
    task: str = "classification"


@dataclass
class BaselineRun:
    """What a baseline's :meth:`Baseline.train` receives."""

    config: BaselineConfig
    splits: PreparedSplits
    source: Source | None
    model: nn.Module
    artifact_config: dict[str, Any]
    out: Path
    callbacks: list[Callback] = field(default_factory=list)


class Baseline:
    """A baseline method. Subclasses set ``needs_source`` and implement ``build`` and ``train``.

    ``build`` makes the untrained model from what ``config.json`` records (so loading an
    artifact rebuilds the same module); the model maps target inputs ``[B, C, H, W]`` to
    scores ``[B, K]`` and offers ``adapter_state_dict()`` (what is saved),
    ``trainable_parameters()`` and ``source_parameters()``.
    """

    needs_source: bool = True
    default_lr: float | None = None
    #: Optimizer options this method trains with unless the command line sets them.
    optimizer_defaults: ClassVar[dict[str, Any]] = {}
    #: Target modalities a baseline with a source handles (its source's kind must match).
    modalities: tuple[str, ...] = ("image",)
    #: False for fixed settings (a random forest): ``--select kfold:K``/``refit`` then runs no
    #: selection runs and fits the final model on every training example.
    chooses: bool = True

    def __init__(self, options: Any) -> None:
        self.options = options

    def build(self, ctx: BuildContext) -> nn.Module:
        """The untrained model for ``ctx`` (rebuilt the same way when an artifact loads)."""
        raise NotImplementedError

    def train(self, run: BaselineRun) -> FitResult:
        raise NotImplementedError

    def fix_penalty(self, config: BaselineConfig, chosen: dict[str, float]) -> BaselineConfig:
        """``config`` with the penalty grid reduced to ``chosen`` (k-fold's final run).

        Fixed-feature baselines report ``candidates`` per penalty and override this;
        gradient baselines are chosen by epoch and never get here.
        """
        raise ReprogramError(f"baseline {config.method!r} has no penalty for k-fold to fix.")


class GradientBaseline(Baseline):
    """A baseline trained by the same Fabric loop as ``fit`` (epochs, selection, resume)."""

    def train(self, run: BaselineRun) -> FitResult:
        if run.splits.task == "regression" and isinstance(run.model, Adapted):
            run.model.start_regression(run.splits.train.y)  # a resumed checkpoint overrides it
        spec = run.source.spec() if run.source is not None else {}
        job = Job(
            run.config,
            run.model,
            run.splits,
            run.callbacks,
            run.artifact_config,
            spec,
            source=run.source,
        )
        return run_job(job, run.source)


def test_once(run: BaselineRun, model: nn.Module, progress: bool) -> dict[str, float | None]:
    """Unseal the test split and score ``model`` on it once: ``test_accuracy``,
    ``test_loss`` and, for two classes, ``test_roc_auc`` (all None in a k-fold fold, which
    scores no test)."""
    if not run.config.score_test:
        return named("test", None)
    run.splits.test.unseal()  # everything is chosen: the test split is scored once, now
    test = run.splits.test.open()
    kept: list[torch.Tensor] = []
    task = task_of(run.splits.task)
    batch = run.config.eval_batch_size
    totals = score(model, test.x, test.y, batch, "test" if progress else None, kept, task)
    auc = roc_auc(kept, test.y)
    tested = named("test", task.summary(totals, detail=True))
    return {**tested, **({"test_roc_auc": auc} if auc is not None else {})}


def fitted_once(
    run: BaselineRun,
    model: Any,
    *,
    val: dict[str, float],
    test: dict[str, float | None],
    seconds: float,
    selection: str,
    artifact: dict[str, Any],
    **extra: Any,
) -> FitResult:
    """Metrics of a baseline fitted in one go (no epochs), written with its artifact.

    ``val`` is the validation summary (:meth:`~reprogram.tasks.Task.summary`); ``test`` what
    :func:`test_once` returned; ``extra`` method-specific entries (the chosen penalty, its
    candidates, feature sizes)."""
    splits = run.splits
    metrics = {
        **named("val", val),
        **test,
        "trainable_parameters": model.trainable_parameters(),
        "source_parameters": model.source_parameters(),
        "train_seconds": round(seconds, 3),
        "epochs": 1,
        "best_epoch": 1,
        "devices": 1,
        "accelerator": "cpu",  # fitted on CPU features
        "selection": selection,
        **extra,
        "splits": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        "history": [],
    }
    write_artifact(run.out, artifact, model, metrics)
    model.eval()
    return FitResult(model=model, metrics=metrics, out=run.out, config=artifact)


def _make(method: str, options: dict[str, Any] | None) -> tuple[Baseline, Any]:
    config = BASELINES.build_config(method, options)
    return BASELINES.get(method).builder(config), config


def run_baseline(
    config: BaselineConfig,
    *,
    source: Source | None = None,
    target: TargetData | None = None,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train baseline ``config.method`` under the reprogramming protocol; write its artifact.

    Args:
        config: the run's settings (same splits, seed and epochs as a ``fit`` run).
        source: a ready source instead of building ``config.source``.
        target: ready target data instead of loading ``config.target``.
        callbacks: extra training hooks (gradient methods only).
    Returns:
        the trained model at its validation-selected state and the metrics written.
    """
    baseline, options = _make(config.method, config.method_options)
    starts = any(cb.initial_candidate for cb in callbacks or [])
    if isinstance(baseline, GradientBaseline) and config.epochs == 0 and not starts:
        raise ReprogramError(
            f"baseline {config.method!r} is trained by gradient descent from a random start, "
            "so --epochs 0 would keep an untrained model; give --epochs 1 or more. (The "
            "fixed-feature baselines, such as pixels-logreg and linear-probe, fit in closed "
            "form and ignore --epochs.)"
        )
    check_writable_dir(config.out)
    if config.folds:
        if baseline.needs_source and source is None:
            source = build_source(config.source)
        return kfold_run(
            config,
            run_baseline,
            source=source,
            target=target,
            fixed_options=baseline.fix_penalty,
            callbacks=callbacks,
            chooses=baseline.chooses,
            reads_source=baseline.needs_source,
        )
    data, splits = load_run_data(config, target)  # checks --out first; writes nothing
    if baseline.needs_source:
        source = source if source is not None else build_source(config.source)
    else:
        source = None
    kind = {3: "image", 2: "sequence"}.get(len(source.input_size)) if source else None
    if source is not None and (
        splits.modality not in baseline.modalities or kind != splits.modality
    ):
        raise ReprogramError(
            f"baseline {config.method!r} trains on a source's image features; it needs an image "
            f"source and an image target (got source {source.name!r} with inputs "
            f"{tuple(source.input_size)} and a {splits.modality} target). For time series use "
            f"--method minirocket or --method scratch; for sequences --method finetune (on a "
            f"language source: --source minilm-l6), composition-forest or scratch, and for a "
            f"linear probe on a language model: fit --program text --mapping-opt init=probe "
            f"--epochs 0."
        )
    if config.lr is None and baseline.default_lr is not None:
        config.optimizer_options = {"lr": baseline.default_lr, **config.optimizer_options}
    config.optimizer_options = {**baseline.optimizer_defaults, **config.optimizer_options}
    torch.manual_seed(config.seed)
    ctx = BuildContext(
        source,
        splits.input_shape,
        splits.num_classes,
        config.canvas_size,
        splits.vocabulary,
        splits.task,
    )
    model = baseline.build(ctx)
    artifact_config = {
        "format": BASELINE_FORMAT,
        "baseline": {
            "method": config.method,
            "options": asdict(options) if options is not None else {},
            "canvas_size": getattr(model, "canvas_size", None),
        },
        "source": source.spec() if source is not None else None,
        "target": target_spec(config, data, splits, given=target is not None),
        "optimizer": {"name": config.optimizer, "options": dict(config.optimizer_options)},
        "training": training_spec(config),
        "seed": config.seed,
        "versions": versions(),
    }
    out = prepare_out(config)  # inputs are valid: only now is --out touched
    run = BaselineRun(config, splits, source, model, artifact_config, out, list(callbacks or []))
    result = baseline.train(run)
    discard_replaced(out)
    return result


@register_loader(BASELINE_FORMAT)
def load_baseline(
    directory: Path, config: dict[str, Any], source: Source | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a baseline's trained model from its artifact (see :func:`load_artifact`)."""
    try:
        spec = config["baseline"]
        method, options = spec["method"], spec.get("options", {})
        canvas_size = spec.get("canvas_size")
        if not isinstance(method, str) or not isinstance(options, dict):
            raise TypeError("baseline needs a method name and options")
    except (KeyError, TypeError, AttributeError) as exc:
        what = f"lacks field {exc}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        raise ArtifactError(f"{directory / 'config.json'} {what}; it is not ours.") from None
    input_shape, num_classes = target_fields(config, directory)
    try:
        check_side("canvas_size", canvas_size)
    except ValueError as exc:
        raise ArtifactError(f"{directory / 'config.json'}: baseline {exc}.") from None
    baseline, _ = _make(method, options)
    src = check_source(config, source, directory) if baseline.needs_source else None
    vocabulary = config["target"].get("vocabulary")
    if vocabulary is not None and (
        not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary)
    ):
        raise ArtifactError(f"{directory / 'config.json'}: target vocabulary is malformed.")
    kind = str(config["target"].get("task", "classification"))
    model = baseline.build(
        BuildContext(src, input_shape, num_classes, canvas_size, vocabulary, kind)
    )
    load_state(directory, model, f"baseline {method}")
    if isinstance(model, Adapted):  # every baseline's model: predict reads the task
        model.spec = settings_of(config)
    return model, config
