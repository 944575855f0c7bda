"""The black-box wire format and the checks both sides of it make.

Arrays travel as JSON objects ``{"shape": [...], "dtype": "float32" | "uint8", "data": B64}``
where ``B64`` is the base64 of the array's raw little-endian C-order bytes (about 4/3 of the
raw size, and far cheaper to make and read than JSON lists of floats). ``reprogram.blackbox.http``
(the client) and ``reprogram.blackbox.server`` (``reprogram serve``) share this module, and
``reprogram.blackbox.onnx`` uses its pixel and probability checks.

A binary encoding is the other choice (``Content-Type: application/octet-stream``): the body is
a safetensors file held in memory, ``{"pixels": [B, C, H, W]}`` float32 or uint8 for a request,
``{"probabilities": [B, K]}`` float32 (or ``{"indices": [B, k]}`` int64 and ``{"scores": [B, k]}``
float32 in top-k mode) for an answer, with the server's count in the ``X-Queries-Served``
header. No base64 and no JSON parsing of the payload: encoding and decoding are a copy. A
server that speaks it lists ``"safetensors"`` in ``/health``'s ``encodings``, and answers it
when the request's ``Accept`` header asks for ``application/octet-stream``.

A language model (``/health``'s ``kind`` is ``"language"``) takes rows instead of pixels:
float32 ``[B, T, D + 1]``, each position's input embedding ``[D]`` with the attention mask
(1 for a real position, 0 for right padding) as one more column, ``T`` at most the model's
``max_positions`` (``input_shape`` is ``[max_positions, D]``). It answers ``{"outputs": [B, K]}``
float32: pooled features or next-token logits as the model gives them (no distribution, so
they are checked for shape and finite values only). In binary bodies the tensors are named
``rows`` and ``outputs``.

The checks of what arrives raise ``ValueError`` with a message that says what was wrong, and the
caller decides what that means (422 on the server, a retry on the client);
:func:`check_pixels`, the check of a caller's own queries, raises :class:`ReprogramError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from typing import Any

import numpy as np

from ..errors import ReprogramError
from .protocol import EndpointInfo, dense_from_topk

TOKEN_ENV = "REPROGRAM_API_TOKEN"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"
#: What ``/health`` lists in ``encodings`` (``json`` is always there).
ENCODINGS = ("json", "safetensors")
SERVED_HEADER = "X-Queries-Served"
DTYPES: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "uint8": np.dtype("u1")}
PROB_TOLERANCE = 1e-3
#: ``EndpointInfo.kind`` of a language model (rows of embeddings in, features or logits out).
LANGUAGE = "language"
# JSON around the base64 string of a request body: shape, dtype, keys (generous upper bound).
BODY_OVERHEAD = 512


def resolve_token(token: str | None) -> str | None:
    """``token``, else ``$REPROGRAM_API_TOKEN``, else ``None`` (empty strings count as none)."""
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    return token or None


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """``{"shape", "dtype", "data"}`` for a float32 or uint8 ``array`` of any shape."""
    name = {np.dtype("float32"): "float32", np.dtype("uint8"): "uint8"}.get(array.dtype)
    if name is None:
        raise ValueError(f"only float32 and uint8 arrays travel; got {array.dtype}")
    raw = np.ascontiguousarray(array, dtype=DTYPES[name]).tobytes()
    return {"shape": list(array.shape), "dtype": name, "data": base64.b64encode(raw).decode()}


def request_body(pixels: np.ndarray) -> bytes:
    """The ``POST /predict`` body for ``pixels`` ``[B, C, H, W]`` (float32 or uint8).

    Built by hand around the base64 bytes: ``json.dumps`` of a 50 MB string costs more than
    the encoding itself.
    """
    name = "uint8" if pixels.dtype == np.uint8 else "float32"
    contiguous = np.ascontiguousarray(pixels, dtype=DTYPES[name])
    # an ndarray is a buffer; numpy's stubs declare its __buffer__ only for Python >= 3.12
    raw = memoryview(contiguous).cast("B")  # type: ignore[arg-type]  # no copy
    head = json.dumps({"shape": [int(v) for v in pixels.shape], "dtype": name})
    return b"".join(
        (head[:-1].encode(), b', "data": "', binascii.b2a_base64(raw, newline=False), b'"}')
    )


def max_inputs_per_body(
    max_body_bytes: int, input_shape: tuple[int, ...], itemsize: int, binary: bool = False
) -> int:
    """How many inputs fit in a request of at most ``max_body_bytes`` (may be 0); ``binary``:
    safetensors bytes instead of base64 JSON."""
    per_input = math.prod(input_shape) * itemsize
    room = max_body_bytes - BODY_OVERHEAD
    if room <= 0:
        return 0
    if binary:
        return room // per_input
    # 4 * ceil(n * per / 3) <= room  <=>  n * per <= 3 * floor(room / 4)
    return (3 * (room // 4)) // per_input


def binary_body(tensors: dict[str, np.ndarray]) -> bytes:
    """The safetensors bytes of ``tensors`` (C-order, little-endian)."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()})


