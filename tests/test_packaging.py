"""The habits users expect of a Python library: a version, a logger, plots that leave pyplot be."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

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


# --------------------------------------------------------------------------- logging
def test_import_adds_only_a_null_handler() -> None:
    """The library never configures the root logger; "reprogram" gets a NullHandler only."""
    code = (
        "import logging, reprogram\n"
        "assert logging.getLogger().handlers == [], logging.getLogger().handlers\n"
        "hs = logging.getLogger('reprogram').handlers\n"
        "assert [type(h) for h in hs] == [logging.NullHandler], hs\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_library_messages_go_through_the_reprogram_logger(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from reprogram.probe import fit_probe

    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat(6)
    f = torch.randn(len(y), 4, generator=g) + 2.0 * y[:, None]
    caplog.set_level(logging.INFO, logger="reprogram")
    fit_probe(f, y, f, y, 3, cs=(0.1, 1.0), verbose=True)
    lines = [r for r in caplog.records if r.name == "reprogram.probe"]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    assert lines[0].getMessage().startswith("C=0.1  val acc ")
    assert capsys.readouterr().err == ""  # nothing printed: the application decides


def test_the_command_shows_library_messages_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from reprogram.cli import _log_to_stderr

    log = logging.getLogger("reprogram.somewhere")
    with _log_to_stderr("fit"):
        log.info("converting once")
        log.warning("listening without a token")
        log.debug("not shown")
    log.info("after the command: not shown")
    assert capsys.readouterr().err == (
        "converting once\nreprogram fit: warning: listening without a token\n"
    )
    assert [type(h) for h in logging.getLogger("reprogram").handlers] == [logging.NullHandler]


def test_cli_serve_warning_reaches_the_user(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("fastapi")
    from reprogram.blackbox import server as server_module

    monkeypatch.setattr(server_module, "_run", lambda server: None)
    monkeypatch.delenv("REPROGRAM_API_TOKEN", raising=False)
    monkeypatch.delenv("REPROGRAM_SERVE_TOKEN", raising=False)
    argv = ["serve", "--source", "tiny-random-cnn", "--host", "0.0.0.0", "--port", "9"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "reprogram serve: warning: listening on 0.0.0.0 without a token" in err


# --------------------------------------------------------------------------- plots
PLOTS_LEAVE_PYPLOT_ALONE = """
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("pdf")  # what a user chose: fit() must leave it
import reprogram
from reprogram.diagnostics.v2s_bound import save_bound_png

out = Path(sys.argv[1])
config = reprogram.FitConfig(
    source="tiny-random-cnn", target="digits", program="resize-pad", mapping="linear",
    epochs=1, shots=5, seed=0, out=str(out / "run"), progress=False, plots=True,
)
reprogram.fit(config)
history = [{"epoch": e, "val_loss": 1.0 / e, "v2s_sw_distance": 0.1, "v2s_bound_term": 0.2 * e}
           for e in (1, 2)]
fake = SimpleNamespace(metrics={"history": history}, config={
    "target": {"class_names": ["a", "b"], "name": "t"}, "source": {"name": "s"}})
assert save_bound_png(fake, out / "bound.png")
assert "matplotlib.pyplot" not in sys.modules, "the plotting path imported pyplot"
assert matplotlib.get_backend() == "pdf", matplotlib.get_backend()
for name in ("run/program.png", "run/mapping.png", "bound.png"):
    assert (out / name).read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n", name
"""


def test_plots_leave_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    """fit(plots=True) draws on standalone Figures: no pyplot import, no backend switch."""
    proc = subprocess.run(
        [sys.executable, "-c", PLOTS_LEAVE_PYPLOT_ALONE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
