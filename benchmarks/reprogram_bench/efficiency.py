"""Efficiency benchmark: what reprogramming costs on top of the frozen source model.

For one source, batch size ``B`` and each canvas side ``S`` in ``sizes`` (all in one process),
it measures:

* **floor** — the frozen source's forward plus backward to its input alone: pixels
  ``[B, C_s, S, S]`` with ``requires_grad=True`` → logits ``[B, K_s]`` → cross-entropy against
  fixed source labels → gradient to the pixels only (``torch.autograd.grad``; the source's
  parameters are frozen). No white-box program can be trained for less.
* **step** — one real training step of each program × mapping, as ``fit`` runs it: the
  ``gradient`` optimizer (Adam) over the program and mapping parameters on the cross-entropy of
  ``model(x)``, for a fixed random batch of grey images ``x`` ``[B, 1, 28, 28]`` (the
  Fashion-MNIST shape) with 10 target classes. The program's ``canvas_size`` is ``S``.
* **infer** vs **bare** — the reprogrammed model's forward on ``x`` under
  ``torch.inference_mode()`` vs the bare source's forward (also under inference mode) on the
  already-resized pixels ``[B, C_s, S, S]``.
* **program** — the program's own forward plus backward (to its parameters), in training
  mode, without the source: what an input-dependent program (``smm``'s mask generator) costs
  by itself, beside the step it is part of.
* **peak memory** of each of the four.

Cells are the cross product of ``programs`` × ``mappings``, or named one by one as methods
``PROGRAM+MAPPING[:key=value,...]`` (options go to the program or the mapping that has a field
of that name, e.g. ``resize-pad+linear:learn_scale=true`` or ``smm+linear:patch=16``).

It reports the ratios step/floor, infer/bare and memory/floor (step peak over floor peak)
against the targets step/floor ≤ 1.10 and infer/bare ≤ 1.05.

Timing: ``time.perf_counter`` around each call; the median of ``repeats`` calls after ``warmup``
calls. Within every repetition the floor, the step, the bare forward and the reprogrammed
forward run one after the other (the order alternating between repetitions), so drift on a
shared machine moves numerator and denominator alike; the floor and bare numbers are therefore
re-measured for every cell. The ratios are ratios of medians; the rows also carry the median of
the per-repetition ratios (``*_paired``) as a drift-robust cross-check. ``torch``'s thread count
is left at the machine's default.

Memory: the peak is the high-water mark of bytes held through PyTorch's CPU allocator during one
call, above what was held when the call began. Parameters, the input batch and Adam's moment
buffers exist before the call and are not counted; activations saved for backward, gradients
and temporaries are. It is the running sum of the allocation and free events (size and time
stamp of each) that ``torch.profiler`` records with ``profile_memory=True``, in a separate,
untimed call. Tensors of PyTorch's oneDNN layer (ideep) come from the same allocator and are
counted; memory a library takes from the system on its own (e.g. oneDNN's primitive cache) and
the Python heap are not. ``tracemalloc`` does
not see torch's allocations and the process RSS is too coarse (freed pages are returned lazily),
so neither is used. MB here means 10⁶ bytes.

Outputs under ``out``: ``results.json`` (meta: command, machine, date, settings; rows),
``results.csv``, ``results.md`` and ``efficiency.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from reprogram.mappings import MAPPINGS, build_mapping
from reprogram.model import ReprogrammedModel
from reprogram.optim import build_optimizer
from reprogram.programs import build_program
from reprogram.sources import Source, build_source
from reprogram_bench import write_csv
from reprogram_bench.machine import describe, machine

#: Programs and mappings benchmarked by default (the image programs that train something).
DEFAULT_PROGRAMS: tuple[str, ...] = ("border", "resize-pad", "full")
DEFAULT_MAPPINGS: tuple[str, ...] = ("random", "flm", "ilm", "linear")
#: Targets of the issue: a training step within 10 % of the floor, inference within 5 % of bare.
STEP_TARGET = 1.10
INFER_TARGET = 1.05
#: The target task's shape: grey 28×28 images (Fashion-MNIST), 10 classes.
TARGET_SHAPE: tuple[int, int, int] = (1, 28, 28)
NUM_TARGET_CLASSES = 10
_MB = 1e6

#: Columns of results.csv, in order.
CSV_FIELDS: tuple[str, ...] = (
    "size",
    "program",
    "mapping",
    "step_ms",
    "floor_ms",
    "step_over_floor",
    "infer_ms",
    "bare_ms",
    "infer_over_bare",
    "step_peak_mb",
    "floor_peak_mb",
    "mem_over_floor",
    "infer_peak_mb",
    "bare_peak_mb",
    "trainable_params",
    "program_ms",
    "generator_params",
    "step_over_floor_paired",
    "infer_over_bare_paired",
    "meets_step_target",
    "meets_infer_target",
)


# ----------------------------------------------------------------------------- measuring
def peak_memory_bytes(fn: Callable[[], object]) -> int:
    """High-water mark of CPU allocator bytes held during ``fn()``, above the level at its start.

    Replays the allocation/free events of ``torch.profiler`` (``profile_memory=True``) in time
    order; frees of memory allocated before the call count too, so the result is the net extra
    memory at the worst moment (never below 0).
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())  # type: ignore[union-attr]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.tag == _EventType.Allocation:
            fields = node.extra_fields
            if fields.device.type == "cpu":
                events.append((node.start_time_ns, int(fields.alloc_size)))
    held = peak = 0
    for _, size in sorted(events):
        held += size
        peak = max(peak, held)
    return peak


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's C++ start/stop log lines) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median_ms(times: Sequence[float]) -> float:
    return 1000.0 * statistics.median(times)


