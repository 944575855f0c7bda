"""Run settings and results: the dataclasses every layer above shares.

Each field carries its help text in ``metadata["help"]`` and the command line is generated
from them (:mod:`reprogram.cli`); ``__post_init__`` refuses bad values with a message that
says what to do. ``--select``'s small grammar lives here too (it is a setting's syntax).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import accelerator
from .errors import ReprogramError

_SELECT = re.compile(r"^(?:refit|kfold:(\d+))(:1se)?$")
REFIT = "refit"
ONE_SE = "1se"


def parse_select(text: str) -> int:
    """How many selection runs precede the final one.

    ``"holdout"`` → 0 (the validation split selects, no refit), ``"refit"`` → 1 (the validation
    split selects, then a refit on all), ``"kfold:K"`` → ``K`` (at least 2); the last two may
    end in ``:1se`` (see :func:`selection_rule`); anything else is an error.
    """
    if text == "holdout":
        return 0
    match = _SELECT.match(str(text))
    if not match or (match.group(1) is not None and int(match.group(1)) < 2):
        hint = ""
        if str(text).startswith("holdout:"):
            hint = (
                " The 1se rule reads the whole validation curve before choosing; use refit:1se "
                "(the same split, then a refit on all)."
            )
        raise ReprogramError(
            "--select takes 'holdout', 'refit' or 'kfold:K' with K >= 2 (e.g. kfold:5), the "
            f"last two optionally followed by ':1se'; got {text!r}.{hint}"
        )
    return 1 if match.group(1) is None else int(match.group(1))


def selection_rule(text: str) -> str:
    """``"1se"`` for a ``…:1se`` selection, else ``"best"`` (the best validation accuracy)."""
    return ONE_SE if str(text).endswith(":" + ONE_SE) else "best"


def is_refit(text: str) -> bool:
    """Whether ``text`` is ``refit`` selection (one fold: the held-out split), rule aside."""
    return str(text).split(":")[0] == REFIT


def without_client_options(source: str) -> str:
    """``source`` without the client options of an ``http(s)://`` name (the URL fragment,
    never sent to the server); other names unchanged."""
    if source.strip().lower().startswith(("http://", "https://")):
        return source.partition("#")[0]
    return source


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
    "recipe",  # a record of where the settings came from; the settings themselves are compared
}


@dataclass
class RunConfig:
    """Settings every training run shares (reprogramming and gradient baselines alike)."""

    source: str = field(
        default="efficientnet-lite0",
        metadata={"help": "source model (reprogram list sources)"},
    )
    target: str = field(
        default="fashion-mnist", metadata={"help": "target data (reprogram list targets)"}
    )
    optimizer: str = field(
        default="gradient", metadata={"help": "optimizer (reprogram list optimizers)"}
    )
    optimizer_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={"flag": "--optimizer-opt", "help": "optimizer option (repeatable)"},
    )
    shots: int | None = field(
        default=None,
        metadata={
            "help": "training examples per class (a regression target: rows in all; all if "
            "omitted)"
        },
    )
    val_fraction: float = field(
        default=0.2, metadata={"help": "share of training data for validation"}
    )
    select: str = field(
        default="holdout",
        metadata={
            "help": "holdout: the validation split chooses the epoch/penalty; refit: it "
            "chooses, then one refit on all training examples (2 trainings); kfold:K: K-fold "
            "cross-validation on the training examples chooses, then one refit on all of them "
            "(K+1 trainings; for tiny training sets); refit:1se, kfold:K:1se: the earliest "
            "epoch (strongest penalty) within one standard error of the best validation "
            "accuracy"
        },
    )
    epochs: int = field(
        default=10,
        metadata={
            "help": "epochs (gradient training); 0 trains no program and keeps the fitted "
            "start of a linear head=ridge or init=probe mapping"
        },
    )
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    eval_batch_size: int = field(default=32, metadata={"cli": False})
    lr: float | None = field(
        default=None, metadata={"help": "learning rate (an optimizer option)"}
    )
    patience: int | None = field(
        default=None, metadata={"help": "stop after N epochs without a better validation score"}
    )
    query_budget: int | None = field(
        default=None,
        metadata={
            "help": "most queries to a black-box source (training, validation and test "
            "together)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the splits, shots and training"})
    select_epoch: int | None = field(
        default=None,
        metadata={"cli": False, "help": "train this many epochs and keep that state"},
    )
    score_test: bool = field(
        default=True, metadata={"cli": False, "help": "False: a selection-only run"}
    )
    score_val: bool = field(
        default=True,
        metadata={
            "cli": False,
            "help": "False: skip validation (a refit with select_epoch fixed, whose "
            "validation split is the training data and chooses nothing)",
        },
    )
    devices: int = field(
        default=1, metadata={"help": "data-parallel processes (CPU: gloo) or GPUs"}
    )
    accelerator: str = field(
        default="auto",
        metadata={
            "help": "where training runs: auto (default: a GPU when PyTorch sees one, else "
            "the CPU), cpu, cuda or mps; black-box sources always run on the CPU"
        },
    )
    out: str = field(default="runs/latest", metadata={"help": "artifact directory"})
    resume: bool = field(
        default=False, metadata={"help": "continue the unfinished run in --out"}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a finished run in --out"}
    )
    progress: bool = field(
        default=True, metadata={"flag": "--quiet", "invert": True, "help": "no progress bars"}
    )
    plots: bool = field(
        default=True,
        metadata={
            "flag": "--no-plots",
            "invert": True,
            "help": "skip program.png and mapping.png",
        },
    )

    def __post_init__(self) -> None:
        check_types(self)
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
            (
                self.lr is None or (math.isfinite(self.lr) and self.lr > 0),
                f"--lr must be a positive finite number, got {self.lr}",
            ),
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
        folds = parse_select(self.select)
        if folds and self.query_budget is not None:
            raise ReprogramError(
                f"--select {self.select} trains {folds + 1} models; it cannot share one "
                "--query-budget. Use --select holdout with a black-box budget."
            )

    @property
    def folds(self) -> int:
        """Selection runs before the final one: ``K`` of ``kfold:K``, 1 for refit, 0 for holdout."""
        return parse_select(self.select)

    def signature(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues.

        An ``http(s)://`` source's client options (after ``#``: timeouts, retries,
        concurrency, wire format) may change: they decide how queries travel, not what is
        answered."""
        out = {k: v for k, v in asdict(self).items() if k not in _RESUMABLE_CHANGES}
        if isinstance(out.get("source"), str):
            out["source"] = without_client_options(out["source"])
        return out


