"""Fault injection for every reader of untrusted bytes (issue 34): artifacts and input files.

Seeded random truncations and byte flips (``MUTATIONS`` per file) of each file a tiny
artifact holds (config.json, program.safetensors, metrics.json: read by ``reprogram eval DIR
--split val``) and of ``.npy``, ``.npz``, PNG and UCR ``.tsv`` inputs (read by ``load_target``
with ``npz:``/``folder:``/``ucr:`` paths, by ``reprogram predict`` and by the series reader
predict uses). Every outcome must be success or a :class:`ReprogramError` (exit 0 or 2, never
1), and the peak resident memory of the process running them may grow by at most
``RSS_BOUND`` over its state after imports and the first good runs.

The mutations run in a subprocess so that its peak RSS (``ru_maxrss``) measures them alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config
from PIL import Image

from reprogram import fit

MUTATIONS = 30  # per file: seeded, so a failure replays exactly
RSS_BOUND = 1 << 30  # 1 GiB of peak resident memory over the worker's warmed-up state

WORKER = textwrap.dedent(
    r'''
    import contextlib, io, json, random, resource, sys, time, traceback
    from pathlib import Path

    from reprogram.cli import main
    from reprogram.data import load_target
    from reprogram.errors import ReprogramError
    from reprogram.predict import load_inputs

    spec = json.loads(sys.argv[1])
    root = Path(spec["root"])
    failures, counts = [], {"ok": 0, "named": 0}


    def cli(*argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except BaseException as exc:  # noqa: BLE001 (what escapes main is the finding)
                return f"raised {type(exc).__name__}: {exc}"
        if code == 0:
            counts["ok"] += 1
        elif code == 2:
            counts["named"] += 1
        else:
            return f"exit {code}: {err.getvalue().strip()[-300:]}"


    def call(fn, *args):
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                fn(*args)
            counts["ok"] += 1
        except ReprogramError:
            counts["named"] += 1
        except BaseException as exc:  # noqa: BLE001
            tb = traceback.format_exc(limit=-2).strip().splitlines()
            return f"{type(exc).__name__}: {exc} ({' / '.join(tb[-4:-1])[-300:]})"


    def mutate(data, rng):
        data = bytearray(data)
        kind = rng.choice(("truncate", "flip", "flip", "byte"))
        if kind == "truncate" or not data:
            cut = rng.randrange(0, max(len(data), 1))
            return bytes(data[:cut]), f"truncate to {cut} of {len(data)}"
        where = []
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] = data[i] ^ (1 << rng.randrange(8)) if kind == "flip" else rng.randrange(256)
            where.append(i)
        return bytes(data), f"{kind} at {sorted(where)}"


    def fuzz(path, runs, seed):
        """Mutate ``path`` MUTATIONS times; after each, every ``run()`` must end cleanly."""
        original = path.read_bytes()
        rng = random.Random(seed)
        for n in range(spec["mutations"]):
            data, how = mutate(original, rng)
            path.write_bytes(data)
            for name, run in runs:
                problem = run()
                if problem:
                    failures.append(f"{path.name} #{n} ({how}) via {name}: {problem}")
        path.write_bytes(original)


    art = Path(spec["artifact"])
    eval_art = lambda: cli("eval", art, "--split", "val")
    png, npy, npz, tsv = (Path(spec[k]) for k in ("png", "npy", "npz", "tsv"))
    runs = {
        "config.json": [("eval", eval_art)],
        "program.safetensors": [("eval", eval_art)],
        "metrics.json": [("eval", eval_art)],
        "npy": [("predict", lambda: cli("predict", art, npy))],
        "npz": [
            ("load_target", lambda: call(load_target, f"npz:{npz}")),
            ("predict", lambda: cli("predict", art, npz)),
        ],
        "png": [
            ("load_target", lambda: call(load_target, f"folder:{spec['folder']}")),
            ("predict", lambda: cli("predict", art, png)),
        ],
        "tsv": [
            ("load_target", lambda: call(load_target, f"ucr:{tsv}")),
            ("predict's reader", lambda: call(load_inputs, [str(tsv)], (1, 24), True)),
        ],
    }
    # warm up: every reader once on the good files (imports, caches, first allocations)
    for name, group in runs.items():
        for what, run in group:
            problem = run()
            assert not problem, f"good {name} via {what}: {problem}"
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    began = time.perf_counter()
    files = {"npy": npy, "npz": npz, "png": png, "tsv": tsv}
    for seed, (name, group) in enumerate(runs.items()):
        fuzz(files.get(name, art / name), group, seed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds = round(time.perf_counter() - began, 1)
    report = {"failures": failures, "counts": counts, "rss_growth": peak - start}
    print(json.dumps({**report, "seconds": seconds}))
    '''
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny artifact (tiny-random-cnn on digits) and one good file of each input kind."""
    root = tmp_path_factory.mktemp("fuzz")
    config = tiny_config(root, epochs=1)
    fit(config)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 8, 8)).astype(np.uint8)
    y = np.arange(12) % 3
    np.save(root / "x.npy", x[:4])
    np.savez(root / "task.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    for label in ("a", "b"):
        for i in range(3):
            (root / "folder" / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i + 3 * (label == "b")]).save(root / "folder" / label / f"{i}.png")
    waves = [np.sin(np.linspace(0, 6, 24) + i) for i in range(6)]
    lines = [f"{i % 2 + 1}\t" + "\t".join(f"{v:.4f}" for v in w) for i, w in enumerate(waves)]
    (root / "ucr").mkdir()
    for split in ("TRAIN", "TEST"):
        (root / "ucr" / f"Waves_{split}.tsv").write_text("\n".join(lines) + "\n")
    return {
        "root": str(root),
        "artifact": str(config.out),
        "npy": str(root / "x.npy"),
        "npz": str(root / "task.npz"),
        "folder": str(root / "folder"),
        "png": str(root / "folder" / "a" / "0.png"),
        "tsv": str(root / "ucr" / "Waves_TRAIN.tsv"),
        "mutations": MUTATIONS,
    }


def test_mutated_files_end_in_named_errors_within_memory_bound(inputs: dict[str, str]) -> None:
    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(inputs)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**{k: v for k, v in os.environ.items() if k != "REPROGRAM_DEBUG"}, "PYTHONPATH": src},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not report["failures"], "\n".join(report["failures"])
    assert report["counts"]["named"] > 0  # the mutations did reach the checks
    assert report["rss_growth"] <= RSS_BOUND, report
    print(
        f"fuzz: {report['counts']} in {report['seconds']} s, peak RSS +{report['rss_growth']:,} B"
    )
