"""Sequence targets, language sources and token programs (tiny random models; fast)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from reprogram import FitConfig, fit, load_artifact
from reprogram.data import load_target
from reprogram.data.sequences import (
    AMINO_ACIDS,
    decode,
    deduplicate,
    encode,
    lengths,
    sequence_batch,
)
from reprogram.errors import DataError, ReprogramError
from reprogram.model import ReprogrammedModel
from reprogram.sources import build_source
from reprogram.sources.language import TokenInputs
from reprogram.tasks import task_of

# ------------------------------------------------------------------ encoding


def test_encode_pads_with_zero_and_decodes_back() -> None:
    x = encode(["ACD", "K", "WYVA"], list(AMINO_ACIDS), "t")
    assert x.shape == (3, 4) and x.dtype == torch.long
    assert x[1].tolist() == [AMINO_ACIDS.index("K") + 1, 0, 0, 0]
    assert lengths(x).tolist() == [3, 1, 4]
    assert decode(x, list(AMINO_ACIDS)) == ["ACD", "K", "WYVA"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["ACD", "AXC"], "row 2: 'X' \\(position 2\\) is not in the target's alphabet"),
        (["ACD", ""], "row 2: the sequence is empty"),
        (["ACD", "   "], "row 2: the sequence is empty"),
    ],
)
def test_encode_names_the_bad_row(rows: list[str], message: str) -> None:
    with pytest.raises(DataError, match=message):
        encode(rows, list(AMINO_ACIDS), "peptides.csv")


def test_sequence_batch_keeps_longer_than_trained_with_a_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert sequence_batch(["AC"], list(AMINO_ACIDS), 5, "new").shape == (1, 5)
    assert capsys.readouterr().err == ""
    x = sequence_batch(["AC", "ACDEFG"], list(AMINO_ACIDS), 5, "new")
    assert x.shape == (2, 6) and lengths(x).tolist() == [2, 6]
    assert "1 sequence(s) (row(s) 2) are longer than the longest training sequence (5" in (
        capsys.readouterr().err
    )


def test_deduplicate_drops_repeats_and_conflicts() -> None:
    seqs, labels, removed = deduplicate(["AA", "CC", "AA", "DD", "DD", "EE"], [1, 0, 1, 0, 1, 1])
    assert seqs == ["AA", "CC", "EE"] and labels == [1, 0, 1]
    assert removed == {"duplicates": 1, "conflicting": 1}


# ------------------------------------------------------------------ packaged targets


def test_amp_is_deduplicated_and_split_once() -> None:
    data = load_target("amp")
    assert data.modality == "sequence" and data.vocabulary == list(AMINO_ACIDS)
    assert data.class_names == ["UniProt", "AMP"]
    assert len(data.train) + len(data.test) == 4620  # 5,200 rows less repeats and conflicts
    assert len(data.test) == 924
    train = set(decode(data.train.x, data.vocabulary))
    test = set(decode(data.test.x, data.vocabulary))
    assert not train & test  # no sequence on both sides
    assert "length" in data.info["caveat"]


def test_small_peptide_sets_load() -> None:
    assert len(load_target("amp-tm").test) == 82
    acp = load_target("acp")
    assert acp.class_names == ["TM", "ACP"] and len(acp.train) + len(acp.test) == 826


def test_b3db_drops_unparsable_smiles_and_splits_by_scaffold() -> None:
    pytest.importorskip("rdkit")
    from rdkit.Chem.Scaffolds import MurckoScaffold

    random_split = load_target("b3db")
    scaffold = load_target("b3db-scaffold")
    for data in (random_split, scaffold):
        assert len(data.train) + len(data.test) == 7805
        assert data.class_names == ["BBB-", "BBB+"]

    def scaffolds(x: torch.Tensor) -> set[str]:
        return {
            MurckoScaffold.MurckoScaffoldSmiles(smiles=s, includeChirality=False)
            for s in decode(x, scaffold.vocabulary or [])
        }

    assert not scaffolds(scaffold.train.x[:500]) & scaffolds(scaffold.test.x[:500])


# ------------------------------------------------------------------ csv:PATH


def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return f"csv:{path}"


def test_csv_target_with_split_column(tmp_path: Path) -> None:
    rows = ["sequence,label,split"]
    rows += [f"{'AC' * (i % 3 + 1)},pos,train" for i in range(6)]
    rows += [f"{'DE' * (i % 3 + 1)},neg,train" for i in range(6)]
    rows += ["ACAC,pos,test", "DEDE,neg,Testing", "ACA,pos,val", "DED,neg,validation"]
    data = load_target(_csv(tmp_path / "p.csv", "\n".join(rows) + "\n"))
    assert data.class_names == ["neg", "pos"] and data.vocabulary == list(AMINO_ACIDS)
    assert (len(data.train), len(data.test)) == (12, 2)  # testing/validation: their splits
    assert data.val is not None and len(data.val) == 2


def test_csv_target_infers_a_text_alphabet(tmp_path: Path) -> None:
    text = "sequence,label\n" + "".join(f"hello {i},{i % 2}\n" for i in range(10))
    data = load_target(_csv(tmp_path / "t.csv", text))
    assert data.info["alphabet"] == "text" and " " in (data.vocabulary or [])
    assert data.class_names == ["0", "1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seq,label\nAC,1\n", "lacks the column\\(s\\) sequence"),
        ("sequence,label\nAC,0.5\nCD,1.25\n", "numbers with decimals.*#task=regression"),
        ("sequence,label\nAC,1\n,0\n", "row 2: the sequence is empty"),
        ("sequence,label\nAC,\n", "row 1: the label is empty"),
        ("sequence,label,split\nAC,1,train\nCD,0,holdout\n", "row 2: split is 'holdout'"),
        ("sequence,label\nAC,1\nCD,1\n", "every row has label '1'"),
        ("sequence,label\nAC,1\nCD,nan\n", "row 2: the label is 'nan', which reads as missing"),
        ("sequence,label\nACD,1\nC DE,0\n", "row 2: the sequence holds whitespace at position 2"
         ".*plain text.*#alphabet=text"),
        ("sequence,label\n", "has a header but no rows"),
        ("sequence|label\nAC|1\n", "separated by '\\|': use commas, semicolons or tabs"),
        ("sequence,label,split\nAC,1,train\nCD,0,train\nEF,2,test\n",
         "class\\(es\\) '2' appear in the val or test rows but never in split=train"),
    ],
)
def test_csv_target_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_target(_csv(tmp_path / "bad.csv", text))


@pytest.mark.parametrize("sep", [";", "\t"])
def test_csv_target_reads_semicolons_and_tabs(tmp_path: Path, sep: str) -> None:
    text = f"sequence{sep}label\n" + "".join(f"{'AC' * (i + 1)}{sep}{i % 2}\n" for i in range(8))
    data = load_target(_csv(tmp_path / "ok.csv", text))
    assert data.class_names == ["0", "1"] and len(data.train) + len(data.test) == 8


def test_csv_target_reads_what_users_write_and_says_what_it_assumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a BOM, spaced and capitalised column names, 1 and 1.0 as one class
    text = "\ufeffSequence , Label\n" + "".join(
        f"{'AC' * (i + 1)},{'1.0' if i % 4 == 1 else i % 2}\n" for i in range(12))
    data = load_target(_csv(tmp_path / "ok.csv", text))
    assert data.class_names == ["0", "1"] and data.info["alphabet"] == "protein"
    assert capsys.readouterr().err == ""
    # one odd symbol switches to the text alphabet, and the user is told; repeats are noted
    text = "sequence,label\n" + "".join(f"{'AC' * (i % 3 + 1)},{i % 2}\n" for i in range(6))
    data = load_target(_csv(tmp_path / "odd.csv", text + "ACX,1\n"))
    err = capsys.readouterr().err
    assert data.info["alphabet"] == "text" and "'X' (row(s) 7) are no amino acids" in err
    assert "#alphabet=protein" in err and "3 row(s) repeat an earlier sequence" in err


def test_csv_smiles_alphabet_checks_each_molecule(tmp_path: Path) -> None:
    pytest.importorskip("rdkit")
    text = "sequence,label\nCCO,1\nc1ccccc1,0\nC1CC,1\n"
    with pytest.raises(DataError, match="row 3: 'C1CC' is not a valid SMILES"):
        load_target(_csv(tmp_path / "m.csv", text) + "#alphabet=smiles")
    with pytest.raises(DataError, match="options are #alphabet"):
        load_target(_csv(tmp_path / "m.csv", text) + "#kind=smiles")
    from reprogram.baselines.sequence import MoleculeFeatures

    data = load_target(_csv(tmp_path / "m.csv", text))  # the alphabet guessed: nothing checked
    with pytest.raises(DataError, match=r"'C1CC' is not a valid SMILES.*#alphabet=smiles"):
        MoleculeFeatures(list(data.vocabulary or []), "morgan")(data.train.x)


# ------------------------------------------------------------------ language sources


def test_source_options_after_hash() -> None:
    src = build_source("tiny-random-lm#depth=1")
    assert src.name == "tiny-random-lm#depth=1"
    assert len(src.module.encoder.layer) == 1
    assert src.outputs == "features" and src.input_size == (256, 16)
    with pytest.raises(ReprogramError, match="has no option colour"):
        build_source("tiny-random-lm#colour=red")
    with pytest.raises(ReprogramError, match="the model has 2 blocks"):
        build_source("tiny-random-lm#depth=5")
    with pytest.raises(ReprogramError, match="key=value"):
        build_source("tiny-random-lm#depth")


def test_causal_source_reads_the_last_real_position() -> None:
    src = build_source("tiny-random-causal-lm")
    assert src.outputs == "logits" and src.num_classes == len(src.tokenizer)
    ids = torch.tensor([[5, 6, 7], [5, 6, 0]])
    table = src.embedding_matrix()
    out = src(TokenInputs(table[ids], (ids != 0).long()))
    alone = src(TokenInputs(table[ids[1:, :2]], torch.ones(1, 2, dtype=torch.long)))
    torch.testing.assert_close(out[1:], alone, atol=1e-5, rtol=1e-5)  # padding ignored


@pytest.mark.parametrize("name", ["tiny-random-lm", "tiny-random-causal-lm"])
def test_bf16_precision_autocasts_the_frozen_model_only(name: str) -> None:
    full = build_source(name)
    half = build_source(f"{name}#precision=bf16")
    assert half.name == f"{name}#precision=bf16"  # the name rebuilds it: eval and predict too
    assert all(p.dtype == torch.float32 for p in half.module.parameters())
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    mask = (ids != 0).long()
    outs = []
    for src in (full, half):
        embeds = src.embedding_matrix()[ids].clone().requires_grad_(True)
        out = src(TokenInputs(embeds, mask))
        out.square().sum().backward()
        assert out.dtype == torch.float32 and embeds.grad is not None
        outs.append((out.detach(), embeds.grad))
    (a, ga), (b, gb) = outs
    assert not torch.equal(a, b)  # bf16 really ran
    assert (b - a).norm() / a.norm() < 0.05 and (gb - ga).norm() / ga.norm() < 0.1
    states = half.with_positions(2)(TokenInputs(half.embedding_matrix()[ids], mask))
    assert states.dtype == torch.float32 and states.shape == (2, 2, 16)
    with pytest.raises(ReprogramError, match="precision must be one of fp32, bf16"):
        build_source(f"{name}#precision=fp16")


def test_language_source_refuses_plain_tensors() -> None:
    with pytest.raises(ReprogramError, match="reads token embeddings from a token program"):
        build_source("tiny-random-lm")(torch.zeros(2, 3))


# ------------------------------------------------------------------ token programs

VOCAB = list(AMINO_ACIDS)


def _model(
    program: str,
    source: str = "tiny-random-lm",
    *,
    mapping: str = "linear",
    mapping_options: dict[str, object] | None = None,
    **options: object,
) -> ReprogrammedModel:
    """A two-class model over ``VOCAB`` (inputs ``[batch, 6]``); ``options`` go to the program."""
    return ReprogrammedModel.build(
        source,
        input_shape=(6,),
        class_names=["neg", "pos"],
        program=program,
        mapping=mapping,
        program_options=dict(options),
        mapping_options=mapping_options,
        vocabulary=VOCAB,
    )


def test_token_programs_read_longer_rows_up_to_the_source_positions() -> None:
    """Trained on 6 symbols, a program reads longer rows (predict keeps them) until the
    source runs out of positions, which is refused by name instead of failing inside it."""
    model = _model("soft-prompt", length=2)
    limit = model.program.source_positions  # 256 for the tiny LM
    a, z = len(model.program.before) + 2, len(model.program.after)
    fits = torch.ones(1, limit - a - z, dtype=torch.long)
    assert model(fits).shape == (1, 2)
    with pytest.raises(DataError, match=f"takes at most {limit}: score sequences of at most "
                       f"{limit - a - z} symbols"):
        model(torch.ones(1, limit - a - z + 1, dtype=torch.long))


def test_text_program_spells_like_the_tokenizer() -> None:
    model = _model("text")
    src = model.source
    ids = encode(["ACD", "KW"], VOCAB, "t")
    out = model.program(ids)
    assert out.embeds.shape == (2, 5, 16)  # [CLS] + 3 symbols + [SEP]
    assert out.mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    expected = src.tokenizer(" ".join("KW"))["input_ids"]  # [CLS] K W [SEP]
    table = src.embedding_matrix()
    torch.testing.assert_close(out.embeds[1, :4], table[expected])
    assert model.trainable_parameters() == 16 * 2 + 2  # the linear mapping only


def test_dictionary_starts_at_the_text_program_and_trains() -> None:
    text, dictionary = _model("text"), _model("dictionary", atoms=40)
    ids = encode(["ACD", "KWY"], VOCAB, "t")
    torch.testing.assert_close(dictionary.program(ids).embeds, text.program(ids).embeds)
    theta = dictionary.program.theta
    assert theta.shape == (20, 40) and dictionary.program.atoms.numel() == 40
    with torch.no_grad():  # the linear mapping starts at zero: no gradient passes it yet
        for p in dictionary.mapping.parameters():
            p.normal_()
    dictionary(ids).sum().backward()
    assert theta.grad is not None and theta.grad.abs().sum() > 0
    assert all(p.grad is None for p in dictionary.source.parameters())


def test_dictionary_k_sparse_keeps_k_coefficients() -> None:
    model = _model("dictionary", atoms=40, k=2)
    with torch.no_grad():
        model.program.theta.normal_()
    assert int((model.program.coefficients() != 0).sum(1).max()) == 2


def test_dictionary_l1_is_a_penalty_the_trainer_adds() -> None:
    """``l1=λ``: λ × the mean over symbols of Σ|θ| joins the training loss (the model's
    ``penalty()``), shrinking coefficients; without it there is no penalty."""
    assert _model("dictionary", atoms=40).penalty() is None
    model = _model("dictionary", atoms=40, l1=0.5)
    theta = model.program.coefficients().detach()
    expected = 0.5 * theta.abs().sum(1).mean()
    penalty = model.penalty()
    assert penalty is not None and torch.allclose(penalty, expected)
    penalty.backward()
    assert model.program.theta.grad is not None and model.program.theta.grad.abs().sum() > 0
    with pytest.raises(ReprogramError, match="l1 must be a finite number >= 0"):
        _model("dictionary", atoms=40, l1=-1.0)


def test_the_trainer_adds_the_penalty_to_the_loss() -> None:
    from reprogram.train import Trainer

    model = _model("dictionary", atoms=40, l1=2.0)
    trainer = Trainer.__new__(Trainer)  # only _loss: the task's loss plus the penalty
    trainer.model = model
    trainer.task = task_of("classification")
    trainer.fabric = SimpleNamespace(world_size=1)
    ids = encode(["ACD", "KWY"], VOCAB, "t")
    y = torch.tensor([0, 1])
    plain = torch.nn.functional.cross_entropy(model(ids), y)
    penalty = model.penalty()
    assert penalty is not None
    assert torch.allclose(trainer._loss(model, ids, y), plain + penalty)


def test_soft_prompt_positions_and_seeded_start() -> None:
    model = _model("soft-prompt", length=4, position="around")
    ids = encode(["ACD", "K"], VOCAB, "t")
    out = model.program(ids)
    assert out.embeds.shape == (2, 1 + 2 + 3 + 2 + 1, 16)
    assert out.mask.sum(1).tolist() == [9, 7]
    vectors = model.program.vectors * model.program.unit
    torch.testing.assert_close(out.embeds[0, 1:3], vectors[:2])
    torch.testing.assert_close(out.embeds[1, 4:6], vectors[2:])  # right after its one symbol
    again = _model("soft-prompt", length=4, position="around")
    torch.testing.assert_close(again.program.vectors, model.program.vectors)  # seeded start
    assert model.trainable_parameters() == 4 * 16 + 16 * 2 + 2


def test_soft_prompt_in_a_random_subspace_trains_k_numbers(tmp_path: Path) -> None:
    model = _model("soft-prompt", length=4, subspace=6)
    plain = _model("soft-prompt", length=4)
    program = model.program
    assert model.trainable_parameters() == 6 + 16 * 2 + 2  # z, then the linear mapping
    ids = encode(["ACD", "K"], VOCAB, "t")
    # z starts at zero: the prompt is the plain program's seeded start
    torch.testing.assert_close(program.prompt_vectors(), plain.program.prompt_vectors())
    with torch.no_grad():
        for p in model.mapping.parameters():
            p.normal_()
    model(ids).sum().backward()
    assert program.z.grad is not None and program.z.grad.abs().sum() > 0
    with torch.no_grad():
        program.z.normal_()
    moved = program.prompt_vectors()
    delta = (moved - plain.program.prompt_vectors()) / program.unit
    torch.testing.assert_close(delta.reshape(-1), program.z @ program.projection)
    model.save_pretrained(tmp_path / "a")  # A is rebuilt from the seed, z and the start saved
    again = ReprogrammedModel.from_pretrained(tmp_path / "a")
    torch.testing.assert_close(again.program.prompt_vectors(), moved)
    with pytest.raises(ReprogramError, match="subspace must be 0"):
        _model("soft-prompt", subspace=-1)


def test_a_built_sequence_model_saved_reads_text_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """build + save_pretrained records the vocabulary, so the artifact reads text (Python's
    encode_sequences and reprogram predict) as a fitted one does."""
    from reprogram import encode_sequences
    from reprogram.cli import main

    model = _model("dictionary")
    model.save_pretrained(tmp_path / "built")
    loaded = load_artifact(tmp_path / "built")[0]
    ids = encode_sequences(loaded, ["KRLA", "DEGS"])
    assert ids.shape == (2, 6) and loaded.predict(ids).shape == (2,)
    (tmp_path / "pep.txt").write_text("KRLA\nDEGS\n")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "built"), str(tmp_path / "pep.txt")]) == 0
    assert capsys.readouterr().out.count("pep.txt row") == 2
    # a row longer than the source reads is named before anything is scored
    most = loaded.program.max_symbols()
    (tmp_path / "long.txt").write_text(f"KRLA\n{'K' * (most + 1)}\n")
    assert main(["predict", str(tmp_path / "built"), str(tmp_path / "long.txt")]) == 2
    assert f"long.txt row 2: {most + 1} symbols, more than the {most}" in capsys.readouterr().err


def test_token_programs_need_a_language_source_and_sequences() -> None:
    with pytest.raises(ReprogramError, match="need a language source"):
        ReprogrammedModel.build(
            "tiny-random-cnn", (6,), ["a", "b"], program="text", vocabulary=VOCAB
        )
    with pytest.raises(ReprogramError, match="read sequences of symbols"):
        ReprogrammedModel.build("tiny-random-lm", (1, 8, 8), ["a", "b"], program="text")


def test_fit_saves_and_reloads_a_sequence_model(tmp_path: Path) -> None:
    rows = ["sequence,label"]
    gen = torch.Generator().manual_seed(0)
    for i in range(40):
        pos = i % 2 == 0
        letters = "KRH" if pos else "DEW"
        n = int(torch.randint(4, 9, (1,), generator=gen))
        picks = torch.randint(0, 3, (n,), generator=gen).tolist()
        rows.append("".join(letters[j] for j in picks) + f",{'pos' if pos else 'neg'}")
    target = _csv(tmp_path / "toy.csv", "\n".join(rows) + "\n")
    config = FitConfig(
        source="tiny-random-causal-lm",
        target=target,
        program="dictionary",
        program_options={"atoms": 30},
        mapping="linear",
        epochs=2,
        seed=1,
        out=str(tmp_path / "run"),
        progress=False,
        plots=False,
    )
    result = fit(config)
    assert result.config["target"]["vocabulary"] == list(AMINO_ACIDS)
    assert result.config["program"]["options"]["vocabulary"] == AMINO_ACIDS
    loaded, _ = load_artifact(tmp_path / "run")
    data = load_target(target)
    torch.testing.assert_close(loaded(data.test.x), result.model(data.test.x))


@pytest.mark.parametrize("source", ["tiny-random-lm", "tiny-random-lm#precision=bf16"])
def test_cli_fit_eval_predict_on_sequences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    from reprogram.cli import main

    rows = ["sequence,label"] + [
        f"{'KRHA' * (2 + i % 3) if i % 2 else 'DEW' * (2 + i % 3)},{'pos' if i % 2 else 'neg'}"
        for i in range(30)
    ]
    target = _csv(tmp_path / "toy.csv", "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert (
        main(
            [
                "fit",
                "--source",
                source,
                "--target",
                target,
                "--epochs",
                "2",
                "--program",
                "soft-prompt",
                "--program-opt",
                "length=2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "program.png").is_file()
    assert main(["eval", str(out), "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "reproduced" in captured.err and "batch" not in captured.err  # no progress bar
    recorded = json.loads((out / "metrics.json").read_text())
    assert json.loads(captured.out.strip().splitlines()[-1])["test_roc_auc"] == pytest.approx(
        recorded["test_roc_auc"]
    )
    fasta = tmp_path / "new.fasta"
    fasta.write_text(">first\nKRHAKRHA\n>second\nDEWDEW\n>lower\ndewdew\n>long\n" + "KRHA" * 6)
    assert main(["predict", str(out), str(fasta), "--json"]) == 0
    captured = capsys.readouterr()
    rows_out = json.loads(captured.out)
    assert [r["input"] for r in rows_out] == ["first", "second", "lower", "long"]
    assert "row(s) 4) are longer than the longest training sequence (16" in captured.err
    # a protein model reads FASTA's lower-case residues as the residues they are
    assert rows_out[2]["probability"] == rows_out[1]["probability"]
    # the same from Python: strings → ids as predict reads them → the same classes
    import reprogram

    loaded, _ = load_artifact(out)
    ids = reprogram.encode_sequences(loaded, ["KRHAKRHA", "DEWDEW", "dewdew"])
    assert ids.shape == (3, 16) and torch.equal(ids[1], ids[2])
    names = loaded.spec["target"]["class_names"]
    assert [names[int(k)] for k in loaded.predict(ids)] == [r["class"] for r in rows_out[:3]]
    with pytest.raises(DataError, match="got one string"):
        reprogram.encode_sequences(loaded, "KRHA")
    # probabilities as predict's CSV gives them; ids outside the alphabet and lists refused
    proba = loaded.predict_proba(ids)
    assert proba.shape == (3, 2) and torch.allclose(proba.sum(1), torch.ones(3))
    assert proba[0].max().item() == pytest.approx(rows_out[0]["probability"], abs=1e-4)
    for bad_ids in (torch.full((2, 4), 99), torch.full((2, 4), -1)):
        with pytest.raises(DataError, match=r"encode text with reprogram\.encode_sequences"):
            loaded.predict(bad_ids)
    with pytest.raises(DataError, match="predict takes a tensor"):
        loaded.predict([[3, 4, 5]])  # type: ignore[arg-type]
    bad = tmp_path / "bad.txt"
    bad.write_text("KRHA\nKR1A\n")
    assert main(["predict", str(out), str(bad)]) != 0
    assert "row 2: '1' (position 3) is not in the target's alphabet" in capsys.readouterr().err
    # the data file edited after the fit (labels flipped): eval says so instead of a score
    flipped = [r.replace(",pos", ",tmp").replace(",neg", ",pos").replace(",tmp", ",neg")
               for r in rows]
    (tmp_path / "toy.csv").write_text("\n".join(flipped) + "\n")
    assert main(["eval", str(out)]) == 1
    assert "differs from the one this run scored" in capsys.readouterr().err


def test_random_many_to_one_over_vocabulary_logits() -> None:
    model = _model("soft-prompt", source="tiny-random-causal-lm", length=2)
    rnd = _model(
        "soft-prompt",
        source="tiny-random-causal-lm",
        mapping="random",
        mapping_options={"labels_per_class": 3},
        length=2,
    )
    assert rnd.trainable_parameters() == 2 * 16  # the prompt only: V2S's mapping is fixed
    groups = rnd.mapping.groups
    assert groups.shape == (2, 3) and len(set(groups.flatten().tolist())) == 6
    scores = rnd(encode(["ACD", "KW"], VOCAB, "t"))
    assert scores.shape == (2, 2) and model.source.outputs == "logits"


def test_token_program_options_are_bounded() -> None:
    with pytest.raises(ReprogramError, match="at most 4,096 symbols"):
        _model("dictionary", vocabulary="".join(chr(0x4E00 + i) for i in range(5000)))
    with pytest.raises(ReprogramError, match="repeats a symbol"):
        _model("text", vocabulary="AAC")
    with pytest.raises(ReprogramError, match="length must be 1 … 512"):
        _model("soft-prompt", length=0)


def test_hf_folder_loads_as_a_language_source(tmp_path: Path) -> None:
    tiny = build_source("tiny-random-lm")
    tiny.module.save_pretrained(tmp_path / "lm")
    tiny.tokenizer.save_pretrained(tmp_path / "lm")
    src = build_source(f"hf:{tmp_path / 'lm'}#depth=1")
    assert src.name == f"hf:{tmp_path / 'lm'}#depth=1" and src.outputs == "features"
    assert len(src.module.encoder.layer) == 1
    model = ReprogrammedModel.build(
        src, (6,), ["neg", "pos"], program="text", mapping="linear", vocabulary=VOCAB
    )
    assert model(encode(["ACD"], VOCAB, "t")).shape == (1, 2)
    with pytest.raises(ReprogramError, match="has no option width"):
        build_source(f"hf:{tmp_path / 'lm'}#width=3")


def test_verbalizer_reads_the_tokens_of_words() -> None:
    from reprogram.mappings.verbalizer import match_token

    tokens = ["[PAD]", "ĠYes", "no", "ant", "antimicrobial", "Ġx"]
    assert match_token("yes", tokens) == 1  # the word-start token first
    assert match_token("No", tokens) == 2  # then the token itself, any case
    assert match_token("antibody", tokens) == 3  # then the longest token spelling its start
    assert match_token("qq", tokens) == -1
    for words in ("D,K", "D|K"):  # '|' where commas split a method's options (bench)
        model = _model(
            "soft-prompt",
            source="tiny-random-causal-lm",
            mapping="verbalizer",
            mapping_options={"words": words},
            length=2,
        )
        names = model.source.label_names
        assert [names[int(i)] for i in model.mapping.groups.flatten()] == ["D", "K"]
        assert model.trainable_parameters() == 2 * 16
    # a language encoder's states: the advice names logits, not a features: prefix it lacks
    with pytest.raises(ReprogramError, match=r"answers features.*logits \(smollm2-135m") as info:
        ReprogrammedModel.build(
            "tiny-random-lm",
            (6,),
            ["a", "b"],
            program="text",
            mapping="verbalizer",
            vocabulary=VOCAB,
        )
    assert "features: prefix" not in str(info.value)
    with pytest.raises(ReprogramError, match="words gives 3 words for 2 classes"):
        ReprogrammedModel.build(
            "tiny-random-causal-lm",
            (6,),
            ["a", "b"],
            program="text",
            mapping="verbalizer",
            mapping_options={"words": "A,C,D"},
            vocabulary=VOCAB,
        )


def test_a_model_with_nothing_to_train_is_scored_zero_shot(tmp_path: Path) -> None:
    target = _csv(tmp_path / "toy.csv", "sequence,label\n" + "".join(
        f"{'KRH' * (2 + i % 3) if i % 2 else 'DEW' * (2 + i % 3)},{'pos' if i % 2 else 'neg'}\n"
        for i in range(30)
    ))
    base = dict(source="tiny-random-causal-lm", target=target, program="text",
                mapping="verbalizer", progress=False, plots=False)
    result = fit(FitConfig(**base, epochs=0, out=str(tmp_path / "zs")))  # type: ignore[arg-type]
    metrics = result.metrics
    assert metrics["best_epoch"] == 0 and metrics["trainable_parameters"] == 0
    assert [h["epoch"] for h in metrics["history"]] == [0]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    with pytest.raises(ReprogramError, match="no trainable parameters: score the model as built"):
        fit(FitConfig(**base, epochs=2, out=str(tmp_path / "trained")))  # type: ignore[arg-type]
    assert not (tmp_path / "trained").exists()  # refused before --out is touched


@pytest.mark.parametrize("mapping", ["flm", "ilm", "blm"])
def test_a_count_based_mapping_with_nothing_to_train_is_fitted_before_it_is_scored(
    tmp_path: Path, mapping: str
) -> None:
    """``text`` + ``flm``/``ilm``/``blm`` on next-token logits (a verbalizer chosen by
    frequency): the table is estimated from the training split, then scored zero-shot."""
    target = _csv(tmp_path / "toy.csv", "sequence,label\n" + "".join(
        f"{'KRH' * (2 + i % 3) if i % 2 else 'DEW' * (2 + i % 3)},{'pos' if i % 2 else 'neg'}\n"
        for i in range(30)
    ))
    result = fit(FitConfig(source="tiny-random-causal-lm", target=target, program="text",
                           mapping=mapping, epochs=0, progress=False, plots=False,
                           out=str(tmp_path / "zs")))
    assert result.metrics["best_epoch"] == 0 and result.metrics["trainable_parameters"] == 0
    assert bool(result.model.mapping.fitted)  # estimated, not the table it was built with


def test_predict_reads_csv_files_of_sequences_by_their_header(tmp_path: Path) -> None:
    from reprogram.predict import read_sequences

    one = tmp_path / "one.csv"
    one.write_text("\ufeffsequence\nKRLA\nDEGS\n")  # a single column, with its header
    assert read_sequences(one, labelled=False)[1] == ["KRLA", "DEGS"]
    two = tmp_path / "two.csv"
    two.write_text("Sequence,label\nKRLA,1\n")
    assert read_sequences(two, labelled=True)[1:] == (["KRLA"], ["1"])
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("seq,foo\nKRLA,1\n")
    with pytest.raises(DataError, match="needs a header row naming a 'sequence' column"):
        read_sequences(wrong, labelled=False)
    # fit reads semicolons (spreadsheets with decimal commas): so does predict
    semi = tmp_path / "semi.csv"
    semi.write_text("sequence;label\r\nKRLA;1\r\n")
    assert read_sequences(semi, labelled=True)[1:] == (["KRLA"], ["1"])
    blank = tmp_path / "blank.csv"
    blank.write_text("sequence,label\nKRLA,1\nDEGS,\n")
    with pytest.raises(DataError, match="row 2: the label is empty"):
        read_sequences(blank, labelled=True)
    # each row is named as the errors count it: from 1, the header not counted
    assert read_sequences(blank, labelled=False)[:2] == (
        ["blank.csv row 1", "blank.csv row 2"], ["KRLA", "DEGS"])
    # Excel's "sep=;" first line names the separator
    excel = tmp_path / "excel.csv"
    excel.write_text("sep=;\nsequence;label\nKRLA;1\n")
    assert read_sequences(excel, labelled=True)[1:] == (["KRLA"], ["1"])
    # a header that is no 'sequence' is refused, never scored as a sequence itself
    headed = tmp_path / "headed.csv"
    headed.write_text("seq\nkrla\n")
    with pytest.raises(DataError, match="its first line: 'seq'"):
        read_sequences(headed, labelled=False)
    # FASTA with a byte-order mark and CRLF lines, as Windows editors save it
    fasta = tmp_path / "bom.fasta"
    fasta.write_bytes(b"\xef\xbb\xbf>a\r\nKRLA\r\nDE\r\n")
    assert read_sequences(fasta, labelled=False)[:2] == (["a"], ["KRLADE"])
    unnamed = tmp_path / "unnamed.fa"
    unnamed.write_text(">a\nKR\n>\nDE\n")
    assert read_sequences(unnamed, labelled=False)[0] == ["a", "unnamed.fa record 2"]
    with pytest.raises(DataError, match=r"--labelled reads a label column of a \.csv"):
        read_sequences(fasta, labelled=True)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("KRLA\nDÉ\n".encode("latin-1"))
    with pytest.raises(DataError, match="could not be read as UTF-8"):
        read_sequences(latin, labelled=False)


def test_csv_notes_and_hints_for_common_spreadsheet_slips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels that differ only in case, SMILES without #alphabet=smiles, a class named like a
    missing value and a '#' in the file name each get a note or a message saying what to do."""
    rows = ["sequence,label"] + [f"{'KR' * (i % 3 + 1)}A,AMP" for i in range(4)]
    rows += [f"{'KR' * (i % 3 + 1)}L,amp" for i in range(4)]
    rows += [f"{'DE' * (i % 3 + 1)}G,nonAMP" for i in range(4)]
    data = load_target(_csv(tmp_path / "case.csv", "\n".join(rows) + "\n"))
    err = capsys.readouterr().err
    assert data.class_names == ["AMP", "amp", "nonAMP"]  # kept apart, but said so
    assert "'AMP' and 'amp' differ only in case" in err and "3 in all" in err
    smiles = "sequence,label\nCC(C)O,1\nc1ccccc1,0\nCCO,1\nC1CCOC1,0\n"
    data = load_target(_csv(tmp_path / "mol.csv", smiles))
    assert data.info["alphabet"] == "text"
    assert "look like SMILES" in capsys.readouterr().err
    none = "sequence,label\nKRA,high\nDEG,none\n"
    with pytest.raises(DataError, match=r"row 2: the label is 'none', which reads as missing"):
        load_target(_csv(tmp_path / "none.csv", none))
    hashed = tmp_path / "my#data.csv"
    hashed.write_text("sequence,label\nKRA,1\nDEG,0\n")
    with pytest.raises(DataError, match="'#' starts an option here: rename the file"):
        load_target(f"csv:{hashed}")


