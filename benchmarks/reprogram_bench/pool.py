"""Run a suite's pending cells: one after another, or ``jobs`` at a time in worker processes.

``reprogram bench SUITE --jobs N`` runs up to N cells at once, each in its own process with
``cpus // N`` torch threads (a cell on one thread is the most efficient use of a small machine;
on a large one several cells at once finish a grid sooner than one cell on every core). Each
cell writes only its own run folder, and resumes from its checkpoint when run again, so a grid
stopped part-way loses at most the cells' unfinished epochs. The suite, in this process, reads
each finished cell's metrics and rewrites its table as they come in (in the order they finish).

A cell whose data cannot form it, or whose run refuses its settings, ends with a
:class:`~reprogram.errors.ReprogramError`; that error comes back to the suite as a value (it
decides: skip the cell, or note it in :class:`Failures` and go on with the others, which
raises one error naming every failed cell once the grid is done), and any other exception
stops the grid at once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprogram.artifact import METRICS
from reprogram.errors import ReprogramError
from reprogram_bench.ledger import Ledger


@dataclass(frozen=True)
class Task:
    """One pending cell: ``fn(*args, **kwargs)`` (a module-level function, so that a worker
    process can import it), its position in the grid and the label its progress lines show."""

    index: int
    label: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """A finished task: its index, wall seconds, and the ReprogramError it ended with (None:
    it finished its run)."""

    index: int
    seconds: float
    error: ReprogramError | None


class Failures:
    """The cells of a grid that ended with a :class:`~reprogram.errors.ReprogramError`.

    A long grid goes on past a failed cell (the others do not depend on it); the suite writes
    its table from the cells that finished, then :meth:`raise_any` stops with one error that
    names each failed cell and why, so the command still exits with an error.
    """

    def __init__(self, out: Path, progress: bool = True) -> None:
        self.out = out
        self.progress = progress
        self.failed: list[tuple[str, str]] = []

    def add(self, label: str, key: str, error: BaseException) -> None:
        """Note that cell ``key`` (as errors name it; its progress line ``label``) failed with
        ``error``."""
        self.failed.append((key, str(error)))
        if self.progress:
            print(f"{label}  failed: {error}  (the grid goes on)", file=sys.stderr, flush=True)

    def raise_any(self) -> None:
        """Raise one ReprogramError naming every failed cell; nothing when none failed.

        Raises:
            ReprogramError: a cell failed.
        """
        if not self.failed:
            return
        listed = "\n".join(f"  {key}: {why}" for key, why in self.failed)
        table = self.out / "results.md"
        finished = (f"The cells that finished are in {table}." if table.exists()
                    else "No cell finished.")
        raise ReprogramError(
            f"{len(self.failed)} bench cell(s) failed:\n{listed}\n{finished} Fix the cause and "
            "run the same command again: finished cells are kept, and only the others run."
        )


def check_jobs(jobs: int) -> int:
    """``--jobs``: a whole number of at least 1.

    Raises:
        ReprogramError: it is not.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ReprogramError(
            f"--jobs takes the number of cells to run at once, a whole number of at least 1; "
            f"got {jobs!r}."
        )
    return jobs


