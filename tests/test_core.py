"""Programs, mappings, registries and the model wrapper, on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from reprogram.errors import ReprogramError
from reprogram.mappings import MAPPINGS, build_mapping
from reprogram.mappings.base import greedy_one_to_one
from reprogram.model import ReprogrammedModel
from reprogram.programs import build_program
from reprogram.sources import build_source

SOURCE = (3, 32, 32)


@pytest.mark.parametrize("name", ["border", "resize-pad", "full"])
def test_program_shapes_grey_to_rgb(name: str) -> None:
    program, _ = build_program(name, {}, (1, 8, 8), SOURCE)
    out = program(torch.rand(5, 1, 8, 8))
    assert out.shape == (5, 3, 32, 32)


def test_border_keeps_image_native_and_params_only_on_border() -> None:
    program, _ = build_program("border", {"canvas_size": 20}, (1, 8, 8), SOURCE)
    n_params = sum(p.numel() for p in program.parameters())
    assert n_params == 3 * (20 * 20 - 8 * 8)
    x = torch.rand(2, 1, 8, 8)
    out = program(x)
    # the image is placed unresized at the centre; the frame starts grey (tanh(0) → 0.5)
    assert torch.equal(out[:, 0, 6:14, 6:14], x[:, 0])
    assert torch.allclose(out[:, :, 0, 0], torch.full((2, 3), 0.5))


def test_masked_program_adds_nothing_under_the_image() -> None:
    program, _ = build_program(
        "resize-pad", {"canvas_size": 16, "inner_size": 8}, (3, 8, 8), SOURCE
    )
    with torch.no_grad():
        program.delta.normal_()
    pattern = program.pattern()
    assert torch.count_nonzero(pattern[:, 4:12, 4:12]) == 0
    assert torch.all(pattern[:, 0, :] > 0)  # sigmoid of anything is positive on the border


def test_program_gradient_reaches_only_its_parameters() -> None:
    program, _ = build_program("resize-pad", {"canvas_size": 16}, (1, 8, 8), SOURCE)
    program(torch.rand(2, 1, 8, 8)).sum().backward()
    assert program.delta.grad is not None and torch.all(program.delta.grad != 0)


def test_full_program_covers_every_pixel() -> None:
    program, _ = build_program("full", {"canvas_size": 12}, (1, 8, 8), SOURCE)
    assert sum(p.numel() for p in program.parameters()) == 3 * 12 * 12


def test_canvas_defaults_to_source_input_size() -> None:
    program, _ = build_program("resize-pad", {}, (1, 8, 8), (3, 48, 48))
    assert program.canvas == 48 and program.inner == (36, 36)


@pytest.mark.parametrize(
    ("name", "options", "shape", "message"),
    [
        ("full", {"inner_size": 4}, (1, 8, 8), "omit inner_size"),
        ("border", {"canvas_size": 6}, (1, 8, 8), "does not fit"),
        ("border", {}, (2, 8, 8), "channels"),
        ("border", {}, (1, 50), "series-image"),
        ("border", {"canvas_size": 0}, (1, 8, 8), "positive"),
        ("border", {"size": 3}, (1, 8, 8), "has no option size"),
    ],
)
def test_program_errors(name: str, options: dict, shape: tuple, message: str) -> None:
    with pytest.raises(ReprogramError, match=message):
        build_program(name, options, shape, SOURCE)


def test_greedy_one_to_one_takes_largest_counts_first() -> None:
    counts = torch.tensor([[5.0, 9.0, 0.0], [1.0, 8.0, 2.0]])
    # class 0 takes label 1 (9); class 1 cannot, so takes its best remaining, label 2 (2)
    assert greedy_one_to_one(counts).tolist() == [1, 2]


def test_frequency_mapping_calibrates_and_reports_changes() -> None:
    mapping, _ = build_mapping("ilm", {}, 5, 2)
    assert mapping.remap == "every_epoch"
    assert mapping.calibrate(torch.tensor([[0.0, 0, 3, 0, 0], [4.0, 0, 0, 0, 0]])) == 2
    assert mapping.index.tolist() == [2, 0]
    logits = torch.arange(10.0).view(2, 5)
    assert torch.equal(mapping(logits), logits[:, [2, 0]])
    assert mapping.calibrate(torch.tensor([[0.0, 0, 3, 0, 0], [0.0, 0, 0, 0, 4]])) == 1
    flm, _ = build_mapping("flm", {}, 5, 2)
    assert flm.remap == "once"


def test_random_mapping_groups_are_disjoint_and_seeded() -> None:
    a, _ = build_mapping("random", {"labels_per_class": 3, "seed": 1}, 20, 4)
    b, _ = build_mapping("random", {"labels_per_class": 3, "seed": 1}, 20, 4)
    c, _ = build_mapping("random", {"labels_per_class": 3, "seed": 2}, 20, 4)
    assert a.groups.shape == (4, 3)
    assert len(set(a.groups.flatten().tolist())) == 12
    assert torch.equal(a.groups, b.groups) and not torch.equal(a.groups, c.groups)
    scores = a(torch.randn(6, 20))
    assert scores.shape == (6, 4) and torch.all(scores <= 0)
    with pytest.raises(ReprogramError, match="lower labels_per_class"):
        build_mapping("random", {"labels_per_class": 10}, 20, 4)


def test_linear_mapping_table_names_top_labels() -> None:
    mapping, _ = build_mapping("linear", {}, 4, 2)
    with torch.no_grad():
        mapping.linear.weight.copy_(torch.tensor([[0.0, 3, 1, 2], [5.0, 0, 0, 0]]))
    table = mapping.table(["a", "b", "c", "d"], top=2)
    assert table[0]["source_labels"] == ["b", "d"] and table[1]["source_labels"][0] == "a"


def test_registry_suggests_close_names_and_converts_options() -> None:
    with pytest.raises(ReprogramError, match="Did you mean 'linear'"):
        MAPPINGS.get("linaer")
    config = MAPPINGS.build_config("random", {"labels_per_class": "4"})
    assert config.labels_per_class == 4
    with pytest.raises(ReprogramError, match="not a valid int"):
        MAPPINGS.build_config("random", {"labels_per_class": "four"})
    with pytest.raises(ReprogramError, match="needs something after"):
        build_source("timm:")


def test_model_keeps_source_frozen_and_in_eval_mode(capsys: pytest.CaptureFixture[str]) -> None:
    source = build_source("tiny-random-cnn")
    program, _ = build_program("resize-pad", {}, (1, 8, 8), source.input_size)
    mapping, _ = build_mapping("linear", {}, source.num_classes, 3)
    model = ReprogrammedModel(source, program, mapping).train()
    assert model.program.training and not model.source.training
    assert not any(m.training for m in model.source.modules())
    assert all(not p.requires_grad for p in model.source.parameters())
    assert model.trainable_parameters() == program.delta.numel() + 100 * 3 + 3
    assert set(model.adapter_state_dict()) == {
        "program.delta",
        "mapping.linear.weight",
        "mapping.linear.bias",
    }
    model.print_trainable_parameters()
    assert "trainable params: " in capsys.readouterr().out
    assert model(torch.rand(4, 1, 8, 8)).shape == (4, 3)


def test_top1_by_class_reports_the_most_frequent_source_label() -> None:
    from reprogram.cli import top1_by_class
    from reprogram.data import Split

    source = build_source("tiny-random-cnn")
    program, _ = build_program("resize-pad", {}, (1, 8, 8), source.input_size)
    mapping, _ = build_mapping("linear", {}, source.num_classes, 2)
    model = ReprogrammedModel(source, program, mapping).eval()
    x = torch.rand(6, 1, 8, 8)
    split = Split(x, torch.tensor([0, 0, 0, 1, 1, 1]))
    top = model.source_logits(x).argmax(-1)
    rows = top1_by_class(model, split)
    for c, (label, share) in enumerate(rows):
        picks = top[3 * c : 3 * c + 3].tolist()
        assert label in {source.label_names[i] for i in picks}
        assert share == max(picks.count(i) for i in picks) / 3
