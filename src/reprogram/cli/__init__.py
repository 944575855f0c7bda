"""The ``reprogram`` command: fit, baseline, bench, eval, predict, list, demo.

A failed command exits non-zero with a one-paragraph message on stderr, never a traceback
(set ``REPROGRAM_DEBUG=1`` to see one for unexpected errors). This module builds the parser,
runs ``fit``, ``baseline`` and ``bench``, applies a ``--recipe`` and shows the library's log
while a command runs; the other commands live beside it (:mod:`.evaluation`: eval and
predict, :mod:`.listing`: list, :mod:`.demo`: demo) and the closing table in :mod:`.report`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import BaselineConfig, FitConfig, RunConfig
from ..errors import ReprogramError
from ..flags import add_flags, from_flags
from .demo import cmd_demo
from .evaluation import _load_eval_splits, cmd_eval, cmd_predict
from .listing import KINDS, cmd_list
from .report import summary, top1_by_class

#: What other code imports from ``reprogram.cli`` (the console script runs :func:`main`).
__all__ = [
    "_load_eval_splits",
    "_log_to_stderr",
    "_with_recipe",
    "build_parser",
    "cmd_baseline",
    "cmd_bench",
    "cmd_demo",
    "cmd_eval",
    "cmd_fit",
    "cmd_list",
    "cmd_predict",
    "main",
    "summary",
    "top1_by_class",
    "version_text",
]


# --------------------------------------------------------------------------- parsing helpers
# The flags of fit and baseline are generated from the config dataclasses' fields (one place
# per fact: reprogram.flags); only these shortcuts are written here.
_BASELINE_SKIP = ("optimizer", "optimizer_options", "query_budget", "plots")


def _add_fit_args(p: argparse.ArgumentParser) -> None:
    add_flags(
        p,
        FitConfig,
        helps={
            "lr": "learning rate (default 0.01)",
            "source": "source model (reprogram list sources); without it (and --recipe) the "
            "target kind's recipe runs: vision-full, warp, ucr-whisper or time-llm",
            "recipe": "named, measured settings for the other flags (reprogram list recipes); "
            "flags given here win over it; config.json records its name",
        },
    )
    p.add_argument(
        "--canvas-size",
        type=int,
        default=None,
        help="image side the source sees (default: its input size); a program option",
    )
    p.add_argument(
        "--inner-size",
        type=int,
        default=None,
        help="side of the target image inside the canvas; a program option",
    )


#: Forecasting shortcuts: each becomes an option of a ``forecast:`` target's name.
_FORECAST_FLAGS = (
    ("--lookback", "lookback", int, "forecast: input length L (default 512; ILI 104)"),
    ("--horizon", "horizon", int, "forecast: steps to forecast H (default the set's first)"),
    (
        "--train-fraction",
        "train_fraction",
        float,
        "forecast: keep the first F of the training windows (few-shot: 0.1)",
    ),
    ("--target-column", "column", str, "forecast: forecast this column only (default: all)"),
    (
        "--date-column",
        "date_column",
        str,
        "forecast: the time column (default: date, ds, datetime, timestamp or time)",
    ),
)


def _add_forecast_args(p: argparse.ArgumentParser) -> None:
    for flag, _option, kind, text in _FORECAST_FLAGS:
        p.add_argument(flag, type=kind, default=None, help=text)


def _forecast_target(args: argparse.Namespace) -> None:
    """Fold ``--lookback`` … into a ``forecast:`` target's name (``#lookback=336``)."""
    given = [
        (flag, option, value)
        for flag, option, _kind, _text in _FORECAST_FLAGS
        if (value := getattr(args, flag.lstrip("-").replace("-", "_"))) is not None
    ]
    if not given:
        return
    if not str(args.target).startswith("forecast:"):
        flags = ", ".join(g[0] for g in given)
        raise ReprogramError(
            f"{flags} set a forecasting target's windows; --target {args.target!r} is not one "
            "(use forecast:ETTh1, forecast:ILI … or forecast:PATH.csv)."
        )
    args.target += "".join(f"#{option}={value}" for _flag, option, value in given)