def decode_binary(content: bytes | bytearray, names: set[str], what: str) -> dict[str, np.ndarray]:
    """The tensors of safetensors ``content``, which must hold exactly ``names``.

    Raises:
        ValueError: not a valid safetensors buffer (bad header, offsets outside the buffer,
            an unknown dtype), or other tensor names than ``names``.
    """
    from safetensors.numpy import load

    try:
        tensors = load(bytes(content))
    except Exception as exc:  # noqa: BLE001 - SafetensorError, or an unknown dtype
        raise ValueError(f"{what} is not valid safetensors ({exc})") from None
    if set(tensors) != names:
        raise ValueError(f"{what} must hold the tensors {sorted(names)}, got {sorted(tensors)}")
    return tensors


def binary_pixels(content: bytes | bytearray, key: str = "pixels") -> np.ndarray:
    """The ``key`` tensor (``pixels`` or a language model's ``rows``; float32 or uint8) of a
    binary ``/predict`` body (ValueError)."""
    pixels = decode_binary(content, {key}, "the request")[key]
    if pixels.dtype not in (DTYPES["float32"], DTYPES["uint8"]):
        raise ValueError(f"{key} must be float32 or uint8, got {pixels.dtype}")
    return pixels


def input_key(info: EndpointInfo) -> str:
    """The name of a binary request's tensor: ``rows`` (a language model) or ``pixels``."""
    return "rows" if info.kind == LANGUAGE else "pixels"


