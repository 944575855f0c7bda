"""Train on a GPU: every program, mapping, selection rule and gradient baseline, then timings.

Part 1 (correctness) runs each case twice, ``--accelerator cuda`` and ``cpu``, on tiny data
(``tiny-random-cnn`` on ``digits``; a 2-layer random Whisper and the kernel transforms on a
UCR folder; the tiny random language models on generated peptides, a regression column and
an hourly table to forecast, with the forecasting peers and the three Time-LLM ablations),
and for the GPU artifact checks that ``eval`` on the CPU reproduces its recorded test score
(accuracy, or RMSE for regression and forecasts). A case passes when both runs finish, the
artifact reproduces, and the GPU's test score is within ``--tolerance`` of the CPU's
(accuracy: absolute; RMSE: relative to the CPU's), since different kernels round
differently and a few test examples may move. Part 2 (speed) times epochs of the two costly
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
import datetime
import io
import json
import math
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
SMOLLM2_2 = dict(d_model=576, layers=2, heads=9, kv_heads=3, ffn=1536, vocab=49152)


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


def headline(metrics: dict[str, Any]) -> str:
    """The test figure a case is judged by: ``test_accuracy``, else ``test_rmse``."""
    return "test_accuracy" if metrics.get("test_accuracy") is not None else "test_rmse"


def close(gpu: float, cpu: float, key: str, tolerance: float) -> bool:
    """Accuracies within ``tolerance``; errors within ``tolerance`` of the CPU's, relatively."""
    if key == "test_accuracy":
        return abs(gpu - cpu) <= tolerance
    return abs(gpu - cpu) <= tolerance * max(abs(cpu), 1e-12)


def save_llama(
    folder: Path, *, d_model: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int
) -> Path:
    """A random Llama (SmolLM2's architecture) with ``vocab`` tokens, saved for ``hf:folder``
    with a word-level tokenizer of as many made-up words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=d_model,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(str(folder))
    words = {"<unk>": 0, "<pad>": 1, **{f"w{i}": i for i in range(2, vocab)}}
    core = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>"
    ).save_pretrained(str(folder))
    return folder


def write_hourly(path: Path, rows: int, columns: int) -> Path:
    """An hourly table of ``columns`` noisy daily cycles (with 7 columns, a stand-in of
    ETTh1's width)."""
    gen = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(rows, columns, generator=gen)
    lines = ["date," + ",".join(f"c{j}" for j in range(columns))]
    for t in range(rows):
        values = (math.sin(2 * math.pi * (t + 3 * j) / 24) + float(noise[t, j])
                  for j in range(columns))
        lines.append(_hour(t) + "," + ",".join(f"{v:.4f}" for v in values))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def eval_on_cpu(directory: Path, key: str = "test_accuracy") -> float:
    """Test ``key`` of an artifact as ``reprogram eval`` computes it (this process's CPU)."""
    from reprogram.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["eval", str(directory), "--json"])
    if code != 0:
        raise RuntimeError(f"reprogram eval {directory} exited {code}")
    return float(json.loads(buffer.getvalue().strip().splitlines()[-1])[key])