def _add_baseline_args(p: argparse.ArgumentParser) -> None:
    add_flags(
        p,
        BaselineConfig,
        skip=_BASELINE_SKIP,
        defaults={"out": "runs/baseline"},
        helps={"lr": "learning rate (finetune 3e-4, scratch 1e-3)"},
        required=("method",),
    )


def _fit_config(args: argparse.Namespace) -> FitConfig:
    _forecast_target(args)
    kwargs = from_flags(FitConfig, args)
    for shortcut in ("canvas_size", "inner_size"):
        if getattr(args, shortcut, None) is not None:
            kwargs["program_options"][shortcut] = getattr(args, shortcut)
    return FitConfig(**kwargs)


def _baseline_config(args: argparse.Namespace) -> BaselineConfig:
    _forecast_target(args)
    return BaselineConfig(**from_flags(BaselineConfig, args, skip=_BASELINE_SKIP), plots=False)


# --------------------------------------------------------------------------- commands
def cmd_fit(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..api import fit

    result = fit(_fit_config(args))
    print(summary(result))
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..baselines import run_baseline

    config = _baseline_config(args)
    print(summary(run_baseline(config)))
    return 0


def _bench_package() -> Any:
    """The benchmark suites (``benchmarks/reprogram_bench`` of a source checkout).

    They live outside the installed library; this finds them above the working directory or
    beside the package's source (an editable install) and imports them.
    """
    here = Path(__file__).resolve()
    for root in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        if (root / "benchmarks" / "reprogram_bench" / "__init__.py").is_file():
            folder = str(root / "benchmarks")
            if folder not in sys.path:
                sys.path.insert(0, folder)
            # lazy: the suites are not part of the library; imported only for `bench`
            return importlib.import_module("reprogram_bench.commands")
    raise ReprogramError(
        "reprogram bench runs the benchmark suites kept in a source checkout "
        "(benchmarks/reprogram_bench), which this installation does not have. Run it from a "
        "clone of the repository (make install there)."
    )


def cmd_bench(args: argparse.Namespace) -> int:
    # quoted as a shell would need it, so the recorded line runs as written ('|', '#', spaces)
    command = "reprogram " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else None
    _bench_package().run(args, command)
    print(f"results: {Path(args.out) / 'results.md'}")
    return 0


def version_text() -> str:
    """What ``reprogram --version`` prints: the library's version and torch's."""
    import torch

    # lazy: the package's version; importing it loads the library
    from .. import __version__

    return f"reprogram {__version__} (torch {torch.__version__})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reprogram",
        description=(
            "Model reprogramming: train a small input program and label mapping "
            "around a frozen model."
        ),
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit", help="train a program and mapping; write an artifact")
    _add_fit_args(p)
    _add_forecast_args(p)
    p.set_defaults(func=cmd_fit)
    p = sub.add_parser(
        "baseline", help="train a baseline (linear probe, fine-tuning, scratch, peers)"
    )
    _add_baseline_args(p)
    _add_forecast_args(p)
    p.set_defaults(func=cmd_baseline)
    p = sub.add_parser(
        "bench",
        help="benchmark suites: vision (accuracy), efficiency (speed), ucr-v2s (time series), "
        "sequences (language models on peptides and molecules), forecast (Time-LLM)",
    )
    p.add_argument(
        "suite", choices=("vision", "efficiency", "ucr-v2s", "blackbox", "sequences", "forecast")
    )
    p.add_argument("--horizons", default=None, help="forecast: horizons (default: each set's four)")
    p.add_argument(
        "--fractions",
        default=None,
        help="forecast: shares of the training windows, e.g. 1,0.1 (default 1)",
    )
    p.add_argument(
        "--lm-strides",
        default=None,
        help="forecast: TRAIN,VAL window strides of the reprogramming cells (default 16,8 "
        "with a standard set: a language model on 2 CPU cores reads every 16th training "
        "window; 1,1 for your own files; the test keeps all)",
    )
    p.add_argument(
        "--lm-sample",
        type=int,
        default=None,
        metavar="S",
        help="forecast: reprogramming cells read a fresh random 1/S of the training windows "
        "each epoch, as cheap as --lm-strides S,VAL but seeing many more windows over the "
        "epochs (the training stride then defaults to 1)",
    )
    p.add_argument(
        "--drop-last",
        type=int,
        default=None,
        metavar="B",
        help="forecast: also re-score the finished cells (artifacts in --out's runs/) as the "
        "published code does, the test's last incomplete batch of B windows dropped "
        "(PatchTST's ILI script: 16); writes drop_last_B.md",
    )
    p.add_argument("--out", required=True, help="suite directory (a rerun skips finished cells; a "
                   "failed cell does not stop the others, and the command then names it)")
    p.add_argument(
        "--source",
        default=None,
        help="source model (efficientnet-lite0; sequences: minilm-l6; forecast: the "
        "reprogrammed LM, smollm2-135m#depth=2, whose ablations follow from it)",
    )
    p.add_argument("--target", default="fashion-mnist", help="vision: target data")
    p.add_argument(
        "--tasks",
        default=None,
        help="sequences: targets (default amp,amp-tm,acp,b3db,solubility); forecast: sets, "
        "ETTh1, ETTh2, ILI, exchange or your own PATH.csv (with --horizons; options after "
        "the path, e.g. PATH.csv#lookback=96) (default ETTh1)",
    )
    p.add_argument(
        "--shots",
        default=None,
        help="shots per class (vision: 10,100,1000; sequences: 8,32; 'all' for every row)",
    )
    p.add_argument(
        "--regression-shots",
        default=None,
        help="sequences: training rows in all of regression tasks' cells (default "
        "64,256,all)",
    )
    p.add_argument("--seeds", default="0,1,2", help="seeds of trained cells (default 0,1,2)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="vision, sequences, forecast: run N cells at once, each in its own process with "
        "the CPUs shared out (default 1: one after another); timings then share the machine",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="vision: PROGRAM+MAPPING variants and baseline names, comma-separated (default: "
        "full+linear, resize-pad+linear, full+ilm and every baseline); ucr-v2s: also "
        "PROGRAM+MAPPING@SOURCE (default: waveform+random@whisper-tiny.en,minirocket,scratch); "
        "efficiency: PROGRAM+MAPPING[:key=value,...] cells instead of the default cross of "
        "border/resize-pad/full × random/flm/ilm/linear; sequences: "
        "PROGRAM+MAPPING[:key=value,...][@SOURCE] and peer names (default: the soft prompt, "
        "the dictionary, the frozen LM's probe and every peer of `reprogram list baselines` "
        "that reads sequences)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of gradient methods (vision, sequences: 10; ucr-v2s: 100)",
    )
    p.add_argument(
        "--sets",
        default=None,
        help="ucr-v2s: UCR set names, or folders of your own in the archive's layout "
        "(as ucr:PATH; default: the 20 V2S sets)",
    )
    p.add_argument(
        "--max-train",
        type=int,
        default=None,
        help="ucr-v2s: at most N training series per set (quick runs; balanced shots)",
    )
    p.add_argument(
        "--select",
        default="holdout",
        help="ucr-v2s, sequences: holdout (20%% of train validates), refit (it chooses, then "
        "a refit on all training examples) or kfold:K (K-fold cross-validation chooses, then a "
        "refit), every cell alike; "
        "a :1se suffix (refit:1se) takes the earliest epoch or strongest penalty within one "
        "standard error of the best",
    )
    add_flags(p, RunConfig, only=("accelerator",))
    p.add_argument("--canvas-size", type=int, default=128, help="vision: canvas side")
    p.add_argument("--sizes", default="128,224", help="efficiency: input sizes")
    p.add_argument("--batch-size", type=int, default=32, help="efficiency: batch size")
    p.add_argument("--repeats", type=int, default=20, help="efficiency: timed repeats")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="sequences, forecast, blackbox: write the tables from the finished cells, run no "
        "cell (blackbox: measures the throughput if it is missing)",
    )
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("eval", help="reload an artifact and score it")
    p.add_argument("dir")
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (the table goes to stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--source",
        default=None,
        help="the artifact's source, named again: needed to follow a remote endpoint or a "
        "file (http://, onnx:) that the artifact records; its weights are checked",
    )
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser(
        "predict",
        help="predictions for new inputs (image files, .npy/.npz arrays; series also as "
        ".csv/.tsv/.txt lines or .ts)",
    )
    p.add_argument("dir")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--labelled",
        action="store_true",
        help="score against the inputs' labels: series text files start each line with one "
        "(the ucr:PATH layout); a sequences .csv has a label column beside sequence; "
        "forecasters: the table's last H rows are the truth, forecast from the rows before "
        "them",
    )
    p.add_argument(
        "--out",
        default=None,
        help="forecasters: write the forecast CSV here and a plot beside it (.png)",
    )
    p.add_argument(
        "--source",
        default=None,
        help="the artifact's source, named again: needed to follow a remote endpoint or a "
        "file (http://, onnx:) that the artifact records; its weights are checked",
    )
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("list", help="registered components")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("name", nargs="?", help="one entry: its options, types, defaults and help")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("demo", help="the main job on embedded, offline defaults")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..blackbox.commands import add_commands as add_blackbox_commands

    add_blackbox_commands(sub)  # serve, export
    return parser


