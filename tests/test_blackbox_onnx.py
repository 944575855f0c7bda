"""ONNX black boxes: ``export_onnx`` / ``reprogram export`` and :class:`OnnxEndpoint`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from reprogram.blackbox import QueryEndpoint
from reprogram.blackbox.onnx import OnnxEndpoint, export_onnx
from reprogram.cli import main
from reprogram.errors import ReprogramError
from reprogram.sources import build_source


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny-random-cnn`` exported once for the module."""
    return export_onnx(build_source("tiny-random-cnn"), tmp_path_factory.mktemp("onnx") / "t.onnx")


def torch_probabilities(source: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(source(torch.from_numpy(x)), dim=-1).numpy()


def test_onnx_matches_torch_at_any_batch_size(tiny_onnx: Path) -> None:
    source = build_source("tiny-random-cnn")
    endpoint = OnnxEndpoint(tiny_onnx)
    assert isinstance(endpoint, QueryEndpoint)
    rng = np.random.default_rng(0)
    for batch in (1, 2, 7):
        x = rng.random((batch, 3, 32, 32), dtype=np.float32)
        got = endpoint(x)
        assert got.dtype == np.float32 and got.shape == (batch, 100)
        np.testing.assert_allclose(got, torch_probabilities(source, x), rtol=0, atol=1e-5)
    assert endpoint.queries_answered == 10 and endpoint.calls == 3
    assert endpoint(np.zeros((0, 3, 32, 32), np.float32)).shape == (0, 100)


def test_info_comes_from_the_graph_metadata(tiny_onnx: Path) -> None:
    source = build_source("tiny-random-cnn")
    info = OnnxEndpoint(tiny_onnx).info
    assert info.name == "tiny-random-cnn" and info.input_shape == (3, 32, 32)
    assert info.num_classes == 100 and info.label_names == tuple(source.label_names)
    assert info.fingerprint == source.fingerprint() and info.top_k == 0
    model = onnx.load(str(tiny_onnx))
    assert [i.name for i in model.graph.input] == ["pixels"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # the batch is dynamic


def test_a_graph_without_our_metadata(tiny_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    path = tmp_path / "foreign.onnx"
    onnx.save(model, str(path))
    info = OnnxEndpoint(path).info
    assert info.name == "foreign" and info.input_shape == (3, 32, 32) and info.num_classes == 100
    assert (
        info.label_names == () and info.fingerprint == hashlib.sha256(path.read_bytes()).hexdigest()
    )


def test_bad_files_and_pixels(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="is not a file"):
        OnnxEndpoint(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(ReprogramError, match="cannot be loaded"):
        OnnxEndpoint(tmp_path / "junk.onnx")
    endpoint = OnnxEndpoint(tiny_onnx)
    with pytest.raises(ReprogramError, match="shape"):
        endpoint(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(ReprogramError, match="lie in"):
        endpoint(np.full((1, 3, 32, 32), 1.5, np.float32))


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "--source", "tiny-random-cnn", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert f"onnx:{out}" in stdout and "probabilities [B, 100]" in stdout
    assert OnnxEndpoint(out).info.name == "tiny-random-cnn"
    assert not list(tmp_path.glob(".*.tmp"))
    assert main(["export", "--source", "tiny-random-cnn", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.integration
def test_efficientnet_lite0_at_224(tmp_path: Path) -> None:
    source = build_source("efficientnet-lite0")
    endpoint = OnnxEndpoint(export_onnx(source, tmp_path / "lite0.onnx"))
    assert endpoint.info.input_shape == (3, 224, 224) and endpoint.info.num_classes == 1000
    x = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    got, ref = endpoint(x), torch_probabilities(source, x)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(1), ref.argmax(1))