def test_a_class_with_one_example_is_told_to_add_examples_not_lower_the_fraction(
    tmp_path: Path,
) -> None:
    from reprogram.data.splits import prepare_splits

    rows = ["sequence,label,split"] + [f"{'KR' * (i % 3 + 1)}A,pos,train" for i in range(6)]
    rows += ["DEG,neg,train", "DEGG,neg,test", "KRAA,pos,test"]
    data = load_target(_csv(tmp_path / "one.csv", "\n".join(rows) + "\n"))
    assert torch.bincount(data.train.y).tolist() == [1, 6]  # neg, pos
    with pytest.raises(DataError, match="add examples of that class") as info:
        prepare_splits(data, shots=None, val_fraction=0.2, seed=0)
    assert "lower --val-fraction" not in str(info.value)


def test_text_with_spaces_reads_through_a_tokenizer_that_drops_them(tmp_path: Path) -> None:
    """A WordPiece tokenizer spells ' ' with no token: the blank is spelled as the unknown
    token (one position), so plain text with spaces trains instead of being refused."""
    words = ["good day", "fine sun", "warm tea", "bad rain", "cold fog", "grey sky"]
    rows = ["sequence,label"] + [f"{w},{'pos' if i < 3 else 'neg'}" for i, w in
                                 enumerate(words * 3)]
    target = _csv(tmp_path / "text.csv", "\n".join(rows) + "\n") + "#alphabet=text"
    from reprogram.sources import build_source

    source = build_source("tiny-random-lm")
    assert source.symbol_ids(" ") == [source.tokenizer.unk_token_id]
    result = fit(FitConfig(source="tiny-random-lm", target=target, program="dictionary",
                           mapping="linear", epochs=1, progress=False, plots=False,
                           out=str(tmp_path / "text")))
    assert result.metrics["test_accuracy"] is not None