def _default_recipe(args: argparse.Namespace, argv: list[str] | None) -> str | None:
    """For ``fit`` given neither ``--source`` nor ``--recipe``: the recipe of the target's
    kind (images run ``vision-full``, a forecast ``time-llm``, sequences ``warp``, series
    ``ucr-whisper``), said on stderr. Flags given still win."""
    if args.command != "fit" or _gave_source(argv):
        return None
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..recipes import default_recipe

    name = default_recipe(str(args.target))
    if name:
        print(
            f"note: no --source given, so {args.target} runs recipe {name}, the default of its "
            f"kind (reprogram list recipes {name}; --source or --recipe choose otherwise)",
            file=sys.stderr,
        )
    return name


def _gave_source(argv: list[str] | None) -> bool:
    """Whether the command line names ``--source``."""
    words = sys.argv[1:] if argv is None else argv
    return any(w == "--source" or w.startswith("--source=") for w in words)


def _default_baseline_source(args: argparse.Namespace, argv: list[str] | None) -> None:
    """For ``baseline`` on a sequence target given no ``--source``, a method that reads a
    source (``finetune``) reads the sequence recipe's language model, as ``fit`` would,
    instead of the image model ``--source`` defaults to; said on stderr."""
    if args.command != "baseline" or _gave_source(argv):
        return
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..baselines.base import BASELINES
    from ..data import target_kinds
    from ..recipes import RECIPES

    try:
        if "sequence" not in target_kinds(str(args.target)):
            return
        config = BASELINES.build_config(args.method, None)
        needs = BASELINES.get(args.method).builder(config).needs_source
    except ReprogramError:
        return  # the run names the problem
    if needs:
        args.source = RECIPES.get("warp").builder()["source"]
        print(f"note: no --source given, so {args.method} on the sequence target "
              f"{args.target} reads {args.source} (--source chooses another)", file=sys.stderr)


