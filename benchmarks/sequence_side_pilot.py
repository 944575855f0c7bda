"""Diagnostic: would a frozen language model's states *beside* hand-made features help at few shots?

On the UCR sets, Whisper's pooled features beside MiniRocket's in one ridge head beat either
alone (``benchmarks/results/frozen_features_combined``). This asks the same of the sequence
tasks before anything is built: at 8 and 32 shots per class, a ridge classifier (features
standardised on the shots, penalty by leave-one-out, :func:`reprogram.ridge.fit_ridge_loo`) on

- ``lm``: MiniLM's pooled states of the sequence spelled as text (the ``text`` program, the
  ``text+linear:epochs=0`` row's features);
- ``side``: the task's hand-made features (amino-acid + dipeptide composition for peptides,
  RDKit 2-D descriptors for molecules: the features of the ``composition-*`` and
  ``descriptors-forest`` peers);
- ``both``: the two blocks side by side;

against the strongest peer at these shots, a random forest (500 trees) on the same hand-made
features.

No test row is read. Each seed draws the shots from the training split and scores ROC-AUC on
up to 600 *other* training rows (a development pool): the library's own validation split at
these shots holds 4 or 12 rows, too few to tell methods apart.

    python benchmarks/sequence_side_pilot.py --out benchmarks/results/sequence_side_pilot

Writes ``results.json`` and ``results.md`` under ``--out``.
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
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from reprogram.baselines.sequence import CompositionFeatures, MoleculeFeatures
from reprogram.data import load_target
from reprogram.model import ReprogrammedModel
from reprogram.ridge import fit_ridge_loo

TASKS = {"amp": "composition", "amp-tm": "composition", "acp": "composition", "b3db": "descriptors"}
SEEDS = (0, 1, 2)
SHOTS = (8, 32)
POOL = 600
VARIANTS = ("lm", "side", "both", "side forest")


def draw(y: np.ndarray, shots: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``shots`` training rows per class and up to ``POOL`` other rows (indices into ``y``)."""
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in np.unique(y)]
    shot_rows = np.concatenate(picked)
    rest = np.setdiff1d(np.arange(len(y)), shot_rows)
    return shot_rows, rng.choice(rest, min(POOL, len(rest)), replace=False)


def ridge_auc(
    f_shots: np.ndarray, y_shots: np.ndarray, f_pool: np.ndarray, y_pool: np.ndarray
) -> float:
    """ROC-AUC on the pool of a ridge fitted on the shots (the ridge head's own fit)."""
    fit = fit_ridge_loo(torch.from_numpy(f_shots), torch.from_numpy(y_shots), 2)
    scores = torch.from_numpy(f_pool).double() @ fit.weight.double().T + fit.bias.double()
    return float(roc_auc_score(y_pool, (scores[:, 1] - scores[:, 0]).numpy()))


def lm_states(model: ReprogrammedModel, x: torch.Tensor) -> np.ndarray:
    """The frozen source's pooled states ``[N, D]`` of token ids ``x`` ``[N, L]``."""
    with torch.no_grad():
        parts = [model.source(model.program(x[i : i + 64])) for i in range(0, len(x), 64)]
    return torch.cat(parts).double().numpy()


def score_task(task: str) -> list[dict[str, object]]:
    """Every shot count and seed of ``task``: one row of pool ROC-AUCs each."""
    data = load_target(task)
    assert data.vocabulary is not None
    vocabulary = list(data.vocabulary)
    model = ReprogrammedModel.build(
        "minilm-l6", data.input_shape, data.class_names, program="text",
        mapping="linear", vocabulary=vocabulary,
    ).eval()
    kind = TASKS[task]
    side = (
        CompositionFeatures(vocabulary) if kind == "composition"
        else MoleculeFeatures(vocabulary, kind)
    )
    y = data.train.y.numpy()
    rows: list[dict[str, object]] = []
    for shots in SHOTS:
        for seed in SEEDS:
            a, b = draw(y, shots, seed)
            xa, xb = data.train.x[a], data.train.x[b]
            feats = {
                "lm": (lm_states(model, xa), lm_states(model, xb)),
                "side": (side(xa).double().numpy(), side(xb).double().numpy()),
            }
            feats["both"] = (
                np.hstack([feats["lm"][0], feats["side"][0]]),
                np.hstack([feats["lm"][1], feats["side"][1]]),
            )
            auc = {k: ridge_auc(fa, y[a], fb, y[b]) for k, (fa, fb) in feats.items()}
            forest = RandomForestClassifier(500, random_state=seed, n_jobs=1)
            forest.fit(feats["side"][0], y[a])
            forest_scores = forest.predict_proba(feats["side"][1])[:, 1]
            auc["side forest"] = float(roc_auc_score(y[b], forest_scores))
            row: dict[str, object] = {"task": task, "features": kind, "shots": shots, "seed": seed}
            row.update({"pool": len(b), **{k: round(v, 4) for k, v in auc.items()}})
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict[str, object]], meta: dict[str, object]) -> str:
    """The table: mean ± std over seeds of each variant, per task and shot count."""
    lines = [
        "# Pilot: a language model's states beside hand-made features (no test row read)",
        "",
        f"    {meta['command']}",
        "",
        f"Machine: {meta['machine']}; {meta['date']}; {meta['seconds']} s. ROC-AUC on up to "
        f"{POOL} training rows outside the shots, mean ± std over seeds "
        f"{', '.join(map(str, SEEDS))}. Ridge: standardised features, penalty by "
        "leave-one-out; forest: 500 trees on the hand-made features.",
        "",
        "| task (hand-made features) | shots | " + " | ".join(VARIANTS) + " |",
        "|---|---|" + "---|" * len(VARIANTS),
    ]
    for task in dict.fromkeys(str(r["task"]) for r in rows):
        for shots in SHOTS:
            cell = [r for r in rows if r["task"] == task and r["shots"] == shots]
            if not cell:
                continue
            values = {k: [float(str(r[k])) for r in cell] for k in VARIANTS}
            best = max(float(np.mean(v)) for v in values.values())
            parts = []
            for k in VARIANTS:
                text = f"{np.mean(values[k]):.3f} ± {np.std(values[k]):.3f}"
                parts.append(f"**{text}**" if float(np.mean(values[k])) == best else text)
            features = cell[0]["features"]
            lines.append(f"| {task} ({features}) | {shots} | " + " | ".join(parts) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sequence_side_pilot"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    rows = [row for task in args.tasks.split(",") for row in score_task(task)]
    meta = {
        "command": "python " + " ".join(sys.argv),
        "machine": describe(machine()),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.time() - started),
        "seeds": list(SEEDS),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(rows, meta))


if __name__ == "__main__":
    main()
