"""The training loop: Lightning Fabric, validation-only selection, atomic checkpoints, resume.

Protocol: the trainer receives the test split sealed. Every choice (best epoch, early stop,
count-based mapping) looks at training or validation data only; the test split is unsealed
and scored once, after the best state has been restored.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .accelerator import describe, to_model
from .accelerator import resolve as resolve_accelerator
from .artifact import (
    CONFIG,
    METRICS,
    PROGRAM,
    load_artifact,
    read_json,
    save_program,
    versions,
    write_json,
)
from .blackbox.budget import STOPPED_BY_BUDGET, QueryTracker, prepare_source
from .blackbox.protocol import EndpointError
from .callbacks import Callback, ProbeInitCallback, RemapCallback, RidgeHeadCallback
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .data import PreparedSplits, Split, TargetData, load_target
from .data.splits import prepare_splits
from .data.ucr_files import looks_like_path
from .errors import ReprogramError
from .evaluate import loss_and_accuracy, score
from .mappings import MAPPINGS, build_mapping
from .model import ReprogrammedModel
from .optim import build_optimizer
from .programs import build_program, resolve_program
from .registry import config_to_dict
from .sources import Source, build_source
from .sources.features import with_program_views

# Fields of FitConfig that may change between a run and its --resume.
_RESUMABLE_CHANGES = {
    "epochs",
    "patience",
    "out",
    "resume",
    "overwrite",
    "progress",
    "plots",
    "query_budget",
    "score_val",  # whether a fixed-epoch run validates changes no trained number
    "accelerator",  # a run checkpointed on one device may resume on another
}


@dataclass
class RunConfig:
    """Settings every training run shares (reprogramming and gradient baselines alike)."""

    source: str = field(default="efficientnet-lite0", metadata={"help": "source model name"})
    target: str = field(default="fashion-mnist", metadata={"help": "target data set name"})
    optimizer: str = field(default="gradient", metadata={"help": "gradient | rgf | spsa-gc"})
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    shots: int | None = field(default=None, metadata={"help": "training examples per class"})
    val_fraction: float = field(default=0.2, metadata={"help": "share of train for validation"})
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 32
    lr: float | None = field(default=None, metadata={"help": "learning rate (optimizer option)"})
    patience: int | None = field(default=None, metadata={"help": "early-stop after N flat epochs"})
    query_budget: int | None = field(
        default=None, metadata={"help": "most queries to a black-box source, test included"}
    )
    seed: int = 0
    select: str = field(
        default="holdout",
        metadata={
            "help": "holdout (the validation split selects) | refit (it selects, then a refit "
            "on all) | kfold:K (cross-validation, then a refit); refit and kfold:K may end in "
            "':1se' (the one-standard-error rule)"
        },
    )
    select_epoch: int | None = field(
        default=None, metadata={"help": "train this many epochs and keep that state (no choice)"}
    )
    score_test: bool = field(default=True, metadata={"help": "False: a selection-only run"})
    score_val: bool = field(
        default=True,
        metadata={
            "help": "False: skip validation (a refit with select_epoch fixed, whose validation "
            "split is the training data and chooses nothing)"
        },
    )
    devices: int = field(
        default=1, metadata={"help": "data-parallel processes (CPU) or GPUs"}
    )
    accelerator: str = field(
        default="auto",
        metadata={"help": "auto (a GPU when PyTorch sees one, else the CPU) | cpu | cuda | mps"},
    )
    out: str = "runs/latest"
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    plots: bool = True

    def __post_init__(self) -> None:
        checks = [
            (
                self.epochs >= 0,
                f"--epochs must be at least 0 (0 trains nothing and keeps the mapping's fitted "
                f"start), got {self.epochs}",
            ),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, "eval batch size must be at least 1"),
            (
                self.shots is None or self.shots >= 1,
                f"--shots must be at least 1, got {self.shots}",
            ),
            (
                0.0 < self.val_fraction < 1.0,
                f"--val-fraction must be in (0, 1), got {self.val_fraction}",
            ),
            (self.devices >= 1, f"--devices must be at least 1, got {self.devices}"),
            (self.patience is None or self.patience >= 1, "--patience must be at least 1"),
            (self.lr is None or self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (
                self.query_budget is None or self.query_budget >= 1,
                f"--query-budget must be at least 1, got {self.query_budget}",
            ),
            (
                self.select_epoch is None or self.select_epoch >= 0,
                f"select_epoch must be at least 0, got {self.select_epoch}",
            ),
            (
                self.score_val or self.select_epoch is not None,
                "score_val=False leaves nothing to choose the epoch with: fix select_epoch",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ReprogramError(message)
        from . import accelerator

        kind = accelerator.resolve(self.accelerator)  # clear errors: unknown, or not here
        count = accelerator.device_count(kind)
        if self.devices > count:
            what = "GPUs" if kind == "cuda" else "CPU cores"
            raise ReprogramError(
                f"--devices {self.devices} asks for more processes than this machine has "
                f"{what} ({count}); use --devices {count} or fewer."
            )
        if self.lr is not None:
            self.optimizer_options = {**self.optimizer_options, "lr": self.lr}
        from .selection import parse_select

        folds = parse_select(self.select)
        if folds and self.query_budget is not None:
            raise ReprogramError(
                f"--select {self.select} trains {folds + 1} models; it cannot share one "
                "--query-budget. Use --select holdout with a black-box budget."
            )

    @property
    def folds(self) -> int:
        """Selection runs before the final one: ``K`` of ``kfold:K``, 1 for refit, 0 for holdout."""
        from .selection import parse_select

        return parse_select(self.select)

    def signature(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        return {k: v for k, v in asdict(self).items() if k not in _RESUMABLE_CHANGES}


@dataclass
class FitConfig(RunConfig):
    """Everything a ``fit`` run needs; the command line fills it from its flags."""

    program: str = field(
        default="auto",
        metadata={"help": "input transformation; auto: chosen from the input shapes"},
    )
    mapping: str = field(default="linear", metadata={"help": "output label mapping"})
    program_options: dict[str, Any] = field(default_factory=dict)
    mapping_options: dict[str, Any] = field(default_factory=dict)
    diagnostics: bool = field(
        default=True, metadata={"help": "run the source's diagnostics (the V2S bound for audio)"}
    )


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (best validation state) and its metrics."""

    model: Any
    metrics: dict[str, Any]
    out: Path
    config: dict[str, Any]