def test_csv_rows_that_would_be_read_wrongly_are_refused_by_row(tmp_path: Path) -> None:
    """A decimal comma in a comma file (more fields than the header), a column named twice,
    and a quote left open are refused with the row, never read silently another way."""
    rows = "".join(f"{'KR' * (i % 3 + 1)}A,{i},5\n" for i in range(6))
    for options in ("", "#task=regression"):
        with pytest.raises(DataError, match=r"row 1: 3 fields, more than the header's 2 .*"
                                            r"decimal comma"):
            load_target(_csv(tmp_path / "comma.csv", "sequence,label\n" + rows) + options)
    for header in ("sequence,label,Label", "sequence,label, SEQUENCE "):
        with pytest.raises(DataError, match=r"names '(label|sequence)' twice"):
            load_target(_csv(tmp_path / "twice.csv", f"{header}\nKRA,1,2\nDEG,0,1\n"))
    quoted = "sequence,label\nKRA,pos\n\"DEG,neg\nKRAA,pos\nDEGG,neg\n"
    with pytest.raises(DataError, match=r"row 2: the sequence cell runs over several lines"):
        load_target(_csv(tmp_path / "quote.csv", quoted))
    with pytest.raises(DataError, match=r"row 1: the label cell runs over several lines"):
        load_target(_csv(tmp_path / "quote2.csv", "sequence,label\nKRA,\"pos\nDEG,neg\n"))
    # quoted commas inside a field stay one field, and other columns may hold anything
    fine = "sequence,label,note\nKRA,1,\"a, b\"\nDEG,0,\"two\nlines\"\nKRAA,1,x\nDEGG,0,y\n"
    data = load_target(_csv(tmp_path / "fine.csv", fine))
    assert len(data.train) + len(data.test) == 4


