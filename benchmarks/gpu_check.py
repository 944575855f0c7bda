"""Train on a GPU: every program, mapping, selection rule and gradient baseline, then timings.

Part 1 (correctness) runs each case twice, ``--accelerator cuda`` and ``cpu``, on tiny data
(``tiny-random-cnn`` on ``digits``; a 2-layer random Whisper and the kernel transforms on a
UCR folder), and for the GPU artifact checks that ``eval`` on the CPU reproduces its
recorded test accuracy. A case passes when both runs finish, the artifact reproduces, and
the GPU's test accuracy is within ``--tolerance`` of the CPU's (different kernels round
differently, so a few test examples may move). Part 2 (speed) times epochs of the two costly
recipes on both devices: EfficientNet-Lite0 with a full-image program, and a model with
Whisper tiny.en's shape (random weights: the packaged ones are too large to carry to a
lent GPU machine) with Voice2Series' waveform program and 51,864-way decoder logits.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check --ucr PATH/GunPoint

``--ucr`` is a folder in the archive's layout (``ucr:PATH``); without it the series cases are
skipped. Without a GPU the script says so and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from reprogram_bench.machine import describe, machine

from reprogram import FitConfig, fit
from reprogram.baselines import BaselineConfig, run_baseline
from reprogram.callbacks import Callback

SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
TINY_EN = dict(d_model=384, layers=4, heads=6, ffn=1536, vocab=51864)


class _Stop(Exception):
    """Raised by :class:`_StopAt` to stand for a killed process."""


class _StopAt(Callback):
    name = "stop_at"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        if epoch == self.epoch:
            raise _Stop


def save_whisper(folder: Path, *, d_model: int, layers: int, heads: int, ffn: int, vocab: int):
    """A random English-only-style Whisper with ``vocab`` tokens, saved for ``hf:folder``."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizer

    words = [f"w{i}" for i in range(vocab - len(SPECIAL))] + SPECIAL
    ids = {t: i for i, t in enumerate(words)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(ids))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    eot = "<|endoftext|>"
    WhisperTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        unk_token=eot,
        bos_token=eot,
        eos_token=eot,
        pad_token=eot,
    ).save_pretrained(str(folder))
    config = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=1500,
        max_target_positions=448,
        eos_token_id=ids[eot],
        pad_token_id=ids[eot],
        bos_token_id=ids[eot],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(str(folder))
    return folder


def eval_on_cpu(directory: Path) -> float:
    """Test accuracy of an artifact as ``reprogram eval`` computes it (this process's CPU)."""
    from reprogram.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["eval", str(directory), "--json"])
    if code != 0:
        raise RuntimeError(f"reprogram eval {directory} exited {code}")
    return float(json.loads(buffer.getvalue().strip().splitlines()[-1])["test_accuracy"])


