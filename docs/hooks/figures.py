"""MkDocs hook: publish the benchmark figures (benchmarks/results/**/*.png) under figures/.

The figures stay where the benchmark suites write them; pages link to them as
``figures/<suite>/<name>.png`` (relative to docs/), and a link to a figure that does not exist
fails the strict build like any other broken link.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def on_files(files, config):
    for png in sorted(RESULTS.rglob("*.png")):
        rel = png.relative_to(RESULTS).as_posix()
        if "/runs/" in f"/{rel}":  # per-cell artifacts of a suite (gitignored)
            continue
        files.append(File.generated(config, f"figures/{rel}", abs_src_path=str(png)))
    return files