def write_language_data(folder: Path) -> dict[str, str]:
    """Three small files the language cases read: ``{"peptides", "solubility", "hourly"}`` →
    target names (``csv:`` sequences with two classes, the same with a number to predict,
    and ``forecast:`` two hourly columns with a daily cycle, :func:`write_hourly`)."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    rows, values = ["sequence,label"], ["sequence,label"]
    for i in range(120):
        letters = "KRHAL" if i % 2 else "DEWAL"
        n = int(torch.randint(8, 20, (1,), generator=gen))
        seq = "".join(letters[j] for j in torch.randint(0, 5, (n,), generator=gen).tolist())
        rows.append(f"{seq},{'pos' if i % 2 else 'neg'}")
        values.append(f"{seq},{sum(c in 'KRH' for c in seq) / n:.4f}")
    (folder / "peptides.csv").write_text("\n".join(rows) + "\n")
    (folder / "solubility.csv").write_text("\n".join(values) + "\n")
    write_hourly(folder / "hourly.csv", rows=600, columns=2)
    return {
        "peptides": f"csv:{folder / 'peptides.csv'}",
        "solubility": f"csv:{folder / 'solubility.csv'}#task=regression",
        "hourly": f"forecast:{folder / 'hourly.csv'}#lookback=48#horizon=12",
    }


def _hour(t: int) -> str:
    """The ``t``-th hour from 2021-01-01 00:00 as ``YYYY-MM-DD HH:00:00``."""
    moment = datetime.datetime(2021, 1, 1) + datetime.timedelta(hours=t)
    return moment.strftime("%Y-%m-%d %H:00:00")


def language_cases(data: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Sequences, regression and forecasting through the tiny random language models."""
    seq = dict(target=data["peptides"], epochs=2)
    reg = dict(target=data["solubility"], epochs=2)
    fc = dict(target=data["hourly"], epochs=2)
    lm, causal = "tiny-random-lm", "tiny-random-causal-lm"
    patch = {"atoms": 40, "prototypes": 8}
    forecast = dict(fc, program="patch-reprogram", mapping="horizon", program_options=patch)
    return [
        ("soft-prompt+linear (LM, sequences)",
         "fit", {**seq, "source": lm, "program": "soft-prompt"}),
        ("dictionary+linear (causal LM, sequences)",
         "fit", {**seq, "source": causal, "program": "dictionary",
                 "program_options": {"atoms": 30}}),
        ("soft-prompt+verbalizer (causal LM, sequences)",
         "fit", {**seq, "source": causal, "program": "soft-prompt", "mapping": "verbalizer",
                 "mapping_options": {"words": "D,K"}}),
        ("text+linear:init=probe (LM, sequences)",
         "fit", {**seq, "source": lm, "program": "text", "mapping_options": {"init": "probe"}}),
        ("soft-prompt+linear (LM, regression)",
         "fit", {**reg, "source": lm, "program": "soft-prompt"}),
        ("baseline finetune (LM, sequences)", "baseline", {**seq, "source": lm,
                                                          "method": "finetune"}),
        ("baseline scratch (sequences)", "baseline", {**seq, "method": "scratch"}),
        ("patch-reprogram+horizon (causal LM, forecast)",
         "fit", {**forecast, "source": causal}),
        ("patch-reprogram, fresh half each epoch (#sample=2)",
         "fit", {**forecast, "source": causal, "target": data["hourly"] + "#sample=2"}),
        ("patch-reprogram, resume after a stop",
         "resume", {**forecast, "source": causal, "epochs": 3}),
        ("ablation: LM removed (#depth=0)", "fit", {**forecast, "source": causal + "#depth=0"}),
        ("ablation: LM random (#init=random)",
         "fit", {**forecast, "source": causal + "#init=random"}),
        ("ablation: LM -> one attention layer",
         "fit", {**forecast, "source": causal + "#depth=0",
                 "program_options": {**patch, "attention_layers": 1}}),
        ("patch-reprogram+horizon (encoder LM, forecast)", "fit", {**forecast, "source": lm}),
        *((f"baseline {m} (forecast)", "baseline", {**fc, "method": m})
          for m in ("linear", "dlinear", "patchtst", "seasonal-naive")),
    ]


