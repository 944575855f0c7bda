"""The training loop: Lightning Fabric, validation-only selection, atomic checkpoints, resume.

Protocol: the trainer receives the test split sealed. Every choice (best epoch, early stop,
count-based mapping) looks at training or validation data only; the test split is unsealed
and scored once, after the best state has been restored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.strategies import DDPStrategy
from tqdm.auto import tqdm

from .accelerator import describe, to_model
from .accelerator import resolve as resolve_accelerator
from .artifact import CONFIG, METRICS, PROGRAM, load_artifact, read_json, write_artifact
from .batching import enabled as length_batching_enabled
from .batching import length_order, restore
from .blackbox.budget import STOPPED_BY_BUDGET, QueryTracker
from .blackbox.protocol import EndpointError
from .blackbox.replay import ANSWERS_NAME
from .blackbox.source import JOURNAL_NAME
from .callbacks import Callback
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .config import FitResult, RunConfig, changed_settings
from .data import PreparedSplits, Split, TargetData, load_target
from .data.splits import prepare_splits
from .errors import ReprogramError
from .evaluate import roc_auc, score
from .optim import NothingToTrain, build_optimizer
from .sources import Source
from .tasks import named, task_of, unnamed

log = logging.getLogger(__name__)


@dataclass
class Job:
    """What each training process receives (pickled for data-parallel runs).

    ``model`` is any :class:`~reprogram.adapter.Adapted` module; ``source`` the frozen source
    whose queries are counted when it is a black box (``None`` for a model without one).
    """

    config: RunConfig
    model: Any
    splits: PreparedSplits
    callbacks: list[Callback]
    artifact_config: dict[str, Any]
    source_spec: dict[str, Any]
    source: Any = None
    accelerator: str = "cpu"  # resolved: cpu, cuda or mps


def _val_text(summary: dict[str, float] | None) -> str:
    """``val loss … val acc …`` (regression: ``val rmse …``) for a progress line."""
    if summary is None:
        return "not validated (epoch fixed in advance)"
    if "accuracy" in summary:
        return f"val loss {summary['loss']:.4f}  val acc {summary['accuracy']:.4f}"
    return f"val mse {summary['loss']:.4f}  val rmse {summary['rmse']:.4f}"


class _PlainProgress:
    """Progress inside a long epoch when stderr is no terminal (a log file, nohup, a batch
    job), where the bar is off: a line at most every :attr:`every` seconds with the step, the
    running mean loss and the time left, e.g.
    ``epoch 1/10  step 120/1750 (7%)  loss 0.3341  2.0 min so far, about 27 min left``."""

    every = 60.0

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.start = self.last = time.monotonic()

    def step(self, loss: float) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last < self.every or self.done >= self.total:
            return
        self.last = now
        spent = now - self.start
        left = spent / self.done * (self.total - self.done)
        tqdm.write(
            f"{self.label}  step {self.done}/{self.total} ({self.done / self.total:.0%})  "
            f"loss {loss:.4f}  {spent / 60:.1f} min so far, about {left / 60:.0f} min left",
            file=sys.stderr,
        )


def _epoch_order(
    seed: int, epoch: int, n: int, rank: int, world: int, share: float = 1.0
) -> torch.Tensor:
    """This rank's shuffled training indices for ``epoch``, a function of (seed, epoch) only.

    Deriving the order from the epoch number (not from a running RNG) is what makes a resumed
    run see exactly the batches an uninterrupted run would. ``share < 1`` keeps the first
    ``ceil(share · n)`` of the epoch's permutation: a fresh random subset every epoch. Shards
    are padded by wrapping so every rank takes the same number of steps.
    """
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=gen)
    if share < 1.0:
        order = order[: max(1, math.ceil(share * n))]
        n = len(order)
    per_rank = -(-n // world)
    if per_rank * world > n:
        order = torch.cat([order, order[: per_rank * world - n]])
    return order[rank::world]


class Trainer:
    """Runs one fit inside a Fabric process (rank 0 writes files)."""

    def __init__(self, fabric: Any, job: Job) -> None:
        self.fabric = fabric
        self.job = job
        self.config = job.config
        self.model = job.model
        self.splits = job.splits
        self.callbacks = job.callbacks
        self.out = Path(job.config.out)
        self.is_main = fabric.global_rank == 0
        self.trains_nothing = False  # set by fit(): the model has no trainable parameter
        self.task = task_of(job.splits.task)
        self._digests: dict[str, Any] | None = None

    def data_digests(self) -> dict[str, Any]:
        """Short digests of the training and validation examples and the recorded test
        split's: a checkpoint keeps them, and ``--resume`` refuses data that changed since
        (a csv file edited at the same path), before any weight of the old data is kept."""
        if self._digests is None:
            self._digests = {
                "train": self.splits.train.digest(),
                "val": self.splits.val.digest(),
                "test": (self.job.artifact_config.get("target") or {}).get("test_digest"),
            }
        return self._digests

    # ----------------------------------------------------------------- evaluation helpers
    def _sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over processes, on the CPU (NCCL reduces device tensors only)."""
        return self.fabric.all_reduce(self.fabric.to_device(tensor), reduce_op="sum").cpu()

    def _shard(self, n: int) -> torch.Tensor:
        return torch.arange(n)[self.fabric.global_rank :: self.fabric.world_size]

    def evaluate(
        self,
        split: Split,
        sharded: bool = True,
        progress: str | None = None,
        keep: list[torch.Tensor] | None = None,
        detail: bool = False,
    ) -> dict[str, Any]:
        """The task's summary of the current model on ``split`` (``loss`` and ``accuracy``;
        regression: ``loss`` (MSE), ``mse``, ``rmse``, ``mae``, ``r2``; ``detail`` adds a
        forecast's ``mse_by_step``). ``keep``, on an unsharded call, collects the scores as
        :func:`~reprogram.evaluate.score` does."""
        batch = self.config.eval_batch_size
        if sharded and self.fabric.world_size > 1:
            part = split.subset(self._shard(len(split)))
            totals = self._sum(score(self.model, part.x, part.y, batch, task=self.task))
        else:
            totals = score(self.model, split.x, split.y, batch, progress, keep, self.task)
        return self.task.summary(totals, detail)

    def validate(self) -> dict[str, float] | None:
        """The summary on the validation split; None when ``score_val`` is off (a run whose
        epoch is fixed in advance: validating would choose nothing)."""
        if not self.config.score_val:
            return None
        return self.evaluate(self.splits.val)

    @torch.no_grad()
    def source_outputs(self, split: Split) -> torch.Tensor:
        """Source outputs ``[N, K_s]`` (logits or features) of ``split`` at the current program.

        Every process computes all of them (callbacks that fit on them stay identical).
        """
        self.model.eval()
        step = self.config.eval_batch_size
        order = length_order(split.x)  # token ids: longest first, so a batch pads little
        x = split.x if order is None else split.x[order]
        parts = [
            self.model.source_logits(to_model(self.model, x[i : i + step])).cpu()
            for i in range(0, len(split), step)
        ]
        if not parts:
            return torch.empty(0, self.model.source.num_classes)
        return restore(torch.cat(parts), order)

    @torch.no_grad()
    def top1_counts(self) -> torch.Tensor:
        """``[K_t, K_s]`` counts of the source's top-1 label per target class on train data."""
        self.model.eval()
        counts = torch.zeros(self.splits.num_classes, self.model.source.num_classes)
        part = self.splits.train.subset(self._shard(len(self.splits.train)))
        step = self.config.eval_batch_size
        order = length_order(part.x)  # token ids: longest first (the counts are sums)
        xs, ys = (part.x, part.y) if order is None else (part.x[order], part.y[order])
        for i in range(0, len(part), step):
            x, y = xs[i : i + step], ys[i : i + step]
            top = self.model.source_logits(to_model(self.model, x)).argmax(-1).cpu()
            counts.index_put_((y, top), torch.ones(len(y)), accumulate=True)
        if self.fabric.world_size > 1:
            counts = self._sum(counts)
        return counts

    # ----------------------------------------------------------------- checkpoints
    def _checkpoint_state(self, epoch: int, stepper: Any, state: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": 1,
            "epoch": epoch,
            "signature": self.config.signature(),
            "data": self.data_digests(),
            "adapter": {k: v.detach().clone() for k, v in self.model.adapter_state_dict().items()},
            "optimizer": stepper.state_dict(),
            "best": state["best"],
            "history": state["history"],
            "train_seconds": state["train_seconds"],
            "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
            "torch_rng": torch.get_rng_state(),
            "queries": self.queries.state_dict(),
        }

    def _restore(self, stepper: Any, state: dict[str, Any]) -> int:
        ckpt = load_checkpoint(self.out / CHECKPOINT_NAME)
        if ckpt.get("signature") != self.config.signature():
            diff = changed_settings(ckpt.get("signature", {}), self.config.signature())
            raise ReprogramError(
                f"--resume: the checkpoint in {self.out} was made with different settings "
                f"({diff}). Resume with the same settings, or start a new --out."
            )
        recorded, ours = ckpt.get("data"), self.data_digests()
        if recorded is not None and recorded != ours:  # checkpoints before the digest: none
            changed = [k for k in ours if recorded.get(k) != ours[k]]
            raise ReprogramError(
                f"--resume: the {' and '.join(changed)} examples differ from those the "
                f"checkpoint in {self.out} trained on (the data file changed since?), so its "
                "weights and scores would not fit them. Restore the data, or start a new --out."
            )
        self.model.load_state_dict(ckpt["adapter"], strict=False)
        stepper.load_state_dict(ckpt["optimizer"])
        for cb in self.callbacks:
            cb.load_state_dict(ckpt["callbacks"].get(cb.name, {}))
        torch.set_rng_state(ckpt["torch_rng"])
        self.queries.load_state_dict(ckpt.get("queries"))
        state.update(
            best=ckpt["best"], history=ckpt["history"], train_seconds=ckpt["train_seconds"]
        )
        return int(ckpt["epoch"])

    # ----------------------------------------------------------------- the loop

    def fit(self) -> dict[str, Any]:
        cfg = self.config
        fabric = self.fabric
        torch.manual_seed(cfg.seed)
        wrapped = fabric.setup_module(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        # nothing to train (``fit`` allows that with --epochs 0 only): the model as built is
        # the only candidate
        zero_shot = self.trains_nothing = not params
        stepper: Any = NothingToTrain()
        if not zero_shot:
            stepper, _ = build_optimizer(
                cfg.optimizer,
                cfg.optimizer_options,
                params,
                fabric.backward,
                before_box=self.model.before_box(),
            )
        #: the start is a selection candidate (epoch 0): a fitted mapping, or zero-shot (a
        #: model with nothing to train, or --epochs 0 on a mapping with a fixed table)
        self.starts = (
            zero_shot
            or any(cb.initial_candidate for cb in self.callbacks)
            or (cfg.epochs == 0 and self.model.scores_untrained())
        )
        # black-box query accounting (a null tracker for white boxes)
        self.queries = QueryTracker.attach(self, stepper, self.job.source)
        state: dict[str, Any] = {"best": None, "history": [], "train_seconds": 0.0}
        done = self._restore(stepper, state) if cfg.resume else 0
        if done and self.is_main and cfg.progress:
            tqdm.write(f"resuming {self.out} after epoch {done}")
        self.queries.check_start(done)
        if cfg.epochs == 0 and not self.starts:
            raise ReprogramError(
                "--epochs 0 trains nothing, so it needs a start worth keeping: a mapping fitted "
                "before training (--mapping linear with --mapping-opt head=ridge or init=probe), "
                "a mapping with a fixed table (semantic, verbalizer, random: zero-shot) or a "
                "model with nothing to train. Give --epochs 1 or more for this method."
            )
        self.queries.begin("setup")
        start = time.perf_counter()  # fits before the first epoch (probe, ridge head, side
        for cb in self.callbacks:  # features) and the start's validation are training time too
            cb.on_fit_start(self)
        if not done and self.starts:
            self._initial_candidate(state)
        state["train_seconds"] += time.perf_counter() - start
        train = self.splits.train
        for epoch in range(done + 1, cfg.epochs + 1):
            best = state["best"]
            if cfg.select_epoch is not None and epoch > cfg.select_epoch:
                break
            if cfg.patience and best and epoch - 1 - best["epoch"] >= cfg.patience:
                break
            if not self.queries.epoch_fits(epoch):
                state["stopped"] = STOPPED_BY_BUDGET
                break
            start = time.perf_counter()
            # a budget that runs out mid-epoch (retries) ends training like one that cannot
            # cover the next epoch, when an earlier state is there to test
            guard = self.queries.epoch_guard(can_stop=best is not None)
            with guard:
                self.queries.begin("count")
                for cb in self.callbacks:
                    cb.on_epoch_start(self, epoch)
                self.queries.begin("train")
                begin = getattr(stepper, "begin_epoch", None)  # optional: a per-epoch schedule
                if begin is not None:
                    begin(epoch)
                train_loss = self._train_epoch(wrapped, stepper, train, epoch)
                self.queries.begin("count")
                for cb in self.callbacks:
                    cb.on_train_epoch_end(self, epoch)
                self.queries.begin("val")
                summary = self.validate()
            if guard.stopped:
                state["stopped"] = guard.stopped
                break
            seconds = time.perf_counter() - start
            state["train_seconds"] += seconds
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                **named("val", summary),
                "seconds": round(seconds, 3),
                **self.queries.epoch_record(),
            }
            if cfg.select_epoch is not None:  # the epoch is fixed (k-fold chose it)
                improved = best is None or epoch == cfg.select_epoch
            else:
                # no fixed epoch, so score_val is on (the config checks) and validate() scored
                assert summary is not None
                improved = best is None or self.task.better(summary, unnamed("val", best))
            if improved:
                state["best"] = {
                    "epoch": epoch,
                    **named("val", summary),
                    "adapter": {
                        k: v.detach().clone() for k, v in self.model.adapter_state_dict().items()
                    },
                }
            state["history"].append(record)
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, record)
            if self.is_main:
                save_checkpoint(
                    self.out / CHECKPOINT_NAME, self._checkpoint_state(epoch, stepper, state)
                )
                self.queries.checkpointed()
                if cfg.progress:
                    mark = " *" if improved else ""
                    tqdm.write(
                        f"epoch {epoch}/{cfg.epochs}  train loss {train_loss:.4f}  "
                        f"{_val_text(summary)}{mark}  ({seconds:.1f}s)"
                    )
            fabric.barrier()
        return self._finish(state)

    def _initial_candidate(self, state: dict[str, Any]) -> None:
        """Validate the starting point and record it as selection candidate epoch 0."""
        summary = self.validate()
        state["best"] = {
            "epoch": 0,
            **named("val", summary),
            "adapter": {k: v.detach().clone() for k, v in self.model.adapter_state_dict().items()},
        }
        state["history"].append({"epoch": 0, "train_loss": None, **named("val", summary)})
        if self.is_main and self.config.progress:
            tqdm.write(f"epoch 0 (start)  {_val_text(summary)}")

    def _train_epoch(self, wrapped: Any, stepper: Any, train: Split, epoch: int) -> float:
        cfg = self.config
        self.model.train()
        order = _epoch_order(
            cfg.seed,
            epoch,
            len(train),
            self.fabric.global_rank,
            self.fabric.world_size,
            train.epoch_share,
        )
        steps = range(0, len(order), cfg.batch_size)
        shown, terminal = cfg.progress and self.is_main, sys.stderr.isatty()
        bar = tqdm(
            steps,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not (shown and terminal),
            leave=False,
            unit="batch",
        )
        plain = (
            _PlainProgress(f"epoch {epoch}/{cfg.epochs}", len(steps))
            if shown and not terminal
            else None
        )
        total, count = 0.0, 0
        for i in bar:
            idx = order[i : i + cfg.batch_size]
            x, y = self.fabric.to_device((train.x[idx], train.y[idx]))
            loss = stepper.step(lambda x=x, y=y: self._loss(wrapped, x, y))
            if not math.isfinite(loss):
                self._diverged(epoch, f"the training loss became {loss}")
            total += loss * len(idx)
            count += len(idx)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if plain is not None:
                plain.step(total / count)
        bad = [k for k, v in self.model.adapter_state_dict().items() if not v.isfinite().all()]
        if bad:
            self._diverged(epoch, f"{', '.join(bad[:3])} became NaN or infinite")
        return total / max(count, 1)

    def _loss(self, wrapped: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's loss on a batch plus the model's own penalty, if it has one. A model
        that offers sub-batches (:meth:`~reprogram.adapter.Adapted.row_groups`) is read in
        them, their mean losses weighted by size (one device only: a distributed model
        syncs gradients once per forward pass)."""
        groups = self.model.row_groups(x) if self.fabric.world_size == 1 else None
        if groups is None:
            loss = self.task.loss(wrapped(x), y)
        else:
            loss = torch.stack(
                [self.task.loss(wrapped(x[g]), y[g]) * (len(g) / len(y)) for g in groups]
            ).sum()
        penalty = self.model.penalty()
        return loss if penalty is None else loss + penalty

    def _diverged(self, epoch: int, what: str) -> None:
        """Stop a run that diverged, saying where and what to change (nothing is written:
        the last finished epoch stays checkpointed)."""
        lr = self.config.optimizer_options.get("lr")
        setting = f" (it is {lr})" if lr is not None else ""
        raise ReprogramError(
            f"training diverged in epoch {epoch}: {what}. Nothing was saved from this epoch. "
            f"Train again with a smaller --lr{setting}, e.g. ten times smaller, and --overwrite."
        )

    def _finish(self, state: dict[str, Any]) -> dict[str, Any]:
        """Restore the best validation state, then score the test split once (rank 0)."""
        best = state["best"]
        self.model.load_state_dict(best["adapter"], strict=False)
        metrics: dict[str, Any] = {}
        if self.is_main:
            tested: dict[str, Any] = named("test", None)  # a k-fold fold scores no test
            if self.config.score_test:
                self.splits.test.unseal()
                self.queries.begin("test")
                kept: list[torch.Tensor] = []
                test = self.splits.test.open()
                tested = named(
                    "test",
                    self.evaluate(
                        test,
                        sharded=False,
                        progress="test" if self.config.progress and sys.stderr.isatty() else None,
                        keep=kept,
                        detail=True,
                    ),
                )
                test_auc = roc_auc(kept, test.y)
                if test_auc is not None:
                    tested["test_roc_auc"] = test_auc
            metrics = {
                **{k: v for k, v in best.items() if k.startswith("val_")},
                **tested,
                "trainable_parameters": self.model.trainable_parameters(),
                "source_parameters": self.model.source_parameters(),
                "train_seconds": round(state["train_seconds"], 3),
                "epochs": sum(1 for r in state["history"] if r["epoch"] >= 1),
                "best_epoch": best["epoch"],
                "devices": self.fabric.world_size,
                "accelerator": describe(self.job.accelerator),
                "selection": (
                    f"epoch {cfg_epoch} fixed in advance; test once"
                    if (cfg_epoch := self.config.select_epoch) is not None
                    else f"{self.task.rule()}; test once"
                ),
                "splits": {
                    "train": len(self.splits.train),
                    "val": len(self.splits.val),
                    "test": len(self.splits.test),
                },
                "history": state["history"],
                "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
                **self.queries.summary(state.get("stopped")),
            }
            cache = getattr(self.model, "output_cache", None)
            if cache is not None:  # what remembering the frozen source's outputs saved
                metrics["source_output_cache"] = cache.record()
            artifact = self.model.finalize_config(dict(self.job.artifact_config))
            write_artifact(self.out, artifact, self.model, metrics)
            if state.get("stopped"):  # kept, with the final count: --resume may continue
                self.queries.update_checkpoint(self.out / CHECKPOINT_NAME)
            else:
                (self.out / CHECKPOINT_NAME).unlink(missing_ok=True)
                self.queries.run_finished()
        self.fabric.barrier()
        return metrics


def _worker(fabric: Any, job: Job) -> dict[str, Any]:
    """Entry point of each Fabric process."""
    trainer = Trainer(fabric, job)
    try:
        return trainer.fit()
    except EndpointError as exc:  # the black box keeps failing: stop, keep the checkpoint
        if not hasattr(trainer, "queries"):
            raise
        raise trainer.queries.interrupted(exc, trainer.out) from None
    except KeyboardInterrupt:  # queries sent since the last checkpoint were paid: record them
        if hasattr(trainer, "queries"):
            trainer.queries.update_checkpoint(trainer.out / CHECKPOINT_NAME)
        raise


def _make_fabric(devices: int, accelerator: str) -> Any:
    """A Fabric on the concrete ``accelerator`` (cpu, cuda, mps): one process, or ``devices``
    spawned data-parallel ones (gloo on CPUs, NCCL on GPUs)."""
    if devices == 1:
        return Fabric(accelerator=accelerator, devices=1)
    strategy = DDPStrategy(start_method="spawn", broadcast_buffers=False)
    return Fabric(accelerator=accelerator, devices=devices, strategy=strategy)


def run_job(job: Job, source: Source | None) -> FitResult:
    """Train ``job.model`` in Fabric process(es); return it at its best validation state.

    Shared by ``fit`` and the gradient baselines. ``source`` rebuilds the trained model from
    the artifact after a data-parallel run (whose model lives in the worker processes).
    """
    out = Path(job.config.out)
    blackbox = job.source_spec.get("access") == "query"
    job.accelerator = resolve_accelerator(job.config.accelerator, blackbox=blackbox)
    fabric = _make_fabric(job.config.devices, job.accelerator)
    try:
        metrics = fabric.launch(_worker, job)
    finally:
        job.model.cpu()  # the caller's model (and its shared source) is back on the CPU
    model = job.model
    if job.config.devices > 1:
        model, _ = load_artifact(out, source=source)
        metrics = read_json(out / METRICS, "the metrics")
    model.eval()
    config = read_json(out / CONFIG, "the config")
    return FitResult(model=model, metrics=metrics, out=out, config=config)


#: What a run writes into ``--out`` (``--overwrite`` sets these aside; anything else there
#: is left alone).
RUN_FILES = (
    CHECKPOINT_NAME,
    CONFIG,
    PROGRAM,
    METRICS,
    JOURNAL_NAME,
    ANSWERS_NAME,
    "program.png",
    "mapping.png",
    "bound.png",
)
#: Where ``--overwrite`` keeps the replaced run's files until the new run has finished.
REPLACED = ".replaced"
_MARKERS = (METRICS, CHECKPOINT_NAME, "kfold.json")


def _ours(config_json: Path) -> bool:
    """Whether ``config_json`` was written by reprogram (its recorded ``format``)."""
    try:
        fmt = json.loads(config_json.read_text()).get("format", "")
    except (OSError, ValueError, AttributeError):
        return False
    return str(fmt).startswith("reprogram-")


def foreign(out: Path) -> list[str]:
    """Files in ``out`` that show it is not a reprogram run's folder (``[]`` when it is one,
    or is new or empty): a ``config.json`` of someone else's, or files no run writes."""
    if not out.is_dir():
        return []
    config = out / CONFIG
    if config.exists() and not _ours(config):
        return [CONFIG]
    if any((out / m).exists() for m in _MARKERS) or config.exists():
        return []
    names = (p.name for p in out.iterdir() if not p.name.startswith("."))
    return sorted(n for n in names if n not in RUN_FILES)[:5]


