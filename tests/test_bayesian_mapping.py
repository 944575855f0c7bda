"""``blm`` and ``blm+`` (Bayesian-guided label mapping): the estimate, training, artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import Crash, CrashAt, tiny_config

from reprogram import fit, load_artifact
from reprogram.errors import ReprogramError
from reprogram.mappings import build_mapping
from reprogram.mappings.bayesian import BayesianMapping


def test_blm_counts_top1_answers_and_smooths_rare_labels() -> None:
    mapping, _ = build_mapping("blm", {"laplace": 1.0}, 4, 2)
    assert isinstance(mapping, BayesianMapping)
    # source label 0 answers class 0 three times; label 1 answers class 1 once; 2 and 3 never
    outputs = torch.tensor([[5.0, 0, 0, 0]] * 3 + [[0, 5.0, 0, 0]])
    y = torch.tensor([0, 0, 0, 1])
    counts = mapping.joint_counts(outputs, y)
    assert counts.tolist() == [[3, 0], [0, 1], [0, 0], [0, 0]]
    assert mapping.refit(outputs, y) == 2
    w = mapping.weight
    # P(t|s) = C / (row sum + λ): label 0 → class 0 with 3/4, label 1 → class 1 with 1/2;
    # each column then sums to one
    assert torch.allclose(w.sum(0), torch.ones(2))
    assert w[0, 0] == 1.0 and w[1, 1] == 1.0 and w[2].sum() == 0
    scores = mapping(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    assert scores.tolist() == [[1.0, 2.0]]
    # a constant added to every logit shifts every score alike (black boxes' centred logits)
    shifted = mapping(torch.tensor([[11.0, 12.0, 13.0, 14.0]]))
    assert torch.allclose(shifted - scores, torch.full((1, 2), 10.0))


def test_blm_plus_counts_top_k_probabilities_and_a_class_nobody_reached() -> None:
    mapping, _ = build_mapping("blm+", {"top_k": 2, "laplace": 0.0}, 3, 3)
    outputs = torch.log(torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]))
    y = torch.tensor([0, 1])
    counts = mapping.joint_counts(outputs, y)
    assert torch.allclose(counts, torch.tensor([[0.6, 0.2, 0], [0.3, 0.7, 0], [0, 0, 0]]))
    mapping.refit(outputs, y)
    assert torch.allclose(mapping.weight[:, 2], torch.full((3,), 1 / 3))  # class 2: uniform
    assert torch.allclose(mapping.weight.sum(0), torch.ones(3))
    # default k: 15% of the target classes, at least 1
    assert build_mapping("blm+", {}, 1000, 10)[0].top_k == 1
    assert build_mapping("blm+", {}, 1000, 100)[0].top_k == 15


@pytest.mark.parametrize("options", [{"laplace": -1}, {"top_k": -2}])
def test_blm_options_are_checked(options: dict[str, float]) -> None:
    with pytest.raises(ReprogramError, match="bad options for mapping 'blm'"):
        build_mapping("blm", options, 10, 2)


@pytest.mark.parametrize("name", ["blm", "blm+"])
def test_blm_trains_only_the_program_saves_and_resumes(tmp_path: Path, name: str) -> None:
    cfg = tiny_config(tmp_path, mapping=name, epochs=2)
    result = fit(cfg)
    m = result.metrics
    program = sum(p.numel() for p in result.model.program.parameters() if p.requires_grad)
    assert m["trainable_parameters"] == program  # the mapping has no gradient parameters
    changes = m["callbacks"]["bayesian_remap"]["changes"]
    assert [c["epoch"] for c in changes] == [1, 2]
    table = json.loads((Path(result.out) / "config.json").read_text())["mapping"]["table"]
    assert len(table) == 10 and len(table[0]["source_labels"]) == 3
    loaded, _ = load_artifact(result.out)
    assert torch.equal(loaded.mapping.weight, result.model.mapping.weight)
    # killed at the start of epoch 2, then resumed: the same weights as the run above
    with pytest.raises(Crash):
        fit(tiny_config(tmp_path, "again", mapping=name, epochs=2), callbacks=[CrashAt(2)])
    resumed = fit(tiny_config(tmp_path, "again", mapping=name, epochs=2, resume=True))
    assert torch.equal(resumed.model.mapping.weight, result.model.mapping.weight)
    assert resumed.metrics["test_accuracy"] == m["test_accuracy"]
