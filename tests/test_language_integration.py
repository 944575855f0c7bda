"""The real packaged all-MiniLM-L6-v2 reprogrammed for peptides (integration; a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reprogram import FitConfig, fit, load_artifact
from reprogram.data import load_target


@pytest.mark.integration
def test_minilm_soft_prompt_on_amp_tm_saves_and_reloads(tmp_path: Path) -> None:
    config = FitConfig(
        source="minilm-l6#depth=2",
        target="amp-tm",
        shots=8,
        program="soft-prompt",
        program_options={"length": 2},
        mapping="linear",
        mapping_options={"init": "probe"},
        epochs=1,
        out=str(tmp_path / "run"),
        progress=False,
        plots=False,
    )
    result = fit(config)
    metrics = result.metrics
    assert metrics["source_parameters"] < 22_713_216  # two of six blocks kept
    assert metrics["trainable_parameters"] == 2 * 384 + 384 * 2 + 2
    assert 0.0 <= metrics["test_roc_auc"] <= 1.0 and len(result.model.source.label_names) == 384
    loaded, config_json = load_artifact(tmp_path / "run")
    assert config_json["source"]["name"] == "minilm-l6#depth=2"
    x = load_target("amp-tm").test.x[:16]
    torch.testing.assert_close(loaded(x), result.model(x))
