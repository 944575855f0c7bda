"""The ``reprogram`` command: fit, eval, predict, list, demo.

A failed command exits non-zero with a one-paragraph message on stderr, never a traceback
(set ``REPROGRAM_DEBUG=1`` to see one for unexpected errors).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import shlex
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import BaselineConfig, FitConfig, RunConfig
from ..errors import ArtifactError, DataError, ReprogramError
from ..flags import add_flags, from_flags, key_values

if TYPE_CHECKING:
    from ..registry import Registry

KINDS = ("sources", "targets", "programs", "mappings", "optimizers", "baselines", "recipes")


# --------------------------------------------------------------------------- parsing helpers
# The flags of fit and baseline are generated from the config dataclasses' fields (one place
# per fact: reprogram.flags); only these shortcuts and the recipe are written here.
_BASELINE_SKIP = ("optimizer", "optimizer_options", "query_budget", "plots")


def _add_fit_args(p: argparse.ArgumentParser) -> None:
    add_flags(p, FitConfig, helps={"lr": "learning rate (default 0.01)"})
    p.add_argument(
        "--recipe",
        default=None,
        help="named, measured settings for the other flags (reprogram list recipes); flags "
        "given here win over it",
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


# --------------------------------------------------------------------------- output helpers
def _table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def _accuracy(value: float | None) -> str:
    """An accuracy to 4 places, or a dash where none was measured (nothing held out)."""
    return "—" if value is None else f"{value:.4f}"


def _train_time(m: dict[str, Any]) -> str:
    """The final run's training time, plus what selecting cost where folds chose."""
    text = f"{m['train_seconds']:.1f} s"
    if m.get("selection_seconds"):
        text += f" (+ {m['selection_seconds']:.1f} s in the selection runs)"
    return text


def summary(result: Any) -> str:
    """The final table of a fit or baseline run."""
    m, c = result.metrics, result.config
    trained, frozen = m["trainable_parameters"], m["source_parameters"]
    files = sorted(p.name for p in Path(result.out).iterdir() if not p.name.startswith("."))
    if "selected" in m:
        chosen = ", ".join(f"{k}={v:g}" for k, v in m["selected"].items())
        selection = f"(chosen on validation: {chosen})"
    elif m["splits"]["val"] == 0:  # an --epochs 0 refit: one candidate, nothing held out
        selection = (
            "(leave-one-out on the training examples; nothing to choose)"
            if m["val_accuracy"] is not None
            else "(nothing held out: an untrained program is the only candidate)"
        )
    else:
        selection = f"(best epoch {m['best_epoch']} of {m['epochs']}; selects)"
    share = (
        f"({100 * trained / frozen:.2f}% of the source's {frozen:,})" if frozen else "(no source)"
    )
    if m.get("test_mse_by_step") is not None:  # a forecast: MSE on the normalised scale
        scored = [
            ("val mse", f"{m['val_mse']:.4f}  {selection}"),
            (
                "test mse",
                f"{m['test_mse']:.4f}  (MAE {m['test_mae']:.4f}, normalised scale; scored "
                "once, after selection)",
            ),
        ]
    elif m.get("test_rmse") is not None:  # a regression target
        scored = [
            ("val rmse", f"{m['val_rmse']:.4f}  {selection}"),
            (
                "test rmse",
                f"{m['test_rmse']:.4f}  (MAE {m['test_mae']:.4f}, R² {m['test_r2']:.3f}; "
                "scored once, after selection)",
            ),
        ]
    else:
        scored = [
            ("val accuracy", f"{_accuracy(m['val_accuracy'])}  {selection}"),
            ("test accuracy", f"{m['test_accuracy']:.4f}  (scored once, after selection)"),
        ]
        if m.get("test_roc_auc") is not None:
            scored.append(("test ROC-AUC", f"{m['test_roc_auc']:.4f}"))
    rows = [
        *scored,
        ("trained params", f"{trained:,}  {share}"),
        ("train time", _train_time(m)),
        (
            "data",
            f"{m['splits']['train']} train / {m['splits']['val']} val / {m['splits']['test']} test",
        ),
        ("artifact", f"{result.out}  ({', '.join(files)})"),
    ]
    if "queries" in m:  # a black-box run
        budget = f", budget {m['query_budget']:,}" if m.get("query_budget") else ""
        stop = (
            f"; stopped: {m['stopped']} (--resume with more continues)" if m.get("stopped") else ""
        )
        rows.insert(
            -1, ("queries", f"{m['queries']:,} ({m['cache_hits']:,} from cache{budget}){stop}")
        )
    if "baseline" in c:
        source = c["source"]["name"] if c.get("source") else "no source"
        title = f"{source} → {c['target']['name']}  (baseline {c['baseline']['method']})"
    else:
        title = (
            f"{c['source']['name']} → {c['target']['name']}  "
            f"(program {c['program']['name']}, mapping {c['mapping']['name']})"
        )
    return _table(rows, title)


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
    command = "reprogram " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else None
    _bench_package().run(args, command)
    print(f"results: {Path(args.out) / 'results.md'}")
    return 0


