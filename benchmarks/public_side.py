"""What a client of a served language model pays to build its public side (tokenizer and input
embeddings), against building the model itself here.

``reprogram serve``'s app for ``--source`` runs in a thread of this process (loopback), handing
out its public side at ``GET /language``. Timed, wall clock, each once:

- the first client build (``build_source(URL)``) into an empty user cache: download, check
  against the fingerprint, tokenizer read back;
- a second client build, from the cached copy;
- a client build with ``#language=NAME``: the model built here, checked against the server.

Also the size of the ``GET /language`` body. Results go to ``--out`` as ``results.json`` and
``results.md``.

    PYTHONPATH=src python benchmarks/public_side.py --out benchmarks/results/public_side
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from reprogram.blackbox.language import language_model, public_blob
from reprogram.blackbox.server import create_app, running_server
from reprogram.sources import build_source


def _timed(name: str) -> tuple[float, object]:
    start = time.perf_counter()
    source = build_source(name)
    seconds = time.perf_counter() - start
    source.endpoint.close()  # type: ignore[attr-defined]
    return seconds, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="minilm-l6")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    lm = build_source(args.source)
    model_fn, info = language_model(lm)
    body = len(public_blob(lm))  # type: ignore[arg-type]
    app = create_app(model_fn, info, public=functools.partial(public_blob, lm))  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as cache, running_server(app) as url:
        os.environ["REPROGRAM_CACHE"] = cache
        first, source = _timed(url)
        second, _ = _timed(url)
        named, _ = _timed(f"{url}#language={args.source}")
    rows = {
        "first client build (download)": first,
        "later client build (cached copy)": second,
        f"client build with #language={args.source} (the model built here)": named,
    }
    command = f"PYTHONPATH=src python benchmarks/public_side.py --out {args.out}"
    if args.source != "minilm-l6":
        command += f" --source {args.source}"
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": command, "machine": machine, "source": args.source,
              "body_bytes": body, "public_side": type(source.language).__name__,  # type: ignore[attr-defined]
              "seconds": rows}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# A served {args.source}'s public side: client build times", "",
             f"Command: `{command}`  ", f"Machine: {machine}; one run each, wall clock.  ",
             f"`GET /language` body: {body / 2**20:.1f} MiB.", "",
             "| client build | seconds |", "|---|---|",
             *(f"| {k} | {v:.2f} |" for k, v in rows.items())]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