def check_rows(rows: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """``rows`` float32 ``[B, T, D + 1]`` for a language model of ``input_shape``
    ``(max_positions, D)``, after checking them (``ValueError`` says what is wrong).

    The last column is the attention mask: only 0 or 1, and at least one real position per row.
    """
    positions, width = int(input_shape[0]), int(input_shape[1])
    if rows.dtype != np.float32:
        raise ValueError(f"rows must be float32, got {rows.dtype}")
    if rows.ndim != 3 or rows.shape[2] != width + 1:
        raise ValueError(
            f"rows must have shape [B, T, {width + 1}] (each position's {width} embedding values "
            f"and its mask), got {list(rows.shape)}"
        )
    if not 1 <= rows.shape[1] <= positions:
        raise ValueError(f"rows take 1 to {positions} positions, these {rows.shape[1]}")
    if not np.isfinite(rows).all():
        raise ValueError("rows hold NaN or infinite values")
    mask = rows[..., -1]
    if not np.isin(mask, (0.0, 1.0)).all():
        raise ValueError(
            "the mask column (the last of each position) holds values other than 0 and 1"
        )
    if rows.shape[0] and not (mask.max(axis=1) == 1.0).all():
        raise ValueError("a row has no real position (its mask column is all 0)")
    return rows


def check_language_rows(rows: Any, input_shape: tuple[int, ...]) -> np.ndarray:
    """Caller-side :func:`check_rows` (:class:`ReprogramError`; a copy only if needed)."""
    try:
        return check_rows(np.asarray(rows, dtype=np.float32), input_shape)
    except (TypeError, ValueError) as exc:
        raise ReprogramError(f"language-model queries are invalid: {exc}.") from None


def check_outputs(outputs: np.ndarray, batch: int, num_outputs: int) -> np.ndarray:
    """A language model's answer float32 ``[batch, K]``: its shape and finite values."""
    if outputs.dtype != np.float32:
        raise ValueError(f"outputs must be float32, got {outputs.dtype}")
    if outputs.shape != (batch, num_outputs):
        raise ValueError(f"expected outputs [{batch}, {num_outputs}], got {list(outputs.shape)}")
    if not np.isfinite(outputs).all():
        raise ValueError("outputs hold NaN or infinite values")
    return outputs


def parse_binary_answer(content: bytes, batch: int, info: EndpointInfo) -> np.ndarray:
    """Probabilities (a language model: outputs) float32 ``[batch, K]`` from a binary answer
    (ValueError if invalid)."""
    if info.kind == LANGUAGE:
        outputs = decode_binary(content, {"outputs"}, "the answer")["outputs"]
        return check_outputs(outputs, batch, info.num_classes)
    if info.top_k:
        top = decode_binary(content, {"indices", "scores"}, "the answer")
        return check_topk(top["indices"], top["scores"], batch, info)
    probs = decode_binary(content, {"probabilities"}, "the answer")["probabilities"]
    if probs.dtype != np.float32:
        raise ValueError(f"probabilities must be float32, got {probs.dtype}")
    return check_probabilities(probs, batch, info.num_classes)


def decode_array(obj: Any, what: str) -> np.ndarray:
    """The array an ``{"shape", "dtype", "data"}`` object holds (read-only view of fresh bytes).

    Raises:
        ValueError: not such an object, unknown dtype, bad base64, or a byte count that does not
            match the shape.
    """
    if not isinstance(obj, dict) or not {"shape", "dtype", "data"} <= set(obj):
        raise ValueError(f"{what} must be an object with 'shape', 'dtype' and 'data'")
    shape, dtype, data = obj["shape"], obj["dtype"], obj["data"]
    if not isinstance(shape, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in shape
    ):
        raise ValueError(f"{what} shape must be a list of non-negative integers, got {shape!r}")
    if dtype not in DTYPES:
        raise ValueError(f"{what} dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if not isinstance(data, str):
        raise ValueError(f"{what} data must be a base64 string")
    try:
        # strict: only the base64 alphabet and correct padding (faster than b64decode's regex)
        raw = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} data is not valid base64 ({exc})") from None
    expected = math.prod(shape) * DTYPES[dtype].itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{what} data holds {len(raw)} bytes but shape {shape} of {dtype} needs {expected}"
        )
    return np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape)


