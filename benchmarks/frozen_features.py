"""Diagnostic: how good is a frozen Whisper's representation of a UCR series (θ = 0)?

No training of the program: each series is turned into audio by the library's own programs
(``sonify raw=4``: V2S's raw window padded to 4 × the series length, then the series as a
tone's pitch over 1 s), the frozen encoder is mean-pooled per view and per layer
(``features:NAME#layers=all``), and a ridge classifier (penalty by leave-one-out on the
training split, features standardised) is fitted on *all* training series and scored once on
the official test split. ``pool=mean+std`` (each state's standard deviation over time beside
its mean, ``features:NAME#layers=all#pool=mean+std``) is scored too. MiniRocket (and, with
``--peers multirocket-hydra``, MultiRocket + Hydra) gets exactly the same ridge on the same
split (3 seeds of its transform), so the representations are compared on equal terms.
``+ minirocket`` columns put MiniRocket's features beside a Whisper representation in one ridge
(each feature standardised): whether the two views of a series complement each other. Beside
the test score, each Whisper representation gets a 5-fold cross-validated accuracy on the
training series alone (at most 1,000 of them, seeded), which is what a choice between
representations may honestly rest on. This is not the benchmark protocol (which holds 20% of
the training series out to select epochs); it isolates the representation from selection and
optimisation.

    python benchmarks/frozen_features.py --sources whisper-tiny.en,whisper-base \\
        --out benchmarks/results/frozen_features

Writes ``results.json`` (per set, per representation) and ``results.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from reprogram_bench.machine import describe, machine
from reprogram_bench.ucr import V2S_SETS

from reprogram.data.ucr import load_arrays
from reprogram.programs.sonify import SonifyConfig, SonifyProgram
from reprogram.sources.whisper import WhisperPooled, build_whisper

SEEDS = (0, 1, 2)  # the kernel transforms' seeds


def ridge_accuracy(
    f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Test accuracy (%) of a standardised ridge classifier fitted on ``[N, D]`` features."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(f_train)
    clf = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(scaler.transform(f_train), y_train)
    return float(100 * (clf.predict(scaler.transform(f_test)) == y_test).mean())


@torch.no_grad()
def whisper_features(pooled: WhisperPooled, program: SonifyProgram, x: np.ndarray) -> np.ndarray:
    """Pooled states ``[N, V, K, S·d]`` of series ``[N, L]`` heard through ``program``
    (θ unused; ``S`` statistics, mean first)."""
    out = []
    for start in range(0, len(x), 64):
        batch = torch.as_tensor(x[start : start + 64], dtype=torch.float32)[:, None]
        out.append(pooled(program.embed(batch)))
    feats = torch.cat(out).numpy()
    views, layers = len(program.views or (1,)), len(pooled.layers or (1,))
    return feats.reshape(len(x), views, layers, -1)


def cv_accuracy(f: np.ndarray, y: np.ndarray, folds: int = 5, most: int = 1000) -> float:
    """Mean accuracy (%) of the same ridge over stratified folds of training features ``[N, D]``.

    At most ``most`` series (a seeded subset) and at most as many folds as the smallest class
    has series (at least 2).
    """
    from sklearn.model_selection import StratifiedKFold

    if len(f) > most:
        keep = np.random.default_rng(0).permutation(len(f))[:most]
        f, y = f[keep], y[keep]
    k = int(max(2, min(folds, np.unique(y, return_counts=True)[1].min())))
    split = StratifiedKFold(k, shuffle=True, random_state=0).split(f, y)
    return float(np.mean([ridge_accuracy(f[a], y[a], f[b], y[b]) for a, b in split]))


def rocket_features(
    kind: str, x_train: np.ndarray, x_test: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded kernel transform fitted on training series ``[N, L]``: features of both splits.

    ``kind`` is ``minirocket`` (aeon's transform, NaN → 0, as in the first version of this
    diagnostic) or ``multirocket-hydra`` (the library's baseline featurizer, which resamples
    the valid part of unequal-length series).
    """
    if kind == "minirocket":
        from aeon.transformations.collection.convolution_based import MiniRocket

        a = np.nan_to_num(x_train.astype(np.float64))[:, None]
        b = np.nan_to_num(x_test.astype(np.float64))[:, None]
        transform = MiniRocket(random_state=seed).fit(a)
        return transform.transform(a), transform.transform(b)
    from reprogram.transforms.hydra import (
        MultiRocketHydraFeatureOptions as MultiRocketHydraOptions,
    )
    from reprogram.transforms.hydra import MultiRocketHydraFeatures

    featurizer = MultiRocketHydraFeatures(x_train.shape[1], MultiRocketHydraOptions())
    train, test = (torch.as_tensor(x, dtype=torch.float32)[:, None] for x in (x_train, x_test))
    featurizer.fit(train, seed)

    def features(x: torch.Tensor) -> np.ndarray:
        return torch.cat([featurizer(x[i : i + 512]) for i in range(0, len(x), 512)]).numpy()

    return features(train), features(test)


