"""``reprogram bench SUITE``: the command line's entry into the suites (flags parsed by
:mod:`reprogram.cli`)."""

from __future__ import annotations

from typing import Any

from reprogram.errors import ReprogramError
from reprogram_bench import ints, split_methods
from reprogram_bench.blackbox import run_blackbox
from reprogram_bench.efficiency import run_efficiency
from reprogram_bench.pool import check_jobs
from reprogram_bench.ucr import run_from_args
from reprogram_bench.vision import DEFAULT_METHODS, run_vision, summarise

PARALLEL_SUITES = ("vision", "sequences", "forecast")
#: Suites whose every cell takes --select (the others choose on held-out validation).
SELECT_SUITES = ("ucr-v2s", "sequences")


def _shots(text: str, flag: str = "--shots") -> tuple[int, ...]:
    """``--shots`` of the sequences suite: positive integers, or ``all`` (0: every row)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ReprogramError(f"{flag} needs positive integers or 'all', got {text!r}.")
    return tuple(0 if p == "all" else ints(p, flag)[0] for p in parts)


def run(args: Any, command: str | None) -> None:
    """``reprogram bench SUITE``: the suite named by ``args.suite`` with the parsed flags."""
    jobs = check_jobs(getattr(args, "jobs", 1))
    if jobs != 1 and args.suite not in PARALLEL_SUITES:
        raise ReprogramError(
            f"--jobs runs the cells of {', '.join(PARALLEL_SUITES)} in parallel; the "
            f"{args.suite} suite runs one cell at a time (efficiency times each step, and "
            "cells beside it would skew the timings). Leave --jobs out."
        )
    select = getattr(args, "select", "holdout")
    if select != "holdout" and args.suite not in SELECT_SUITES:
        raise ReprogramError(
            f"--select applies to the {' and '.join(SELECT_SUITES)} suites; the {args.suite} "
            "suite's cells choose on held-out validation (a method may name its own "
            "select=, e.g. 'full+linear:init=probe,select=kfold:5'). Leave --select out."
        )
    if args.suite == "forecast":
        from reprogram_bench.forecast import HORIZONS, LM, run_forecast

        fractions = tuple(float(f) for f in (args.fractions or "1").split(",") if f)
        if any(not 0 < f <= 1 for f in fractions):
            raise ReprogramError(f"--fractions takes numbers in (0, 1], got {args.fractions!r}.")
        sets = tuple(t for t in (args.tasks or "ETTh1").split(",") if t)
        # a language model on 2 CPU cores reads every 16th window of the standard sets (tens
        # of thousands); a user's own file is read whole unless told otherwise
        standard = any(name in HORIZONS for name in sets)
        sample = args.lm_sample if args.lm_sample is not None else 1
        strides = (ints(args.lm_strides, "--lm-strides") if args.lm_strides
                   else (1 if sample > 1 else 16, 8) if standard else (1, 1))
        if len(strides) != 2 or min(strides) < 1:
            raise ReprogramError(
                f"--lm-strides takes two whole numbers of at least 1, TRAIN,VAL (e.g. 16,8); "
                f"got {args.lm_strides!r}."
            )
        run_forecast(
            args.out,
            lm_stride=(strides[0], strides[1]),
            lm_sample=sample,
            sets=sets,
            horizons=ints(args.horizons, "--horizons") if args.horizons else None,
            fractions=fractions,
            seeds=ints(args.seeds, "--seeds"),
            methods=split_methods(args.methods) if args.methods else None,
            lm=args.source or LM,
            epochs=args.epochs if args.epochs is not None else 10,
            command=command,
            progress=not args.quiet,
            report_only=args.report_only,
            drop_last=args.drop_last,
            jobs=jobs,
        )
        return
    if args.suite == "sequences":
        from reprogram_bench.sequences import DEFAULT_METHODS as SEQUENCE_METHODS
        from reprogram_bench.sequences import TASKS, run_sequences

        run_sequences(
            args.out,
            tasks=tuple(t for t in (args.tasks or ",".join(TASKS)).split(",") if t),
            shots=_shots(args.shots or "8,32"),
            regression_shots=_shots(args.regression_shots or "64,256,all", "--regression-shots"),
            seeds=ints(args.seeds, "--seeds"),
            methods=split_methods(args.methods) if args.methods else SEQUENCE_METHODS,
            source=args.source or "minilm-l6",
            epochs=args.epochs if args.epochs is not None else 10,
            command=command,
            progress=not args.quiet,
            report_only=args.report_only,
            jobs=jobs,
            select=select,
        )
        return
    args.source = args.source or "efficientnet-lite0"
    if args.suite == "vision":
        methods = split_methods(args.methods) if args.methods else DEFAULT_METHODS
        rows = run_vision(
            args.out,
            shots=ints(args.shots or "10,100,1000", "--shots"),
            seeds=ints(args.seeds, "--seeds"),
            methods=methods,
            source=args.source,
            target=args.target,
            epochs=args.epochs if args.epochs is not None else 10,
            canvas_size=args.canvas_size,
            command=command,
            progress=not args.quiet,
            jobs=jobs,
        )
        for s in sorted(summarise(rows), key=lambda s: (s["shots"], -s["test_mean"])):
            print(
                f"{s['shots']:>5} shots  {s['method']:<20} test {s['test_mean']:.4f} ± "
                f"{s['test_std']:.4f}  ({len(s['seeds'])} seeds)"
            )
    elif args.suite == "blackbox":  # EfficientNet-Lite0 over loopback HTTP: rgf, spsa-gc
        run_blackbox(
            args.out,
            seeds=ints(args.seeds, "--seeds"),
            command=command,
            progress=not args.quiet,
            report_only=args.report_only,
        )
    elif args.suite == "ucr-v2s":
        run_from_args(args, command)
    else:
        run_efficiency(
            args.out,
            source=args.source,
            sizes=ints(args.sizes, "--sizes"),
            batch_size=args.batch_size,
            repeats=args.repeats,
            methods=split_methods(args.methods) if args.methods else None,
            progress=not args.quiet,
            command=command,
        )