def _eval_target(config: dict[str, Any]) -> tuple[Any, dict[str, Any], int]:
    """The target a fit run saw, its split settings (shots, val_fraction, seed) and eval batch."""
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..data import load_target

    try:
        t = config["target"]
        name = t["name"]
        settings = {"shots": t["shots"], "val_fraction": t["val_fraction"], "seed": config["seed"]}
        batch = int(config["training"]["eval_batch_size"])
        if batch < 1:
            raise ValueError(f"eval_batch_size {batch}")
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"config.json lacks or garbles field {exc}; it is not ours.") from None
    return load_target(name), settings, batch


def _load_eval_splits(config: dict[str, Any]) -> tuple[Any, int]:
    """The splits a fit run saw (same shots, validation fraction and seed) and its eval batch."""
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..data.splits import prepare_splits

    data, settings, batch = _eval_target(config)
    return prepare_splits(data, **settings), batch


def _given_source(args: argparse.Namespace) -> Any:
    """The source the user named with ``--source`` (their consent to a remote or file source
    an artifact records), or ``None`` to build the artifact's own."""
    if not getattr(args, "source", None):
        return None
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..sources import build_source

    return build_source(args.source)


def cmd_eval(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..artifact import METRICS, load_artifact, read_json
    from ..evaluate import score
    from ..tasks import task_of

    model, config = load_artifact(args.dir, source=_given_source(args))
    metrics = read_json(Path(args.dir) / METRICS, "the metrics")
    if not isinstance(metrics, dict):
        raise ArtifactError(f"{Path(args.dir) / METRICS} is not a JSON object; it is not ours.")
    try:
        task = task_of(str((config.get("target") or {}).get("task", "classification")))
    except ValueError as exc:
        raise ArtifactError(f"{Path(args.dir) / 'config.json'}: {exc}.") from None
    headline = f"{args.split}_{task.headline}"
    recorded = metrics.get(headline)
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float, type(None))):
        raise ArtifactError(
            f"{Path(args.dir) / METRICS} records {headline} {recorded!r}, not a "
            "number; the file is damaged or was edited."
        )
    if args.split == "test":  # the official test split: no validation carve needed (a run
        # with --epochs 0 may have held nothing out of classes too small to give one)
        data, _, batch = _eval_target(config)
        split = data.test
    else:
        splits, batch = _load_eval_splits(config)
        split = splits.val
    found = task.summary(score(model, split.x, split.y, batch, args.split, task=task))
    acc = found[task.headline]
    rows = [
        (f"{args.split} {task.headline}", f"{acc:.4f}  ({len(split)} examples)"),
        *((f"{args.split} {k}", f"{v:.4f}") for k, v in found.items() if k != task.headline),
        ("recorded at fit", "n/a" if recorded is None else f"{recorded:.4f}"),
    ]
    ledger = getattr(getattr(model, "source", None), "ledger", None)  # a black-box source
    if ledger is not None:
        rows.append(
            ("queries", f"{ledger.queries} sent to the black box ({ledger.cache_hits} from cache)")
        )
    if recorded is not None:
        rows.append(
            (
                "reproduced",
                "yes, exactly" if acc == recorded else f"NO (diff {acc - recorded:+.4f})",
            )
        )
    if (config.get("source") or {}).get("access") == "query":
        rows.append(("source identity", "as the black box reports it (not verifiable)"))
    print(_table(rows, f"reprogram eval {args.dir}"))
    if args.json:
        extra = {} if ledger is None else {"queries": ledger.queries}
        print(json.dumps({f"{args.split}_{k}": v for k, v in found.items()} | extra))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..artifact import load_artifact
    from ..predict import load_inputs

    model, config = load_artifact(args.dir, source=_given_source(args))
    facts = config["target"].get("forecast")
    if isinstance(facts, dict):
        return _predict_forecast(model, facts, args)
    names = config["target"]["class_names"]
    labels, x, truth = load_inputs(
        args.inputs,
        tuple(config["target"]["input_shape"]),
        labelled=args.labelled,
        vocabulary=config["target"].get("vocabulary"),
    )
    if not len(x):
        raise DataError(f"the inputs ({', '.join(args.inputs)}) hold no examples.")
    import torch

    if config["target"].get("task") == "regression":  # one value each, not classes
        return _print_values(model, x, labels, truth, str(names[0]), args.json)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=-1) if len(x) else torch.empty(0, len(names))
    rows = []
    for i, (label, p) in enumerate(zip(labels, probs, strict=True)):
        k = int(p.argmax())
        row = {"input": label, "class": names[k], "index": k, "probability": round(float(p[k]), 4)}
        if truth:
            row["label"] = truth[i]
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            given = f"\t(label {r['label']})" if "label" in r else ""
            print(f"{r['input']}\t{r['class']}\t{r['probability']:.4f}{given}")
        if truth:
            print(_labelled_accuracy(truth, [r["class"] for r in rows], names))
    return 0