def check_unit_range(x: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` unless every value of float ``x`` is finite and in ``[0, 1]``."""
    if x.size and not (float(x.min()) >= 0.0 and float(x.max()) <= 1.0):
        if not np.isfinite(x).all():
            raise ValueError(f"{what} hold NaN or infinite values")
        raise ValueError(
            f"{what} must lie in [0, 1]; they span [{float(x.min()):.4g}, {float(x.max()):.4g}]"
        )


def check_pixels(pixels: Any, input_shape: tuple[int, ...]) -> np.ndarray:
    """Caller-side check: float32 ``[B, *input_shape]`` in ``[0, 1]`` (a copy only if needed).

    Raises:
        ReprogramError: wrong rank or shape, non-finite values, values outside ``[0, 1]``.
    """
    try:
        x = np.asarray(pixels, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ReprogramError(f"black-box queries must be float arrays ({exc}).") from None
    if x.ndim != len(input_shape) + 1 or tuple(x.shape[1:]) != tuple(input_shape):
        raise ReprogramError(
            f"black-box queries must have shape [B, {', '.join(map(str, input_shape))}] (the "
            f"model's input shape); got {list(x.shape)}."
        )
    try:
        check_unit_range(x, "black-box query pixels")
    except ValueError as exc:
        raise ReprogramError(f"{exc}; clamp the program's output to [0, 1].") from None
    return x


def check_probabilities(probs: np.ndarray, batch: int, num_classes: int) -> np.ndarray:
    """``probs`` as float32 ``[batch, num_classes]`` after checking it is a distribution per row.

    Raises:
        ValueError: wrong shape, non-finite or negative values, or a row whose sum is off one
            by more than ``1e-3``.
    """
    if probs.shape != (batch, num_classes):
        raise ValueError(
            f"expected probabilities [{batch}, {num_classes}], got {list(probs.shape)}"
        )
    probs = probs.astype(np.float32, copy=False)
    if not np.isfinite(probs).all():
        raise ValueError("probabilities hold NaN or infinite values")
    if probs.size and float(probs.min()) < 0.0:
        raise ValueError(f"probabilities hold negative values (min {float(probs.min()):.4g})")
    sums = probs.sum(axis=1, dtype=np.float64)
    worst = float(np.abs(sums - 1.0).max()) if batch else 0.0
    if worst > PROB_TOLERANCE:
        raise ValueError(f"probability rows must sum to one; one is off by {worst:.4g}")
    return probs


def check_topk(indices: Any, scores: Any, batch: int, info: EndpointInfo) -> np.ndarray:
    """Dense float32 ``[batch, K]`` from a top-k answer after checking indices and scores."""
    try:
        idx = np.asarray(indices, dtype=np.int64)
        val = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"top-k indices and scores must be numeric lists ({exc})") from None
    k = info.top_k or (idx.shape[1] if idx.ndim == 2 else 0)
    if idx.shape != (batch, k) or val.shape != (batch, k):
        raise ValueError(
            f"expected top-k indices and scores [{batch}, {k}], got {list(idx.shape)} and "
            f"{list(val.shape)}"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= info.num_classes):
        raise ValueError(f"top-k indices must lie in [0, {info.num_classes})")
    if k > 1 and (np.diff(np.sort(idx, axis=1), axis=1) == 0).any():
        raise ValueError("top-k indices repeat a label within a row")
    if not np.isfinite(val).all() or (val.size and (val.min() < 0 or val.max() > 1)):
        raise ValueError("top-k scores must be finite and in [0, 1]")
    if batch and float(val.sum(axis=1).max()) > 1.0 + PROB_TOLERANCE:
        raise ValueError("top-k scores of a row sum to more than one")
    return dense_from_topk(idx, val, info.num_classes)


def parse_answer(content: bytes, batch: int, info: EndpointInfo) -> tuple[np.ndarray, int | None]:
    """Probabilities (a language model: outputs) float32 ``[batch, K]`` and the server's
    ``queries_served`` from a body.

    Raises:
        ValueError: the body is not JSON, lacks both ``probabilities`` and ``top_k``, or what it
            holds fails :func:`check_probabilities` / :func:`check_topk`.
    """
    try:
        payload = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"the answer is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    served = payload.get("queries_served")
    served = served if isinstance(served, int) and not isinstance(served, bool) else None
    if info.kind == LANGUAGE:
        if "outputs" not in payload:
            raise ValueError("the answer of a language model has no 'outputs'")
        outputs = decode_array(payload["outputs"], "outputs")
        return check_outputs(outputs, batch, info.num_classes), served
    if "probabilities" in payload:
        probs = decode_array(payload["probabilities"], "probabilities")
        if probs.dtype != np.float32:
            raise ValueError(f"probabilities must be float32, got {probs.dtype}")
        return check_probabilities(probs, batch, info.num_classes), served
    if "top_k" in payload:
        top = payload["top_k"]
        if not isinstance(top, dict) or not {"indices", "scores"} <= set(top):
            raise ValueError("top_k must be an object with 'indices' and 'scores'")
        return check_topk(top["indices"], top["scores"], batch, info), served
    raise ValueError("the answer has neither 'probabilities' nor 'top_k'")


__all__ = [
    "BINARY_TYPE",
    "BODY_OVERHEAD",
    "DTYPES",
    "ENCODINGS",
    "JSON_TYPE",
    "LANGUAGE",
    "SERVED_HEADER",
    "TOKEN_ENV",
    "binary_body",
    "binary_pixels",
    "check_language_rows",
    "check_outputs",
    "check_pixels",
    "check_probabilities",
    "check_rows",
    "check_topk",
    "check_unit_range",
    "decode_array",
    "decode_binary",
    "encode_array",
    "input_key",
    "max_inputs_per_body",
    "parse_answer",
    "parse_binary_answer",
    "request_body",
    "resolve_token",
]
