"""JSON (base64) against binary (safetensors) ``/predict`` bodies: encode, decode, end to end.

Times, for ``--batch`` float32 images of ``3 × --size × --size``:

- encoding the request body on the client (``request_body`` against ``binary_body``);
- decoding it on the server (``json.loads`` + ``decode_array`` against ``binary_pixels``);
- one ``HttpEndpoint`` call end to end over loopback (``reprogram serve``'s app in a thread of
  this process, answering a constant 1000-class distribution so that only the wire is timed),
  with ``wire="json"`` and ``wire="binary"``, one request per call.

Each figure is the median of ``--repeats`` runs after one warm-up, JSON and binary interleaved.
Results go to ``--out`` as ``results.json`` and ``results.md``.

    PYTHONPATH=src python benchmarks/wire_format.py --out benchmarks/results/wire_format
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprogram.blackbox.http import HttpEndpoint
from reprogram.blackbox.protocol import EndpointInfo
from reprogram.blackbox.server import create_app, running_server
from reprogram.blackbox.wire import binary_body, binary_pixels, decode_array, request_body

K = 1000


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(batch: int, size: int, repeats: int) -> dict[str, Any]:
    x = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    json_body, bin_body = request_body(x), binary_body({"pixels": x})
    out: dict[str, Any] = {
        "batch": batch,
        "size": size,
        "raw_bytes": x.nbytes,
        "json_body_bytes": len(json_body),
        "binary_body_bytes": len(bin_body),
    }
    for name, encode, decode in (
        ("json", lambda: request_body(x), lambda: decode_array(json.loads(json_body), "r")),
        ("binary", lambda: binary_body({"pixels": x}), lambda: binary_pixels(bin_body)),
    ):
        out[f"{name}_encode_s"] = median_seconds(encode, repeats)
        out[f"{name}_decode_s"] = median_seconds(decode, repeats)
    assert np.array_equal(decode_array(json.loads(json_body), "r"), binary_pixels(bin_body))

    info = EndpointInfo(name="constant", input_shape=(3, size, size), num_classes=K)
    app = create_app(lambda p: torch.full((len(p), K), 1.0 / K), info, max_batch=batch)
    with running_server(app) as url:
        eps = {
            w: HttpEndpoint(url, wire=w, max_batch=batch, concurrency=1) for w in ("json", "binary")
        }
        try:
            for ep in eps.values():
                ep(x)  # warm-up (connection, first allocation)
            times: dict[str, list[float]] = {w: [] for w in eps}
            for _ in range(repeats):
                for w, ep in eps.items():
                    start = time.perf_counter()
                    ep(x)
                    times[w].append(time.perf_counter() - start)
            for w in eps:
                out[f"{w}_end_to_end_s"] = statistics.median(times[w])
        finally:
            for ep in eps.values():
                ep.close()
    return out


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


def write(out: Path, result: dict[str, Any], command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    r, m = result["results"], result["machine"]

    def ms(key: str) -> str:
        return f"{1000 * r[key]:.0f} ms"

    def mb(key: str) -> str:
        return f"{r[key] / 1e6:.1f} MB"

    lines = [
        "# Wire format: JSON (base64) against binary (safetensors)",
        "",
        f"{r['batch']} float32 images of 3×{r['size']}×{r['size']} "
        f"({r['raw_bytes'] / 1e6:.1f} MB raw), median of {result['repeats']} runs "
        "after one warm-up.",
        "",
        "| | JSON + base64 | binary (safetensors) |",
        "|---|---|---|",
        f"| request body | {mb('json_body_bytes')} | {mb('binary_body_bytes')} |",
        f"| encode (client) | {ms('json_encode_s')} | {ms('binary_encode_s')} |",
        f"| decode (server) | {ms('json_decode_s')} | {ms('binary_decode_s')} |",
        f"| one call end to end, loopback | {ms('json_end_to_end_s')} | "
        f"{ms('binary_end_to_end_s')} |",
        "",
        "End to end: `reprogram serve`'s app in a thread of the same process, a model answering "
        "a constant 1000-class distribution (only the wire is timed), one request of all "
        "images per call.",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {m['platform']}, {m['cpus']} CPUs ({m['processor']}), load average "
        f"{', '.join(map(str, m['load_average']))} when it ended (a shared machine: read the "
        f"figures as rough), Python {m['python']}, numpy {m['numpy']}, torch {m['torch']}.",
        "",
    ]
    (out / "results.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/wire_format"))
    args = parser.parse_args()
    command = "PYTHONPATH=src python benchmarks/wire_format.py " + " ".join(sys.argv[1:])
    result = {
        "repeats": args.repeats,
        "results": measure(args.batch, args.size, args.repeats),
        "machine": machine(),
        "command": command,
    }
    write(args.out, result, command)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