def cases(ucr: str | None, whisper: Path | None) -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, kind, settings)``: kind ``fit`` or ``baseline``, settings the config fields."""
    img = dict(source="tiny-random-cnn", target="digits", shots=10, epochs=2)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for program in ("border", "resize-pad", "full", "coarse", "resize"):
        out.append((f"{program}+linear", "fit", {**img, "program": program}))
    for mapping, options in (
        ("random", {}),
        ("flm", {}),
        ("ilm", {}),
        ("linear", {"init": "probe"}),
        ("linear", {"head": "ridge"}),
    ):
        text = ",".join(f"{k}={v}" for k, v in options.items())
        out.append(
            (
                f"resize-pad+{mapping}" + (f":{text}" if text else ""),
                "fit",
                {**img, "program": "resize-pad", "mapping": mapping, "mapping_options": options},
            )
        )
    for select in ("refit", "kfold:3", "refit:1se"):
        out.append((f"select {select}", "fit", {**img, "program": "resize-pad", "select": select}))
    out.append(("resume after a stop", "resume", {**img, "program": "full", "epochs": 3}))
    for method in ("finetune", "scratch", "linear-probe"):
        out.append((f"baseline {method}", "baseline", {**img, "method": method}))
    if ucr:
        series = dict(target=f"ucr:{ucr}", epochs=2)
        out.append(
            (
                "series-image+linear (image source)",
                "fit",
                {**series, "source": "tiny-random-cnn", "program": "series-image"},
            )
        )
        for method in ("minirocket", "hydra", "multirocket-hydra", "scratch"):
            out.append((f"baseline {method} (series)", "baseline", {**series, "method": method}))
        if whisper is not None:
            hf = f"hf:{whisper}"
            out += [
                (
                    "waveform+random (V2S, bound on)",
                    "fit",
                    {**series, "source": hf, "program": "waveform", "mapping": "random"},
                ),
                ("waveform+linear", "fit", {**series, "source": hf, "program": "waveform"}),
                (
                    "sonify+linear:head=ridge,side=minirocket (best row's shape)",
                    "fit",
                    {
                        **series,
                        "source": f"features:{hf}#layers=all#pool=mean+std",
                        "program": "sonify",
                        "program_options": {"raw": 4},
                        "mapping_options": {"head": "ridge", "side": "minirocket"},
                        "select": "refit:1se",
                    },
                ),
            ]
    return out


def run_case(kind: str, settings: dict[str, Any], out: Path, accelerator: str) -> dict[str, Any]:
    """Train one case on ``accelerator`` into ``out``; the metrics written."""
    common = dict(out=str(out), accelerator=accelerator, progress=False, plots=False, seed=0)
    if kind == "baseline":
        return run_baseline(BaselineConfig(**settings, **common)).metrics
    if kind == "resume":
        with contextlib.suppress(_Stop):
            fit(FitConfig(**settings, **common), callbacks=[_StopAt(2)])
        return fit(FitConfig(**settings, **common, resume=True)).metrics
    return fit(FitConfig(**settings, **common)).metrics


def check(
    ucr: str | None,
    whisper: Path | None,
    work: Path,
    tolerance: float,
    accelerators: tuple[str, str] = ("cuda", "cpu"),
) -> list[dict]:
    """Part 1: each case on the GPU (``gpu``) and the CPU (``cpu``); one row per case.

    ``accelerators`` names the two devices (``cpu,cpu`` tries the script without a GPU).
    """
    import reprogram.diagnostics.v2s_bound as bound

    # the V2S bound needs espeak-ng's speech; a lent GPU machine has none, so it hears noise
    bound.espeak_available = lambda: True  # type: ignore[assignment]
    gen = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(4, 16000, generator=gen)
    bound.reference_audio = lambda *a, **k: (noise, torch.full((4,), 16000))  # type: ignore
    rows = []
    for name, kind, settings in cases(ucr, whisper):
        row: dict[str, Any] = {"case": name}
        try:
            for label, acc in zip(("gpu", "cpu"), accelerators, strict=True):
                start = time.perf_counter()
                metrics = run_case(kind, settings, work / f"{len(rows)}-{label}", acc)
                row[label] = {
                    "test_accuracy": metrics["test_accuracy"],
                    "seconds": round(time.perf_counter() - start, 2),
                    "accelerator": metrics.get("accelerator"),
                }
            recorded = row["gpu"]["test_accuracy"]
            row["cpu_eval_of_gpu_artifact"] = eval_on_cpu(work / f"{len(rows)}-gpu")
            row["reproduced"] = abs(row["cpu_eval_of_gpu_artifact"] - recorded) <= tolerance
            row["gpu_minus_cpu"] = recorded - row["cpu"]["test_accuracy"]
            row["ok"] = row["reproduced"] and abs(row["gpu_minus_cpu"]) <= tolerance
        except Exception as exc:  # noqa: BLE001 (a report of every failure beats stopping at one)
            row["ok"] = False
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["traceback"] = traceback.format_exc()[-3000:]
        print(("ok   " if row["ok"] else "FAIL ") + name, flush=True)
        if not row["ok"]:
            print(row.get("error", json.dumps(row)), row.get("traceback", ""), flush=True)
        rows.append(row)
    return rows


def time_epochs(make: Callable[[str], FitConfig], accelerators: tuple[str, str]) -> dict:
    """Seconds per training epoch (mean of epochs 2..N; epoch 1 warms up) on each device."""
    result = {}
    for label, acc in zip(("gpu", "cpu"), accelerators, strict=True):
        metrics = fit(make(acc)).metrics
        seconds = [r["seconds"] for r in metrics["history"] if r["epoch"] >= 2]
        result[label] = {
            "epoch_seconds": round(sum(seconds) / len(seconds), 3),
            "train_examples": metrics["splits"]["train"],
            "test_accuracy": metrics["test_accuracy"],
        }
    result["speed-up"] = round(result["cpu"]["epoch_seconds"] / result["gpu"]["epoch_seconds"], 1)
    return result


def speed(
    ucr: str | None,
    whisper_tiny: Path | None,
    work: Path,
    accelerators: tuple[str, str] = ("cuda", "cpu"),
) -> dict[str, Any]:
    """Part 2: epoch times of the costly recipes, GPU against this machine's CPU."""
    out: dict[str, Any] = {}
    base = dict(progress=False, plots=False, seed=0, overwrite=True)
    out["efficientnet-lite0 full+linear, 128 px, digits 100 shots, batch 32"] = time_epochs(
        lambda acc: FitConfig(
            source="efficientnet-lite0",
            target="digits",
            program="full",
            shots=100,
            epochs=3,
            program_options={"canvas_size": 128},
            out=str(work / f"eff-{acc}"),
            accelerator=acc,
            **base,
        ),
        accelerators,
    )
    if ucr and whisper_tiny is not None:
        out["whisper tiny.en-shaped V2S (waveform fit=4 + random), batch 32"] = time_epochs(
            lambda acc: FitConfig(
                source=f"hf:{whisper_tiny}",
                target=f"ucr:{ucr}",
                program="waveform",
                mapping="random",
                program_options={"fit": 4},
                epochs=3,
                diagnostics=False,
                out=str(work / f"v2s-{acc}"),
                accelerator=acc,
                **base,
            ),
            accelerators,
        )
    return out