def test_csv_labels_name_their_classes_as_written_numbers_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reprogram.predict import read_sequences

    seqs = [f"{'KR' * (i % 4 + 1)}{'A' * (i % 3)}" for i in range(12)]
    signed = "sequence,label\n" + "".join(f"{s},{'+1' if i % 2 else '-1'}\n"
                                          for i, s in enumerate(seqs))
    assert load_target(_csv(tmp_path / "pm.csv", signed)).class_names == ["-1", "1"]
    big = "sequence,label\n" + "".join(
        f"{s},{12345678901234567890 + i % 2}\n" for i, s in enumerate(seqs))
    assert load_target(_csv(tmp_path / "big.csv", big)).class_names == [
        "12345678901234567890", "12345678901234567891"]
    codes = "sequence,label\n" + "".join(f"{s},{'1.1' if i % 2 else '2.3'}\n"
                                         for i, s in enumerate(seqs))
    with pytest.raises(DataError, match="or #task=classification to keep each"):
        load_target(_csv(tmp_path / "codes.csv", codes))
    kept = load_target(_csv(tmp_path / "codes.csv", codes) + "#task=classification")
    assert kept.class_names == ["1.1", "2.3"]
    # whole numbers that look like measurements: kept as classes, with a hint
    capsys.readouterr()
    mic = "sequence,label\n" + "".join(f"{s},{2 ** (i % 7)}\n" for i, s in enumerate(seqs))
    assert len(load_target(_csv(tmp_path / "mic.csv", mic)).class_names) == 7
    assert "7 distinct whole numbers" in capsys.readouterr().err
    # the same sequence as 0 and 0.0 is one class, not a clash
    twins = "sequence,label\n" + "".join(f"{s},{i % 2}\n{s},{i % 2}.0\n"
                                         for i, s in enumerate(seqs[:6]))
    load_target(_csv(tmp_path / "twins.csv", twins))
    err = capsys.readouterr().err
    assert "6 row(s) repeat an earlier sequence" in err and "more than one label" not in err
    with pytest.raises(DataError, match=r"decimal comma\? write it with a point: 0\.5"):
        load_target(_csv(tmp_path / "semi.csv", "sequence;label\nKRA;0,5\nDEG;1,5\n")
                    + "#task=regression")
    # predict --labelled reads labels as fit names classes; a .tsv reads like a .csv
    tsv = tmp_path / "new.tsv"
    tsv.write_text("sequence\tlabel\nKRA\t1.0\nDEG\t+0\n")
    assert read_sequences(tsv, labelled=True)[1:] == (["KRA", "DEG"], ["1", "0"])