def check_types(config: Any) -> None:
    """Refuse a setting of the wrong type by name (``shots="4"``, ``options=None``) before a
    comparison or torch deep inside meets it: whole numbers for ``int`` fields (not bools),
    numbers for ``float``, a dict for options, True/False for switches; ``None`` where the
    field allows it. Text fields are left alone (a path may be a ``Path``). A NumPy whole
    number becomes an ``int`` (config.json is written from these fields).

    Raises:
        ReprogramError: a field holds a value of another type.
    """
    wanted = {
        "int": ("a whole number", lambda v: isinstance(v, numbers.Integral)
                and not isinstance(v, bool)),
        "float": ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
        "bool": ("True or False", lambda v: isinstance(v, bool) or v in (0, 1)),
        "dict[str, Any]": ("a dict of options (name: value)", lambda v: isinstance(v, dict)),
    }
    for f in fields(config):
        kind, _, none = str(f.type).partition(" | ")
        value = getattr(config, f.name)
        if kind not in wanted or (value is None and none == "None"):
            continue
        what, ok = wanted[kind]
        if not ok(value):
            raise ReprogramError(
                f"{f.name} must be {what}{' or None' if none else ''}, got {value!r} "
                f"({type(value).__name__})."
            )
        if kind in ("int", "bool") and type(value) not in (int, bool):  # numpy.int64 → int,
            setattr(config, f.name, int(value) if kind == "int" else bool(value))  # JSON-safe


def changed_settings(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    """The settings two :meth:`RunConfig.signature` dicts differ in, for a ``--resume``
    refusal: ``"seed: 0 → 4, lr: 0.01 → 0.1"``. Option dicts are compared key by key
    (``program_options.length: 4 → 8``); ``--lr``, which also sets the optimizer's ``lr``
    option, is named once."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in d.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    def short(value: Any) -> str:
        text = "unset" if value is None else str(value)
        return text if len(text) <= 60 else text[:57] + "..."

    a, b = flat(theirs), flat(ours)
    changed = [k for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
    if "lr" in changed:
        changed = [k for k in changed if k != "optimizer_options.lr"]
    return ", ".join(f"{k}: {short(a.get(k))} → {short(b.get(k))}" for k in changed)


@dataclass
class FitConfig(RunConfig):
    """Everything a ``fit`` run needs; the command line fills it from its flags."""

    program: str = field(
        default="auto",
        metadata={
            "help": "input program (reprogram list programs); auto (default): resize-pad for "
            "images on an image source, series-image for series on an image source, waveform "
            "for series on an audio source; on a language source dictionary for sequences, "
            "patch-reprogram for series (forecasting)"
        },
    )
    mapping: str = field(
        default="linear", metadata={"help": "label mapping (reprogram list mappings)"}
    )
    program_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={"flag": "--program-opt", "help": "program option (repeatable)"},
    )
    mapping_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={"flag": "--mapping-opt", "help": "mapping option (repeatable)"},
    )
    diagnostics: bool = field(
        default=True,
        metadata={
            "flag": "--no-diagnostics",
            "invert": True,
            "help": "skip diagnostics (the V2S bound for audio)",
        },
    )
    recipe: str | None = field(
        default=None,
        metadata={
            "help": "the recipe (reprogram.recipes) the other settings came from, recorded in "
            "config.json; the command line's --recipe fills the other fields from it, here it "
            "is a record only and changes no setting"
        },
    )


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (best validation state) and its metrics."""

    model: Any
    metrics: dict[str, Any]
    out: Path
    config: dict[str, Any]

    def __post_init__(self) -> None:
        """The model carries the settings its artifact records (``spec``), as a reloaded one
        does: ``predict`` reads the target's task from them."""
        if getattr(self.model, "spec", None) is None and self.model is not None:
            self.model.spec = settings_of(self.config)


def settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of an artifact's ``config.json`` a model keeps as ``spec``: program, mapping,
    target and seed (whichever it has; a baseline's: the target)."""
    return {k: config[k] for k in ("program", "mapping", "target", "seed") if k in config}


@dataclass
class BaselineConfig(RunConfig):
    """A ``reprogram baseline`` run: the shared run settings plus the method and its options."""

    method: str = field(
        default="linear-probe", metadata={"help": "baseline method (reprogram list baselines)"}
    )
    method_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={"flag": "--method-opt", "help": "method option (repeatable)"},
    )
    canvas_size: int | None = field(
        default=None, metadata={"help": "image side the source sees (default: its input size)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.canvas_size is not None and self.canvas_size < 1:
            raise ReprogramError(f"--canvas-size must be positive, got {self.canvas_size}")