def report(rows: list[dict], timings: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Training on a GPU (`--accelerator cuda`)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine_text']}; {meta['date']}.",
        "",
        f"## Correctness: {sum(r['ok'] for r in rows)} of {len(rows)} cases pass",
        "",
        "Test accuracy on tiny data, trained on the GPU and on the CPU (seed 0); the GPU "
        "artifact re-scored by `reprogram eval` on the CPU.",
        "",
        "| case | GPU test | CPU test | GPU artifact, eval on CPU | ok |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['error'][:80]} | | | no |")
            continue
        lines.append(
            f"| {r['case']} | {r['gpu']['test_accuracy']:.4f} | "
            f"{r['cpu']['test_accuracy']:.4f} | {r['cpu_eval_of_gpu_artifact']:.4f} | "
            f"{'yes' if r['ok'] else 'no'} |"
        )
    lines += ["", "## Speed: seconds per training epoch", ""]
    lines += [
        "| recipe | train examples | GPU s/epoch | CPU s/epoch | speed-up |",
        "|---|---|---|---|---|",
    ]
    for name, t in timings.items():
        lines.append(
            f"| {name} | {t['gpu']['train_examples']} | {t['gpu']['epoch_seconds']:.3f} | "
            f"{t['cpu']['epoch_seconds']:.3f} | {t['speed-up']}× |"
        )
    lines += [
        "",
        f"The CPU column is this machine's CPU ({meta['machine']['cpu_count']} cores), not "
        "the 2-core machine the README's other timings come from.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="benchmarks/results/gpu_check")
    parser.add_argument("--ucr", default=None, help="a UCR set folder (ucr:PATH layout)")
    parser.add_argument(
        "--speed-ucr", default=None, help="the UCR folder the V2S timing trains on (default --ucr)"
    )
    parser.add_argument("--tolerance", type=float, default=0.05, help="accuracy difference")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--accelerators", default="cuda,cpu", help="the device checked, then the reference"
    )
    args = parser.parse_args(argv)
    pair = tuple(args.accelerators.split(","))
    if len(pair) != 2:
        parser.error("--accelerators takes two names, e.g. cuda,cpu")
    if "cuda" in pair and not torch.cuda.is_available():
        print("no GPU here: PyTorch sees no CUDA device; run this on a machine with one.")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = save_whisper(
            work / "whisper-small", d_model=16, layers=2, heads=2, ffn=32, vocab=64
        )
        rows = check(args.ucr, small, work / "check", args.tolerance, pair)  # type: ignore[arg-type]
        timings = {}
        if not args.skip_speed:
            tiny = save_whisper(work / "whisper-tiny-shape", **TINY_EN)
            timings = speed(args.speed_ucr or args.ucr, tiny, work / "speed", pair)  # type: ignore[arg-type]
    mach = machine()
    meta = {
        "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": mach,
        "machine_text": describe(mach),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "cases": rows, "speed": timings}, indent=2)
    )
    (out / "results.md").write_text(report(rows, timings, meta))
    print(report(rows, timings, meta))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