def check_out(config: RunConfig, started: bool) -> Path:
    """Apply the ``--out``/``--resume``/``--overwrite`` rules (no side effects);
    ``started``: an unfinished run."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ReprogramError(f"--out {out} is a file; --out must be a directory (new or a run's).")
    others = foreign(out)
    if others:
        raise ReprogramError(
            f"--out {out} holds files that are not a reprogram run ({', '.join(others)}); "
            f"nothing was written there. Choose a new or empty directory for --out."
        )
    finished = (out / METRICS).exists()
    if config.resume:
        if not started:
            what = "a finished run" if finished else "no checkpoint"
            raise ReprogramError(
                f"--resume: {out} holds {what}; there is nothing to resume. Drop --resume to "
                f"start a new run (with --overwrite to replace a finished one)."
            )
    elif (started or finished) and not config.overwrite:
        what = "an unfinished run (pass --resume to continue it)" if started else "a finished run"
        raise ReprogramError(
            f"{out} already holds {what}. Choose another --out, or pass --overwrite to replace it."
        )
    return out


def load_run_data(
    config: RunConfig, target: TargetData | None = None
) -> tuple[TargetData, PreparedSplits]:
    """Check ``--out`` (no writes), then load ``config.target`` (or use ``target``) and split
    it as the run's settings say (shots, validation share, seed)."""
    check_out(config, (Path(config.out) / CHECKPOINT_NAME).exists())
    data = target if target is not None else load_target(config.target)
    splits = prepare_splits(
        data, shots=config.shots, val_fraction=config.val_fraction, seed=config.seed
    )
    return data, splits


