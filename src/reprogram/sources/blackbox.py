"""Black-box sources by name: ``onnx:PATH``, ``http://…``, ``https://…`` and ``query:NAME``.

Each builds a :class:`~reprogram.blackbox.source.BlackBoxSource` (queries counted, budget
enforced, answers cached) around an endpoint. The endpoint modules are imported only when such
a name is used, so a missing optional dependency gives a clear error instead of breaking
``reprogram list sources``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..blackbox.source import BlackBoxSource, query_source
from ..errors import ReprogramError
from . import SOURCES, build_source


def _endpoint_class(module: str, cls: str, what: str) -> Any:
    """``module.cls``, or a ReprogramError that says what is missing."""
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ReprogramError(
            f"{what} sources need {module}.{cls}, which cannot be imported here "
            f"({type(exc).__name__}: {exc}). Install the black-box extra "
            f"(pip install 'reprogram[blackbox]') or use a version of reprogram that has it."
        ) from None


@SOURCES.register(
    "onnx:", prefix=True, help="PATH an ONNX classifier run by ONNX Runtime, queried as a black box"
)
def build_onnx(path: str) -> Any:

    endpoint = _endpoint_class("reprogram.blackbox.onnx", "OnnxEndpoint", "onnx:")(path)
    return BlackBoxSource(endpoint, name=f"onnx:{path}")


def _build_http(url: str) -> Any:

    endpoint = _endpoint_class("reprogram.blackbox.http", "HttpEndpoint", "http(s)://")(url)
    return BlackBoxSource(endpoint, name=url)


@SOURCES.register(
    "http://",
    prefix=True,
    help="HOST:PORT a model served by `reprogram serve` (or the same API), queried over HTTP",
)
def build_http(rest: str) -> Any:
    return _build_http("http://" + rest)


@SOURCES.register(
    "https://", prefix=True, help="HOST/PATH the same API over TLS, queried as a black box"
)
def build_https(rest: str) -> Any:
    return _build_http("https://" + rest)


@SOURCES.register(
    "query:",
    prefix=True,
    help="NAME any source above answered as a black box in-process: probabilities only, "
    "every query counted (what --optimizer rgf|spsa-gc does to a white-box source)",
)
def build_query(name: str) -> Any:
    return query_source(build_source(name))


__all__ = ["build_http", "build_https", "build_onnx", "build_query"]
