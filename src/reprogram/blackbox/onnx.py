"""ONNX black boxes: :func:`export_onnx` writes a source as a graph, :class:`OnnxEndpoint` runs one.

The exported graph takes pixels float32 ``[B, C, H, W]`` in ``[0, 1]`` (input ``pixels``,
dynamic batch) and returns probabilities float32 ``[B, K]`` (output ``probabilities``): the
source's normalisation and the softmax are inside the graph, so the file is a complete black box
that answers exactly what :class:`~reprogram.blackbox.protocol.QueryEndpoint` asks. The graph's
metadata props (``reprogram.name``, ``reprogram.input_shape``, ``reprogram.label_names``,
``reprogram.fingerprint``, ``reprogram.num_classes``, JSON where not a plain string) say what it
is; :class:`OnnxEndpoint` reads them back as its ``info``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReprogramError
from ..sources import Source
from .protocol import EndpointError, EndpointInfo
from .wire import check_pixels, check_probabilities

DEFAULT_OPSET = 18
FORMAT = "reprogram-onnx-v1"
INPUT, OUTPUT = "pixels", "probabilities"


def export_onnx(source: Any, path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``source`` (a :class:`~reprogram.sources.Source`) as an ONNX graph at ``path``.

    The graph maps ``pixels`` ``[B, C, H, W]`` in ``[0, 1]`` to ``probabilities`` ``[B, K]``
    (normalisation and softmax inside, ``B`` dynamic). The file is written atomically.

    Raises:
        ReprogramError: the model does not export (an operator ONNX lacks, …) or ``path``
            cannot be written.
    """
    import torch

    if not isinstance(source, Source):
        raise ReprogramError(f"export_onnx takes a Source, got {type(source).__name__}.")
    if source.mean_values is None or source.std_values is None:
        raise ReprogramError(
            f"{source.name} has no input normalisation (mean/std), which the ONNX metadata "
            f"records; export_onnx exports image sources."
        )
    path = Path(path)
    if path.is_dir():
        raise ReprogramError(f"{path} is a directory; give a file name such as model.onnx.")
    if not path.parent.is_dir():
        raise ReprogramError(f"{path.parent} does not exist; create it first.")

    class Probabilities(torch.nn.Module):
        def __init__(self, source: Source) -> None:
            super().__init__()
            self.source = source

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.source(pixels), dim=-1)

    graph = Probabilities(source).eval()
    example = torch.rand(2, *source.input_size, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1)
    try:
        # The exporter reports its progress on stdout; the command line has its own messages.
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_shapes={"pixels": {0: batch}},
                opset_version=opset,
                verbose=False,
            )
    except Exception as exc:  # noqa: BLE001 - any exporter failure is reported the same way
        raise ReprogramError(
            f"{source.name} does not export to ONNX opset {opset} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); try another --opset."
        ) from None
    assert program is not None
    meta = {
        "reprogram.format": FORMAT,
        "reprogram.name": source.name,
        "reprogram.input_shape": json.dumps(list(source.input_size)),
        "reprogram.num_classes": str(source.num_classes),
        "reprogram.label_names": json.dumps(list(source.label_names)),
        "reprogram.fingerprint": source.fingerprint(),
        "reprogram.mean": json.dumps(list(source.mean_values)),
        "reprogram.std": json.dumps(list(source.std_values)),
    }
    program.model.metadata_props.update(meta)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        program.save(str(tmp), external_data=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReprogramError(f"cannot write {path} ({exc}).") from None
    return path


class OnnxEndpoint:
    """A :class:`~reprogram.blackbox.protocol.QueryEndpoint` run by ONNX Runtime on the CPU.

    Args:
        path: an ONNX file from :func:`export_onnx` (or any graph with one input
            ``[B, C, H, W]`` and one output of probabilities ``[B, K]``; without our metadata
            the name is the file's stem and the fingerprint the file's SHA-256).
        threads: intra-op threads (default: ONNX Runtime's choice, all cores).

    Counters: ``calls`` and ``queries_answered`` (inputs answered).

    Raises:
        ReprogramError: the file is missing or not a usable ONNX graph.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ReprogramError(f"{self.path} is not a file; give an ONNX model (.onnx).")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
            raise ReprogramError(
                f"{self.path} cannot be loaded by ONNX Runtime ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})."
            ) from None
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ReprogramError(
                f"{self.path} has {len(inputs)} inputs and {len(outputs)} outputs; a black box "
                f"takes one input (pixels) and returns probabilities first."
            )
        self._input, self._output = inputs[0].name, outputs[0].name
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        self.info = self._read_info(meta, inputs[0].shape, outputs[0].shape)
        self.metadata = meta
        self._lock = threading.Lock()
        self.calls = 0
        self.queries_answered = 0

    def _read_info(self, meta: dict[str, str], in_shape: list[Any], out_shape: list[Any]) -> Any:
        try:
            if "reprogram.input_shape" in meta:
                shape = tuple(int(v) for v in json.loads(meta["reprogram.input_shape"]))
                names = tuple(str(v) for v in json.loads(meta.get("reprogram.label_names", "[]")))
                k = int(meta.get("reprogram.num_classes", len(names)))
                name = meta.get("reprogram.name", self.path.stem)
                fingerprint = meta.get("reprogram.fingerprint", "")
            else:
                shape = tuple(int(v) for v in in_shape[1:])
                k, names = int(out_shape[-1]), ()
                name = self.path.stem
                fingerprint = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except (TypeError, ValueError) as exc:
            raise ReprogramError(
                f"{self.path}: cannot tell its input shape and number of classes ({exc}); export "
                f"it with `reprogram export` or give the graph static [C, H, W] and K."
            ) from None
        if names and len(names) != k:
            raise ReprogramError(f"{self.path}: {len(names)} label names for {k} classes.")
        return EndpointInfo(
            name=name,
            input_shape=shape,
            num_classes=k,
            label_names=names,
            fingerprint=fingerprint,
        )

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities float32 ``[B, K]`` for pixels float32 ``[B, C, H, W]`` in ``[0, 1]``.

        Raises:
            ReprogramError: pixels of the wrong shape or outside ``[0, 1]``.
            EndpointError: the graph failed or did not answer probabilities.
        """
        x = np.ascontiguousarray(check_pixels(pixels, self.info.input_shape))
        if not len(x):
            return np.zeros((0, self.info.num_classes), dtype=np.float32)
        try:
            out = self._session.run([self._output], {self._input: x})[0]
            probs = check_probabilities(np.asarray(out), len(x), self.info.num_classes)
        except ValueError as exc:
            raise EndpointError(f"{self.path} did not answer probabilities: {exc}.") from None
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own hierarchy
            raise EndpointError(
                f"{self.path} failed on a batch of {len(x)} ({type(exc).__name__}: {exc})."
            ) from None
        with self._lock:
            self.calls += 1
            self.queries_answered += len(x)
        return probs

    def __repr__(self) -> str:
        return f"OnnxEndpoint({str(self.path)!r}, model={self.info.name!r})"


__all__ = ["DEFAULT_OPSET", "OnnxEndpoint", "export_onnx"]
