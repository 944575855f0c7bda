"""``fit``: train a program and mapping around a frozen source, with the chosen selection.

The api layer: it builds the model (:mod:`reprogram.model`), hands one training job to the
engine (:mod:`reprogram.train`), and wraps it in k-fold/refit selection
(:mod:`reprogram.selection`) when asked.
"""

from __future__ import annotations

from .artifact import FORMAT, versions
from .blackbox.budget import prepare_source
from .callbacks import Callback
from .config import FitConfig, FitResult
from .data import TargetData
from .data.checks import check_writable_dir
from .errors import ReprogramError
from .model import build_model
from .plots import save_plots
from .selection import kfold_run
from .sources import Source, build_source
from .train import (
    Job,
    discard_replaced,
    load_run_data,
    prepare_out,
    run_job,
    target_spec,
    training_spec,
)


def fit(
    config: FitConfig,
    *,
    source: Source | None = None,
    target: TargetData | None = None,
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Train a program and mapping around a frozen source; write the artifact to ``config.out``.

    Args:
        config: the run's settings.
        source: a ready :class:`Source` (e.g. from ``from_module``) instead of ``config.source``.
        target: ready :class:`TargetData` instead of loading ``config.target``.
        callbacks: extra hooks (must be picklable when ``devices > 1``).
    Returns:
        the model restored to its best validation state, and the metrics written.
    """
    check_writable_dir(config.out)  # a clear error before any work
    if config.folds:
        source = source if source is not None else build_source(config.source)
        return kfold_run(config, fit, source=source, target=target, callbacks=callbacks)
    data, splits = load_run_data(config, target)  # checks --out first; writes nothing
    source = source if source is not None else build_source(config.source)
    source = prepare_source(config, source)  # queried (counted) for zeroth-order optimizers
    model, program_info, mapping_info = build_model(
        config,
        source,
        splits.input_shape,
        splits.num_classes,
        list(splits.class_names),
        splits.vocabulary,
        task=splits.task,
    )
    if config.epochs and not any(p.requires_grad for p in model.parameters()):
        raise ReprogramError(
            f"program {config.program!r} and mapping {config.mapping!r} have no trainable "
            "parameters: score the model as built with --epochs 0 (zero-shot), or choose a "
            "program or mapping that trains."
        )
    prepare_out(config)  # inputs are valid: only now is --out touched
    cbs: list[Callback] = model.mapping.callbacks() + list(callbacks or [])
    if config.diagnostics:
        cbs += source.diagnostics()
    artifact_config = {
        "format": FORMAT,
        "source": source.spec(),
        "target": target_spec(config, data, splits, given=target is not None),
        "program": program_info,
        "mapping": mapping_info,
        "optimizer": {"name": config.optimizer, "options": dict(config.optimizer_options)},
        "training": training_spec(config),
        **({"recipe": config.recipe} if config.recipe else {}),
        "seed": config.seed,
        "versions": versions(),
    }
    job = Job(config, model, splits, cbs, artifact_config, source.spec(), source=source)
    result = run_job(job, source)
    discard_replaced(result.out)
    if config.plots and source.access != "query":  # plots would spend queries
        save_plots(result, splits.val)
    return result
