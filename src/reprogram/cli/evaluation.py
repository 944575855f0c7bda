"""``reprogram eval`` and ``reprogram predict``: a saved artifact scored again or put to use.

``eval`` reloads an artifact, rebuilds the split its fit run scored (same shots, validation
fraction and seed) and checks the headline metric against the one recorded; ``predict``
prints a class, a value or a forecast for new inputs. :func:`_load_eval_splits` is also how
``demo`` and the tests get a run's splits back.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import ArtifactError, DataError
from .report import _table

if TYPE_CHECKING:  # types only: the library loads torch; `reprogram --help` stays fast
    from ..adapter import Adapted


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
    from ..evaluate import roc_auc, score
    from ..tasks import task_of
    from ..train import recorded_test_matches

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
        if not recorded_test_matches(config, split):
            print(
                f"reprogram eval: error: the test split of {config['target']['name']} differs "
                "from the one this run scored (its data changed since the fit), so the scores "
                "are not comparable; restore the data, or fit again on the new data.",
                file=sys.stderr,
            )
            return 1
    else:
        if "kfold" in metrics:  # refit / k-fold: the final run trained on its validation rows
            raise DataError(
                f"{args.dir} chose by --select {metrics['kfold'].get('select', 'kfold')} and then "
                "trained on every training example, its validation rows included, so "
                f"--split val has nothing held out to score (its recorded {headline} is the "
                "folds' mean); score --split test."
            )
        splits, batch = _load_eval_splits(config)
        split = splits.val
    bar = None if args.quiet else args.split
    kept: list[Any] = []
    # read as the run was scored: token rows longest first unless it recorded otherwise (runs
    # made before the length grouping record nothing and read their rows as given)
    ordered = bool(config.get("training", {}).get("length_batching", False))
    found = task.summary(
        score(model, split.x, split.y, batch, bar, keep=kept, task=task, by_length=ordered)
    )
    auc = roc_auc(kept, split.y)  # two classes: as fit records test_roc_auc
    if auc is not None:
        found["roc_auc"] = auc
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
    # --json: stdout is the JSON alone (for jq and scripts), the table goes to stderr
    print(_table(rows, f"reprogram eval {args.dir}"), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        extra = {"recorded_at_fit": recorded,
                 "reproduced": None if recorded is None else acc == recorded}
        extra |= {} if ledger is None else {"queries": ledger.queries}
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
    _check_lengths(model, x, labels)
    if config["target"].get("task") == "regression":  # one value each, not classes
        return _print_values(model, x, labels, truth, str(names[0]), args.json)
    # every artifact's model is an Adapted: [N, K] probabilities, in batches
    probs = cast("Adapted", model).predict_proba(x)
    rows = []
    for i, (label, p) in enumerate(zip(labels, probs, strict=True)):
        k = int(p.argmax())
        row = {"input": label, "class": names[k], "index": k, "probability": round(float(p[k]), 4)}
        if truth:
            row["label"] = truth[i]
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        if truth:  # stdout stays one JSON document
            print(_labelled_accuracy(truth, [r["class"] for r in rows], names), file=sys.stderr)
    else:
        for r in rows:
            given = f"\t(label {r['label']})" if "label" in r else ""
            print(f"{r['input']}\t{r['class']}\t{r['probability']:.4f}{given}")
        if truth:
            print(_labelled_accuracy(truth, [r["class"] for r in rows], names))
    return 0


def _check_lengths(model: Any, x: Any, labels: list[str]) -> None:
    """Refuse, naming the first such row, sequences longer than the model's source reads
    (a token program's :meth:`max_symbols`), before any is scored."""
    limit = getattr(getattr(model, "program", None), "max_symbols", None)
    if limit is None or x.dim() != 2 or x.dtype.is_floating_point:
        return
    most = int(limit())
    lengths = (x != 0).sum(1)
    over = (lengths > most).nonzero().flatten().tolist()
    if over:
        first = over[0]
        others = f" ({len(over) - 1} more rows are too)" if len(over) > 1 else ""
        raise DataError(
            f"{labels[first]}: {int(lengths[first])} symbols, more than the {most} this "
            f"model's source reads ({model.program.source_name}){others}; drop or trim those "
            "rows."
        )


def _print_values(
    model: Any, x: Any, labels: list[str], truth: list[str], name: str, as_json: bool
) -> int:
    """``predict`` for a one-value regression model: each input's predicted value."""
    values = model.predict(x).tolist()  # [N]: one value each, in batches
    found: list[dict[str, Any]] = [
        {"input": n, name: round(float(v), 4)} for n, v in zip(labels, values, strict=True)
    ]
    for i, row in enumerate(found):
        if truth:
            row["label"] = truth[i]
    if as_json:
        print(json.dumps(found, indent=2))
        if truth:  # stdout stays one JSON document
            print(_labelled_errors(truth, values), file=sys.stderr)
    else:
        for r in found:
            given = f"\t(label {r['label']})" if "label" in r else ""
            print(f"{r['input']}\t{name} {r[name]:.4f}{given}")
        if truth:
            print(_labelled_errors(truth, values))
    return 0


def _labelled_errors(truth: list[str], predicted: list[float]) -> str:
    """One line scoring predicted values against the labels the input files carried: RMSE and
    MAE over the rows whose label is a finite number (the others are named as skipped)."""
    pairs, skipped = [], []
    for t, p in zip(truth, predicted, strict=True):
        try:
            value = float(t)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            pairs.append((value, p))
        else:
            skipped.append(t)
    if not pairs:
        return "no label is a number: nothing to score the values against"
    # lazy: the library loads torch; `reprogram --help` stays fast
    import torch

    # lazy: as above (tasks imports torch)
    from ..tasks import REGRESSION

    given, values = torch.tensor(pairs, dtype=torch.float64).unbind(1)
    score = REGRESSION.summary(REGRESSION.totals(values, given))  # as eval scores a split
    line = (f"against the labels given: RMSE {score['rmse']:.4f}, MAE {score['mae']:.4f} "
            f"({len(pairs)} rows)")
    if skipped:
        shown = ", ".join(map(repr, skipped[:3])) + (" …" if len(skipped) > 3 else "")
        line += f"; {len(skipped)} label(s) not a number skipped ({shown})"
    return line


def _predict_forecast(model: Any, facts: dict[str, Any], args: argparse.Namespace) -> int:
    """``predict`` for a forecaster: a table in, the next H steps out (CSV, data scale)."""
    import csv
    import io

    # lazy: the library loads torch; `reprogram --help` stays fast
    from ..diagnostics.forecast_plot import save_forecast_png
    from ..predict import forecast, forecast_inputs, forecast_rows

    if len(args.inputs) != 1:
        raise DataError("a forecaster reads one table (CSV with a date column) at a time.")
    x, truth, history, dates = forecast_inputs(args.inputs[0], facts, labelled=args.labelled)
    predicted = forecast(model, x, facts)
    columns = [str(c) for c in facts["columns"]]
    rows = forecast_rows(predicted, truth, columns, dates)
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
            dates,
        )
        print(f"forecast: {args.out}; plot: {picture}", file=sys.stderr)
    return 0


def _labelled_accuracy(truth: list[str], predicted: list[str], names: list[str]) -> str:
    """One line scoring predictions against the labels the input files carried."""
    unknown = sorted(set(truth) - set(names))
    right = sum(t == p for t, p in zip(truth, predicted, strict=True))
    line = f"accuracy against the labels given: {right / len(truth):.4f} ({right}/{len(truth)})"
    if unknown:
        line += f"; labels the model never saw: {', '.join(unknown)} (counted as wrong)"
    return line
