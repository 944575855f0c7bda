"""What ``#precision=bf16`` buys: one training step through a frozen source, float32 against
bfloat16 autocast, and how far the outputs and input gradients move.

A step here is what a program's training step costs inside the source: the forward of a batch
of input embeddings (or images) through the frozen model, and the backward to those inputs
(the gradient a program receives). Each mode is timed ``--repeats`` times after one warm-up
call, interleaved (fp32, bf16, fp32, bf16, ...) so that a machine whose load changes affects
both alike; the median is reported. One thread (``torch.set_num_threads(1)``), as each cell
of the benchmark suites runs.

    python benchmarks/lm_precision.py --out benchmarks/results/lm_precision

Cases: SmolLM2-135M kept to 2 and 6 blocks (32 windows of 33 patches, as ``bench forecast``'s
cells; 16 sequences of 48 positions, as a peptide batch), MiniLM's 6 blocks, and
EfficientNet-Lite0 on 32 images of 128 px (why the option is offered on language sources
only). Writes ``step_times.json`` and ``step_times.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from reprogram_bench.machine import describe, machine

from reprogram.sources import build_source
from reprogram.sources.language import TokenInputs, autocast

#: (label, source name, batch, positions) of the language cases.
LANGUAGE_CASES = (
    ("SmolLM2 2 blocks, forecast batch", "smollm2-135m#depth=2#output=hidden", 32, 33),
    ("SmolLM2 6 blocks, forecast batch", "smollm2-135m#depth=6#output=hidden", 32, 33),
    ("SmolLM2 6 blocks, peptide batch", "smollm2-135m#depth=6#output=hidden", 16, 48),
    ("MiniLM 6 blocks, peptide batch", "minilm-l6", 16, 48),
)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((b - a).norm() / a.norm().clamp_min(1e-12))


def _step_language(source: Any, x: torch.Tensor) -> Callable[[], tuple[torch.Tensor, ...]]:
    mask = torch.ones(x.shape[:2], dtype=torch.long)

    def step() -> tuple[torch.Tensor, ...]:
        xi = x.clone().requires_grad_(True)
        out = source(TokenInputs(xi, mask))
        out.square().mean().backward()
        assert xi.grad is not None
        return out.detach(), xi.grad

    return step


def _step_image(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> Callable[[], Any]:
    def step() -> tuple[torch.Tensor, ...]:
        xi = x.clone().requires_grad_(True)
        with autocast(xi.device, "bf16" if bf16 else "fp32"):
            out = model(xi)
        out.float().logsumexp(1).mean().backward()
        assert xi.grad is not None
        return out.detach().float(), xi.grad

    return step


def _time(steps: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    for step in steps.values():  # warm-up (oneDNN picks its kernels on the first call)
        step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def run(repeats: int) -> list[dict[str, Any]]:
    """Every case's median step time in both modes and the bf16 errors."""
    torch.manual_seed(0)
    rows = []
    for label, name, batch, positions in LANGUAGE_CASES:
        full, half = build_source(name), build_source(f"{name}#precision=bf16")
        x = torch.randn(batch, positions, full.width) * 0.02
        steps = {"fp32": _step_language(full, x), "bf16": _step_language(half, x)}
        times = _time(steps, repeats)
        (a, ga), (b, gb) = steps["fp32"](), steps["bf16"]()
        rows.append(_row(label, name, f"[{batch}, {positions}, {full.width}]", times,
                         _relative(a, b), _relative(ga, gb)))
    model = build_source("efficientnet-lite0")
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    x = torch.rand(32, 3, 128, 128)
    steps = {"fp32": _step_image(model, x, False), "bf16": _step_image(model, x, True)}
    times = _time(steps, repeats)
    (a, ga), (b, gb) = steps["fp32"](), steps["bf16"]()
    rows.append(_row("EfficientNet-Lite0, 32 images (autocast by hand)", "efficientnet-lite0",
                     "[32, 3, 128, 128]", times, _relative(a, b), _relative(ga, gb)))
    return rows


def _row(label: str, name: str, shape: str, times: dict[str, float], out_err: float,
         grad_err: float) -> dict[str, Any]:
    return {
        "case": label, "source": name, "input": shape,
        "fp32_s": times["fp32"], "bf16_s": times["bf16"],
        "speedup": times["fp32"] / times["bf16"],
        "output_rel_error": out_err, "grad_rel_error": grad_err,
    }


def write(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "step_times.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# One step through a frozen source: float32 against bfloat16 autocast",
        "",
        f"    {meta['command']}",
        "",
        f"Machine: {meta['machine_text']}; one thread; median of {meta['repeats']} interleaved "
        "steps after a warm-up. A step: forward of the batch and backward to the inputs. "
        "Errors: relative (Frobenius) difference of bf16's outputs and input gradients from "
        "float32's.",
        "",
        "| case | input | fp32 step (s) | bf16 step (s) | speed-up | output error | "
        "gradient error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | `{r['input']}` | {r['fp32_s']:.3f} | {r['bf16_s']:.3f} | "
            f"{r['speedup']:.2f} × | {r['output_rel_error']:.2%} | {r['grad_rel_error']:.2%} |"
        )
    (out / "step_times.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/lm_precision")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = run(args.repeats)
    mach = machine()
    meta = {
        "command": f"python benchmarks/lm_precision.py --out {args.out} --repeats {args.repeats}",
        "repeats": args.repeats, "seed": 0, "machine": mach, "machine_text": describe(mach),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    write(Path(args.out), rows, meta)
    print((Path(args.out) / "step_times.md").read_text())


if __name__ == "__main__":
    main()
