"""The ``reprogram serve`` and ``reprogram export`` subcommands.

Kept apart from :mod:`reprogram.blackbox.server` and :mod:`reprogram.blackbox.onnx` so that
building the command-line parser imports neither FastAPI nor ONNX.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ReprogramError
from ..sources import build_source


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``export`` to the ``reprogram`` subparsers."""
    p = sub.add_parser(
        "serve",
        help="query-only HTTP API of a source model or a trained artifact",
        description=(
            "Serve a model as a black box: POST /predict answers probabilities for base64 "
            "pixel batches, GET /health describes the model. The token may also come from "
            "$REPROGRAM_API_TOKEN."
        ),
    )
    p.add_argument("dir", nargs="?", help="a trained artifact (serves target-class probabilities)")
    p.add_argument("--source", default=None, help="source model to serve (reprogram list sources)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", default=None, help="bearer token clients must send")
    p.add_argument("--top-k", type=int, default=0, help="answer only the K best labels")
    p.add_argument("--max-batch", type=int, default=256, help="most inputs per request")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("export", help="write a source model as an ONNX black box")
    p.add_argument("--source", required=True, help="source model (reprogram list sources)")
    p.add_argument("--out", required=True, help="ONNX file to write (e.g. model.onnx)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.set_defaults(func=cmd_export)


def cmd_serve(args: argparse.Namespace) -> int:
    """``reprogram serve --source NAME`` or ``reprogram serve DIR``."""
    if (args.dir is None) == (args.source is None):
        raise ReprogramError(
            "reprogram serve needs either --source NAME (a source model) or DIR (a trained "
            "artifact), not both and not neither."
        )
    if not 1 <= args.port <= 65535:
        raise ReprogramError(f"--port must lie in 1..65535, got {args.port}.")
    if args.max_batch < 1 or args.top_k < 0:
        raise ReprogramError("--max-batch must be at least 1 and --top-k at least 0.")
    from .server import artifact_model, serve, source_model  # lazy: fastapi, uvicorn

    if args.dir is not None:
        model_fn, info = artifact_model(args.dir)
    else:

        model_fn, info = source_model(build_source(args.source))
    if args.top_k > info.num_classes:
        raise ReprogramError(
            f"--top-k {args.top_k} exceeds the model's {info.num_classes} classes."
        )
    print(
        f"reprogram serve: {info.name} ({info.num_classes} classes, inputs "
        f"{list(info.input_shape)}) on http://{args.host}:{args.port} (Ctrl-C stops)"
    )
    serve(
        model_fn,
        info,
        host=args.host,
        port=args.port,
        token=args.token,
        max_batch=args.max_batch,
        top_k=args.top_k,
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``reprogram export --source NAME --out model.onnx``."""
    from .onnx import DEFAULT_OPSET, OnnxEndpoint, export_onnx  # lazy: onnx, onnxruntime

    source = build_source(args.source)
    path = export_onnx(source, Path(args.out), opset=args.opset or DEFAULT_OPSET)
    info = OnnxEndpoint(path).info
    print(
        f"{path}: {info.name}, pixels [B, {', '.join(map(str, info.input_shape))}] in [0, 1] → "
        f"probabilities [B, {info.num_classes}]; use it as --source onnx:{path}"
    )
    return 0


__all__ = ["add_commands", "cmd_export", "cmd_serve"]