def worker_threads(jobs: int, cpus: int | None = None) -> int:
    """Torch threads of each of ``jobs`` workers: the machine's CPUs shared out, at least 1."""
    return max(1, (cpus or os.cpu_count() or 1) // jobs)


def plan(
    cells: Sequence[Any],
    out: Path,
    ledger: Ledger,
    row_of: Callable[[Any, Path], dict[str, Any]],
    fn: Callable[..., Any],
    kwargs: dict[str, Any],
    report: Callable[[int, dict[str, Any], bool], None],
    run: bool = True,
) -> list[Task]:
    """Hand each finished cell's row to ``report(position, row, last)`` and return the tasks
    that run the others (cells with a ``key``; positions count from 1).

    A finished cell's row is read from its run folder (``row_of(cell, folder)``), or is the
    recorded one when the folder is gone (a clean clone); ``last`` is True for the last of
    them (write the table once, not once a row). A task calls ``fn(cell, folder, **kwargs)``;
    ``run=False`` (``--report-only``) makes none.
    """
    pending: list[Task] = []
    finished: list[tuple[int, dict[str, Any]]] = []
    for i, cell in enumerate(cells, 1):
        folder = out / "runs" / cell.key
        earlier = ledger.finished_earlier(cell.key, folder / METRICS)
        if earlier is not None or (folder / METRICS).exists():
            finished.append((i, earlier if earlier is not None else row_of(cell, folder)))
        elif run:
            label = getattr(cell, "label", cell.key)  # a key may be a flattened folder name
            pending.append(Task(i, f"[{i}/{len(cells)}] {label}", fn, (cell, folder), kwargs))
    for n, (i, row) in enumerate(finished, 1):
        report(i, row, n == len(finished))
    return pending


def running_line(started: float, progress: bool) -> Callable[[Task], None]:
    """The ``before`` hook of one-at-a-time grids: a "running" line with the minutes so far."""

    def before(task: Task) -> None:
        if progress:
            print(f"{task.label}  running  ({(time.perf_counter() - started) / 60:.1f} min so "
                  "far)", file=sys.stderr, flush=True)

    return before


def _start_worker(threads: int) -> None:
    """Worker initialiser: pin its torch (and OpenMP) threads before any cell runs, and leave
    Ctrl-C to the suite (which stops the workers; a cell resumes from its last epoch)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _run(task: Task, announce: bool) -> Done:
    """Run one task (in a worker, or in this process); a ReprogramError is returned."""
    if announce:
        # one write of the whole line: lines from several processes then never run together
        sys.stderr.write(f"{task.label}  running (process {os.getpid()})\n")
        sys.stderr.flush()
    started = time.perf_counter()
    try:
        task.fn(*task.args, **task.kwargs)
    except ReprogramError as exc:
        return Done(task.index, time.perf_counter() - started, exc)
    return Done(task.index, time.perf_counter() - started, None)


def _run_in_worker(item: tuple[Task, bool]) -> Done:
    return _run(*item)


def run_tasks(
    tasks: Sequence[Task],
    jobs: int = 1,
    *,
    before: Callable[[Task], None] | None = None,
    progress: bool = True,
) -> Iterator[Done]:
    """Run ``tasks``; yield each as it finishes.

    Args:
        tasks: the pending cells, in grid order.
        jobs: 1 runs them here one after another, in order (``before`` is called before
            each: the suite's own "running" line); more runs up to ``jobs`` at once in
            worker processes (spawned: a clean torch in each), each announcing its start.
        progress: workers print a line when a cell starts.
    Yields:
        :class:`Done` per task, in the order they finish. Leaving the loop early (an error
        the suite does not accept, Ctrl-C, SIGTERM) stops the workers; their cells resume
        from their last finished epoch when run again.
    """
    check_jobs(jobs)
    if jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            if before is not None:
                before(task)
            yield _run(task, announce=False)
        return
    workers = min(jobs, len(tasks))
    if progress:
        print(
            f"{len(tasks)} cells to run, {workers} at a time "
            f"({worker_threads(workers)} torch thread(s) each)",
            file=sys.stderr,
            flush=True,
        )
    # Workers stopped mid-cell (Ctrl-C, SIGTERM) leave the pool's queue semaphores to
    # multiprocessing's tracker process, which would warn of them as "leaked" at exit: it is
    # started with this process's -W options, so this quiets that one warning there.
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(
        workers, initializer=_start_worker, initargs=(worker_threads(workers),), maxtasksperchild=1
    )
    results = pool.imap_unordered(_run_in_worker, [(t, progress) for t in tasks])
    seconds: list[float] = []
    try:
        for done in results:
            seconds.append(done.seconds)
            if progress and len(seconds) < len(tasks):
                left = len(tasks) - len(seconds)
                eta = sum(seconds) / len(seconds) * left / workers / 60
                sys.stderr.write(f"{len(seconds)} of {len(tasks)} cells done; {left} left, "
                                 f"~{eta:.0f} min at this pace\n")
                sys.stderr.flush()
            yield done
        pool.close()
    except BaseException:  # an error, Ctrl-C, SIGTERM, or the suite leaving the loop
        pool.terminate()
        raise
    finally:
        pool.join()


__all__ = [
    "Done", "Failures", "Task", "check_jobs", "plan", "run_tasks", "running_line", "worker_threads",
]