def _print_values(
    model: Any, x: Any, labels: list[str], truth: list[str], name: str, as_json: bool
) -> int:
    """``predict`` for a one-value regression model: each input's predicted value."""
    import torch

    with torch.no_grad():
        values = model.eval()(x)[:, 0].tolist()
    found: list[dict[str, Any]] = [
        {"input": n, name: round(float(v), 4)} for n, v in zip(labels, values, strict=True)
    ]
    for i, row in enumerate(found):
        if truth:
            row["label"] = truth[i]
    if as_json:
        print(json.dumps(found, indent=2))
    else:
        for r in found:
            given = f"\t(label {r['label']})" if "label" in r else ""
            print(f"{r['input']}\t{name} {r[name]:.4f}{given}")
    return 0


def _predict_forecast(model: Any, facts: dict[str, Any], args: argparse.Namespace) -> int:
    """``predict`` for a forecaster: a table in, the next H steps out (CSV, data scale)."""
    import csv
    import io

    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..diagnostics.forecast_plot import save_forecast_png
    from ..predict import forecast, forecast_inputs, forecast_rows

    if len(args.inputs) != 1:
        raise DataError("a forecaster reads one table (CSV with a date column) at a time.")
    x, truth, history = forecast_inputs(args.inputs[0], facts, labelled=args.labelled)
    predicted = forecast(model, x, facts)
    columns = [str(c) for c in facts["columns"]]
    rows = forecast_rows(predicted, truth, columns)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
        if args.out:
            Path(args.out).write_text(text)
        else:
            print(text, end="")
    if truth is not None:
        error = float(((predicted - truth) ** 2).mean())
        print(f"MSE against the given truth (data scale): {error:.4f}", file=sys.stderr)
    if args.out:
        picture = Path(args.out).with_suffix(".png")
        shown = min(len(columns), 4)
        save_forecast_png(
            history[:shown],
            predicted[:shown],
            None if truth is None else truth[:shown],
            picture,
            f"forecast of {args.inputs[0]} ({args.dir})",
            columns[:shown],
        )
        print(f"forecast: {args.out}; plot: {picture}", file=sys.stderr)
    return 0


def _labelled_accuracy(truth: list[str], predicted: list[str], names: list[str]) -> str:
    """One line scoring predictions against the labels the input files carried."""
    unknown = sorted(set(truth) - set(names))
    right = sum(t == p for t, p in zip(truth, predicted, strict=True))
    line = f"accuracy against the files' labels: {right / len(truth):.4f} ({right}/{len(truth)})"
    if unknown:
        line += f"; labels the model never saw: {', '.join(unknown)} (counted as wrong)"
    return line