def prepare_out(config: RunConfig) -> Path:
    """Check ``--out`` (see :func:`check_out`) and create it; call it once the run's inputs
    are validated. ``--overwrite`` moves the old run's files into ``OUT/.replaced``, where they
    stay until :func:`discard_replaced` (after the new run has finished): a run that fails
    loses nothing."""
    out = check_out(config, (Path(config.out) / CHECKPOINT_NAME).exists())
    if config.resume:
        return out
    out.mkdir(parents=True, exist_ok=True)
    if config.overwrite:
        kept = out / REPLACED
        fresh = not kept.exists()  # a failed overwrite before: keep the run it set aside
        kept.mkdir(exist_ok=True)
        for name in RUN_FILES:
            if (out / name).exists():
                if fresh:
                    os.replace(out / name, kept / name)
                else:
                    (out / name).unlink()
        if any(kept.iterdir()):
            log.info("replacing the run in %s; its files wait in %s until this run ends", out, kept)
        else:
            kept.rmdir()
    return out


def discard_replaced(out: Path | str) -> None:
    """Delete the files ``--overwrite`` set aside (the new run has finished)."""
    shutil.rmtree(Path(out) / REPLACED, ignore_errors=True)


def training_spec(config: RunConfig) -> dict[str, Any]:
    """What config.json records about the training loop."""
    return {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "eval_batch_size": config.eval_batch_size,
        "patience": config.patience,
        "devices": config.devices,
        "query_budget": config.query_budget,
        # token rows read longest first (REPROGRAM_LENGTH_BATCHING): eval reads them alike
        "length_batching": length_batching_enabled(),
    }


