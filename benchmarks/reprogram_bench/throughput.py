"""Queries per second through a black-box endpoint against the same model in process.

:func:`measure_throughput` times any endpoint (HTTP, ONNX, …) against an in-process function on
the same batches; :func:`loopback_throughput` sets up the usual comparison: ``reprogram serve``
on 127.0.0.1 (a child process, or a thread of this one) queried by
:class:`~reprogram.blackbox.http.HttpEndpoint`, against the source model called directly.

Run it from a checkout: ``PYTHONPATH=benchmarks python -m reprogram_bench.throughput --source
efficientnet-lite0 --batch 64``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from reprogram.errors import ReprogramError


def measure_throughput(
    endpoint: Any,
    in_process_fn: Callable[[np.ndarray], np.ndarray],
    *,
    batch: int = 64,
    repeats: int = 5,
    warmup: int = 1,
    seed: int = 0,
    chunk: int | None = None,
) -> dict[str, Any]:
    """Queries/s of ``endpoint`` and of ``in_process_fn`` on the same random batches.

    Args:
        endpoint: a :class:`~reprogram.blackbox.protocol.QueryEndpoint` (its ``info`` gives the
            input shape).
        in_process_fn: pixels float32 ``[B, C, H, W]`` → probabilities ``[B, K]``, the same
            model called directly.
        batch: inputs per call (one call = ``batch`` queries).
        repeats: timed calls of each; the two are interleaved so that load on a shared machine
            hits both alike. The median time per call is reported.
        warmup: untimed calls of each first.
        chunk: also time ``in_process_fn`` called on chunks of this many inputs (the request
            size the endpoint uses): on a CPU a smaller batch can be faster per input, and this
            keeps the comparison fair.
    Returns:
        ``endpoint_qps``, ``in_process_qps``, ``ratio`` (endpoint / in process), the per-call
        seconds of both, ``max_abs_diff`` between the two answers, the settings, and with
        ``chunk`` also ``in_process_chunked_qps`` and ``ratio_chunked``.
    """
    if batch < 1 or repeats < 1 or warmup < 0:
        raise ReprogramError("batch and repeats must be at least 1, warmup at least 0.")
    shape = tuple(endpoint.info.input_shape)
    x = np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)

    def chunked(x: np.ndarray) -> np.ndarray:
        assert chunk is not None
        return np.concatenate([in_process_fn(x[i : i + chunk]) for i in range(0, len(x), chunk)])

    for _ in range(warmup):
        endpoint(x)
        in_process_fn(x)
        if chunk:
            chunked(x)
    t_endpoint, t_local, t_chunked, diff = [], [], [], 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        got = endpoint(x)
        t_endpoint.append(time.perf_counter() - start)
        start = time.perf_counter()
        ref = in_process_fn(x)
        t_local.append(time.perf_counter() - start)
        diff = max(diff, float(np.abs(np.asarray(got) - np.asarray(ref)).max()))
        if chunk:
            start = time.perf_counter()
            chunked(x)
            t_chunked.append(time.perf_counter() - start)
    med_endpoint, med_local = statistics.median(t_endpoint), statistics.median(t_local)
    extra: dict[str, Any] = {}
    if chunk:
        med_chunked = statistics.median(t_chunked)
        extra = {
            "chunk": chunk,
            "in_process_chunked_qps": batch / med_chunked,
            "ratio_chunked": med_chunked / med_endpoint,
            "in_process_chunked_seconds": t_chunked,
        }
    return {
        "batch": batch,
        "repeats": repeats,
        "endpoint_qps": batch / med_endpoint,
        "in_process_qps": batch / med_local,
        "ratio": med_local / med_endpoint,
        "endpoint_seconds": t_endpoint,
        "in_process_seconds": t_local,
        "max_abs_diff": diff,
        **extra,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _child_server(source: str, token: str, max_batch: int) -> Iterator[str]:
    """``reprogram serve --source SOURCE`` in a child process on a free loopback port."""
    port = _free_port()
    env = dict(os.environ, REPROGRAM_API_TOKEN=token)
    argv = [sys.executable, "-m", "reprogram.cli", "serve", "--source", source]
    argv += ["--port", str(port), "--max-batch", str(max_batch)]
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 300
        while True:
            if child.poll() is not None:
                err = child.stderr.read().decode() if child.stderr else ""
                raise ReprogramError(f"the server exited early: {err.strip()[-500:]}")
            try:
                headers = {"Authorization": f"Bearer {token}"}
                if httpx.get(url + "/health", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ReprogramError("the server did not come up within 300 s")
            time.sleep(0.2)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def loopback_throughput(
    source: str = "efficientnet-lite0",
    *,
    batch: int = 64,
    repeats: int = 5,
    warmup: int = 1,
    server: str = "process",
    request_batch: int | None = None,
    concurrency: int = 4,
    wire_dtype: str = "float32",
    wire: str = "auto",
) -> dict[str, Any]:
    """HTTP over loopback vs in process for ``source`` at ``batch`` queries a call.

    Args:
        server: ``"process"`` (``reprogram serve`` in a child process, as deployed) or
            ``"thread"`` (a uvicorn thread in this process, sharing its GIL).
        request_batch: inputs per HTTP request (default: the whole batch in one request).
        concurrency, wire_dtype, wire: passed to :class:`~reprogram.blackbox.http.HttpEndpoint`
            (``wire``: ``"binary"`` safetensors bodies, ``"json"`` base64 JSON, ``"auto"``).
    Returns:
        :func:`measure_throughput`'s dict plus the settings and the torch thread count.
    """
    import torch

    from reprogram.blackbox.http import HttpEndpoint
    from reprogram.blackbox.server import create_app, running_server, source_model
    from reprogram.sources import build_source

    model_fn, info = source_model(build_source(source))

    def in_process(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model_fn(torch.from_numpy(x)).numpy()

    token = "throughput-bench"
    if server == "process":
        context = _child_server(source, token, max(batch, 256))
    elif server == "thread":
        context = running_server(create_app(model_fn, info, token=token, max_batch=max(batch, 256)))
    else:
        raise ReprogramError(f"server must be 'process' or 'thread', got {server!r}.")
    with (
        context as url,
        HttpEndpoint(
            url,
            token,
            max_batch=request_batch or batch,
            concurrency=concurrency,
            wire_dtype=wire_dtype,
            wire=wire,
            timeout=300,
            deadline=600,
        ) as endpoint,
    ):
        chunk = request_batch if request_batch and request_batch < batch else None
        result = measure_throughput(
            endpoint, in_process, batch=batch, repeats=repeats, warmup=warmup, chunk=chunk
        )
        result["http_stats"] = endpoint.stats()
    result.update(
        source=source,
        server=server,
        request_batch=request_batch or batch,
        concurrency=concurrency,
        wire_dtype=wire_dtype,
        wire="binary" if endpoint.binary else "json",
        torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
    )
    return result


def wire_overhead(
    input_shape: tuple[int, ...] = (3, 224, 224),
    *,
    batch: int = 64,
    repeats: int = 5,
    server: str = "thread",
    wire_dtype: str = "float32",
) -> dict[str, Any]:
    """Seconds per call of ``batch`` inputs through loopback HTTP to a model that does nothing.

    The server answers constant probabilities, so the time is the wire alone: encoding,
    transfer, the server's checks and decoding, the answer. ``server`` is ``"thread"`` only
    (a constant model cannot be named on ``reprogram serve``'s command line).
    """
    import torch

    from reprogram.blackbox.http import HttpEndpoint
    from reprogram.blackbox.protocol import EndpointInfo
    from reprogram.blackbox.server import create_app, running_server

    if server != "thread":
        raise ReprogramError("wire_overhead runs its constant model in a thread only.")
    info = EndpointInfo("constant", tuple(input_shape), 1000)  # type: ignore[arg-type]

    def constant(x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1000), 1e-3)

    app = create_app(constant, info, max_batch=max(batch, 256))
    x = np.random.default_rng(0).random((batch, *input_shape), dtype=np.float32)
    with running_server(app) as url, HttpEndpoint(url, wire_dtype=wire_dtype, timeout=300) as ep:
        ep(x)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            ep(x)
            seconds.append(time.perf_counter() - start)
    return {
        "input_shape": list(input_shape),
        "batch": batch,
        "wire_dtype": wire_dtype,
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="efficientnet-lite0")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--request-batch", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--wire-dtype", choices=("float32", "uint8"), default="float32")
    parser.add_argument(
        "--overhead-only", action="store_true", help="time the wire alone (a constant model)"
    )
    args = parser.parse_args(argv)
    if args.overhead_only:
        shape = tuple(build_source_shape(args.source))
        result = wire_overhead(
            shape, batch=args.batch, repeats=args.repeats, wire_dtype=args.wire_dtype
        )
        print(json.dumps(result, indent=2))
        return 0
    result = loopback_throughput(
        args.source,
        batch=args.batch,
        repeats=args.repeats,
        server=args.server,
        request_batch=args.request_batch,
        concurrency=args.concurrency,
        wire_dtype=args.wire_dtype,
    )
    print(json.dumps(result, indent=2))
    return 0


def build_source_shape(name: str) -> tuple[int, ...]:
    """The input shape ``(C, H, W)`` of source ``name``."""
    from reprogram.sources import build_source

    return tuple(build_source(name).input_size)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["loopback_throughput", "measure_throughput", "wire_overhead"]
