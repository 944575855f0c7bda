"""Forecasting: targets, windows and their errors, the multi-step task, forecasters, the
Time-LLM program and its ablations, and the bench's paired comparison."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reprogram import FitConfig, fit, load_artifact
from reprogram.baselines.base import run_baseline
from reprogram.cli import main
from reprogram.config import BaselineConfig
from reprogram.data import load_target
from reprogram.data.forecast import DATA_ENV, data_folder, season_of, windows
from reprogram.data.splits import prepare_splits
from reprogram.errors import DataError, ReprogramError
from reprogram.forecast import (
    DLinear,
    InstanceNorm,
    PatchTST,
    RevINLinear,
    SeasonalNaive,
    patch_count,
    patches,
)
from reprogram.optim import build_optimizer
from reprogram.sources import build_source
from reprogram.tasks import REGRESSION
from reprogram.train import _epoch_order

ROWS = 400


def _table(tmp_path: Path, rows: int = ROWS, name: str = "toy.csv") -> Path:
    """An hourly table: a daily sine and a trending cosine, with noise."""
    rng = np.random.default_rng(0)
    lines = ["date,a,b"]
    for t in range(rows):
        day, hour = divmod(t, 24)
        a = math.sin(2 * math.pi * t / 24) + rng.normal(0, 0.1)
        b = 2 * math.cos(2 * math.pi * t / 12) + t / 200 + rng.normal(0, 0.1)
        lines.append(f"2021-01-{day + 1:02d} {hour:02d}:00:00,{a:.5f},{b:.5f}"
                     if day < 28 else f"2021-02-{day - 27:02d} {hour:02d}:00:00,{a:.5f},{b:.5f}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _raw(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2))


def test_csv_target_windows_splits_and_training_only_scaling(tmp_path: Path) -> None:
    path = _table(tmp_path)
    data = load_target(f"forecast:{path}#lookback=48#horizon=12")
    assert data.task == "regression" and data.modality == "forecast"
    assert data.class_names[0] == "t+1" and data.num_classes == 12
    train_rows, test_rows = int(ROWS * 0.7), int(ROWS * 0.2)
    val_rows = ROWS - train_rows - test_rows
    # channel-independent windows, stride 1: (rows - L - H + 1) per column
    assert len(data.train) == 2 * (train_rows - 48 - 12 + 1)
    assert len(data.val) == 2 * (val_rows + 48 - 48 - 12 + 1)
    assert len(data.test) == 2 * (test_rows - 12 + 1)
    raw = _raw(path)
    mean, std = raw[:train_rows].mean(0), raw[:train_rows].std(0)
    normal = (raw - mean) / std
    assert data.forecast["mean"] == pytest.approx(list(mean))
    assert data.forecast["season"] == 24
    # test window 3 of column b starts at row (rows - test_rows - L) + 3
    start = ROWS - test_rows - 48 + 3
    np.testing.assert_allclose(data.test.x[3 * 2 + 1, 0].numpy(), normal[start:start + 48, 1],
                               atol=1e-5)
    np.testing.assert_allclose(data.test.y[3 * 2 + 1].numpy(),
                               normal[start + 48:start + 60, 1], atol=1e-5)


def test_options_fraction_stride_and_column(tmp_path: Path) -> None:
    path = _table(tmp_path)
    full = load_target(f"forecast:{path}#lookback=48#horizon=12")
    few = load_target(f"forecast:{path}#lookback=48#horizon=12#train_fraction=0.5")
    # Time-LLM's rule: the first half of the training windows, in time order
    assert len(few.train) == 2 * (48 + int((280 - 48) * 0.5) - 48 - 12 + 1)
    torch.testing.assert_close(few.train.x, full.train.x[: len(few.train)])
    sparse = load_target(f"forecast:{path}#lookback=48#horizon=12#stride=5#val_stride=2")
    torch.testing.assert_close(sparse.train.x[:2], full.train.x[:2])
    torch.testing.assert_close(sparse.train.x[2:4], full.train.x[10:12])
    assert len(sparse.test) == len(full.test)  # the test split keeps every window
    with pytest.raises(DataError, match="--train-fraction"):
        prepare_splits(full, shots=10)
    one = load_target(f"forecast:{path}#lookback=48#horizon=12#column=b")
    assert one.forecast["columns"] == ["b"] and len(one.train) == len(full.train) // 2


def test_sample_reads_a_fresh_share_of_the_windows_each_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _table(tmp_path)
    full = load_target(f"forecast:{path}#lookback=48#horizon=12")
    some = load_target(f"forecast:{path}#lookback=48#horizon=12#sample=4")
    torch.testing.assert_close(some.train.x, full.train.x)  # every window is kept ...
    assert some.train.epoch_share == 0.25 and full.train.epoch_share == 1.0  # ... a 1/4 read
    assert some.val.epoch_share == 1.0 and some.forecast["sample"] == 4
    assert len(some.test) == len(full.test)
    n = len(full.train)
    first, second = (_epoch_order(3, e, n, 0, 1, 0.25) for e in (1, 2))
    assert len(first) == len(second) == math.ceil(n / 4)
    assert len(set(first.tolist())) == len(first) and max(first.tolist()) < n
    assert set(first.tolist()) != set(second.tolist())  # a fresh draw every epoch
    assert torch.equal(first, _epoch_order(3, 1, n, 0, 1, 0.25))  # a resumed run: the same
    halves = [_epoch_order(3, 1, n, r, 2, 0.25) for r in (0, 1)]  # two devices share it out
    assert set(torch.cat(halves).tolist()) == set(first.tolist())
    assert torch.equal(_epoch_order(3, 1, n, 0, 1), _epoch_order(3, 1, n, 0, 1, 1.0))
    with pytest.raises(ValueError, match="epoch_share"):
        type(some.train)(some.train.x, some.train.y, 0.0)
    assert some.train.subset(torch.arange(10)).epoch_share == 0.25
    shares: list[float] = []

    def spy(*args: object) -> torch.Tensor:
        shares.append(float(args[5]))  # type: ignore[arg-type]
        return _epoch_order(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("reprogram.train._epoch_order", spy)
    result = fit(FitConfig(
        source="tiny-random-causal-lm", target=f"forecast:{path}#lookback=48#horizon=12#sample=4",
        program="patch-reprogram", mapping="horizon", epochs=2, out=str(tmp_path / "run"),
        progress=False, plots=False, program_options={"atoms": 40, "prototypes": 8},
    ))
    assert shares == [0.25, 0.25] and math.isfinite(result.metrics["test_mse"])
    with pytest.raises(ReprogramError, match="sample"):
        load_target(f"forecast:{path}#lookback=48#horizon=12#sample=0")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("when,a\n1,2\n2,3\n", "no date column.*--date-column"),
        ("date,a\n2020-01-01,1\n2020-01-02,x\n2020-01-03,2\n", r"not numbers.*row\(s\) 3"),
        (
            "date,a\n2020-01-01,1\n2020-01-02,nan\n2020-01-03,\n",
            r"missing values.*row\(s\) 3, 4",
        ),
        ("date,a,b\n2020-01-01,1,2\n2020-01-02,1\n", "row 3: 2 fields, the header has 3"),
        ("date,a\n2020-01-01,1\n", "1 data row"),
        ("date,a\n2020-01-01,1\n2020-01-02,inf\n2020-01-03,2\n", r"infinite.*row\(s\) 3"),
        ("date,a\n2020-01-02,1\n2020-01-01,2\n2020-01-03,2\n",
         r"'2020-01-01' at file row 3 comes before '2020-01-02' at row 2.*oldest first"),
        ("date,a\n2020-01-01,1\n2020-01-01,2\n2020-01-03,2\n", "at file row 3 repeats"),
        ("date,a\n2020-01-01,1\nnot a date,2\n2020-01-03,2\n",
         r"'not a date' \(row 3\) do not read as timestamps"),
        ("date,a\n2020-01-01,1\n,2\n2020-01-03,2\n", r"date is empty at file row\(s\) 3"),
    ],
)
def test_bad_tables_are_named(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        load_target(f"forecast:{path}")


def test_bad_options_and_shapes(tmp_path: Path) -> None:
    path = _table(tmp_path)
    with pytest.raises(DataError, match=r"lacks the column\(s\) 'OT' \(--target-column\); its "
                                        "value columns are a, b"):
        load_target(f"forecast:{path}#column=OT")
    # a named column is the only one read: others may hold text (a station's name)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("date,station,load\n" + "".join(
        f"2021-01-01 {h:02d}:00:00,north,{math.sin(h):.3f}\n" for h in range(24)))
    data = load_target(f"forecast:{mixed}#column=load#lookback=4#horizon=2")
    assert data.forecast is not None and data.forecast["columns"] == ["load"]
    with pytest.raises(DataError, match=r"'station' holds values that are not numbers.*"
                                        "--target-column"):
        load_target(f"forecast:{mixed}#lookback=4#horizon=2")
    with pytest.raises(DataError, match="lower --lookback or --horizon"):
        load_target(f"forecast:{path}#lookback=200#horizon=96")
    with pytest.raises(ReprogramError, match="train_fraction"):
        load_target(f"forecast:{path}#train_fraction=1.5")
    with pytest.raises(ReprogramError, match="has no option"):
        load_target(f"forecast:{path}#lookbak=4")
    flat = tmp_path / "flat.csv"
    flat.write_text("date,a,b\n" + "".join(f"2020-01-{d:02d},{d},5\n" for d in range(1, 29)))
    with pytest.raises(DataError, match="never change"):
        load_target(f"forecast:{flat}#lookback=4#horizon=2")


def test_standard_set_without_files_says_where_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_folder() == tmp_path
    with pytest.raises(DataError, match=f"ETDataset.*{DATA_ENV}"):
        load_target("forecast:ETTh1")


def test_dates_read_in_the_common_layouts_oldest_first(tmp_path: Path) -> None:
    from reprogram.data.forecast import check_dates

    for dates in (["2021-03-01", "2021-03-02T10:00:00", "2021-03-03 00:00:00+00:00"],
                  ["1990/1/1 0:00", "1990/1/2 0:00", "1990/1/3 0:00"],
                  ["31/01/2021", "01/02/2021", "02/02/2021"],  # day first: the only increasing
                  ["01/31/2021", "02/01/2021", "02/02/2021"],  # month first
                  ["1", "2", "3.5"]):  # a numeric time index
        check_dates(dates, "t")  # no error
    with pytest.raises(DataError, match="comes before"):
        check_dates(["2021-03-02", "2021-03-01"], "t")


def test_the_time_column_is_found_by_its_usual_names_or_by_option(tmp_path: Path) -> None:
    from reprogram.data.forecast import read_table

    body = "".join(f"2021-01-{d:02d},{d}\n" for d in range(1, 4))
    for name in ("ds", "Timestamp", "datetime", "time"):
        (tmp_path / "t.csv").write_text(f"{name},y\n{body}")
        table = read_table(tmp_path / "t.csv")
        assert (table.date_column, table.columns) == (name, ["y"])
    (tmp_path / "t.csv").write_text(f"when,y,date\n{body.replace(',', ',0,')}")
    table = read_table(tmp_path / "t.csv", "when")  # named: wins over a column called date
    assert table.columns == ["y", "date"] and table.dates[0] == "2021-01-01"
    with pytest.raises(DataError, match=r"no column 'at'.*--date-column"):
        read_table(tmp_path / "t.csv", "at")
    # predict's history may name its time column otherwise than the training file did
    (tmp_path / "h.csv").write_text(f"ds,y\n{body}")
    assert read_table(tmp_path / "h.csv", "when", date_required=False).date_column == "ds"
    long = "".join(f"{t},{t % 7}\n" for t in range(60))  # a numeric time index
    (tmp_path / "t.csv").write_text(f"when,y\n{long}")
    data = load_target(f"forecast:{tmp_path / 't.csv'}#date_column=when#lookback=4#horizon=2")
    assert data.forecast is not None and data.forecast["date_column"] == "when"


def test_a_spreadsheet_table_reads_with_its_bom_and_semicolons(tmp_path: Path) -> None:
    from reprogram.data.forecast import read_table

    path = tmp_path / "excel.csv"
    path.write_text("\ufeffDate;load\n2021-01-01;1.5\n2021-01-02;2\n", encoding="utf-8")
    table = read_table(path)
    assert (table.date_column, table.columns) == ("Date", ["load"])
    assert table.values[:, 0].tolist() == [1.5, 2.0]
    path.write_text("date\tload\n2021-01-01\t1\n2021-01-02\t2\n")
    assert read_table(path).values[:, 0].tolist() == [1.0, 2.0]


def test_future_dates_continue_evenly_spaced_history() -> None:
    from reprogram.data.forecast import future_dates

    hourly = [f"2020-01-01 {h:02d}:00:00" for h in range(22, 24)]
    assert future_dates(hourly, 2) == ["2020-01-02 00:00:00", "2020-01-02 01:00:00"]
    daily = ["2020-02-27", "2020-02-28"]
    assert future_dates(daily, 2) == ["2020-02-29", "2020-03-01"]  # a leap year
    monthly = ["2020-11-15", "2020-12-15"]
    assert future_dates(monthly, 2) == ["2021-01-15", "2021-02-15"]
    assert future_dates(["3", "5", "7"], 2) == ["9", "11"]  # a numeric index continues
    assert future_dates(["2020-01-01", "2020-01-02", "2020-01-05"], 2) is None  # irregular
    month_ends = ["2019-12-31", "2020-01-31", "2020-02-29"]
    assert future_dates(month_ends, 3) == ["2020-03-31", "2020-04-30", "2020-05-31"]
    assert future_dates(["2020-03-30", "2020-04-30"], 1) is None  # the 30th: not every month


def test_season_from_dates() -> None:
    hourly = [f"2020-01-01 {h:02d}:00:00" for h in range(10)]
    weekly = [f"2020-01-{d:02d}" for d in (1, 8, 15, 22, 29)]
    assert (season_of(hourly), season_of(weekly), season_of(["x", "y"])) == (24, 52, 1)
    assert season_of(["1990/1/1 0:00", "1990/1/2 0:00", "1990/1/3 0:00"]) == 7


def test_windows_are_window_major_columns_inside() -> None:
    series = torch.arange(20.0).view(10, 2)  # column 0 even, column 1 odd
    x, y = windows(series, 3, 2)
    assert x.shape == (2 * 6, 1, 3) and y.shape == (12, 2)
    assert x[1, 0].tolist() == [1.0, 3.0, 5.0] and y[1].tolist() == [7.0, 9.0]
    assert x[2, 0].tolist() == [2.0, 4.0, 6.0]


def test_multi_step_regression_totals_add_up_and_give_steps() -> None:
    torch.manual_seed(0)
    pred, y = torch.randn(30, 4), torch.randn(30, 4)
    whole = REGRESSION.totals(pred, y)
    parts = REGRESSION.totals(pred[:11], y[:11]) + REGRESSION.totals(pred[11:], y[11:])
    torch.testing.assert_close(whole, parts)
    summary = REGRESSION.summary(whole, detail=True)
    assert summary["mse"] == pytest.approx(float(((pred - y) ** 2).mean()))
    assert summary["mae"] == pytest.approx(float((pred - y).abs().mean()))
    assert summary["mse_by_step"] == pytest.approx(((pred - y) ** 2).mean(0).tolist(), abs=1e-6)
    assert "mse_by_step" not in REGRESSION.summary(whole)
    assert REGRESSION.loss(pred, y) == pytest.approx(summary["mse"], rel=1e-5)


def test_forecasting_blocks() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 1, 48) * 3 + 2
    norm = InstanceNorm()
    z = norm(x)
    assert z.mean(1).abs().max() < 1e-5
    torch.testing.assert_close(norm.undo(z, x), x[:, 0], atol=1e-4, rtol=1e-4)
    assert patch_count(48, 16, 8) == 6 and patches(z, 16, 8).shape == (5, 6, 16)
    periodic = torch.sin(torch.arange(48.0) * 2 * math.pi / 12).view(1, 1, 48)
    truth = torch.sin(torch.arange(48.0, 68.0) * 2 * math.pi / 12)
    torch.testing.assert_close(SeasonalNaive(48, 20, 12)(periodic)[0], truth, atol=1e-5,
                               rtol=1e-5)
    for model in (DLinear(48, 7), RevINLinear(48, 7), PatchTST(48, 7, width=8, heads=2,
                                                               layers=1, ff=16)):
        assert model(x).shape == (5, 7)
    # DLinear starts at the window's mean, whatever the trend split
    start = DLinear(48, 3)
    torch.nn.init.zeros_(start.trend.bias)
    torch.nn.init.zeros_(start.seasonal.bias)
    torch.testing.assert_close(start(x), x.mean(-1).expand(-1, 3), atol=1e-4, rtol=1e-4)


def test_learning_rate_decay_follows_the_epoch() -> None:
    w = torch.nn.Parameter(torch.zeros(2))
    stepper, _ = build_optimizer("gradient", {"lr": 0.1, "decay": 0.5}, [w], lambda t: t.backward())
    stepper.begin_epoch(3)
    assert stepper.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    with pytest.raises(ReprogramError, match="decay"):
        build_optimizer("gradient", {"decay": 0}, [w], lambda t: t.backward())


def test_peers_run_under_the_protocol(tmp_path: Path) -> None:
    target = f"forecast:{_table(tmp_path)}#lookback=48#horizon=12"
    naive = run_baseline(BaselineConfig(method="seasonal-naive", target=target,
                                        out=str(tmp_path / "naive"), progress=False))
    m = naive.metrics
    assert m["trainable_parameters"] == 0 and len(m["test_mse_by_step"]) == 12
    assert m["test_mse"] == pytest.approx(m["test_loss"]) and m["test_accuracy"] is None
    assert naive.config["baseline"]["options"]["season"] == 24
    linear = run_baseline(BaselineConfig(method="linear", target=target, epochs=3,
                                         out=str(tmp_path / "linear"), progress=False))
    assert linear.config["optimizer"]["options"]["decay"] == 0.5
    assert linear.metrics["test_mse"] < naive.metrics["test_mse"] * 1.5
    model, _ = load_artifact(tmp_path / "linear")
    data = load_target(target)
    with torch.no_grad():
        again = float(((model(data.test.x) - data.test.y) ** 2).mean())
    assert again == pytest.approx(linear.metrics["test_mse"], rel=1e-5)
    with torch.no_grad():  # a peer's model predicts the 12 steps too, reloaded or not
        torch.testing.assert_close(model.predict(data.test.x[:3]), model(data.test.x[:3]))
    torch.testing.assert_close(linear.model.predict(data.test.x[:3]),
                               model.predict(data.test.x[:3]))
    # predict: a table in, the next 12 steps out on the data's own scale, and a plot
    table = tmp_path / "toy.csv"
    out = tmp_path / "next.csv"
    assert main(["predict", str(tmp_path / "linear"), str(table), "--labelled",
                 "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "step,date,a,a_truth,b,b_truth" and len(lines) == 13
    assert out.with_suffix(".png").is_file()
    raw = _raw(table)
    # labelled: each step carries the date of its truth row (the table's last 12)
    assert [line.split(",")[1] for line in lines[1:]] == [
        r.split(",")[0] for r in table.read_text().splitlines()[-12:]
    ]
    assert [float(v) for v in lines[12].split(",")[3::2]] == pytest.approx(raw[-1], abs=1e-4)
    x = torch.tensor((raw[-60:-12] - data.forecast["mean"]) / data.forecast["std"],
                     dtype=torch.float32).T.unsqueeze(1)
    with torch.no_grad():
        first = model(x)[:, 0].double().numpy() * data.forecast["std"] + data.forecast["mean"]
    assert [float(v) for v in lines[1].split(",")[2::2]] == pytest.approx(first, abs=1e-3)
    # unlabelled: the forecast's dates continue the hourly history
    assert main(["predict", str(tmp_path / "linear"), str(table), "--out", str(out)]) == 0
    ahead = [line.split(",")[1] for line in out.read_text().splitlines()[1:]]
    assert ahead[0] == "2021-01-17 16:00:00" and ahead[-1] == "2021-01-18 03:00:00"


@pytest.mark.parametrize("source", ["tiny-random-causal-lm", "tiny-random-lm"])
def test_patch_reprogram_trains_saves_and_reloads(tmp_path: Path, source: str) -> None:
    target = f"forecast:{_table(tmp_path)}#lookback=48#horizon=12"
    out = tmp_path / "run"
    result = fit(FitConfig(
        source=source, target=target, program="auto", mapping="horizon", epochs=2,
        program_options={"atoms": 40, "prototypes": 8, "prompt": "Toy hourly data.",
                         "statistics": True},
        out=str(out), progress=False, plots=True,
    ))
    assert result.config["program"]["name"] == "patch-reprogram"
    assert result.config["mapping"]["options"]["positions"] == 6  # (48 + 8 - 16) // 8 + 1
    assert (out / "program.png").is_file()
    m = result.metrics
    assert math.isfinite(m["test_mse"]) and m["val_mse"] == pytest.approx(m["val_loss"])
    model, _ = load_artifact(out)
    data = load_target(target)
    with torch.no_grad():
        mse = float(((model.eval()(data.test.x) - data.test.y) ** 2).mean())
    assert mse == pytest.approx(m["test_mse"], rel=1e-4)
    assert main(["eval", str(out)]) == 0
    with torch.no_grad():  # predict: the 12 steps (normalised), not an argmax over them
        torch.testing.assert_close(model.predict(data.test.x[:3]), model(data.test.x[:3]))
    torch.testing.assert_close(result.model.predict(data.test.x[:3]), model.predict(
        data.test.x[:3]), rtol=1e-4, atol=1e-5)


def test_the_seed_alone_decides_the_run(tmp_path: Path) -> None:
    # torch starts each process from a random seed: whatever the global RNG holds when fit is
    # called, the same config builds the same model (the horizon mapping's layers have no seed
    # option of their own) and trains it to the same metrics
    target = f"forecast:{_table(tmp_path)}#lookback=48#horizon=12"
    runs = []
    for name, before in (("a", 1), ("b", 2)):
        torch.manual_seed(before)
        runs.append(fit(FitConfig(
            source="tiny-random-causal-lm", target=target, program="patch-reprogram",
            mapping="horizon", epochs=1, out=str(tmp_path / name), progress=False, plots=False,
            program_options={"atoms": 40, "prototypes": 8},
        )))
    a, b = (r.model.adapter_state_dict() for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].metrics["test_mse"] == runs[1].metrics["test_mse"]


def test_ablations_change_the_source_not_the_protocol(tmp_path: Path) -> None:
    pre = build_source("tiny-random-causal-lm")
    rand = build_source("tiny-random-causal-lm#init=random")
    none = build_source("tiny-random-causal-lm#depth=0")
    assert pre.fingerprint() != rand.fingerprint()
    assert rand.num_parameters == pre.num_parameters > none.num_parameters
    target = f"forecast:{_table(tmp_path)}#lookback=48#horizon=12"
    result = fit(FitConfig(
        source="tiny-random-causal-lm#depth=0", target=target, program="patch-reprogram",
        mapping="horizon", epochs=1, out=str(tmp_path / "attn"), progress=False, plots=False,
        program_options={"atoms": 40, "prototypes": 8, "attention_layers": 1},
    ))
    assert result.config["source"]["name"] == "tiny-random-causal-lm#depth=0"
    assert any(k.startswith("program.mixers.0.") for k in result.model.adapter_state_dict())
    with pytest.raises(ReprogramError, match="--mapping horizon"):
        fit(FitConfig(source="tiny-random-causal-lm", target=target, program="patch-reprogram",
                      mapping="linear", epochs=1, out=str(tmp_path / "x"), progress=False,
                      program_options={"atoms": 40}))


def test_forecast_flags_fold_into_the_target(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _table(tmp_path)
    code = main(["baseline", "--method", "seasonal-naive", "--target", f"forecast:{path}",
                 "--lookback", "48", "--horizon", "6", "--target-column", "a",
                 "--out", str(tmp_path / "n")])
    assert code == 0
    config = json.loads((tmp_path / "n" / "config.json").read_text())
    assert config["target"]["name"].endswith("#lookback=48#horizon=6#column=a")
    assert config["target"]["forecast"]["columns"] == ["a"]
    code = main(["fit", "--target", "digits", "--horizon", "6", "--out", str(tmp_path / "d")])
    assert code == 2 and "not one" in capsys.readouterr().err


def test_bench_pairs_the_lm_with_each_ablation() -> None:
    from reprogram_bench.forecast import paired, summarise

    rows = [
        {"method": m, "dataset": "ETTh1", "horizon": h, "fraction": 1.0, "seed": s,
         "test_mse": mse + 0.01 * s, "test_mae": 0.4, "kind": "reprogramming",
         "trainable_parameters": 1, "source_parameters": 10, "train_seconds": 1.0}
        for h in (96, 192) for s in (0, 1) for m, mse in (("lm", 0.40), ("none", 0.42))
    ]
    c = paired(rows, "lm", "none")
    assert (c["pairs"], c["wins"], c["losses"]) == (4, 4, 0)
    assert c["mean_diff"] == pytest.approx(0.02)
    s = next(x for x in summarise(rows) if x["method"] == "lm" and x["horizon"] == 96)
    assert s["mse_mean"] == pytest.approx(0.405) and s["seeds"] == [0, 1]


def test_bench_plot_names_the_lm_and_its_ablations(tmp_path: Path) -> None:
    from reprogram_bench.forecast import ABLATIONS, REPROGRAMMED, _label, plot_results, summarise

    removed = ABLATIONS["LM removed"]
    assert (_label(REPROGRAMMED), _label(removed), _label("dlinear")) == (
        "reprogrammed LM", "LM removed", "dlinear")
    assert len(_label("patch-reprogram+horizon:" + "x" * 80)) == 46
    rows = [
        {"method": m, "dataset": "ILI", "horizon": h, "fraction": 1.0, "seed": 0,
         "test_mse": 2.0, "test_mae": 0.9, "kind": kind, "trainable_parameters": 1,
         "source_parameters": 10, "train_seconds": 1.0}
        for h in (24, 36) for m, kind in ((REPROGRAMMED, "reprogramming"), ("dlinear", "peer"))
    ]
    plot_results(tmp_path, summarise(rows), {"methods": [REPROGRAMMED, removed, "dlinear"]})
    assert (tmp_path / "mse_by_horizon.png").stat().st_size > 0


def test_bench_source_names_the_lm_and_its_ablations_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprogram_bench import forecast
    from reprogram_bench.forecast import REPROGRAMMED, lm_methods

    assert lm_methods()[0] == REPROGRAMMED  # the default row named in advance is unchanged
    # the tiny LM has 77 ordinary tokens, fewer than the default 1,000 prototype atoms
    monkeypatch.setattr(forecast, "PROGRAM", forecast.PROGRAM + ",atoms=40")
    lm = "tiny-random-causal-lm#precision=bf16"
    ours, ablations = lm_methods(lm)
    assert ours.endswith("@" + lm) and [m.split("@")[1] for m in ablations.values()] == [
        "tiny-random-causal-lm#depth=0#precision=bf16",
        "tiny-random-causal-lm#init=random#precision=bf16",
        "tiny-random-causal-lm#depth=0#precision=bf16",
    ]
    with pytest.raises(ReprogramError, match="itself an ablation"):
        lm_methods("smollm2-135m#depth=0")
    table = _table(tmp_path)
    out = tmp_path / "bench"
    code = main(["bench", "forecast", "--out", str(out), "--tasks", f"{table}#lookback=48",
                 "--horizons", "12", "--seeds", "0", "--epochs", "1", "--quiet",
                 "--source", lm, "--methods", ",".join([ours, ablations["LM removed"]])])
    assert code == 0
    text = (out / "results.md").read_text()
    assert f"named in advance: `{ours}`" in text
    paired = text.split("## Paired")[1]
    assert "LM removed" in paired and "| 1 |" in paired  # one pair: seed 0 at H=12


def test_bench_lm_sample_reads_a_fresh_share_and_keeps_its_own_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprogram_bench import forecast
    from reprogram_bench.forecast import lm_methods

    monkeypatch.setattr(forecast, "PROGRAM", forecast.PROGRAM + ",atoms=40")
    ours, ablations = lm_methods("tiny-random-causal-lm")
    out, table = tmp_path / "bench", _table(tmp_path)
    args = ["bench", "forecast", "--out", str(out), "--tasks", f"{table}#lookback=48",
            "--horizons", "12", "--seeds", "0", "--epochs", "1", "--quiet"]
    assert main([*args, "--lm-sample", "4", "--methods", f"{ours},linear"]) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows[ours]["target"].endswith("#horizon=12#sample=4")  # the LM's stride stays 1
    assert "#sample" not in rows["linear"]["target"]  # peers read every window
    assert "a fresh random 1/4 of the training windows each epoch" in (
        out / "results.md").read_text()
    # a folder filled one way is not mixed with cells read the other way
    assert main([*args, "--methods", ablations["LM removed"]]) == 2


def test_bench_refuses_a_standard_set_whose_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # refused before any cell: a missing file is not a cell the data cannot form (which the
    # bench lists as skipped and goes on)
    monkeypatch.setenv("REPROGRAM_FORECAST_DATA", str(tmp_path / "nowhere"))
    code = main(["bench", "forecast", "--out", str(tmp_path / "b"), "--tasks", "ILI",
                 "--methods", "linear", "--quiet"])
    assert code == 2 and "reads national_illness.csv" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("flags", "match"), [
    (["--lm-strides", "3"], "two whole numbers"),
    (["--lm-strides", "16,0"], "positive integers"),
    (["--fractions", "0"], "numbers in"),
    (["--lm-sample", "0"], "--lm-sample takes"),
])
def test_bench_forecast_flags_are_checked(tmp_path: Path, flags: list[str], match: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "forecast", "--out", str(tmp_path / "b"), *flags])
    assert code == 2 and match in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(data_folder() is None or not (data_folder() / "ETTh1.csv").is_file(),
                    reason="the standard forecasting files are not here")
def test_etth1_standard_split() -> None:
    data = load_target("forecast:ETTh1#lookback=336#horizon=96")
    assert data.forecast["columns"][-1] == "OT" and data.forecast["season"] == 24
    assert len(data.train) == 7 * (8640 - 336 - 96 + 1)
    assert len(data.val) == 7 * (2880 - 96 + 1) == len(data.test)


@pytest.mark.parametrize("select", ["kfold:3", "refit"])
def test_fold_selection_is_refused_on_a_forecast(tmp_path: Path, select: str) -> None:
    target = f"forecast:{_table(tmp_path)}#lookback=48#horizon=12"
    config = BaselineConfig(method="linear", target=target, epochs=1, select=select,
                            out=str(tmp_path / "run"), progress=False)
    with pytest.raises(ReprogramError, match="chronological validation split"):
        run_baseline(config)
    assert not (tmp_path / "run" / "folds").exists()


def test_rescoring_with_the_last_incomplete_test_batch_dropped(tmp_path: Path) -> None:
    from reprogram_bench.drop_last import markdown, rescore

    target = f"forecast:{_table(tmp_path)}#lookback=48#horizon=12"
    run = tmp_path / "runs" / "cell"
    metrics = run_baseline(BaselineConfig(method="linear", target=target, epochs=2,
                                          out=str(run), progress=False)).metrics
    row = {"dataset": "toy", "horizon": 12, "fraction": 1.0, "method": "linear", "seed": 0,
           "target": target, "test_mse": metrics["test_mse"]}
    data = load_target(target)
    windows_ = len(data.test.y) // 2  # two columns, window-major
    scored = rescore(tmp_path, [row], 16, lambda r: "cell")
    assert len(scored) == 1
    s = scored[0]
    assert s["windows"] == windows_ and s["kept"] == (windows_ // 16) * 16
    assert s["test_mse"] == pytest.approx(metrics["test_mse"], rel=1e-5)
    model, _ = load_artifact(run)
    with torch.no_grad():
        err = ((model(data.test.x) - data.test.y) ** 2).reshape(windows_, 2, 12).mean((1, 2))
    assert s["test_mse_drop_last"] == pytest.approx(float(err[: s["kept"]].mean()), rel=1e-5)
    table = markdown(scored, 16, "cmd", str, {})
    assert "## toy" in table and f"H=12: {windows_} / {s['kept']}" in table
    with pytest.raises(ReprogramError, match="differs from the recorded"):
        rescore(tmp_path, [{**row, "test_mse": row["test_mse"] + 1}], 16, lambda r: "cell")


def test_autoets_fits_each_window_on_its_own_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statsforecast.models import AutoETS

    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path / "cache"))
    target = f"forecast:{_table(tmp_path, rows=260)}#lookback=96#horizon=12"
    ets = run_baseline(BaselineConfig(method="autoets", target=target,
                                      out=str(tmp_path / "ets"), progress=False))
    naive = run_baseline(BaselineConfig(method="seasonal-naive", target=target,
                                        out=str(tmp_path / "naive"), progress=False))
    m = ets.metrics
    data = load_target(target)
    assert m["trainable_parameters"] == 0 and ets.config["baseline"]["options"]["season"] == 24
    assert m["ets_windows"] == len(data.val.x) + len(data.test.x) and m["ets_fallbacks"] == 0
    assert m["ets_cached"] == 0  # a fresh store: every window fitted
    # a sine with noise: fitted exponential smoothing forecasts it better than the last day
    assert m["test_mse"] < naive.metrics["test_mse"]
    # the artifact rebuilds the same forecaster: each window is statsforecast's own forecast
    model, _ = load_artifact(tmp_path / "ets")
    with torch.no_grad():
        out = model(data.test.x[:3]).double().numpy()
    for row, x in zip(out, data.test.x[:3].double().numpy(), strict=True):
        direct = AutoETS(season_length=24).forecast(y=x.reshape(-1), h=12)["mean"]
        assert row == pytest.approx(direct, abs=1e-5)


def test_autoets_remembers_each_window_for_every_shorter_horizon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprogram.forecast import AutoETSForecaster

    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path / "cache"))
    t = np.arange(200)
    x = torch.tensor(np.stack([np.sin(2 * np.pi * (t + s) / 24) + 0.05 * np.cos(t * s)
                               for s in range(4)]), dtype=torch.float32)[:, None, :]
    long = AutoETSForecaster(horizon=48, season=24)
    first = long(x)
    assert long.cached == 0 and long.windows == 4
    short = AutoETSForecaster(horizon=12, season=24)
    again = short(x)  # read back, not refitted: the first 12 of the stored forecast
    assert short.cached == 4 and torch.equal(again, first[:, :12])
    monkeypatch.setenv("REPROGRAM_ETS_CACHE", "0")
    fresh = AutoETSForecaster(horizon=12, season=24)
    assert torch.equal(fresh(x), again) and fresh.cached == 0  # the same as a direct fit
    other = AutoETSForecaster(horizon=12, season=12)  # other settings: another key
    monkeypatch.setenv("REPROGRAM_ETS_CACHE", "1")
    other(x)
    assert other.cached == 0
    monkeypatch.setenv("REPROGRAM_ETS_CACHE", "yes")
    with pytest.raises(ReprogramError, match=r"REPROGRAM_ETS_CACHE=.yes.*1 to remember"):
        AutoETSForecaster(horizon=12, season=24)(x)


def test_a_damaged_forecast_store_is_left_aside_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    from reprogram.forecast import AutoETSForecaster

    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "autoets").mkdir(parents=True)
    version = metadata.version("statsforecast")
    damaged = tmp_path / "cache" / "autoets" / f"statsforecast-{version}.sqlite"
    damaged.write_bytes(b"not a database" * 100)
    t = np.arange(120, dtype=np.float64)
    x = torch.tensor(np.sin(2 * np.pi * t / 24), dtype=torch.float32).reshape(1, 1, 120)
    ets = AutoETSForecaster(horizon=6, season=24)
    with pytest.warns(RuntimeWarning, match=r"AutoETS forecast store .*delete the file"):
        out = ets(x)
    assert ets.store_off and ets.cached == 0 and ets.fallbacks == 0
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path / "a file"))  # no directory there
    ets = AutoETSForecaster(horizon=6, season=24)
    with pytest.warns(RuntimeWarning, match="cannot create the cache directory"):
        assert torch.equal(ets(x), out)
    monkeypatch.setenv("REPROGRAM_ETS_CACHE", "0")
    assert torch.equal(out, AutoETSForecaster(horizon=6, season=24)(x))


def test_autoets_does_not_remember_a_failed_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprogram.forecast import AutoETSForecaster

    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path / "cache"))

    class Failing:
        def __init__(self, season_length: int) -> None:
            pass

        def forecast(self, y: np.ndarray, h: int) -> dict[str, np.ndarray]:
            raise RuntimeError("no fit")

    x = torch.arange(2 * 60, dtype=torch.float32).reshape(2, 1, 60)
    for _ in range(2):
        ets = AutoETSForecaster(horizon=6, season=24)
        ets.model_class = Failing
        out = ets(x)
        assert ets.fallbacks == 2 and ets.cached == 0  # still fitted (and failing) the 2nd time
        assert torch.equal(out, x[:, 0, -1:].expand(2, 6))


def test_autoets_without_statsforecast_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "statsforecast.models", None)
    target = f"forecast:{_table(tmp_path)}#lookback=48#horizon=12"
    with pytest.raises(ReprogramError, match=r"needs statsforecast.*pip install --no-deps"):
        run_baseline(BaselineConfig(method="autoets", target=target,
                                    out=str(tmp_path / "ets"), progress=False))
    assert not (tmp_path / "ets").exists()


def test_bench_runs_autoets_once_and_strides_only_its_validation() -> None:
    from reprogram_bench.forecast import REPROGRAMMED, cells_for, target_name

    cells = cells_for(("ILI",), (24,), (1.0,), (REPROGRAMMED, "autoets", "linear"), (0, 1))
    assert [(c.method, c.seed) for c in cells if c.method == "autoets"] == [("autoets", 0)]
    assert {c.method: c.kind for c in cells} == {
        REPROGRAMMED: "reprogramming", "autoets": "local", "linear": "peer"}
    assert target_name(cells[1], 1, 8).endswith("#horizon=24#val_stride=8")
    # AutoETS first, longest horizon first: the shorter ones read its stored forecasts back
    grid = cells_for(("ETTh1",), (96, 720, 336), (1.0,), ("linear", "autoets"), (0,))
    assert [(c.method, c.horizon) for c in grid] == [
        ("autoets", 720), ("autoets", 336), ("autoets", 96),
        ("linear", 96), ("linear", 720), ("linear", 336)]


def test_bench_plot_names_a_far_off_method_instead_of_flattening_the_rest() -> None:
    from reprogram_bench.forecast import _off_scale

    panel = [{"method": m, "horizon": h, "mse_mean": v}
             for m, vals in (("lm", (1.9, 2.0)), ("linear", (2.1, 2.0)), ("ets", (9.7, 23.4)))
             for h, v in zip((24, 36), vals, strict=True)]
    assert _off_scale(panel) == {"ets": (9.7, 23.4)}
    assert _off_scale([p for p in panel if p["method"] != "ets"]) == {}


def test_dates_that_skip_steps_are_noted_with_the_widest_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reprogram.data.forecast import read_table

    hours = [f"2021-01-01 {h:02d}:00:00" for h in range(24) if h not in (5, 6, 7)]
    (tmp_path / "gap.csv").write_text("date,y\n" + "".join(f"{d},1\n" for d in hours))
    read_table(tmp_path / "gap.csv")
    err = capsys.readouterr().err
    assert "skip 1 time(s)" in err and "usual step is 1:00:00" in err
    assert "4:00:00, follows '2021-01-01 04:00:00' at file row 6" in err
    # evenly spaced, calendar months (28-31 days) and a numeric index: nothing to note
    months = [f"2021-{m:02d}-01" for m in range(1, 13)]
    for name, dates in (("even", hours[:5]), ("months", months), ("index", ["1", "2", "3"])):
        (tmp_path / f"{name}.csv").write_text("time,y\n" + "".join(f"{d},1\n" for d in dates))
        read_table(tmp_path / f"{name}.csv")
        assert capsys.readouterr().err == "", name
    (tmp_path / "index.csv").write_text("time,y\n1,1\n2,1\n3,1\n9,1\n")
    read_table(tmp_path / "index.csv")
    assert "the usual step is 1; the widest gap, 6, follows '3'" in capsys.readouterr().err
