"""Black-box training: query accounting, budget, cache, resume, zeroth-order optimizers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import Crash, CrashAt

from reprogram import FitConfig, fit, load_artifact
from reprogram.blackbox.language import LanguageQuerySource
from reprogram.blackbox.protocol import EndpointError, EndpointInfo
from reprogram.blackbox.source import BlackBoxSource, QueryBudgetExceeded, from_callable
from reprogram.checkpoint import CHECKPOINT_NAME, load_checkpoint
from reprogram.cli import main
from reprogram.errors import ReprogramError
from reprogram.model import ReprogrammedModel
from reprogram.optim import build_optimizer
from reprogram.programs import build_program
from reprogram.sources import SOURCES, build_source
from reprogram.sources.language import TokenInputs

K = 20
INFO = EndpointInfo(name="toy-box", input_shape=(3, 16, 16), num_classes=K)
# digits with 20 shots: 16 train + 4 validation per class; its fixed test split has 539.
N_TRAIN, N_VAL, N_TEST = 160, 40, 539


class ToyBox:
    """An easy black box: softmax of a fixed random projection of 4×4-pooled pixels.

    Counts the inputs it answers (``rows``); ``fail_after`` makes it raise
    :class:`EndpointError` once that many inputs were answered.
    """

    def __init__(self, fail_after: int | None = None, interrupt: bool = False) -> None:
        self.weight = np.random.default_rng(0).normal(size=(K, 48)).astype(np.float32)
        self.rows = 0
        self.fail_after = fail_after
        self.interrupt = interrupt

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if self.fail_after is not None and self.rows + len(pixels) > self.fail_after:
            if self.interrupt:
                raise KeyboardInterrupt
            raise EndpointError("connection refused (after 3 retries)")
        self.rows += len(pixels)
        feats = F.adaptive_avg_pool2d(torch.from_numpy(pixels), 4).reshape(len(pixels), -1)
        return torch.softmax((feats - 0.2) @ torch.from_numpy(self.weight).T * 4, -1).numpy()


def config(tmp_path: Path, name: str = "run", **kw: Any) -> FitConfig:
    base: dict[str, Any] = dict(
        source="toy-box",
        target="digits",
        program="coarse",
        program_options={"grid": 4},
        mapping="linear",
        optimizer="rgf",
        optimizer_options={"q": 4},
        shots=20,
        epochs=3,
        lr=0.05,
        batch_size=16,
        seed=1,
        out=str(tmp_path / name),
        progress=False,
        plots=False,
    )
    base.update(kw)
    return FitConfig(**base)


def run(tmp_path: Path, name: str = "run", box: ToyBox | None = None, **kw: Any) -> Any:
    box = box or ToyBox()
    result = fit(config(tmp_path, name, **kw), source=from_callable(box, INFO))
    return result, box


def expected_queries(epochs: int, per_example: int, count_pass: bool = False) -> int:
    """Forward rows of a run: training steps, count passes, validation, and the test."""
    epoch = N_TRAIN * per_example + N_VAL + (N_TRAIN if count_pass else 0)
    return epochs * epoch + N_TEST


# --------------------------------------------------------------------------- training
def test_training_against_a_callable_black_box_learns(tmp_path: Path) -> None:
    result, box = run(tmp_path, epochs=5)
    m = result.metrics
    assert m["test_accuracy"] > 0.3  # chance is 0.1
    assert torch.count_nonzero(result.model.program.theta) > 0  # the program moved (ZO)
    assert m["source_parameters"] == 0 and m["queries"] == box.rows


@pytest.mark.parametrize(
    ("optimizer", "options", "per_example", "mapping"),
    [
        ("rgf", {"q": 4}, 5, "linear"),
        ("spsa-gc", {"samples": 2}, 4, "linear"),
        ("rgf", {"q": 2}, 3, "ilm"),
        ("rgf", {"q": 2}, 3, "blm+"),
    ],
)
def test_query_count_is_exact(
    tmp_path: Path, optimizer: str, options: dict[str, Any], per_example: int, mapping: str
) -> None:
    result, box = run(
        tmp_path, optimizer=optimizer, optimizer_options=options, mapping=mapping, epochs=2
    )
    m = result.metrics
    rows = expected_queries(2, per_example, count_pass=mapping in ("ilm", "blm+"))
    assert m["queries"] + m["cache_hits"] == rows
    assert m["queries"] == box.rows  # every query sent was counted, no cache hit was sent
    assert m["queries_by_phase"]["test"] == N_TEST
    assert m["queries_by_phase"]["val"] == 2 * N_VAL
    epoch = [r["queries"] for r in m["history"]]
    assert sum(epoch) + N_TEST == m["queries"] and m["history"][-1]["queries_total"] == sum(epoch)
    saved = json.loads((Path(result.out) / "metrics.json").read_text())
    assert saved["queries"] == m["queries"]


def test_cache_answers_identical_inputs_without_counting(tmp_path: Path) -> None:
    box = ToyBox()
    source = from_callable(box, INFO)
    x = torch.rand(6, 3, 16, 16)
    first = source(x)
    again = source(torch.cat([x[:3], x[:3]]))  # cached, and a duplicate inside the batch
    assert torch.equal(again[:3], first[:3]) and torch.equal(again[3:], first[:3])
    assert (source.ledger.queries, source.ledger.cache_hits, box.rows) == (6, 6, 6)
    # centred log-probabilities: softmax gives the answer back, each row has mean zero
    answer = torch.from_numpy(ToyBox()(x.numpy()))
    assert torch.allclose(first.softmax(-1), answer, atol=1e-6)
    assert torch.allclose(first.mean(-1), torch.zeros(6), atol=1e-4)
    # a program without parameters sends the same images every epoch: only epoch 1 is paid
    result, box = run(tmp_path, program="resize", program_options={}, epochs=3)
    m = result.metrics
    assert m["queries"] == box.rows and m["queries"] + m["cache_hits"] == expected_queries(3, 1)
    assert [r["queries"] for r in m["history"]][1:] == [0, 0]


# --------------------------------------------------------------------------- budget
def test_budget_too_small_for_one_epoch_is_refused_before_any_query(tmp_path: Path) -> None:
    need = expected_queries(1, 5)
    box = ToyBox()
    with pytest.raises(ReprogramError, match=f"at least {need}") as info:
        run(tmp_path, box=box, query_budget=need - 1)
    assert "cannot cover" in str(info.value) and box.rows == 0


def test_budget_stops_cleanly_and_is_never_exceeded(tmp_path: Path) -> None:
    budget = expected_queries(2, 5) + 7  # two epochs and the test, not a third epoch
    result, box = run(tmp_path, epochs=4, query_budget=budget)
    m = result.metrics
    assert m["stopped"] == "query budget" and m["epochs"] == 2
    assert box.rows == m["queries"] == expected_queries(2, 5) <= budget
    assert (Path(result.out) / CHECKPOINT_NAME).exists()  # kept: --resume may continue
    ckpt = load_checkpoint(Path(result.out) / CHECKPOINT_NAME)
    assert ckpt["queries"]["ledger"]["queries"] == m["queries"]  # the test scoring included
    model, _ = load_artifact(result.out, source=from_callable(ToyBox(), INFO))
    assert model.program.theta.shape == (3, 4, 4)
    # exactly enough for all epochs: runs them all and spends the budget to the last query
    exact = expected_queries(4, 5)
    result, box = run(tmp_path, "exact", epochs=4, query_budget=exact)
    assert "stopped" not in result.metrics and box.rows == result.metrics["queries"] == exact


def test_ledger_refuses_a_request_before_sending_it() -> None:
    box = ToyBox()
    source = from_callable(box, INFO, budget=10)
    source(torch.rand(8, 3, 16, 16))
    with pytest.raises(QueryBudgetExceeded, match="Nothing was sent"):
        source(torch.rand(3, 3, 16, 16))
    assert source.ledger.queries == box.rows == 8


# --------------------------------------------------------------------------- resume
def _adapter(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.adapter_state_dict().items()}


@pytest.mark.parametrize("optimizer", ["rgf", "spsa-gc"])
def test_resume_gives_the_same_count_and_parameters(tmp_path: Path, optimizer: str) -> None:
    straight, _ = run(tmp_path, "straight", optimizer=optimizer, optimizer_options={}, epochs=4)
    with pytest.raises(Crash):
        fit(
            config(tmp_path, "resumed", optimizer=optimizer, optimizer_options={}, epochs=4),
            source=from_callable(ToyBox(), INFO),
            callbacks=[CrashAt(3)],
        )
    box = ToyBox()
    resumed = fit(
        config(
            tmp_path, "resumed", optimizer=optimizer, optimizer_options={}, epochs=4, resume=True
        ),
        source=from_callable(box, INFO),
    )
    assert resumed.metrics["queries"] == straight.metrics["queries"]
    assert box.rows == resumed.metrics["queries"] - 2 * resumed.metrics["history"][0]["queries"]
    for key, value in _adapter(straight.model).items():
        assert torch.equal(value, _adapter(resumed.model)[key]), key
    assert resumed.metrics["test_accuracy"] == straight.metrics["test_accuracy"]


def test_failing_endpoint_stops_with_a_resume_hint_and_loses_no_query(tmp_path: Path) -> None:
    straight, _ = run(tmp_path, "straight", epochs=3)
    per_epoch = N_TRAIN * 5 + N_VAL
    failing = ToyBox(fail_after=per_epoch + 300)  # dies inside epoch 2
    with pytest.raises(ReprogramError, match="--resume") as info:
        run(tmp_path, "flaky", box=failing, epochs=3)
    assert "connection refused" in str(info.value)
    ckpt = load_checkpoint(tmp_path / "flaky" / CHECKPOINT_NAME)
    assert ckpt["epoch"] == 1 and ckpt["queries"]["ledger"]["queries"] == failing.rows
    box = ToyBox()
    resumed = fit(config(tmp_path, "flaky", epochs=3, resume=True), source=from_callable(box, INFO))
    # the partial epoch's answers come from the checkpointed cache: nothing is paid twice
    assert resumed.metrics["queries"] == straight.metrics["queries"] == failing.rows + box.rows
    for key, value in _adapter(straight.model).items():
        assert torch.equal(value, _adapter(resumed.model)[key]), key
    # Ctrl-C inside an epoch: the checkpoint also records what was spent since it was written
    stopped = ToyBox(fail_after=per_epoch + 100, interrupt=True)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "ctrl-c", box=stopped, epochs=3)
    ckpt = load_checkpoint(tmp_path / "ctrl-c" / CHECKPOINT_NAME)
    assert ckpt["queries"]["ledger"]["queries"] == stopped.rows


# --------------------------------------------------------------------------- optimizers
def _quadratic() -> tuple[torch.nn.Parameter, Any, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(20, generator=gen))
    scale = torch.linspace(0.5, 2.0, 20)
    target = torch.randn(20, generator=gen)
    return w, lambda: ((w - target) ** 2 * scale).sum(), 2 * scale * (w.detach() - target)


def test_rgf_estimate_points_along_the_true_gradient() -> None:
    w, loss_fn, grad = _quadratic()

    def cosine(q: int, seed: int) -> float:
        stepper, _ = build_optimizer("rgf", {"q": q, "beta": 1e-3, "seed": seed}, [w], print)
        estimate = stepper.estimate(loss_fn, float(loss_fn().detach()))
        return float(F.cosine_similarity(estimate, grad, dim=0))

    many = [cosine(400, seed) for seed in range(5)]
    few = [cosine(2, seed) for seed in range(5)]
    assert min(many) > 0.9  # d = 20: with q >> d the estimate is the gradient's direction
    assert sum(few) / 5 < 0.7  # and with q << d only roughly


def test_spsa_gc_decreases_a_quadratic() -> None:
    w, loss_fn, _ = _quadratic()
    start = float(loss_fn().detach())
    stepper, _ = build_optimizer("spsa-gc", {"seed": 0}, [w], print)  # BlackVIP's defaults
    for _ in range(300):
        stepper.step(loss_fn)
    assert float(loss_fn().detach()) < 0.05 * start


def test_hybrid_gives_the_mapping_exact_gradients_and_the_program_estimates() -> None:
    program = torch.nn.Parameter(torch.zeros(3))
    mapping = torch.nn.Parameter(torch.ones(2))
    calls = []

    def backward(loss: torch.Tensor) -> None:
        calls.append(1)
        loss.backward()

    stepper, _ = build_optimizer(
        "rgf", {"q": 3}, [program, mapping], backward, before_box=[program]
    )
    assert stepper.zo_params == [program] and stepper.grad_params == [mapping]
    assert stepper.queries_per_example() == 4
    pure, _ = build_optimizer(
        "rgf", {"q": 3, "hybrid": False}, [program, mapping], backward, before_box=[program]
    )
    assert pure.zo_params == [program, mapping] and not pure.grad_params
    stepper.step(lambda: (mapping * 2).sum() + program.sum().detach())
    assert calls == [1]  # one back-propagation (the unperturbed evaluation), q probes without


# --------------------------------------------------------------------------- sources, CLI
def test_white_box_source_with_a_zeroth_order_optimizer_is_queried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, source="tiny-random-cnn", epochs=1)
    result = fit(cfg)
    m, c = result.metrics, result.config
    assert c["source"]["name"] == "query:tiny-random-cnn" and c["source"]["access"] == "query"
    assert m["queries"] == expected_queries(1, 5) - m["cache_hits"]
    assert main(["eval", str(result.out), "--json"]) == 0
    err = capsys.readouterr().err  # --json: the table on stderr
    assert "yes, exactly" in err and f"{N_TEST} sent to the black box" in err


def test_gradient_on_a_black_box_and_budget_on_a_white_box_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="rgf"):
        run(tmp_path, "a", optimizer="gradient", optimizer_options={})
    with pytest.raises(ReprogramError, match="--query-budget"):
        fit(
            config(
                tmp_path,
                "b",
                source="tiny-random-cnn",
                optimizer="gradient",
                optimizer_options={},
                query_budget=100,
            )
        )


def test_a_language_source_trains_through_counted_queries(tmp_path: Path) -> None:
    out = tmp_path / "lm"
    cfg = FitConfig(source="tiny-random-lm", target="amp", shots=4, program="soft-prompt",
                    mapping="linear", optimizer="spsa-gc", epochs=2, out=str(out), seed=3,
                    progress=False, plots=False)
    fit(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    source = json.loads((out / "config.json").read_text())["source"]
    assert source["name"] == "query:tiny-random-lm" and source["access"] == "query"
    assert source["parameters"] > 0  # in-process: its size is known
    # 3 training examples a class (4 shots, 1 validates) × 2 queries (spsa-gc) × 2 epochs
    assert metrics["queries_by_phase"]["train"] == 6 * 2 * 2
    assert metrics["queries_by_phase"]["test"] == metrics["splits"]["test"]
    model, _ = load_artifact(out)
    assert isinstance(model.source, LanguageQuerySource)
    start = ReprogrammedModel.build("tiny-random-lm", (model.program.length,), ["0", "1"],
                                    program="soft-prompt", seed=3,
                                    vocabulary=model.program.vocabulary)
    assert not torch.equal(model.program.vectors, start.program.vectors)  # moved by queries
    embeds = torch.randn(2, 5, model.source.language.width, requires_grad=True)
    answer = model.source(TokenInputs(embeds, torch.ones(2, 5)))
    assert answer.shape == (2, 16) and not answer.requires_grad  # no gradient through the box


def test_a_query_only_language_run_resumes_with_the_same_count_and_prompt(
    tmp_path: Path,
) -> None:
    def lm(name: str, **kw: Any) -> FitConfig:
        return FitConfig(source="tiny-random-lm", target="amp", shots=4, program="soft-prompt",
                         program_options={"subspace": 8}, mapping="linear", optimizer="rgf",
                         optimizer_options={"q": 2}, epochs=3, out=str(tmp_path / name),
                         seed=1, progress=False, plots=False, **kw)

    straight = fit(lm("straight"))
    with pytest.raises(Crash):
        fit(lm("resumed"), callbacks=[CrashAt(3)])
    resumed = fit(lm("resumed", resume=True))
    assert resumed.metrics["queries"] == straight.metrics["queries"]
    for key, value in _adapter(straight.model).items():
        assert torch.equal(value, _adapter(resumed.model)[key]), key


def test_a_query_only_language_model_refuses_what_it_cannot_serve() -> None:
    source = build_source("query:tiny-random-lm")
    assert isinstance(source, LanguageQuerySource)
    with pytest.raises(ReprogramError, match="every position's states"):
        source.with_positions(4)
    program, _ = build_program("patch-reprogram", {}, (1, 64), tuple(source.input_size))
    with pytest.raises(ReprogramError, match="does not serve"):
        program.bind_source(source)
    with pytest.raises(ReprogramError, match="token program"):
        source(torch.zeros(2, 5, 16))


def test_black_box_names_are_registered_and_fail_clearly() -> None:
    names = SOURCES.names()
    assert {"onnx:…", "http://…", "https://…", "query:…"} <= set(names)
    with pytest.raises(ReprogramError):
        build_source("onnx:/nonexistent/model.onnx")
    source = build_source("query:tiny-random-cnn")
    assert isinstance(source, BlackBoxSource) and source.num_classes == 100


def test_coarse_program_has_few_parameters_and_covers_the_canvas() -> None:
    program, _ = build_program("coarse", {"grid": 8, "canvas_size": 64}, (1, 8, 8), (3, 224, 224))
    assert sum(p.numel() for p in program.parameters()) == 3 * 8 * 8
    with torch.no_grad():
        program.theta.fill_(0.25)
    out = program(torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 3, 64, 64) and torch.allclose(out, torch.full_like(out, 0.25))
    with pytest.raises(ReprogramError, match="grid"):
        build_program("coarse", {"grid": 65, "canvas_size": 64}, (1, 8, 8), (3, 224, 224))


# --------------------------------------------------------------------------- HTTP end to end
def test_fit_over_loopback_http_counts_what_the_server_served(tmp_path: Path) -> None:
    pytest.importorskip("reprogram.blackbox.http")
    from reprogram.blackbox.server import create_app, running_server

    box = ToyBox()

    def model_fn(pixels: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(box(pixels.numpy()))

    app = create_app(model_fn, INFO)
    with running_server(app) as url:
        result = fit(config(tmp_path, source=url, epochs=1))
    assert result.config["source"]["name"] == url
    assert result.metrics["queries"] == app.state.queries.value == box.rows


def test_bench_blackbox_budgets_and_reports(tmp_path: Path) -> None:
    from reprogram_bench.blackbox import Cell, budget_for, cells_for, write_results

    # digits, 10 shots: 80 training examples × (q + 1 = 4) + 20 validation, then 539 test
    assert budget_for(Cell("digits", "rgf", 0, budget_epochs=1), "digits") == 340 + N_TEST
    assert len(cells_for((0, 1))) == 2 * 2 * 6
    rows = [
        {
            "target": "digits",
            "method": m,
            "seed": s,
            "val_accuracy": 0.5,
            "test_accuracy": acc,
            "queries": q,
            "train_val_queries": max(q - N_TEST, 0),
            "cache_hits": 0,
            "query_budget": None,
            "stopped": "",
            "epochs": 6,
            "best_epoch": 6,
            "trainable_parameters": 10,
            "train_seconds": 1.0,
            "curve": [],
        }
        for m, acc, q in [("white-box", 0.7, 0), ("rgf", 0.65, 2579), ("mapping-only", 0.6, 639)]
        for s in (0, 1)
    ]
    write_results(tmp_path, rows, (0, 1), "reprogram bench blackbox", None, served=6436)
    md = (tmp_path / "results.md").read_text()
    assert "`mapping-only` reaches 0.600 = 86%" not in md and "no black-box cell" not in md
    assert "`rgf` reaches 0.650 = 93% of white-box (0.700) with 2,579 queries" in md
    assert "add up to 6,436" in md and (tmp_path / "accuracy_vs_queries.png").exists()

    # --report-only on a checkout without the run folders: rows from results.json, the cells'
    # date kept, a throughput table per request body (measured once, here stood in for)
    from reprogram_bench import blackbox

    recorded = json.loads((tmp_path / "results.json").read_text())["meta"]["date"]
    tp = {"batch": 64, "endpoint_qps": 8.0, "in_process_qps": 10.0, "ratio": 0.8, "date": "D"}
    measured: list[Path] = []

    def stand_in(path: Path, progress: bool) -> None:
        measured.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"thread, binary body": tp, "thread, json body": tp}))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blackbox, "_measure_throughput", stand_in)
        again = blackbox.run_blackbox(tmp_path, seeds=(0, 1), report_only=True, progress=False)
    assert len(again) == len(rows) and len(measured) == 1
    md = (tmp_path / "results.md").read_text()
    assert recorded in md and "| thread, json body | 8.0 | 10.0 | 80% | 8.00 |" in md
    assert "measured D" in md


def test_cli_fit_with_a_budget_reports_queries_and_the_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", "--source", "tiny-random-cnn", "--target", "digits", "--optimizer", "rgf"]
    args += ["--program", "coarse", "--program-opt", "grid=4", "--optimizer-opt", "q=1"]
    args += ["--shots", "10", "--epochs", "2", "--out", str(tmp_path / "cli"), "--quiet"]
    # one epoch: 80 examples × 2 queries + 20 validation = 180; the test takes 539
    assert main([*args, "--query-budget", "718"]) == 2
    assert "at least 719" in capsys.readouterr().err
    assert main([*args, "--query-budget", "800"]) == 0
    out = capsys.readouterr().out
    assert "719 (0 from cache, budget 800); stopped: query budget" in out


def test_ridge_head_on_a_black_box_is_planned_counted_and_budgeted(tmp_path: Path) -> None:
    ridge = {"mapping_options": {"head": "ridge"}, "epochs": 2}
    # set-up: the first closed-form fit (train) and the untrained candidate's validation;
    # each epoch: training steps, the refit pass over train, validation; then the test
    setup = N_TRAIN + N_VAL
    rows = setup + 2 * (N_TRAIN * 5 + N_TRAIN + N_VAL) + N_TEST
    result, box = run(tmp_path, **ridge)
    m = result.metrics
    assert m["queries"] + m["cache_hits"] == rows and m["queries"] == box.rows
    assert m["queries_by_phase"]["test"] == N_TEST
    assert m["trainable_parameters"] > 0 and m["history"][0]["epoch"] == 0
    need = setup + N_TRAIN * 5 + N_TRAIN + N_VAL + N_TEST  # set-up, one epoch, the test
    box = ToyBox()
    with pytest.raises(ReprogramError, match=f"at least {need}"):
        run(tmp_path, "small", box=box, query_budget=need - 1, **ridge)
    assert box.rows == 0  # refused before the first query
    result, box = run(tmp_path, "one", query_budget=need, **ridge)
    assert result.metrics["stopped"] == "query budget" and result.metrics["epochs"] == 1
    assert box.rows == result.metrics["queries"] <= need