def _with_recipe(parser: argparse.ArgumentParser, argv: list[str] | None, name: str) -> Any:
    """Parse ``argv`` again with recipe ``name``'s flags as the ``fit`` defaults.

    Flags on the command line win; ``--program-opt``/``--mapping-opt`` given there are added
    after the recipe's (so the same key replaces its value), and the recipe's options of a
    program or mapping the command line replaced are dropped.
    """
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..recipes import RECIPES, command_line

    flags = RECIPES.get(name).builder()
    fit_parser = next(
        a.choices["fit"] for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    fit_parser.set_defaults(**flags)
    args = parser.parse_args(argv)
    for component in ("program", "mapping"):
        recipe_options = flags.get(f"{component}_opt", [])
        if component in flags and getattr(args, component) != flags[component]:
            given = getattr(args, f"{component}_opt") or []
            setattr(args, f"{component}_opt", given[len(recipe_options) :])
    print(
        f"recipe {name}: "
        + " ".join(shlex.quote(w) for w in command_line(flags))
        + " (flags given here win)",
        file=sys.stderr,
    )
    return args


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time of each message."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _CommandFormatter(logging.Formatter):
    """INFO as the bare message; warnings and errors as ``reprogram CMD: warning: ...``."""

    def __init__(self, command: str) -> None:
        super().__init__("%(message)s")
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"reprogram {self.command}: {record.levelname.lower()}: {text}"
        return text


@contextlib.contextmanager
def _log_to_stderr(command: str) -> Iterator[None]:
    """Show the library's ``reprogram`` logger (INFO and up) on stderr while a command runs.

    Only the command does this: the library itself adds nothing but a ``NullHandler``.
    """
    log = logging.getLogger("reprogram")
    handler = _StderrHandler()
    handler.setFormatter(_CommandFormatter(command))
    level = log.level
    log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM raises KeyboardInterrupt (a clean stop, as Ctrl-C) while the block runs; yields a
    list that gets the signal number when it came. The previous handler is restored after.
    Outside the main thread (where handlers cannot be set) nothing changes."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _trains_on_sequences(args: argparse.Namespace) -> bool:
    """Whether the command trains on a sequence target (``fit``/``baseline`` on one, ``bench
    sequences``): its batches vary in shape, and with the allocator tuned (large blocks kept
    in the heap, see runtime.py) the heap grows with every new shape instead of reusing it
    (fine-tuning MiniLM on all of b3db passed 20 GB within its first epoch)."""
    if args.command == "bench":
        return getattr(args, "suite", None) == "sequences"
    target = getattr(args, "target", None)
    if args.command not in ("fit", "baseline") or not target:
        return False
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..data import target_kinds

    try:
        return "sequence" in target_kinds(str(target))
    except ReprogramError:
        return False  # the run names the problem


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, 1 for unexpected ones, 130 after
    Ctrl-C and 143 after SIGTERM, both of which stop cleanly)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    recipe = getattr(args, "recipe", None) or _default_recipe(args, argv)
    if recipe:
        try:
            args = _with_recipe(parser, argv, recipe)
        except ReprogramError as exc:
            print(f"reprogram {args.command}: error: {exc}", file=sys.stderr)
            return 2
        args.recipe = recipe  # the default of the target's kind too: config.json records it
    _default_baseline_source(args, argv)
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..runtime import tune_allocator

    if not _trains_on_sequences(args):
        tune_allocator()  # large blocks reused, not re-mapped every step (see runtime.py)
    terminated: list[int] = []
    try:
        with _sigterm_as_interrupt() as terminated, _log_to_stderr(args.command):
            return int(args.func(args))
    except ReprogramError as exc:
        print(f"reprogram {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        where = (
            f" Finished cells are kept in {out}; run the same command again to go on (an "
            "interrupted cell continues from its last finished epoch)."
            if out and args.command == "bench"
            else f" The last finished epoch is checkpointed in {out}; continue with --resume."
            if out
            else ""
        )
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"reprogram {args.command}: {what}.{where}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # `reprogram list ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # what a shell reports for a writer stopped by SIGPIPE
    except Exception as exc:
        if os.environ.get("REPROGRAM_DEBUG"):
            raise
        print(
            f"reprogram {args.command}: unexpected {type(exc).__name__}: {exc}. This is likely a "
            f"bug; rerun with REPROGRAM_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return 1