@dataclass
class _Job:
    """What each training process receives (pickled for data-parallel runs)."""

    config: RunConfig
    model: Any
    splits: PreparedSplits
    callbacks: list[Callback]
    artifact_config: dict[str, Any]
    source_spec: dict[str, Any]
    accelerator: str = "cpu"  # resolved: cpu, cuda or mps


def _val_text(loss: float | None, accuracy: float | None) -> str:
    """``val loss … val acc …`` for a progress line (``not validated`` when skipped)."""
    if loss is None or accuracy is None:
        return "not validated (epoch fixed in advance)"
    return f"val loss {loss:.4f}  val acc {accuracy:.4f}"


def _epoch_order(seed: int, epoch: int, n: int, rank: int, world: int) -> torch.Tensor:
    """This rank's shuffled training indices for ``epoch``, a function of (seed, epoch) only.

    Deriving the order from the epoch number (not from a running RNG) is what makes a resumed
    run see exactly the batches an uninterrupted run would. Shards are padded by wrapping so
    every rank takes the same number of steps.
    """
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=gen)
    per_rank = -(-n // world)
    if per_rank * world > n:
        order = torch.cat([order, order[: per_rank * world - n]])
    return order[rank::world]


class Trainer:
    """Runs one fit inside a Fabric process (rank 0 writes files)."""

    def __init__(self, fabric: Any, job: _Job) -> None:
        self.fabric = fabric
        self.job = job
        self.config = job.config
        self.model = job.model
        self.splits = job.splits
        self.callbacks = job.callbacks
        self.out = Path(job.config.out)
        self.is_main = fabric.global_rank == 0

    # ----------------------------------------------------------------- evaluation helpers
    def _sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over processes, on the CPU (NCCL reduces device tensors only)."""
        return self.fabric.all_reduce(self.fabric.to_device(tensor), reduce_op="sum").cpu()

    def _shard(self, n: int) -> torch.Tensor:
        return torch.arange(n)[self.fabric.global_rank :: self.fabric.world_size]

    def evaluate(
        self, split: Split, sharded: bool = True, progress: str | None = None
    ) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the current model on ``split``."""
        if sharded and self.fabric.world_size > 1:
            part = split.subset(self._shard(len(split)))
            totals = score(self.model, part.x, part.y, self.config.eval_batch_size)
            totals = self._sum(totals)
        else:
            totals = score(self.model, split.x, split.y, self.config.eval_batch_size, progress)
        return loss_and_accuracy(totals)

    def validate(self) -> tuple[float | None, float | None]:
        """Loss and accuracy on the validation split; ``(None, None)`` when ``score_val`` is off
        (a run whose epoch is fixed in advance: validating would choose nothing)."""
        if not self.config.score_val:
            return None, None
        return self.evaluate(self.splits.val)

    @torch.no_grad()
    def source_outputs(self, split: Split) -> torch.Tensor:
        """Source outputs ``[N, K_s]`` (logits or features) of ``split`` at the current program.

        Every process computes all of them (callbacks that fit on them stay identical).
        """
        self.model.eval()
        step = self.config.eval_batch_size
        parts = [
            self.model.source_logits(to_model(self.model, split.x[i : i + step])).cpu()
            for i in range(0, len(split), step)
        ]
        return torch.cat(parts) if parts else torch.empty(0, self.model.source.num_classes)

    @torch.no_grad()
    def top1_counts(self) -> torch.Tensor:
        """``[K_t, K_s]`` counts of the source's top-1 label per target class on train data."""
        self.model.eval()
        counts = torch.zeros(self.splits.num_classes, self.model.source.num_classes)
        part = self.splits.train.subset(self._shard(len(self.splits.train)))
        step = self.config.eval_batch_size
        for i in range(0, len(part), step):
            x, y = part.x[i : i + step], part.y[i : i + step]
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
            theirs, ours = ckpt.get("signature", {}), self.config.signature()
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise ReprogramError(
                f"--resume: the checkpoint in {self.out} was made with different settings "
                f"({', '.join(diff)}). Resume with the same settings, or start a new --out."
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
        program = getattr(self.model, "program", None)
        before_box = None if program is None else list(program.parameters())
        stepper, _ = build_optimizer(
            cfg.optimizer, cfg.optimizer_options, params, fabric.backward, before_box=before_box
        )
        self.queries = QueryTracker.attach(self, stepper)  # black-box query accounting
        state: dict[str, Any] = {"best": None, "history": [], "train_seconds": 0.0}
        done = self._restore(stepper, state) if cfg.resume else 0
        if done and self.is_main and cfg.progress:
            tqdm.write(f"resuming {self.out} after epoch {done}")
        self.queries.check_start(done)
        if cfg.epochs == 0 and not any(cb.initial_candidate for cb in self.callbacks):
            raise ReprogramError(
                "--epochs 0 trains nothing, so it needs a start worth keeping: a mapping fitted "
                "before training (--mapping linear with --mapping-opt head=ridge or init=probe). "
                "Give --epochs 1 or more for this method."
            )
        self.queries.begin("setup")
        start = time.perf_counter()  # fits before the first epoch (probe, ridge head, side
        for cb in self.callbacks:  # features) and the start's validation are training time too
            cb.on_fit_start(self)
        if not done and any(cb.initial_candidate for cb in self.callbacks):
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
            self.queries.begin("count")
            for cb in self.callbacks:
                cb.on_epoch_start(self, epoch)
            self.queries.begin("train")
            train_loss = self._train_epoch(wrapped, stepper, train, epoch)
            self.queries.begin("count")
            for cb in self.callbacks:
                cb.on_train_epoch_end(self, epoch)
            self.queries.begin("val")
            val_loss, val_acc = self.validate()
            seconds = time.perf_counter() - start
            state["train_seconds"] += seconds
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "seconds": round(seconds, 3),
                **self.queries.epoch_record(),
            }
            if cfg.select_epoch is not None:  # the epoch is fixed (k-fold chose it)
                improved = best is None or epoch == cfg.select_epoch
            else:
                improved = best is None or (val_acc, -val_loss) > (
                    best["val_accuracy"],
                    -best["val_loss"],
                )
            if improved:
                state["best"] = {
                    "epoch": epoch,
                    "val_accuracy": val_acc,
                    "val_loss": val_loss,
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
                if cfg.progress:
                    mark = " *" if improved else ""
                    tqdm.write(
                        f"epoch {epoch}/{cfg.epochs}  train loss {train_loss:.4f}  "
                        f"{_val_text(val_loss, val_acc)}{mark}  ({seconds:.1f}s)"
                    )
            fabric.barrier()
        return self._finish(state)

    def _initial_candidate(self, state: dict[str, Any]) -> None:
        """Validate the starting point and record it as selection candidate epoch 0."""
        val_loss, val_acc = self.validate()
        state["best"] = {
            "epoch": 0,
            "val_accuracy": val_acc,
            "val_loss": val_loss,
            "adapter": {k: v.detach().clone() for k, v in self.model.adapter_state_dict().items()},
        }
        state["history"].append(
            {"epoch": 0, "train_loss": None, "val_loss": val_loss, "val_accuracy": val_acc}
        )
        if self.is_main and self.config.progress:
            tqdm.write(f"epoch 0 (start)  {_val_text(val_loss, val_acc)}")

    def _train_epoch(self, wrapped: Any, stepper: Any, train: Split, epoch: int) -> float:
        cfg = self.config
        self.model.train()
        order = _epoch_order(
            cfg.seed, epoch, len(train), self.fabric.global_rank, self.fabric.world_size
        )
        steps = range(0, len(order), cfg.batch_size)
        bar = tqdm(
            steps,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not (cfg.progress and self.is_main and sys.stderr.isatty()),
            leave=False,
            unit="batch",
        )
        total, count = 0.0, 0
        for i in bar:
            idx = order[i : i + cfg.batch_size]
            x, y = self.fabric.to_device((train.x[idx], train.y[idx]))
            loss = stepper.step(lambda x=x, y=y: F.cross_entropy(wrapped(x), y))
            total += loss * len(idx)
            count += len(idx)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        return total / max(count, 1)

    def _finish(self, state: dict[str, Any]) -> dict[str, Any]:
        """Restore the best validation state, then score the test split once (rank 0)."""
        best = state["best"]
        self.model.load_state_dict(best["adapter"], strict=False)
        metrics: dict[str, Any] = {}
        if self.is_main:
            test_loss = test_acc = None  # a selection-only run (a k-fold fold) scores no test
            if self.config.score_test:
                self.splits.test.unseal()
                self.queries.begin("test")
                test_loss, test_acc = self.evaluate(
                    self.splits.test.open(),
                    sharded=False,
                    progress="test" if self.config.progress and sys.stderr.isatty() else None,
                )
            metrics = {
                "val_accuracy": best["val_accuracy"],
                "val_loss": best["val_loss"],
                "test_accuracy": test_acc,
                "test_loss": test_loss,
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
                    else "best validation accuracy, ties to lower validation loss; test once"
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
            artifact = dict(self.job.artifact_config)
            if isinstance(self.model, ReprogrammedModel):
                artifact["mapping"]["table"] = self.model.mapping.table(
                    self.model.source.label_names
                )
            write_json(self.out / CONFIG, artifact)
            save_program(self.out / PROGRAM, self.model)
            write_json(self.out / METRICS, metrics)
            if state.get("stopped"):  # kept, with the final count: --resume may continue
                self.queries.update_checkpoint(self.out / CHECKPOINT_NAME)
            else:
                (self.out / CHECKPOINT_NAME).unlink(missing_ok=True)
        self.fabric.barrier()
        return metrics


def _worker(fabric: Any, job: _Job) -> dict[str, Any]:
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
    from lightning_fabric import Fabric
    from lightning_fabric.strategies import DDPStrategy

    if devices == 1:
        return Fabric(accelerator=accelerator, devices=1)
    strategy = DDPStrategy(start_method="spawn", broadcast_buffers=False)
    return Fabric(accelerator=accelerator, devices=devices, strategy=strategy)


def run_job(job: _Job, source: Source | None) -> FitResult:
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


def check_out(config: RunConfig, started: bool) -> Path:
    """Apply the ``--out``/``--resume``/``--overwrite`` rules; ``started``: an unfinished run."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ReprogramError(f"--out {out} is a file; --out must be a directory (new or a run's).")
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


def prepare_out(config: RunConfig) -> Path:
    """Check ``--out`` (see :func:`check_out`); clear it for ``--overwrite``; create it."""
    out = check_out(config, (Path(config.out) / CHECKPOINT_NAME).exists())
    if config.resume:
        return out
    if config.overwrite:
        pictures = ("program.png", "mapping.png", "bound.png")
        for name in (CHECKPOINT_NAME, CONFIG, PROGRAM, METRICS, *pictures):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def training_spec(config: RunConfig) -> dict[str, Any]:
    """What config.json records about the training loop."""
    return {
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "eval_batch_size": config.eval_batch_size,
        "patience": config.patience,
        "devices": config.devices,
        "query_budget": config.query_budget,
    }


def target_spec(
    config: RunConfig, data: TargetData, splits: PreparedSplits, given: bool
) -> dict[str, Any]:
    """What config.json records about the target (enough for ``eval`` to rebuild the splits)."""
    name = data.name if given else config.target
    if name.startswith(("npz:", "folder:")) or (
        name.startswith("ucr:") and looks_like_path(name[4:])
    ):
        prefix, path = name.split(":", 1)
        name = f"{prefix}:{Path(path.strip()).expanduser().resolve()}"
    return {
        "name": name,
        "modality": splits.modality,
        "input_shape": list(splits.input_shape),
        "class_names": list(splits.class_names),
        "shots": config.shots,
        "val_fraction": config.val_fraction,
    }


def build_model(
    config: FitConfig,
    source: Source,
    input_shape: tuple[int, ...],
    num_classes: int,
    class_names: list[str] | None = None,
) -> tuple[ReprogrammedModel, dict[str, Any], dict[str, Any]]:
    """Build program and mapping around ``source``; returns the model and their resolved configs.

    ``class_names`` (the target's) go with the source's label names to mappings that choose
    by name (``semantic``).
    """
    program_name = resolve_program(config.program, input_shape, source.input_size)
    program, program_cfg = build_program(
        program_name, config.program_options, input_shape, source.input_size
    )
    source = with_program_views(source, program)  # a program's views: V·d features
    mapping_options = dict(config.mapping_options)
    entry = MAPPINGS.get(config.mapping)
    if entry.config is not None and "seed" in entry.config.__dataclass_fields__:
        mapping_options.setdefault("seed", config.seed)
    features = getattr(source, "outputs", "logits") == "features"
    MAPPINGS.build_config(config.mapping, mapping_options)  # bad options: their own error
    try:
        mapping, mapping_cfg = build_mapping(
            config.mapping, mapping_options, source.num_classes, num_classes
        )
    except ReprogramError:
        if not features:
            raise
        mapping = None  # e.g. too few "labels" for random's many-to-one: same advice below
    if features and (mapping is None or mapping.reads_labels):
        raise ReprogramError(
            f"mapping {config.mapping!r} picks source labels by their scores, but source "
            f"{source.name!r} answers penultimate features, which are not labels. Use "
            f"--mapping linear with it (add --mapping-opt init=probe to start from a linear "
            f"probe), or drop the features: prefix."
        )
    mapping.bind_inputs(tuple(input_shape))  # side features of the raw target, if any
    if class_names is not None:
        texts = getattr(source, "label_texts", None) or source.label_names
        mapping.bind_names(list(texts), list(class_names))
    model = ReprogrammedModel(source, program, mapping)
    program_info = {"name": program_name, "options": config_to_dict(program_cfg)}
    program_info.update(getattr(program, "describe", dict)())
    mapping_info = {"name": config.mapping, "options": config_to_dict(mapping_cfg)}
    return model, program_info, mapping_info


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
    if config.folds:
        from .selection import kfold_run

        source = source if source is not None else build_source(config.source)
        return kfold_run(config, fit, source=source, target=target, callbacks=callbacks)
    prepare_out(config)
    data = target if target is not None else load_target(config.target)
    splits = prepare_splits(
        data, shots=config.shots, val_fraction=config.val_fraction, seed=config.seed
    )
    source = source if source is not None else build_source(config.source)
    source = prepare_source(config, source)  # queried (counted) for zeroth-order optimizers
    model, program_info, mapping_info = build_model(
        config, source, splits.input_shape, splits.num_classes, list(splits.class_names)
    )
    cbs: list[Callback] = [RemapCallback()] if model.mapping.remap != "never" else []
    if getattr(model.mapping, "init", "zero") == "probe":
        cbs.append(ProbeInitCallback())
    if getattr(model.mapping, "head", "sgd") == "ridge":
        cbs.append(RidgeHeadCallback())
    cbs += list(callbacks or [])
    from .diagnostics import default_diagnostics

    cbs += default_diagnostics(source, config.diagnostics)
    artifact_config = {
        "format": "reprogram-artifact-v1",
        "source": source.spec(),
        "target": target_spec(config, data, splits, given=target is not None),
        "program": program_info,
        "mapping": mapping_info,
        "optimizer": {"name": config.optimizer, "options": dict(config.optimizer_options)},
        "training": training_spec(config),
        "seed": config.seed,
        "versions": versions(),
    }
    job = _Job(config, model, splits, cbs, artifact_config, source.spec())
    result = run_job(job, source)
    if config.plots and not source.spec().get("access") == "query":  # plots would query
        from .plots import save_plots

        save_plots(result, splits.val)
    return result