def recorded_test_matches(config: dict[str, Any], test: Split) -> bool:
    """Whether ``test`` is the test split a run's ``config.json`` recorded (its digest, as
    :func:`target_spec` writes it); True for an artifact that recorded none. ``eval`` refuses
    to set new scores beside a run whose data file changed since."""
    recorded = (config.get("target") or {}).get("test_digest")
    return recorded is None or recorded == test.digest()


def training_digest(data: TargetData) -> str:
    """A short digest of a target's training examples (and given validation split), before
    any shots are drawn: what ``config.json`` records as ``train_digest``."""
    parts = [data.train.digest(), data.val.digest() if data.val is not None else ""]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def recorded_data_matches(config: dict[str, Any], data: TargetData) -> bool:
    """Whether ``data`` holds the test and training examples a run's ``config.json`` recorded
    (each digest where recorded): the bench refuses to keep a finished cell beside new ones
    when its file changed since, whichever rows changed."""
    train = (config.get("target") or {}).get("train_digest")
    return recorded_test_matches(config, data.test) and (
        train is None or train == training_digest(data)
    )


def target_spec(
    config: RunConfig, data: TargetData, splits: PreparedSplits, given: bool
) -> dict[str, Any]:
    """What config.json records about the target (enough for ``eval`` to rebuild the splits)."""
    # a path target records its absolute path (the loader knows which targets read one)
    name = data.portable_name or (data.name if given else config.target)
    return {
        "name": name,
        "modality": splits.modality,
        "input_shape": list(splits.input_shape),
        "class_names": list(splits.class_names),
        **({"vocabulary": list(splits.vocabulary)} if splits.vocabulary is not None else {}),
        **({"task": splits.task} if splits.task != "classification" else {}),
        **({"forecast": data.forecast} if data.forecast is not None else {}),
        "shots": config.shots,
        "val_fraction": config.val_fraction,
        "test_digest": data.test.digest(),  # eval tells a data file changed since this run
        "train_digest": training_digest(data),  # the bench: any row of a file changed
    }
