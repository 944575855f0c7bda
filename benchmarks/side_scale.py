"""Diagnostic: should the side block's weight in the ridge head be chosen, not fixed at 1?

The ``ucr-whisper`` recipe (``sonify`` + ``linear:head=ridge,side=minirocket``, ``--epochs 0``)
fits one ridge on Whisper's pooled features (6,144) beside MiniRocket's (about 10,000), each
feature standardised, the penalty by leave-one-out (LOO) on all training series. Both blocks
then weigh the same per feature. This script asks whether scaling the side block by ``s``
(kernel ``K_whisper + s² K_side``), with ``s`` chosen by the same LOO error from a small grid,
does better.

What may decide, honestly: the 5-fold cross-validated accuracy on the training series (each
fold choosing its own penalty, and ``s`` for the chosen variant, by LOO on the fold's training
part). The test accuracy (ridge on all training series, test split scored once per variant) is
reported beside it, as the benchmark would see it; it must not be what picks the variant.

    python benchmarks/side_scale.py --out benchmarks/results/side_scale

Writes ``results.json`` and ``results.md`` under ``--out``. Whisper's features are computed
once per set (θ = 0 is deterministic), MiniRocket's once per seed (0, 1, 2).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from frozen_features import run_meta, whisper_features
from reprogram_bench.ucr import V2S_SETS

from reprogram.data.ucr import load_arrays
from reprogram.mappings.side import build_side, side_features
from reprogram.programs.sonify import SonifyConfig, SonifyProgram
from reprogram.ridge import DEFAULT_ALPHAS
from reprogram.sources.whisper import build_whisper

SEEDS = (0, 1, 2)
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
VARIANTS = ("whisper", "side", "both s=1", "both s=LOO")


def _standardise(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = a.mean(0), a.std(0)
    std[std < 1e-8] = 1.0
    return (a - mean) / std, (b - mean) / std


def fit_predict(
    w_train: np.ndarray,
    s_train: np.ndarray | None,
    y: np.ndarray,
    w_test: np.ndarray,
    s_test: np.ndarray | None,
    scales: tuple[float, ...],
) -> tuple[np.ndarray, float]:
    """Predictions for the test rows and the chosen side scale (LOO over scales × penalties).

    ``w_*`` Whisper features ``[N, Dw]``, ``s_*`` side features ``[N, Ds]`` (or None).
    """
    from sklearn.linear_model import RidgeClassifierCV

    wa, wb = _standardise(w_train, w_test) if w_train is not None else (None, None)
    sa, sb = _standardise(s_train, s_test) if s_train is not None else (None, None)
    best = None
    for s in scales:
        blocks_a = [x for x in (wa, None if sa is None else s * sa) if x is not None]
        blocks_b = [x for x in (wb, None if sb is None else s * sb) if x is not None]
        a, b = np.hstack(blocks_a), np.hstack(blocks_b)
        clf = RidgeClassifierCV(alphas=list(DEFAULT_ALPHAS)).fit(a, y)
        if best is None or clf.best_score_ > best[0]:  # best_score_: minus the LOO error
            best = (clf.best_score_, s, clf.predict(b))
    assert best is not None
    return best[2], best[1]


def cv_accuracy(
    w: np.ndarray | None,
    side: np.ndarray | None,
    y: np.ndarray,
    scales: tuple[float, ...],
    folds: int = 5,
    most: int = 1000,
) -> float:
    """Mean 5-fold accuracy (%) on training series (a seeded subset of at most ``most``)."""
    from sklearn.model_selection import StratifiedKFold

    n = len(y)
    keep = np.random.default_rng(0).permutation(n)[:most] if n > most else np.arange(n)
    y = y[keep]
    k = int(max(2, min(folds, np.unique(y, return_counts=True)[1].min())))
    accs = []
    for a, b in StratifiedKFold(k, shuffle=True, random_state=0).split(keep, y):
        pred, _ = fit_predict(
            None if w is None else w[keep][a],
            None if side is None else side[keep][a],
            y[a],
            None if w is None else w[keep][b],
            None if side is None else side[keep][b],
            scales,
        )
        accs.append(100 * float((pred == y[b]).mean()))
    return float(np.mean(accs))


def variant_inputs(name: str) -> tuple[bool, bool, tuple[float, ...]]:
    """(uses Whisper, uses the side block, the scale grid) of a variant."""
    return {
        "whisper": (True, False, (1.0,)),
        "side": (False, True, (1.0,)),
        "both s=1": (True, True, (1.0,)),
        "both s=LOO": (True, True, SCALES),
    }[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(V2S_SETS))
    parser.add_argument("--side", default="minirocket")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/side_scale"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    sets = args.sets.split(",")
    source = build_whisper("whisper-tiny.en", quiet=True)
    all_layers, _ = source.feature_module(layers="all", pool="mean+std")
    test: dict[str, dict[str, float]] = {v: {} for v in VARIANTS}
    cv: dict[str, dict[str, float]] = {v: {} for v in VARIANTS}
    chosen: dict[str, list[float]] = {}
    started = time.time()
    for set_name in sets:
        _, _, (x_train, y_train, x_test, y_test) = load_arrays(set_name)
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
        y_train, y_test = np.asarray(y_train), np.asarray(y_test)
        program = SonifyProgram((1, x_train.shape[1]), 16000, SonifyConfig(raw=4))
        pooled, _ = all_layers.with_views(program.views)
        w_train = whisper_features(pooled, program, x_train).reshape(len(x_train), -1)
        w_test = whisper_features(pooled, program, x_test).reshape(len(x_test), -1)
        t_train, t_test = (
            torch.as_tensor(x, dtype=torch.float32)[:, None] for x in (x_train, x_test)
        )
        per_seed: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
        for seed in SEEDS:
            side = build_side(args.side, (1, x_train.shape[1]))
            side.fit(t_train, seed)
            s_train = side_features(side, t_train).numpy()
            s_test = side_features(side, t_test).numpy()
            for v in VARIANTS:
                use_w, use_s, scales = variant_inputs(v)
                if v == "whisper" and per_seed[v]:  # no seed in it: computed once
                    per_seed[v].append(per_seed[v][0])
                    continue
                wa, wb = (w_train, w_test) if use_w else (None, None)
                sa, sb = (s_train, s_test) if use_s else (None, None)
                pred, s = fit_predict(wa, sa, y_train, wb, sb, scales)
                if v == "both s=LOO":
                    chosen.setdefault(set_name, []).append(s)
                per_seed[v].append(
                    (100 * float((pred == y_test).mean()), cv_accuracy(wa, sa, y_train, scales))
                )
        for v in VARIANTS:
            test[v][set_name] = float(np.mean([t for t, _ in per_seed[v]]))
            cv[v][set_name] = float(np.mean([c for _, c in per_seed[v]]))
        print(
            set_name,
            {v: (round(test[v][set_name], 2), round(cv[v][set_name], 2)) for v in VARIANTS},
            "s:",
            chosen[set_name],
            f"{time.time() - started:.0f} s",
            flush=True,
        )
    write(args, sets, test, cv, chosen, started)


def write(
    args: argparse.Namespace,
    sets: list[str],
    test: dict[str, dict[str, float]],
    cv: dict[str, dict[str, float]],
    chosen: dict[str, list[float]],
    started: float,
) -> None:
    """``results.json`` and ``results.md`` under ``args.out``."""
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {**run_meta(started), "seeds": list(SEEDS), "scales": list(SCALES)}
    command = meta["command"]
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "test": test, "train_cv": cv, "chosen_scale": chosen}, indent=1)
    )
    lines = [
        f"# Side-block weight in the ridge head ({args.side} beside Whisper), frozen features",
        "",
        f"Command: `{command}`  ",
        f"Machine: {meta['machine']}; {meta['date']}; {meta['seconds']} s. Seeds "
        f"{list(SEEDS)} (the side transform's); scale grid {list(SCALES)}.  ",
        "Each cell: test accuracy (%) of a ridge on all training series, then in brackets the "
        "5-fold cross-validated accuracy on the training series, which is what may decide. "
        "Mean over seeds.",
        "",
        "| set | " + " | ".join(VARIANTS) + " | s chosen (per seed) |",
        "|---|" + "---|" * (len(VARIANTS) + 1),
    ]
    for set_name in sets:
        cells = [f"{test[v][set_name]:.2f} ({cv[v][set_name]:.2f})" for v in VARIANTS]
        scales = ", ".join(f"{s:g}" for s in chosen[set_name])
        lines.append(f"| {set_name} | " + " | ".join(cells) + f" | {scales} |")
    means = [
        f"**{np.mean(list(test[v].values())):.2f}** ({np.mean(list(cv[v].values())):.2f})"
        for v in VARIANTS
    ]
    lines.append("| **mean** | " + " | ".join(means) + " | |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