@dataclass
class _Inputs:
    """The fixed batch of one size.

    ``x`` ``[B, 1, 28, 28]`` target images, ``y`` ``[B]`` target labels, ``pixels``
    ``[B, C_s, S, S]`` the same images resized for the source, ``y_source`` ``[B]`` source labels.
    """

    x: torch.Tensor
    y: torch.Tensor
    pixels: torch.Tensor
    y_source: torch.Tensor


def _inputs(source: Source, batch_size: int, size: int, seed: int = 0) -> _Inputs:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch_size, *TARGET_SHAPE, generator=gen)
    y = torch.randint(NUM_TARGET_CLASSES, (batch_size,), generator=gen)
    y_source = torch.randint(source.num_classes, (batch_size,), generator=gen)
    channels = source.input_size[0]
    pixels = F.interpolate(
        x.expand(-1, channels, -1, -1), size=(size, size), mode="bilinear", align_corners=False
    ).contiguous()
    return _Inputs(x=x, y=y, pixels=pixels, y_source=y_source)


def _build(
    source: Source,
    program: str,
    mapping: str,
    size: int,
    options: dict[str, dict[str, Any]] | None = None,
) -> tuple[ReprogrammedModel, Any]:
    """The reprogrammed model of one cell (as ``train.build_model`` builds it) and its stepper.

    ``options``: ``{"program": {...}, "mapping": {...}}`` as :func:`parse_cell` routes them.
    """
    options = options or {}
    prog, _ = build_program(
        program,
        {**options.get("program", {}), "canvas_size": size},
        TARGET_SHAPE,
        source.input_size,
    )
    map_options: dict[str, Any] = dict(options.get("mapping", {}))
    entry = MAPPINGS.get(mapping)
    if entry.config is not None and "seed" in entry.config.__dataclass_fields__:
        map_options.setdefault("seed", 0)
    mapp, _ = build_mapping(mapping, map_options, source.num_classes, NUM_TARGET_CLASSES)
    model = ReprogrammedModel(source, prog, mapp)
    params = [p for p in model.parameters() if p.requires_grad]
    stepper = None
    if params:
        stepper, _ = build_optimizer("gradient", {}, params, lambda loss: loss.backward())
    return model, stepper


