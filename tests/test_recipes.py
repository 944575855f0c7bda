"""``reprogram fit --recipe NAME``: named settings, command-line flags win, listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprogram.cli import _with_recipe, build_parser, main
from reprogram.recipes import RECIPES, command_line, default_recipe


def parse(*argv: str) -> object:
    parser = build_parser()
    words = ["fit", *argv]
    args = parser.parse_args(words)
    return _with_recipe(parser, words, args.recipe)


def test_recipe_fills_flags_and_the_command_line_wins(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--recipe", "ucr-whisper", "--target", "ucr:Coffee")
    assert args.source == "features:whisper-tiny.en#layers=all#pool=mean+std"
    assert (args.program, args.mapping, args.select) == ("sonify", "linear", "refit:1se")
    assert (args.epochs, args.lr) == (0, 0.001)
    assert args.mapping_opt == ["head=ridge", "side=minirocket"]
    assert "recipe ucr-whisper: --source" in capsys.readouterr().err  # what it stands for

    args = parse("--recipe", "ucr-whisper", "--epochs", "10", "--mapping-opt", "side=hydra")
    assert args.epochs == 10 and args.lr == 0.001
    assert args.mapping_opt == ["head=ridge", "side=minirocket", "side=hydra"]  # last wins

    # another mapping drops the recipe's mapping options, keeps its program options
    args = parse("--recipe", "ucr-whisper", "--mapping", "random")
    assert args.mapping == "random" and args.mapping_opt == []
    assert args.program_opt == ["raw=4"]
    args = parse("--recipe", "ucr-whisper", "--program", "waveform", "--program-opt", "fit=2")
    assert args.program_opt == ["fit=2"]


def test_every_recipe_names_only_fit_flags_and_lists() -> None:
    parser = build_parser()
    for entry in RECIPES:
        words = ["fit", *command_line(entry.builder())]
        parser.parse_args(words)  # each flag exists and takes the value given
        assert "bench" in entry.help or "demo" in entry.help  # says where it was measured


def test_a_target_kind_names_its_default_recipe(tmp_path: Path) -> None:
    assert default_recipe("forecast:ETTh1#stride=16") == "time-llm"
    assert default_recipe("forecast:/data/my.csv") == "time-llm"
    for target in ("amp", "b3db-scaffold", "solubility", "csv:/data/peptides.csv#alphabet=text"):
        assert default_recipe(target) == "warp", target
    assert default_recipe("ucr:Coffee") == "ucr-whisper"
    for target in ("fashion-mnist", "digits", "folder:/x#size=64", "cifar10"):
        assert default_recipe(target) == "vision-full", target
    # an npz file says from its array header (nothing loaded) whether it holds images or series
    import numpy as np

    np.savez(tmp_path / "im.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    np.savez(tmp_path / "se.npz", x_train=np.zeros((4, 1, 30)), y_train=np.arange(4),
             x_test=np.zeros((2, 1, 30)), y_test=np.arange(2))
    assert default_recipe(f"npz:{tmp_path / 'im.npz'}") == "vision-full"
    assert default_recipe(f"npz:{tmp_path / 'se.npz'}") == "ucr-whisper"
    (tmp_path / "bad.npz").write_text("not a zip")
    for target in (f"npz:{tmp_path / 'bad.npz'}", "npz:/x.npz", "no-such-target"):
        assert default_recipe(target) is None, target  # fit's own defaults, or its error


def test_fit_without_a_source_runs_the_targets_default_recipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sequence target given no --source runs warp (MiniLM's soft prompt), not the image
    model fit defaults to; flags given still win, and --source turns it off."""
    out = tmp_path / "amp"
    assert main(["fit", "--target", "amp-tm", "--shots", "2", "--epochs", "0", "--no-plots",
                 "--quiet", "--out", str(out)]) == 0
    assert "no --source given, so amp-tm runs recipe warp" in capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert (config["source"]["name"], config["program"]["name"]) == ("minilm-l6", "soft-prompt")
    assert config["recipe"] == "warp"  # the run says where its settings came from
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 0  # --epochs 0 won
    parser = build_parser()
    words = ["fit", "--target", "amp-tm", "--source", "minilm-l6", "--program", "text"]
    from reprogram.cli import _default_recipe

    assert _default_recipe(parser.parse_args(words), words) is None
    words = ["fit", "--target", "npz:/x.npz"]
    assert _default_recipe(parser.parse_args(words), words) is None


def test_unknown_recipe_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--recipe", "ucr-wisper", "--target", "digits"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'ucr-wisper'" in err and "Did you mean 'ucr-whisper'?" in err


def test_list_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "recipes", "v2s"]) == 0
    out = capsys.readouterr().out
    assert "reprogram fit --target TARGET --source whisper-tiny.en --program waveform" in out


@pytest.mark.integration
def test_ucr_whisper_recipe_runs_on_coffee(tmp_path: Path) -> None:
    """The recipe end to end on a real set (it trains no program: --epochs 0)."""
    out = tmp_path / "coffee"
    argv = ["fit", "--recipe", "ucr-whisper", "--target", "ucr:Coffee"]
    assert main([*argv, "--out", str(out), "--quiet", "--no-plots"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert m["best_epoch"] == 0 and m["splits"]["train"] == 28 and m["splits"]["test"] == 28
    assert m["test_accuracy"] >= 0.9  # MiniRocket alone scores 1.0 here; chance is 0.5
    assert config["mapping"]["options"]["side"] == "minirocket"


def test_the_demo_runs_the_vision_full_recipe_with_its_probe_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``reprogram demo`` trains what ``--recipe vision-full`` names (the vision bench's best
    reprogramming row): the linear mapping started from a probe, lr 0.001."""
    import reprogram

    seen: list[object] = []

    class Stop(Exception):
        pass

    def fake_fit(config: object) -> None:
        seen.append(config)
        raise Stop

    monkeypatch.setattr(reprogram, "fit", fake_fit)
    main(["demo", "--out", "unused", "--quiet"])  # stops at the stand-in fit
    config = seen[0]
    assert config.mapping_options == {"init": "probe"} and config.lr == 0.001  # type: ignore[attr-defined]
    assert (config.program, config.shots, config.epochs) == ("full", 100, 10)  # type: ignore[attr-defined]
    args = parse("--recipe", "vision-full", "--target", "fashion-mnist")
    assert args.mapping_opt == ["init=probe"] and args.lr == 0.001
    assert "started from a linear probe" in " ".join(capsys.readouterr().out.split())


def test_a_sequence_baseline_given_no_source_reads_the_language_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reprogram.cli import _default_baseline_source

    parser = build_parser()
    for method, source in (("finetune", "minilm-l6"), ("length", "efficientnet-lite0")):
        words = ["baseline", "--method", method, "--target", "amp-tm"]
        args = parser.parse_args(words)
        _default_baseline_source(args, words)
        assert args.source == source, method
    assert "finetune on the sequence target amp-tm reads minilm-l6" in capsys.readouterr().err
    words = ["baseline", "--method", "finetune", "--target", "amp-tm", "--source", "tiny-random-lm"]
    args = parser.parse_args(words)
    _default_baseline_source(args, words)
    assert args.source == "tiny-random-lm"
    words = ["baseline", "--method", "finetune", "--target", "digits"]  # images: unchanged
    args = parser.parse_args(words)
    _default_baseline_source(args, words)
    assert args.source == "efficientnet-lite0"
