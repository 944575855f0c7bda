"""``--accelerator``: which device trains, its clear errors, and what a run records.

This machine has no GPU, so the GPU path itself is exercised by
``benchmarks/gpu_check.py`` on a machine with one; here the choice, the errors and the
CPU run are checked, with ``torch.cuda`` patched where a GPU must seem present or absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import Crash, CrashAt, tiny_config
from torch import nn

from reprogram import FitConfig, fit
from reprogram import accelerator as acc
from reprogram.cli import main
from reprogram.errors import ReprogramError


def config(tmp_path: Path, name: str = "run", **kw: object) -> FitConfig:
    return tiny_config(tmp_path, name, **{"epochs": 2, "shots": 10, "seed": 1, **kw})


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(acc, "_mps_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_takes_the_gpu_only_when_there_is_one(
    monkeypatch: pytest.MonkeyPatch, no_gpu: None
) -> None:
    assert acc.resolve("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert acc.resolve("auto") == "cuda"
    assert acc.resolve("auto", blackbox=True) == "cpu"  # a black box answers on its own side
    assert acc.resolve("cpu") == "cpu"


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ReprogramError, match="'tpu' is not known; choose one of auto, cpu"):
        acc.resolve("tpu")
    with pytest.raises(ReprogramError, match="'gpu' is not known"):
        FitConfig(accelerator="gpu")


def test_a_gpu_asked_for_where_there_is_none_is_refused_before_any_work(
    tmp_path: Path, no_gpu: None
) -> None:
    with pytest.raises(ReprogramError, match="cuda: PyTorch sees no such device here"):
        config(tmp_path, accelerator="cuda")
    with pytest.raises(ReprogramError, match="mps: PyTorch sees no such device here"):
        config(tmp_path, accelerator="mps")
    assert not (tmp_path / "run").exists()


def test_a_black_box_refuses_an_explicit_gpu(one_gpu: None) -> None:
    with pytest.raises(ReprogramError, match=r"black-box source .* keep the program on the CPU"):
        acc.resolve("cuda", blackbox=True)


def test_devices_are_counted_against_the_gpus(tmp_path: Path, one_gpu: None) -> None:
    with pytest.raises(ReprogramError, match=r"--devices 2 .* GPUs \(1\); use --devices 1"):
        config(tmp_path, accelerator="cuda", devices=2)


def test_cpu_run_records_its_accelerator_and_returns_a_cpu_model(tmp_path: Path) -> None:
    result = fit(config(tmp_path, accelerator="cpu"))
    assert result.metrics["accelerator"] == "cpu"
    assert acc.module_device(result.model) == torch.device("cpu")
    x = torch.rand(3, 1, 8, 8)
    assert result.model.predict(x).device == torch.device("cpu")


def test_a_run_may_resume_on_another_accelerator(tmp_path: Path) -> None:
    """The device is not part of a run's signature: a CPU checkpoint resumes under auto."""
    with pytest.raises(Crash):
        fit(config(tmp_path, epochs=3, accelerator="cpu"), callbacks=[CrashAt(2)])
    resumed = fit(config(tmp_path, epochs=3, accelerator="auto", resume=True))
    assert resumed.metrics["epochs"] == 3


def test_module_device_and_to_model() -> None:
    assert acc.module_device(nn.ReLU()) == torch.device("cpu")  # no tensors: the CPU
    layer = nn.Linear(2, 2)
    a, b = acc.to_model(layer, torch.zeros(1), torch.ones(1))
    assert a.device == b.device == torch.device("cpu")


def test_cli_names_the_flag_and_the_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_gpu: None
) -> None:
    argv = ["fit", "--source", "tiny-random-cnn", "--target", "digits", "--epochs", "1"]
    code = main([*argv, "--quiet", "--accelerator", "cuda", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code != 0
    assert "--accelerator cuda" in err and "Use --accelerator cpu" in err
    assert "Traceback" not in err


def test_the_hint_says_whether_torch_lacks_cuda_or_the_gpu_is_hidden(
    monkeypatch: pytest.MonkeyPatch, no_gpu: None
) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ReprogramError, match="built without CUDA; install a CUDA build"):
        acc.resolve("cuda")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(ReprogramError, match="no GPU is visible: check nvidia-smi"):
        acc.resolve("cuda")
