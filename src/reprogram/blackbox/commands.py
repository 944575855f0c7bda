"""The ``reprogram serve`` and ``reprogram export`` subcommands.

Kept apart from :mod:`reprogram.blackbox.server` and :mod:`reprogram.blackbox.onnx` so that
building the command-line parser imports neither FastAPI nor ONNX.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path

from ..errors import ReprogramError
from ..sources import build_source
from ..sources.language import LanguageSource
from .language import language_model, public_blob
from .wire import LANGUAGE

logger = logging.getLogger(__name__)

# The same names as reprogram.blackbox.server's (not imported here: that imports FastAPI).
SERVE_TOKEN_ENV = "REPROGRAM_SERVE_TOKEN"
API_TOKEN_ENV = "REPROGRAM_API_TOKEN"


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``export`` to the ``reprogram`` subparsers."""
    p = sub.add_parser(
        "serve",
        help="query-only HTTP API of a source model or a trained artifact",
        description=(
            "Serve a model as a black box: POST /predict answers probabilities for base64 "
            "pixel batches (a language model such as minilm-l6: features or logits for rows of "
            "token embeddings), GET /health describes the model. Give the bearer token with "
            f"--token-file or ${SERVE_TOKEN_ENV} (or ${API_TOKEN_ENV}); --token on the "
            "command line is visible to other users in `ps`."
        ),
    )
    p.add_argument("dir", nargs="?", help="a trained artifact (serves target-class probabilities)")
    p.add_argument("--source", default=None, help="source model to serve (reprogram list sources)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token clients must send (visible in `ps`: prefer --token-file or "
        f"${SERVE_TOKEN_ENV})",
    )
    p.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        help="read the bearer token from this file (its first line)",
    )
    p.add_argument("--top-k", type=int, default=0, help="answer only the K best labels")
    p.add_argument("--max-batch", type=int, default=256, help="most inputs per request")
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="close a connection whose request headers are not complete within S seconds "
        "(default 10)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="close a connection whose request body is not complete within S seconds of its "
        "headers (default 30; raise it for large batches over slow links)",
    )
    p.add_argument(
        "--write-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="drop a connection whose client stops reading its answer for S seconds (default 30)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=0,
        metavar="N",
        help="most open connections; past it the oldest stalled one is closed, or the new "
        "one refused (default 0: sized from the file-descriptor limit, `ulimit -n`)",
    )
    p.add_argument(
        "--max-inflight",
        type=int,
        default=16,
        metavar="N",
        help="most /predict requests read, queued or answered at once; more get 503 with "
        "Retry-After (default 16)",
    )
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("export", help="write a source model as an ONNX black box")
    p.add_argument("--source", required=True, help="source model (reprogram list sources)")
    p.add_argument("--out", required=True, help="ONNX file to write (e.g. model.onnx)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.set_defaults(func=cmd_export)


def serve_token(token: str | None, token_file: str | None) -> str | None:
    """The token ``reprogram serve`` guards with: ``--token-file``, ``--token`` (with a
    warning: the command line is visible in ``ps``), else ``None`` (the server then reads
    ``$REPROGRAM_SERVE_TOKEN``, then ``$REPROGRAM_API_TOKEN``)."""
    if token is not None and token_file is not None:
        raise ReprogramError("give the token once: --token or --token-file, not both.")
    if token is not None:
        logger.warning(
            "--token on the command line is visible to other users (ps, /proc, shell "
            "history); use --token-file PATH or $%s instead.",
            SERVE_TOKEN_ENV,
        )
        if not token.strip():
            raise ReprogramError("--token is empty.")
        return token
    if token_file is None:
        return None
    path = Path(token_file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReprogramError(f"--token-file {path}: cannot read it ({exc}).") from None
    lines = text.splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise ReprogramError(f"--token-file {path}: its first line is empty; write the token.")
    with_others = os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    if with_others:
        logger.warning(
            "--token-file %s can be read by other users (mode %o); `chmod 600 %s`.",
            path,
            stat.S_IMODE(os.stat(path).st_mode),
            path,
        )
    return value


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
    for flag, value in (
        ("--header-timeout", args.header_timeout),
        ("--body-timeout", args.body_timeout),
        ("--write-timeout", args.write_timeout),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ReprogramError(f"{flag} must be a positive number of seconds, got {value}.")
    if args.max_connections < 0 or args.max_inflight < 1:
        raise ReprogramError(
            "--max-connections must be at least 0 (0: from the file-descriptor limit) and "
            "--max-inflight at least 1."
        )
    token = serve_token(args.token, args.token_file)
    from .server import ConnectionLimits, artifact_model, serve, source_model  # lazy: fastapi

    public: Callable[[], bytes] | None = None  # a language model's public side
    if args.dir is not None:
        model_fn, info = artifact_model(args.dir)
    else:
        source = build_source(args.source)
        if isinstance(source, LanguageSource):  # rows of embeddings in, features/logits out
            model_fn, info = language_model(source)
            public = functools.partial(public_blob, source)  # GET /language
        else:
            model_fn, info = source_model(source)
    if args.top_k > info.num_classes:
        raise ReprogramError(
            f"--top-k {args.top_k} exceeds the model's {info.num_classes} classes."
        )
    if info.kind == LANGUAGE:
        what = (
            f"{info.num_classes} {info.output} for rows of up to {info.input_shape[0]} positions "
            f"of {info.input_shape[1]}-d embeddings; its tokenizer and input embeddings at "
            "GET /language"
        )
    else:
        what = f"{info.num_classes} classes, inputs {list(info.input_shape)}"
    print(f"reprogram serve: {info.name} ({what}) on http://{args.host}:{args.port} (Ctrl-C stops)")
    serve(
        model_fn,
        info,
        host=args.host,
        port=args.port,
        token=token,
        max_batch=args.max_batch,
        top_k=args.top_k,
        max_inflight=args.max_inflight,
        limits=ConnectionLimits(
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            write_timeout=args.write_timeout,
            max_connections=args.max_connections,
        ),
        public=public,
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


__all__ = ["add_commands", "cmd_export", "cmd_serve", "serve_token"]