def run_meta(started: float) -> dict[str, object]:
    """The command, machine, date and seconds since ``started`` of a diagnostic run."""
    return {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{describe(machine())}, {torch.get_num_threads()} threads",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.time() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", default="whisper-tiny.en")
    parser.add_argument("--sets", default=",".join(V2S_SETS))
    parser.add_argument(
        "--peers", default="", help="more kernel transforms to score: multirocket-hydra"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/frozen_features"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    sets = args.sets.split(",")
    results: dict[str, dict[str, float]] = {}
    cv: dict[str, dict[str, float]] = {}  # 5-fold accuracy on the training series
    started = time.time()
    # Each source's all-layer feature view, built once (the `features:NAME#layers=all` path).
    feature_views: dict[str, WhisperPooled] = {}
    for name in args.sources.split(","):
        source = build_whisper(name, quiet=True)
        pooled, _ = source.feature_module(layers="all", pool="mean+std")
        feature_views[name] = pooled
    for set_name in sets:
        _, _, (x_train, y_train, x_test, y_test) = load_arrays(set_name)
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
        rockets: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for kind in ["minirocket", *filter(None, args.peers.split(","))]:
            rockets[kind] = [rocket_features(kind, x_train, x_test, s) for s in SEEDS]
            results.setdefault(kind, {})[set_name] = float(
                np.mean([ridge_accuracy(a, y_train, b, y_test) for a, b in rockets[kind]])
            )
        program = SonifyProgram((1, x_train.shape[1]), 16000, SonifyConfig(raw=4))
        for name, all_layers in feature_views.items():
            pooled, _ = all_layers.with_views(program.views)
            count, stats = len(pooled.layers), len(pooled.pool)
            d = pooled.width // (count * stats)
            f_train = whisper_features(pooled, program, x_train)  # [N, V, K, (mean, std)·d]
            f_test = whisper_features(pooled, program, x_test)
            combos = [
                (views, vsel, layers, lsel, "mean", d)
                for views, vsel in (("raw", [0]), ("tone", [1]), ("raw+tone", [0, 1]))
                for layers, lsel in (("last", [count - 1]), ("all", list(range(count))))
            ] + [("raw+tone", [0, 1], "all", list(range(count)), "mean+std", stats * d)]
            for views, vsel, layers, lsel, pool, width in combos:
                a = f_train[:, vsel][:, :, lsel, :width].reshape(len(x_train), -1)
                b = f_test[:, vsel][:, :, lsel, :width].reshape(len(x_test), -1)
                key = f"{name} {views} layers={layers}"
                key += "" if pool == "mean" else f" pool={pool}"
                results.setdefault(key, {})[set_name] = ridge_accuracy(a, y_train, b, y_test)
                cv.setdefault(key, {})[set_name] = cv_accuracy(a, y_train)
                if views == "raw+tone" and pool == "mean+std":
                    both = [
                        ridge_accuracy(np.hstack([a, ra]), y_train, np.hstack([b, rb]), y_test)
                        for ra, rb in rockets["minirocket"]
                    ]
                    results.setdefault(key + " + minirocket", {})[set_name] = float(np.mean(both))
        print(set_name, {k: round(v[set_name], 1) for k, v in results.items()}, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = run_meta(started)
    command = meta["command"]
    record = {"meta": meta, "results": results, "train_cv": cv}
    (args.out / "results.json").write_text(json.dumps(record, indent=1))
    keys = list(results)
    lines = [
        "# Frozen representations of the 20 UCR sets: ridge on all training series",
        "",
        f"Command: `{command}`  ",
        f"Machine: {meta['machine']}; {meta['date']}; {meta['seconds']} s.  ",
        "Test accuracy (%), official split; ridge penalty by leave-one-out on the training "
        "split; no seeds except the kernel transforms' (mean of seeds 0, 1, 2). θ = 0 (no "
        "program training). `+ minirocket`: MiniRocket's features beside Whisper's in one ridge.",
        "",
        "| set | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for set_name in sets:
        lines.append(
            f"| {set_name} | " + " | ".join(f"{results[k][set_name]:.2f}" for k in keys) + " |"
        )
    lines.append(
        "| **mean** | "
        + " | ".join(f"**{np.mean(list(results[k].values())):.2f}**" for k in keys)
        + " |"
    )
    lines += [
        "",
        "Choosing between the Whisper representations on the training series alone: mean 5-fold "
        "cross-validated accuracy (%) of the same ridge (at most 1,000 series a set, seeded).",
        "",
        "| representation | train 5-fold CV | test |",
        "|---|---|---|",
    ]
    for k in cv:
        train, test = np.mean(list(cv[k].values())), np.mean(list(results[k].values()))
        lines.append(f"| {k} | {train:.2f} | {test:.2f} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-len(cv) - 7 :]))


if __name__ == "__main__":
    main()