def test_kfold_names_its_own_rule_for_a_class_with_one_example(tmp_path: Path) -> None:
    rows = "sequence,label\n" + "".join(f"{'KR' * (i % 3 + 1)}A,pos\n" for i in range(8))
    path = _csv(tmp_path / "rare.csv", rows + "DEG,neg\nDEGG,neg\n")
    config = FitConfig(source="tiny-random-lm", target=path, program="soft-prompt",
                       program_options={"length": 2}, epochs=1, select="kfold:3", seed=0,
                       out=str(tmp_path / "run"), progress=False, plots=False)
    with pytest.raises(DataError, match="k-fold selection needs at least 2 per class") as info:
        fit(config)
    assert "--val-fraction" not in str(info.value)


def test_resume_refuses_data_that_changed_since_the_checkpoint(tmp_path: Path) -> None:
    """The same csv path with other rows: --resume refuses before any old weight is kept,
    for a plain run (its checkpoint) and a k-fold run (its finished folds) alike; the same
    data resumes."""
    from helpers import Crash, CrashAt

    def rows(n: int, classes: int) -> str:
        return "sequence,label\n" + "".join(
            f"{'KRDE'[i % 4] * (i % 5 + 2)}A,c{i % classes}\n" for i in range(n))

    for select in ("holdout", "kfold:2"):
        path = tmp_path / f"{select[:5]}.csv"
        path.write_text(rows(40, 2))
        config = FitConfig(source="tiny-random-lm", target=f"csv:{path}", program="soft-prompt",
                           program_options={"length": 2}, epochs=3, select=select, seed=0,
                           out=str(tmp_path / select[:5]), progress=False, plots=False)
        with pytest.raises(Crash):
            fit(config, callbacks=[CrashAt(2)])
        path.write_text(rows(40, 3))  # edited in place: a third class
        config.resume = True
        with pytest.raises(ReprogramError, match=r"differ from those the .* in .*changed since"):
            fit(config)
        path.write_text(rows(40, 2))
        assert fit(config).metrics["test_accuracy"] is not None  # the same data resumes


