"""The habits users expect of a Python library: a version, a logger, plots that leave pyplot be."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pytest
import torch

import reprogram
from reprogram.cli import main


def test_version_comes_from_the_package_metadata() -> None:
    try:
        expected = version("reprogram")
    except PackageNotFoundError:  # a source tree that was never installed
        expected = "0+unknown"
    assert reprogram.__version__ == expected


def test_cli_version_prints_the_library_and_torch_versions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"reprogram {reprogram.__version__} (torch {torch.__version__})"