@dataclass(frozen=True)
class EfficiencyCell:
    """One measured cell: a program and a mapping (with options) at one canvas side."""

    size: int
    program: str
    mapping: str
    options: tuple[tuple[str, str, str], ...] = ()  # (destination, key, value)
    label: str = ""

    def routed(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {"program": {}, "mapping": {}}
        for kind, key, value in self.options:
            out[kind][key] = value
        return out

    @property
    def program_label(self) -> str:
        """The program with its options, as the tables show it."""
        opts = [f"{k}={v}" for kind, k, v in self.options if kind == "program"]
        return f"{self.program}:{','.join(opts)}" if opts else self.program

    @property
    def mapping_label(self) -> str:
        opts = [f"{k}={v}" for kind, k, v in self.options if kind == "mapping"]
        return f"{self.mapping}:{','.join(opts)}" if opts else self.mapping


def parse_cell(method: str, size: int) -> EfficiencyCell:
    """``PROGRAM+MAPPING[:key=value,...]`` → the cell at canvas side ``size``; options are
    routed as the vision bench routes them (:func:`reprogram_bench.vision.parse_method`).

    Raises:
        ReprogramError: no ``+``, an unknown name, an option neither component has, or an
            optimizer or run option (one training step measures neither).
    """
    from reprogram.errors import ReprogramError
    from reprogram_bench.vision import parse_method

    program, plus, mapping = method.partition(":")[0].partition("+")
    if not plus or not program or not mapping:
        raise ReprogramError(
            f"efficiency method {method!r}: write PROGRAM+MAPPING[:key=value,...], e.g. "
            "smm+linear or resize-pad+linear:learn_scale=true."
        )
    program, mapping, routed = parse_method(method)
    other = [*routed["optimizer"], *routed["run"]]
    if other:
        raise ReprogramError(
            f"efficiency method {method!r}: {', '.join(other)} set the optimizer or the run, "
            "which the efficiency suite fixes (Adam, one step); give program and mapping "
            "options only."
        )
    options = tuple(
        (kind, key, str(value))
        for kind in ("program", "mapping")
        for key, value in routed[kind].items()
    )
    return EfficiencyCell(size, program, mapping, options, method)


class _Bench:
    """The four measured calls of one cell, sharing the fixed inputs of its size."""

    def __init__(self, source: Source, model: ReprogrammedModel, stepper: Any, data: _Inputs):
        self.source, self.model, self.stepper, self.data = source, model, stepper, data
        self.floor_pixels = data.pixels.clone().requires_grad_(True)

    def floor(self) -> None:
        loss = F.cross_entropy(self.source(self.floor_pixels), self.data.y_source)
        torch.autograd.grad(loss, self.floor_pixels)

    def step(self) -> None:
        model, data = self.model, self.data
        if self.stepper is None:  # nothing trainable: forward and loss only
            F.cross_entropy(model(data.x), data.y)
            return
        self.stepper.step(lambda: F.cross_entropy(model(data.x), data.y))

    def infer(self) -> None:
        with torch.inference_mode():
            self.model(self.data.x)

    def bare(self) -> None:
        with torch.inference_mode():
            self.source(self.data.pixels)

    def program(self) -> None:
        """The program alone: its forward and the backward to its own parameters."""
        program: Any = self.model.program
        params = [p for p in program.parameters() if p.requires_grad]
        out = program(self.data.x)
        if params:
            torch.autograd.grad(out.float().square().mean(), params)

    def run(self, name: str) -> float:
        """Seconds of one call of ``name``, in the model mode that call needs (set untimed)."""
        self.model.train(name in ("step", "program"))
        return _seconds(getattr(self, name))

    def peak(self, name: str) -> int:
        self.model.train(name == "step")
        return peak_memory_bytes(getattr(self, name))


_ORDERS = (
    ("floor", "step", "bare", "infer", "program"),
    ("step", "floor", "infer", "bare", "program"),
)


def _measure_cell(bench: _Bench, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Interleaved timings (seconds) of the four calls; ``repeats`` of each after ``warmup``."""
    for _ in range(warmup):
        for name in _ORDERS[0]:
            bench.run(name)
    times: dict[str, list[float]] = {name: [] for name in _ORDERS[0]}
    for r in range(repeats):
        for name in _ORDERS[r % 2]:
            times[name].append(bench.run(name))
    return times


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _paired(a: Sequence[float], b: Sequence[float]) -> float:
    return statistics.median(_ratio(x, y) for x, y in zip(a, b, strict=True))


# ----------------------------------------------------------------------------- the benchmark
def run_efficiency(
    out: str | Path,
    *,
    source: str = "efficientnet-lite0",
    sizes: tuple[int, ...] = (128, 224),
    batch_size: int = 32,
    warmup: int = 3,
    repeats: int = 20,
    programs: Sequence[str] | None = None,
    mappings: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    progress: bool = True,
    source_module: Source | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Measure floor, training step, inference and peak memory of every program × mapping.

    Args:
        out: directory for results.json, results.csv, results.md and efficiency.png.
        source: name of the source (``build_source``), unless ``source_module`` is given.
        sizes: canvas sides ``S`` to measure (the source sees ``[B, C_s, S, S]``).
        batch_size: ``B``.
        warmup: untimed calls of each kind before timing (per cell; the first cell of each
            size gets ``4 * warmup + 4``).
        repeats: timed calls of each kind (per cell); the median is reported.
        programs, mappings: names to cross (default :data:`DEFAULT_PROGRAMS` ×
            :data:`DEFAULT_MAPPINGS`).
        methods: ``PROGRAM+MAPPING[:key=value,...]`` cells named one by one instead of the
            cross product (see :func:`parse_cell`).
        progress: show a progress bar over the cells.
        source_module: a ready :class:`Source` to measure instead of building ``source``.
        command: the command line that ran this, recorded in the meta data.
    Returns:
        ``{"meta": {...}, "rows": [...]}`` as written to results.json (one row per size ×
        program × mapping, times in ms and peaks in MB).
    """
    if repeats < 1 or warmup < 0 or batch_size < 1:
        raise ValueError("repeats and batch_size must be positive and warmup non-negative")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if methods:
        if programs or mappings:
            raise ValueError("give methods, or programs and mappings to cross, not both")
        cells = [parse_cell(m, s) for s in sizes for m in methods]
    else:
        cells = [
            EfficiencyCell(s, p, m, label=f"{p}+{m}")
            for s in sizes
            for p in tuple(programs or DEFAULT_PROGRAMS)
            for m in tuple(mappings or DEFAULT_MAPPINGS)
        ]
    src = source_module if source_module is not None else build_source(source)
    meta: dict[str, Any] = {
        "command": command,
        "source": src.name,
        "sizes": list(sizes),
        "batch_size": batch_size,
        "warmup": warmup,
        "repeats": repeats,
        "target_input_shape": list(TARGET_SHAPE),
        "target_classes": NUM_TARGET_CLASSES,
        "targets": {"step_over_floor": STEP_TARGET, "infer_over_bare": INFER_TARGET},
        "machine": machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "timing": "median of interleaved time.perf_counter calls after warmup",
        "memory": "peak CPU-allocator bytes above the level at the call's start (torch.profiler)",
    }
    rows: list[dict[str, Any]] = []
    floor_peaks: dict[int, tuple[int, int]] = {}
    bar = tqdm(cells, desc="efficiency", unit="cell", disable=not progress)
    for cell in bar:
        size, program, mapping = cell.size, cell.program_label, cell.mapping_label
        bar.set_postfix_str(f"{size}px {program} × {mapping}", refresh=True)
        model, stepper = _build(src, cell.program, cell.mapping, size, cell.routed())
        bench = _Bench(src, model, stepper, _inputs(src, batch_size, size))
        # The first cell of a size also pays for oneDNN building its kernels for the new
        # shapes: warm it up longer, or its first timed calls are slow.
        times = _measure_cell(bench, warmup if size in floor_peaks else 4 * warmup + 4, repeats)
        if size not in floor_peaks:
            floor_peaks[size] = (bench.peak("floor"), bench.peak("bare"))
        floor_peak, bare_peak = floor_peaks[size]
        step_peak, infer_peak = bench.peak("step"), bench.peak("infer")
        ms = {name: _median_ms(t) for name, t in times.items()}
        row: dict[str, Any] = {
            "size": size,
            "program": program,
            "mapping": mapping,
            "step_ms": ms["step"],
            "floor_ms": ms["floor"],
            "step_over_floor": _ratio(ms["step"], ms["floor"]),
            "infer_ms": ms["infer"],
            "bare_ms": ms["bare"],
            "infer_over_bare": _ratio(ms["infer"], ms["bare"]),
            "step_peak_mb": step_peak / _MB,
            "floor_peak_mb": floor_peak / _MB,
            "mem_over_floor": _ratio(step_peak, floor_peak),
            "infer_peak_mb": infer_peak / _MB,
            "bare_peak_mb": bare_peak / _MB,
            "trainable_params": model.trainable_parameters(),
            "program_ms": ms["program"],
            "generator_params": int(model.program.describe().get("generator_parameters", 0)),
        }
        # Median of the per-repetition ratios: a drift-robust check of the ratio of medians.
        row["step_over_floor_paired"] = _paired(times["step"], times["floor"])
        row["infer_over_bare_paired"] = _paired(times["infer"], times["bare"])
        row["meets_step_target"] = bool(row["step_over_floor"] <= STEP_TARGET)
        row["meets_infer_target"] = bool(row["infer_over_bare"] <= INFER_TARGET)
        row["times_ms"] = {name: [1000.0 * v for v in t] for name, t in times.items()}
        rows.append(row)
        if progress:
            tqdm.write(
                f"{size:>4}px {program:>10} × {mapping:<7} step/floor "
                f"{row['step_over_floor']:.3f}  infer/bare {row['infer_over_bare']:.3f}  "
                f"mem/floor {row['mem_over_floor']:.2f}"
            )
    result = {"meta": meta, "rows": rows}
    write_results(out, result)
    return result


# ----------------------------------------------------------------------------- outputs
def write_results(out: Path, result: dict[str, Any]) -> None:
    """results.json, results.csv, results.md and efficiency.png under ``out``."""
    rows = result["rows"]
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    write_csv(out / "results.csv", [{k: _csv_value(r[k]) for k in CSV_FIELDS} for r in rows])
    (out / "results.md").write_text(markdown_table(result))
    save_plot(rows, out / "efficiency.png")


def _csv_value(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def markdown_table(result: dict[str, Any]) -> str:
    """The results as Markdown: settings, one table row per cell, and the targets' verdict."""
    meta, rows = result["meta"], result["rows"]
    mach = meta["machine"]
    lines = [
        f"# Efficiency: {meta['source']}, batch {meta['batch_size']}",
        "",
        f"Median of {meta['repeats']} interleaved calls after {meta['warmup']} warm-up calls; "
        f"{describe(mach)} with {mach.get('torch_threads', mach.get('torch_num_threads'))} "
        f"threads ({mach['platform']}), {meta['date']}. glibc large-block reuse "
        f"(`reprogram.runtime.tune_allocator`): "
        f"{'on' if mach.get('allocator_tuned') else 'off'}.",
    ]
    if meta.get("command"):
        lines.append(f"Command: `{meta['command']}`")
    lines += [
        "",
        "| size | program | mapping | step ms | floor ms | step/floor | infer ms | bare ms "
        "| infer/bare | peak MB | floor peak MB | mem/floor | program ms | trained params |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        step_mark = "" if r["meets_step_target"] else " ✗"
        infer_mark = "" if r["meets_infer_target"] else " ✗"
        lines.append(
            f"| {r['size']} | {r['program']} | {r['mapping']} | {r['step_ms']:.1f} "
            f"| {r['floor_ms']:.1f} | {r['step_over_floor']:.3f}{step_mark} | {r['infer_ms']:.1f} "
            f"| {r['bare_ms']:.1f} | {r['infer_over_bare']:.3f}{infer_mark} "
            f"| {r['step_peak_mb']:.1f} | {r['floor_peak_mb']:.1f} | {r['mem_over_floor']:.2f} "
            f"| {_program_ms(r)} | {_params(r)} |"
        )
    n = len(rows)
    step_ok = sum(r["meets_step_target"] for r in rows)
    infer_ok = sum(r["meets_infer_target"] for r in rows)
    both = sum(r["meets_step_target"] and r["meets_infer_target"] for r in rows)
    lines += [
        "",
        f"Targets: step/floor ≤ {STEP_TARGET:.2f} and infer/bare ≤ {INFER_TARGET:.2f}. "
        f"step/floor met by {step_ok}/{n} rows, infer/bare by {infer_ok}/{n}; "
        f"{'every row meets both' if both == n else f'{n - both} row(s) miss (✗)'}.",
        "",
        "Peak MB: CPU-allocator bytes held above the level at the call's start (activations "
        "saved for backward, gradients, temporaries); mem/floor = step peak / floor peak. "
        "Program ms: the program's own forward and backward, without the source (for `smm` "
        "mostly its mask generator, whose own parameters the trained-params column gives "
        "in brackets).",
        "",
    ]
    return "\n".join(lines)


def _program_ms(row: dict[str, Any]) -> str:
    """The program's own cost (rows written before it was measured show a dash)."""
    return f"{row['program_ms']:.1f}" if row.get("program_ms") is not None else "–"


def _params(row: dict[str, Any]) -> str:
    """Trained parameters, with a generator's share apart: ``85,661 (26,499 generator)``."""
    total = f"{row['trainable_params']:,}"
    generator = row.get("generator_params") or 0
    return f"{total} ({generator:,} generator)" if generator else total


def save_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Bars of step/floor and infer/bare per cell, with the target lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [f"{r['size']} {r['program']}\n{r['mapping']}" for r in rows]
    xs = range(len(rows))
    fig = Figure(figsize=(max(6.0, 0.55 * len(rows) + 2.0), 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    panels = (
        ("step_over_floor", STEP_TARGET, "training step / floor", "tab:blue"),
        ("infer_over_bare", INFER_TARGET, "inference / bare source", "tab:orange"),
    )
    for ax, (key, target, title, colour) in zip(axes, panels, strict=True):
        values = [r[key] for r in rows]
        ax.bar(list(xs), values, color=colour, width=0.7)
        ax.axhline(target, color="tab:red", linestyle="--", label=f"target {target:.2f}")
        ax.axhline(1.0, color="black", linewidth=0.8)
        finite = [v for v in values if math.isfinite(v)] or [1.0]
        ax.set_ylim(min(0.9, min(finite) - 0.02), max(target, max(finite)) + 0.05)
        ax.set_ylabel("ratio")
        ax.set_title(title)
        ax.legend(loc="upper right")
    axes[-1].set_xticks(list(xs), labels, rotation=90, fontsize=7)
    fig.savefig(path, dpi=120)


# ----------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> None:
    """``PYTHONPATH=benchmarks python -m reprogram_bench.efficiency --out DIR [--source …]``
    (``--sizes 128 224`` …)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--source", default="efficientnet-lite0")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--programs", nargs="+", default=None)
    p.add_argument("--mappings", nargs="+", default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    run_efficiency(
        args.out,
        source=args.source,
        sizes=tuple(args.sizes),
        batch_size=args.batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        programs=args.programs,
        mappings=args.mappings,
        progress=not args.no_progress,
        command=" ".join(["PYTHONPATH=benchmarks python -m reprogram_bench.efficiency", *argv]),
    )


if __name__ == "__main__":
    main()