def test_a_sequence_too_long_for_the_source_says_which_rows_to_trim(tmp_path: Path) -> None:
    rows = "sequence,label\n" + "".join(f"{('KRHA' if i % 2 else 'DEWG') * (3 + i % 3)},"
                                        f"{'p' if i % 2 else 'n'}\n" for i in range(20))
    path = _csv(tmp_path / "long.csv", rows + "A" * 600 + ",p\n")
    config = FitConfig(source="tiny-random-lm", target=path, program="soft-prompt", epochs=1,
                       out=str(tmp_path / "run"), progress=False, plots=False)
    with pytest.raises(ReprogramError, match=r"600 symbols \(the target's longest\).*"
                                             r"Drop or trim the rows longer than \d+ symbols"):
        fit(config)
    # a prompt longer than the source's positions: fewer prompt vectors, never a length < 1
    short = _csv(tmp_path / "short.csv", rows)
    config = FitConfig(source="tiny-random-lm", target=short, program="soft-prompt",
                       program_options={"length": 300}, epochs=1, out=str(tmp_path / "run2"),
                       progress=False, plots=False)
    with pytest.raises(ReprogramError, match=r"\(300 trained positions\) need \d+\. Give "
                                             r"fewer prompt vectors \(--program-opt length="
                                             r"\d+ or less\)") as info:
        fit(config)
    assert "than -" not in str(info.value)