def cmd_list(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from .. import baselines, data, mappings, optim, programs, recipes, sources

    registries: dict[str, Registry[Any]] = {
        "recipes": recipes.RECIPES,
        "baselines": baselines.BASELINES,
        "sources": sources.SOURCES,
        "targets": data.TARGETS,
        "programs": programs.PROGRAMS,
        "mappings": mappings.MAPPINGS,
        "optimizers": optim.OPTIMIZERS,
    }
    registry = registries[args.kind]
    if args.name:
        return _list_one(registry, args.name)
    rows = []
    for e in registry:
        if e.prefix:  # the help text of a prefix entry starts with what follows the prefix
            word, _, rest = e.help.partition(" ")
            rows.append((e.name + word, rest, e.name))
        else:
            rows.append((e.name, e.help, e.name))
    width = max(len(name) for name, _, _ in rows)
    for name, text, key in rows:
        print(f"{name.ljust(width)}  {text}")
        options = registry.options(key)
        if options:
            print(" " * (width + 2) + "options: " + ", ".join(o.name for o in options))
    what = "the flags it sets" if args.kind == "recipes" else "its options"
    if args.kind == "programs":
        print(
            "\nWithout --program (auto), fit picks from the input shapes: resize-pad for images "
            "on an image source,\nseries-image for series on an image source, waveform for "
            "series on an audio source."
        )
    print(f"\n`reprogram list {args.kind} NAME` shows one entry and {what}.")
    return 0


# The command-line flag that passes options to each kind of component.
OPTION_FLAGS = {
    "program": "--program-opt",
    "mapping": "--mapping-opt",
    "optimizer": "--optimizer-opt",
    "baseline": "--method-opt",
}


def _list_one(registry: Any, name: str) -> int:
    """Print one entry's help and each option with its type, default and help text."""
    entry = registry.lookup(name)
    if entry.prefix:  # its help starts with what follows the prefix, e.g. "NAME any UCR set"
        word, _, rest = entry.help.partition(" ")
        print(f"{entry.name}{word}: {rest}")
    else:
        print(f"{entry.name}: {entry.help}")
    if registry.kind == "recipe":
        # lazy: the library loads torch; `reprogram --help` stays fast
        from ..recipes import command_line

        words = command_line(entry.builder())
        print("reprogram fit --target TARGET " + " ".join(shlex.quote(w) for w in words))
        return 0
    options = registry.options(entry.name)
    if not options:
        print("  takes no options")
        return 0
    example = f"{options[0].name}={options[0].default}"
    flag = OPTION_FLAGS.get(registry.kind)
    where = f"on the command line: {flag} {example} (repeatable)" if flag else ""
    if registry.kind == "baseline":
        where += f"; in bench method strings: {entry.name}:{example},..."
    elif registry.kind in ("program", "mapping"):
        where += f"; in bench method strings: PROGRAM+MAPPING:{example},..."
    print(f"options ({where.lstrip('; ')}):")
    for o in options:
        print(f"  {o.name}  ({o.type}, default {o.default})")
        if o.help:
            print(
                textwrap.fill(o.help, width=96, initial_indent="      ", subsequent_indent="      ")
            )
    return 0


# The vision benchmark's best reprogramming row (docs/results/vision.md): the vision-full
# recipe on 100 images per class.
def _demo_settings() -> dict[str, Any]:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..recipes import RECIPES

    return {**RECIPES.get("vision-full").builder(), "target": "fashion-mnist", "shots": 100}


def cmd_demo(args: argparse.Namespace) -> int:
    # lazy: the library loads torch; `reprogram --help` stays fast
    from .. import FitConfig, fit

    d = _demo_settings()
    print(
        textwrap.fill(
            f"reprogram demo: EfficientNet-Lite0 was trained on ImageNet photos and has never seen "
            f"Fashion-MNIST. Its weights stay frozen; we train only a {d['program']} input program "
            f"and a {d['mapping']} label mapping (started from a linear probe) on {d['shots']} "
            f"grey images per class ({d['epochs']} epochs, {d['canvas_size']}-pixel canvas), "
            f"choose the epoch on a validation split (epoch 0: the probe alone), and score the "
            f"10,000-image test set once.",
            width=100,
        )
        + "\n"
    )
    config = FitConfig(
        source=d["source"],
        target=d["target"],
        program=d["program"],
        mapping=d["mapping"],
        program_options={"canvas_size": d["canvas_size"]},
        mapping_options=key_values(d.get("mapping_opt"), "--mapping-opt"),
        lr=d.get("lr"),
        shots=d["shots"],
        epochs=d["epochs"],
        seed=args.seed,
        out=args.out,
        overwrite=True,
        progress=not args.quiet,
    )
    result = fit(config)
    print()
    print(summary(result))
    print("\nWhat the frozen ImageNet model learned to do, per Fashion-MNIST class:")
    print("  (sees: its most frequent ImageNet top-1 label on reprogrammed validation images;")
    print("   weights: the ImageNet outputs the linear mapping leans on most)")
    names = result.config["target"]["class_names"]
    splits, _ = _load_eval_splits(result.config)
    seen = top1_by_class(result.model, splits.val)
    for c, (name, row) in enumerate(zip(names, result.config["mapping"]["table"], strict=True)):
        label, share = seen[c]
        print(
            f"  {name:<12} sees {label!r} ({share:.0%})".ljust(48)
            + f"weights: {', '.join(row['source_labels'][:3])}"
        )
    print(f"\nPictures: {result.out / 'program.png'} and {result.out / 'mapping.png'}")
    return 0


def top1_by_class(model: Any, split: Any) -> list[tuple[str, float]]:
    """Per target class: the source's most frequent top-1 label on ``split`` and its share."""
    import torch

    with torch.no_grad():
        top = torch.cat(
            [model.source_logits(split.x[i : i + 64]).argmax(-1) for i in range(0, len(split), 64)]
        )
    out = []
    for c in range(int(split.y.max()) + 1):
        picks = top[split.y == c]
        values, counts = torch.unique(picks, return_counts=True)
        k = int(counts.argmax())
        out.append((model.source.label_names[int(values[k])], float(counts[k]) / len(picks)))
    return out


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
        help="forecast: TRAIN,VAL window strides of the reprogramming cells (default 16,8: a "
        "language model on 2 CPU cores reads every 16th training window; the test keeps all)",
    )
    p.add_argument("--out", required=True, help="suite directory (a rerun skips finished cells)")
    p.add_argument(
        "--source", default=None, help="source model (efficientnet-lite0; sequences: minilm-l6)"
    )
    p.add_argument("--target", default="fashion-mnist", help="vision: target data")
    p.add_argument(
        "--tasks",
        default=None,
        help="sequences: targets (default amp,amp-tm,acp,b3db); forecast: sets (default ETTh1)",
    )
    p.add_argument(
        "--shots",
        default=None,
        help="shots per class (vision: 10,100,1000; sequences: 8,32; 'all' for every row)",
    )
    p.add_argument("--seeds", default="0,1,2", help="vision: seeds")
    p.add_argument(
        "--methods",
        default=None,
        help="vision: PROGRAM+MAPPING variants and baseline names, comma-separated (default: "
        "full+linear, resize-pad+linear, full+ilm and every baseline); ucr-v2s: also "
        "PROGRAM+MAPPING@SOURCE (default: waveform+random@whisper-tiny.en,minirocket,scratch); "
        "efficiency: PROGRAM+MAPPING[:key=value,...] cells instead of the default cross of "
        "border/resize-pad/full × random/flm/ilm/linear",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of gradient methods (vision: 10, ucr-v2s: 100)",
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
        help="ucr-v2s: holdout (20%% of train validates), refit (it chooses, then a refit on "
        "all training series) or kfold:K (K-fold cross-validation chooses, then a refit); "
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
    p.add_argument("--json", action="store_true", help="also print the result as JSON")
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
        help="series text files start each line with a label (the ucr:PATH layout): it is "
        "shown beside the prediction and scored; forecasters: the table's last H rows are "
        "the truth, forecast from the rows before them",
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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, 1 for unexpected ones, 130 after
    Ctrl-C and 143 after SIGTERM, both of which stop cleanly)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "recipe", None):
        try:
            args = _with_recipe(parser, argv, args.recipe)
        except ReprogramError as exc:
            print(f"reprogram {args.command}: error: {exc}", file=sys.stderr)
            return 2
    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..runtime import tune_allocator

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
            f" The last finished epoch is checkpointed in {out}; continue with --resume."
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