def cases(
    ucr: str | None, whisper: Path | None, language: dict[str, str] | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, kind, settings)``: kind ``fit``, ``resume`` or ``baseline``, settings the config
    fields; ``language`` (from :func:`write_language_data`) adds the language-model cases."""
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
    if language is not None:
        out += language_cases(language)
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
    language: dict[str, str] | None = None,
    only: str | None = None,
) -> list[dict]:
    """Part 1: each case on the GPU (``gpu``) and the CPU (``cpu``); one row per case.

    ``accelerators`` names the two devices (``cpu,cpu`` tries the script without a GPU);
    ``only`` keeps the cases whose name contains it.
    """
    import reprogram.diagnostics.v2s_bound as bound

    # the V2S bound needs espeak-ng's speech; a lent GPU machine has none, so it hears noise
    bound.espeak_available = lambda: True  # type: ignore[assignment]
    gen = torch.Generator().manual_seed(0)
    noise = 0.1 * torch.randn(4, 16000, generator=gen)
    bound.reference_audio = lambda *a, **k: (noise, torch.full((4,), 16000))  # type: ignore
    rows = []
    for name, kind, settings in cases(ucr, whisper, language):
        if only is not None and only not in name:
            continue
        row: dict[str, Any] = {"case": name}
        try:
            for label, acc in zip(("gpu", "cpu"), accelerators, strict=True):
                start = time.perf_counter()
                metrics = run_case(kind, settings, work / f"{len(rows)}-{label}", acc)
                key = row["score"] = headline(metrics)
                row[label] = {
                    key: metrics[key],
                    "seconds": round(time.perf_counter() - start, 2),
                    "accelerator": metrics.get("accelerator"),
                }
            recorded, cpu = row["gpu"][key], row["cpu"][key]
            row["cpu_eval_of_gpu_artifact"] = eval_on_cpu(work / f"{len(rows)}-gpu", key)
            row["reproduced"] = close(row["cpu_eval_of_gpu_artifact"], recorded, key, tolerance)
            row["gpu_minus_cpu"] = recorded - cpu
            row["ok"] = row["reproduced"] and close(recorded, cpu, key, tolerance)
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
        key = headline(metrics)
        seconds = [r["seconds"] for r in metrics["history"] if r["epoch"] >= 2]
        result[label] = {
            "epoch_seconds": round(sum(seconds) / len(seconds), 3),
            "train_examples": metrics["splits"]["train"],
            key: metrics[key],
        }
    result["speed-up"] = round(result["cpu"]["epoch_seconds"] / result["gpu"]["epoch_seconds"], 1)
    return result


def speed(
    ucr: str | None,
    whisper_tiny: Path | None,
    work: Path,
    accelerators: tuple[str, str] = ("cuda", "cpu"),
    smollm2_shape: Path | None = None,
) -> dict[str, Any]:
    """Part 2: epoch times of the costly recipes, GPU against this machine's CPU."""
    out: dict[str, Any] = {}
    base = dict(progress=False, plots=False, seed=0, overwrite=True)
    if smollm2_shape is not None:
        table = write_hourly(work / "hourly7.csv", rows=4000, columns=7)
        name = "SmolLM2-135M-shaped, 2 blocks, Time-LLM (patch-reprogram + horizon), L=512, H=96"
        out[name + ", a fresh 1/8 of the windows each epoch, batch 32"] = time_epochs(
            lambda acc: FitConfig(
                source=f"hf:{smollm2_shape}",
                target=f"forecast:{table}#lookback=512#horizon=96#sample=8#val_stride=8",
                program="patch-reprogram",
                mapping="horizon",
                program_options={"stride": 16},
                epochs=3,
                out=str(work / f"timellm-{acc}"),
                accelerator=acc,
                **base,
            ),
            accelerators,
        )
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
        "Test score on tiny data (accuracy; RMSE for regression and forecasts), trained on "
        "the GPU and on the CPU (seed 0); the GPU artifact re-scored by `reprogram eval` on "
        "the CPU.",
        "",
        "| case | score | GPU test | CPU test | GPU artifact, eval on CPU | ok |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | | {r['error'][:80]} | | | no |")
            continue
        key = r["score"]
        lines.append(
            f"| {r['case']} | {key.removeprefix('test_')} | {r['gpu'][key]:.4f} | "
            f"{r['cpu'][key]:.4f} | {r['cpu_eval_of_gpu_artifact']:.4f} | "
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
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.05,
        help="accuracy difference; for RMSE, the difference relative to the CPU's",
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--no-language", action="store_true", help="leave out the language-model cases"
    )
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
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
        language = None if args.no_language else write_language_data(work / "language")
        rows = check(
            args.ucr, small, work / "check", args.tolerance, pair, language, args.only  # type: ignore[arg-type]
        )
        timings = {}
        if not args.skip_speed:
            tiny = save_whisper(work / "whisper-tiny-shape", **TINY_EN)
            smol = None if args.no_language else save_llama(work / "smollm2-shape", **SMOLLM2_2)
            timings = speed(args.speed_ucr or args.ucr, tiny, work / "speed", pair, smol)  # type: ignore[arg-type]
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
