"""``tune_allocator``: glibc reuses large freed blocks (measured in a fresh process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reprogram.runtime import _is_glibc

# Allocate and free a 64 MB tensor repeatedly; count the page faults of the loop. With the
# default policy each allocation is a fresh mmap (16k minor faults each time); tuned, the
# freed heap block is reused (the heap may still grow once or twice while it settles, so
# the bound leaves room for a few fresh blocks out of 30).
SCRIPT = """
import resource, sys
import torch
from reprogram.runtime import allocator_tuned, tune_allocator
if sys.argv[1] == "tuned":
    assert tune_allocator() and allocator_tuned()
torch.empty(16 << 20).fill_(1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    torch.empty(16 << 20).fill_(1.0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _is_glibc(), reason="the tuning applies to glibc only")
def test_tuned_allocator_reuses_large_blocks() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    assert default > 30 * 10_000  # 30 × 64 MB freshly mapped
    assert tuned < default / 4


def test_tuning_can_be_switched_off() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from reprogram.runtime import tune_allocator; print(tune_allocator())",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "REPROGRAM_TUNE_MALLOC": "0"},
    )
    assert out.stdout.strip() == "False"


def test_training_on_sequences_leaves_the_allocator_alone() -> None:
    """Sequence batches vary in shape: a heap that keeps every large block grows with them,
    so the command line tunes the allocator for the other targets only."""
    from reprogram.cli import _trains_on_sequences, build_parser

    parser = build_parser()

    def trains(*argv: str) -> bool:
        return _trains_on_sequences(parser.parse_args(list(argv)))

    assert trains("fit", "--target", "amp")
    assert trains("baseline", "--method", "scratch", "--target", "csv:x.csv")
    assert trains("bench", "sequences", "--out", "d")
    assert not trains("fit", "--target", "digits") and not trains("bench", "vision", "--out", "d")
    assert not trains("fit", "--target", "no-such-target")  # the run itself names that
