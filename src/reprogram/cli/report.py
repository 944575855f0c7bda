"""The table a ``fit`` or ``baseline`` run prints when it finishes.

:func:`summary` turns a run's metrics and config into the closing table (accuracy, RMSE or
forecast MSE, trained parameters, time, data, artifact); :func:`_table` is the plain
two-column layout it and ``reprogram eval`` share; :func:`top1_by_class` is what ``demo``
reports of the frozen source's own labels per target class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


#: Fewer held-out validation examples than this cannot rank epochs (or penalties) reliably.
SMALL_VALIDATION = 20


def _small_validation(m: dict[str, Any]) -> str | None:
    """A note when a handful of held-out examples chose the epoch or penalty: their
    accuracy moves in steps of ``1/n`` and they were never trained on (``None`` otherwise:
    k-fold or refit selection, nothing chosen, or validation large enough)."""
    n = m["splits"]["val"]
    chose = "selected" in m or m.get("epochs", 0) >= 2
    if "kfold" in m or not chose or not 0 < n < SMALL_VALIDATION:
        return None
    noise = (
        f"an error measured on {n} rows is noisy"
        if m.get("test_accuracy") is None and m.get("test_rmse") is not None  # regression
        else f"accuracy in steps of {100 / n:.0f}%"
    )
    return (
        f"{n} held-out example(s) chose ({noise}) and were not trained on; --select kfold:5 "
        "chooses on every training example, then refits on all"
    )


def summary(result: Any) -> str:
    """The final table of a fit or baseline run."""
    m, c = result.metrics, result.config
    trained, frozen = m["trainable_parameters"], m["source_parameters"]
    files = sorted(p.name for p in Path(result.out).iterdir() if not p.name.startswith("."))
    if "selected" in m:
        chosen = ", ".join(f"{k}={v:g}" for k, v in m["selected"].items())
        selection = f"(chosen on validation: {chosen})"
    elif m["splits"]["val"] == 0:  # an --epochs 0 refit: one candidate, nothing held out
        fixed = "kfold" in m and "epoch" not in m["kfold"]["choice"]  # a forest, say
        selection = (
            "(leave-one-out on the training examples; nothing to choose)"
            if m["val_accuracy"] is not None
            else "(fixed settings, nothing to choose: fitted on every training example)"
            if fixed
            else "(nothing held out: an untrained program is the only candidate)"
        )
    elif not m.get("history"):  # fixed settings (a forest): validation scored, chose nothing
        selection = ("(fixed settings, nothing to choose: these rows were only scored; "
                     "--select refit fits on them too)")
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
    note = _small_validation(m)
    if note:
        rows.insert(-1, ("note", note))
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
