"""Forecasting targets: ``forecast:ETTh1``, ``ETTh2``, ``ILI``, ``exchange``, ``forecast:PATH.csv``.

A forecasting target is a table of numeric series over time (a ``date`` column and numeric
columns). It is read as the published long-horizon benchmarks read it (Informer, Autoformer,
PatchTST, GPT4TS, Time-LLM):

- chronological splits: ETT 12/4/4 months (rows ``[0, 8640)``, ``[8640, 11520)``,
  ``[11520, 14400)``), every other table 70% / 10% / 20%; the validation and test windows
  start ``lookback`` rows early, so their first forecast begins at the split's first row;
- every column z-normalised with the mean and standard deviation of the *training rows only*;
- windows slid with stride 1: the ``lookback`` values before a point are the input, the
  ``horizon`` values from it the target;
- channel-independent (PatchTST): each column's window is its own example, so one model
  serves every variable. Examples are ordered window by window, columns inside.

Inputs are float32 ``[N, 1, lookback]``; targets float32 ``[N, horizon]``; the task kind is
``regression`` with one output per future step (``class_names`` ``t+1 … t+H``). Errors are
on the normalised scale, as the published tables report them.

Options follow the name after ``#`` (``forecast:ETTh1#lookback=336#horizon=96``), or come
from ``fit``'s ``--lookback``, ``--horizon``, ``--train-fraction`` and ``--target-column``.
The standard files are read from ``$REPROGRAM_FORECAST_DATA``, else ``../shared/data/forecast``
(next to the project, or the working directory) when it exists.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch

from ..errors import DataError
from ..registry import hash_options, options_config
from . import TARGETS
from .base import Split, TargetData, portable_name
from .checks import delimiter_of

DATA_ENV = "REPROGRAM_FORECAST_DATA"

#: Standard sets: file name, split rule ("ett" or a 70/10/20 "ratio"), default lookback.
STANDARD_SETS: dict[str, tuple[str, str]] = {
    "etth1": ("ETTh1.csv", "ett"),
    "etth2": ("ETTh2.csv", "ett"),
    "ili": ("national_illness.csv", "ratio"),
    "exchange": ("exchange_rate.csv", "ratio"),
}
#: Display names of the standard sets (lower-case key → name).
SET_NAMES = {"etth1": "ETTh1", "etth2": "ETTh2", "ili": "ILI", "exchange": "exchange"}
#: The four standard horizons of each set (ILI's are short: a weekly series of 966 rows).
HORIZONS = {
    "etth1": (96, 192, 336, 720),
    "etth2": (96, 192, 336, 720),
    "ili": (24, 36, 48, 60),
    "exchange": (96, 192, 336, 720),
}
#: Default lookback per set (ILI uses 104 weeks, the others 512 hours/days as GPT4TS).
LOOKBACKS = {"ili": 104}
DEFAULT_LOOKBACK = 512
ETT_HOURS = (12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)  # 8640 / 2880 / 2880 rows


@dataclass
class ForecastOptions:
    """Options of a forecasting target (``forecast:NAME#key=value``)."""

    lookback: int | None = field(
        default=None, metadata={"help": "input length L (default 512; ILI 104)"}
    )
    horizon: int | None = field(
        default=None, metadata={"help": "steps to forecast H (default the set's first horizon)"}
    )
    train_fraction: float = field(
        default=1.0,
        metadata={"help": "keep the first F of the training windows (few-shot: 0.1, 0.05)"},
    )
    column: str = field(
        default="", metadata={"help": "forecast this column only (default: every column)"}
    )
    date_column: str = field(
        default="",
        metadata={"help": "the time column (default: the first named date, ds, datetime, "
                          "timestamp or time)"},
    )
    stride: int = field(
        default=1,
        metadata={"help": "keep every S-th training window (S > 1 subsamples; test keeps all)"},
    )
    val_stride: int = field(
        default=1,
        metadata={"help": "keep every S-th validation window (cheaper selection; test keeps all)"},
    )
    sample: int = field(
        default=1,
        metadata={"help": "each training epoch reads a fresh random 1/S of the training "
                          "windows (S > 1: an epoch costs 1/S, yet over the epochs the model "
                          "sees far more windows than stride=S's fixed subset)"},
    )

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a whole number of steps >= 1, got {value!r}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(
                f"train_fraction must lie in (0, 1], got {self.train_fraction!r}"
            )
        for name in ("stride", "val_stride", "sample"):
            value = getattr(self, name)
            if isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


def data_folder() -> Path | None:
    """Where the standard files are: ``$REPROGRAM_FORECAST_DATA``, else the first existing
    ``../shared/data/forecast`` next to the project or the working directory."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    project = Path(__file__).resolve().parents[3]  # src/reprogram/data/ → the checkout
    for base in (project, Path.cwd()):
        candidate = base.parent / "shared" / "data" / "forecast"
        if candidate.is_dir():
            return candidate
    return None


def standard_file(key: str) -> Path:
    """The file of standard set ``key`` (``etth1``, ``ili``, …) in :func:`data_folder`.

    Raises:
        DataError: no folder, or the file is not in it (saying where to get the files).
    """
    filename = STANDARD_SETS[key][0]
    folder = data_folder()
    if folder is None or not (folder / filename).is_file():
        where = f"{folder}" if folder is not None else "no folder found"
        raise DataError(
            f"forecast:{SET_NAMES[key]} reads {filename} ({where}). Get the standard files "
            "(ETTh1.csv, ETTh2.csv from github.com/zhouhaoyi/ETDataset; national_illness.csv "
            "and exchange_rate.csv from the Autoformer data folder) into one folder and set "
            f"${DATA_ENV} to it, or give your own table as forecast:PATH.csv."
        )
    return folder / filename


@dataclass
class Table:
    """A read forecasting table: ``values`` float64 ``[T, C]``, column names, dates and the
    name of the column they came from."""

    values: torch.Tensor
    columns: list[str]
    dates: list[str]
    date_column: str = "date"


#: Names read as the time column when none is given, in this order (case-insensitive):
#: ``date`` (the benchmark files), ``ds`` (statsforecast, Prophet), then common others.
DATE_NAMES = ("date", "ds", "datetime", "timestamp", "time")


def _number(text: str) -> float:
    value = float(text)
    if math.isnan(value):
        raise ValueError("nan")
    return value


#: Timestamp layouts tried in turn (the first that reads every date in increasing order wins);
#: ISO 8601 first, then year/month/day, day/month/year and month/day/year.
DATE_FORMATS = (
    "iso", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
)


def _stamps(dates: list[str], fmt: str) -> list[float] | None:
    """Seconds of each date read with ``fmt`` (``iso``: ISO 8601, or plain numbers: a time
    index); None when one does not read."""
    from datetime import datetime, timezone

    out: list[float] = []
    for text in dates:
        try:
            if fmt == "iso":
                try:
                    out.append(float(text))  # a numeric time index
                    continue
                except ValueError:
                    stamp = datetime.fromisoformat(text)
            else:
                stamp = datetime.strptime(text, fmt)
        except ValueError:
            return None
        if stamp.tzinfo is None:  # read as UTC: no daylight-saving hour repeats or vanishes
            stamp = stamp.replace(tzinfo=timezone.utc)
        out.append(stamp.timestamp())
    return out


def check_dates(dates: list[str], where: str) -> list[float]:
    """The dates as seconds (UTC; a numeric time index as it is), refusing dates that do not
    read as timestamps or that do not increase row by row.

    Windows are cut in row order, so a shuffled, reversed or duplicated timeline would train
    and score silently wrong. File rows are counted from 1 with the header as row 1.

    Raises:
        DataError: naming the first rows that do not read, or the first that does not come
            after the row before it.
    """
    empty = [r + 2 for r, d in enumerate(dates) if not d]
    if empty:
        raise DataError(f"{where}: the date is empty at file row(s) {_rows(empty)}; every row "
                        "needs its timestamp.")
    best: tuple[int, list[float]] | None = None  # the first format reading every date
    for fmt in DATE_FORMATS:
        stamps = _stamps(dates, fmt)
        if stamps is None:
            continue
        back = next((i for i in range(1, len(stamps)) if stamps[i] <= stamps[i - 1]), None)
        if back is None:
            return stamps
        if best is None:
            best = (back, stamps)
    if best is None:
        unread = [r + 2 for r, d in enumerate(dates)
                  if all(_stamps([d], f) is None for f in DATE_FORMATS)]
        shown = ", ".join(f"{dates[r - 2]!r} (row {r})" for r in unread[:3])
        raise DataError(
            f"{where}: {shown or 'the dates'} do not read as timestamps, or mix layouts; write "
            "every date one way, e.g. 2021-01-31 or 2021-01-31 13:00:00 (ISO 8601)."
        )
    i = best[0]
    same = "repeats" if best[1][i] == best[1][i - 1] else "comes before"
    raise DataError(
        f"{where}: the date {dates[i]!r} at file row {i + 2} {same} {dates[i - 1]!r} at row "
        f"{i + 1}; rows must run oldest first, one row per timestamp (sort the table by date "
        "and drop duplicates)."
    )


def note_gaps(stamps: list[float], dates: list[str], where: str) -> int:
    """Note on stderr where the dates skip steps: a step over 1.5 × the usual (median) one.
    Windows are cut in row order, so one across a gap reads the rows either side as
    consecutive; that may be the data's calendar (business days) or missing rows. Calendar
    months (28–31 days) are no gap. Returns the number of gaps.
    """
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    if len(steps) < 2:
        return 0
    usual = statistics.median(steps)
    gaps = [i for i, step in enumerate(steps) if step > 1.5 * usual]  # steps > 0: checked
    if not gaps:
        return 0
    widest = max(gaps, key=lambda i: steps[i])

    def span(seconds: float) -> str:
        if _is_number(dates[0]):  # a numeric time index: its own units
            return f"{seconds:g}"
        return str(timedelta(seconds=round(seconds)))

    print(
        f"note: {where}: the dates skip {len(gaps)} time(s) (the usual step is {span(usual)}; "
        f"the widest gap, {span(steps[widest])}, follows {dates[widest]!r} at file row "
        f"{widest + 2}); a window across a gap reads the rows either side as consecutive. If "
        "those steps are missing data, fill them (e.g. carry the last value forward).",
        file=sys.stderr,
    )
    return len(gaps)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def find_date_column(
    names: list[str], date_column: str, where: str, required: bool = True
) -> int:
    """Index of the time column among the header's ``names``: ``date_column`` when given
    (exact, else case-insensitive), otherwise the first of :data:`DATE_NAMES` present. With
    ``required`` false a given ``date_column`` that is absent falls back to those names.

    Raises:
        DataError: the named column is absent (``required``), or none of the usual names is
            there.
    """
    lower = [n.lower() for n in names]
    if date_column:
        if date_column in names:
            return names.index(date_column)
        if date_column.lower() in lower:
            return lower.index(date_column.lower())
    if date_column and required:
        raise DataError(
            f"{where} has no column {date_column!r} to read dates from (columns: "
            f"{', '.join(names)}); give --date-column one of them."
        )
    for name in DATE_NAMES:
        if name in lower:
            return lower.index(name)
    raise DataError(
        f"{where} has no date column (columns: {', '.join(names)}); name the time column "
        f"with --date-column (or #date_column=NAME), or call it one of "
        f"{', '.join(DATE_NAMES)} (one timestamp per row, oldest first)."
    )


def read_table(
    path: Path,
    date_column: str = "",
    keep: Sequence[str] = (),
    why: str = "",
    date_required: bool = True,
) -> Table:
    """Read a CSV with a time column and numeric columns; every problem named with its row.
    Fields are separated by commas, or by semicolons or tabs when the header holds no comma;
    a leading byte-order mark (as spreadsheets write) is dropped.

    Args:
        path: the CSV file.
        date_column: the time column's name; empty: the first of :data:`DATE_NAMES`.
        keep: the value columns to read (in this order); empty: every column but the time
            column. Columns left out are not read, so they may hold text.
        why: what asks for ``keep`` (said when one is missing), e.g. ``"(--target-column)"``.
        date_required: false: a ``date_column`` the file lacks falls back to
            :data:`DATE_NAMES` (a history table for a model trained on another file).

    Raises:
        DataError: no such file, no time column, no numeric column, a column of ``keep``
            missing, a value that is not a number or is missing/NaN (the rows named), fewer
            than 2 rows.
    """
    where = f"forecast file {path}"
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"{where} {what}; forecast:PATH needs a CSV with a date column.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM
            first = f.readline()
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter_of(first))
            header = next(reader, None)
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where} could not be read as UTF-8 CSV ({exc}).") from None
    if not header:
        raise DataError(f"{where} is empty; give a header row: date,column1,column2,...")
    names = [h.strip() for h in header]
    date_col = find_date_column(names, date_column, where, date_required)
    columns = [n for i, n in enumerate(names) if i != date_col]
    if not columns:
        raise DataError(
            f"{where} has a date column ({names[date_col]!r}) but no value columns to forecast."
        )
    absent = [c for c in keep if c not in columns]
    if absent:
        asked = f" {why}" if why else ""
        raise DataError(
            f"{where} lacks the column(s) {', '.join(repr(c) for c in absent)}{asked}; its "
            f"value columns are {', '.join(columns)}."
        )
    if keep:
        columns = list(keep)
    index = [names.index(c) for c in columns]
    if len(rows) < 2:
        raise DataError(f"{where} has {len(rows)} data row(s); forecasting needs a series.")
    grid = [[0.0] * len(columns) for _ in rows]
    bad: dict[str, list[int]] = {}
    missing: dict[str, list[int]] = {}
    infinite: dict[str, list[int]] = {}
    for r, row in enumerate(rows):
        if len(row) != len(names):
            raise DataError(
                f"{where}, row {r + 2}: {len(row)} fields, the header has {len(names)}; fix "
                "that row."
            )
        cells = [row[i] for i in index]
        for c, text in enumerate(cells):
            text = text.strip()
            if text == "" or text.lower() in ("nan", "na", "null"):
                missing.setdefault(columns[c], []).append(r + 2)
                continue
            try:
                grid[r][c] = _number(text)
            except ValueError:
                bad.setdefault(columns[c], []).append(r + 2)
                continue
            if math.isinf(grid[r][c]) or abs(grid[r][c]) > 1e150:  # overflows the statistics
                infinite.setdefault(columns[c], []).append(r + 2)
    for found, problem in (
        (bad, "holds values that are not numbers, at file row(s) {rows}; every column but date "
              "must be numeric (drop text columns, or forecast one column with "
              "--target-column)."),
        (missing, "is missing values (empty or NaN) at file row(s) {rows}; fill them (e.g. "
                  "carry the last value forward) or cut those rows: forecasting windows must be "
                  "complete."),
        (infinite, "holds infinite (or beyond ±1e150) values at file row(s) {rows}; they are no "
                   "measurements: replace them as you would a missing value."),
    ):
        if found:
            col, where_rows = next(iter(found.items()))
            raise DataError(f"{where}: column {col!r} " + problem.format(rows=_rows(where_rows)))
    dates = [row[date_col].strip() for row in rows]
    note_gaps(check_dates(dates, where), dates, where)
    values = torch.tensor(grid, dtype=torch.float64)
    return Table(values, columns, dates, names[date_col])


def _rows(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:8])
    return shown + (f" … ({len(rows)} in all)" if len(rows) > 8 else "")


def future_dates(dates: list[str], horizon: int) -> list[str] | None:
    """The ``horizon`` timestamps after the last of ``dates``, when the last (up to 50) rows
    are evenly spaced: a fixed step in seconds (ISO 8601 out; the day alone when every step
    lands on midnight), whole calendar months for monthly rows (the same day each month, or
    each month's last day), or a numeric time index continued. None when the spacing is
    irregular or the dates do not read.
    """
    from datetime import datetime, timedelta, timezone

    tail = dates[-50:]
    if len(tail) < 2 or horizon < 1:
        return None
    try:
        known = check_dates(tail, "dates")
    except DataError:
        return None
    gaps = [b - a for a, b in itertools.pairwise(known)]
    if _is_number(tail[-1]):
        if max(gaps) - min(gaps) > 1e-9 * max(1.0, abs(known[-1])):
            return None
        step = gaps[-1]
        out = [known[-1] + k * step for k in range(1, horizon + 1)]
        whole = all(float(v).is_integer() for v in (known[-1], step))
        return [str(int(v)) if whole else repr(v) for v in out]
    stamps = [datetime.fromtimestamp(t, timezone.utc) for t in known]
    day = 86400.0
    last = stamps[-1]
    clock = (last.hour, last.minute, last.second)
    month_end = all((s + timedelta(days=1)).day == 1 for s in stamps)
    monthly = all(28 * day <= g <= 31 * day for g in gaps) and all(
        (s.hour, s.minute, s.second) == clock and (month_end or s.day == last.day)
        for s in stamps
    )
    if not monthly:
        if max(gaps) - min(gaps) >= 1.0:
            return None
        step = gaps[-1]
        times = [known[-1] + k * step for k in range(1, horizon + 1)]
        midnight = step % day == 0 and all(s.hour == s.minute == s.second == 0 for s in stamps)
        layout = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M:%S"
        return [datetime.fromtimestamp(t, timezone.utc).strftime(layout) for t in times]
    if last.day > 28 and not month_end:  # the 29th–31st of some months only: not guessed
        return None
    layout = "%Y-%m-%d" if clock == (0, 0, 0) else "%Y-%m-%d %H:%M:%S"
    ahead: list[str] = []
    for k in range(1, horizon + 1):
        month = last.month - 1 + k
        year, month = last.year + month // 12, month % 12 + 1
        if month_end:  # the day before the next month's first
            after = datetime(year + month // 12, month % 12 + 1, 1, *clock, tzinfo=timezone.utc)
            moved = after - timedelta(days=1)
        else:
            moved = last.replace(year=year, month=month)
        ahead.append(moved.strftime(layout))
    return ahead


def season_of(dates: list[str]) -> int:
    """The seasonal period the dates suggest: hourly 24, daily 7, weekly 52, monthly 12;
    1 when the spacing is irregular, unreadable or a plain time index."""
    head = dates[:50]
    try:
        float(head[0])
        return 1  # a numeric time index: no calendar to read a season from
    except (ValueError, IndexError):
        pass
    try:
        known = check_dates(head, "dates")
    except DataError:
        return 1
    if len(known) < 3:
        return 1
    gaps = sorted(b - a for a, b in itertools.pairwise(known))
    step = gaps[len(gaps) // 2]
    hour, day = 3600.0, 86400.0
    for seconds, season in ((hour / 4, 96), (hour, 24), (day, 7), (7 * day, 52)):
        if abs(step - seconds) < 1.0:
            return season
    if 28 * day <= step <= 31 * day:
        return 12
    return 1


def borders(rule: str, rows: int, lookback: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, end)`` of train, validation and test; validation and test start
    ``lookback`` rows early (their inputs may reach back into the previous split)."""
    if rule == "ett":
        a, b, c = ETT_HOURS
        if rows < a + b + c:
            raise DataError(f"an ETT file needs {a + b + c} rows, this one has {rows}.")
        return [(0, a), (a - lookback, a + b), (a + b - lookback, a + b + c)]
    train = int(rows * 0.7)
    test = int(rows * 0.2)
    val = rows - train - test
    return [(0, train), (train - lookback, train + val), (rows - test - lookback, rows)]


def windows(
    series: torch.Tensor, lookback: int, horizon: int, stride: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sliding windows of normalised ``series`` ``[T, C]`` (stride ``stride``), channel by
    channel: inputs ``[W·C, 1, lookback]`` and targets ``[W·C, horizon]`` (window-major)."""
    span = lookback + horizon
    count = series.shape[0] - span + 1
    if count < 1:
        return torch.empty(0, 1, lookback), torch.empty(0, horizon)
    starts = torch.arange(0, count, stride)
    # [C, W, span] → window-major [W, C, span]
    cut = series.T.unfold(1, span, 1)[:, starts].transpose(0, 1).reshape(-1, span)
    cut = cut.to(torch.float32)
    return cut[:, :lookback].unsqueeze(1).contiguous(), cut[:, lookback:].contiguous()


def load_forecast(spec: str) -> TargetData:
    """Load ``forecast:NAME[#options]`` (a standard set or a CSV path): windows as above."""
    head, *_ = spec.split("#", 1)
    options: ForecastOptions = options_config(
        ForecastOptions, hash_options(spec, spec[len(head):]), "target", f"forecast:{head}",
        listed="forecast:",
    )
    key = head.strip().lower()
    if key in STANDARD_SETS:
        path, rule, label = standard_file(key), STANDARD_SETS[key][1], SET_NAMES[key]
    else:
        path, rule, label = Path(head.strip()).expanduser(), "ratio", head.strip()
        if path.suffix.lower() != ".csv" and not path.is_file():
            raise DataError(
                f"forecast:{head} is neither a standard set ({', '.join(SET_NAMES.values())}) "
                "nor a CSV file; give forecast:PATH.csv with a date column."
            )
    keep = [options.column] if options.column else []
    table = read_table(path, options.date_column, keep, "(--target-column)")
    columns = table.columns
    values = table.values
    lookback = options.lookback or LOOKBACKS.get(key, DEFAULT_LOOKBACK)
    horizon = options.horizon or HORIZONS.get(key, (96,))[0]
    parts = borders(rule, values.shape[0], lookback)
    names = ("training", "validation", "test")
    for (start, end), what in zip(parts, names, strict=False):
        length = end - max(start, 0)
        if start < 0 or length < lookback + horizon:
            raise DataError(
                f"forecast:{label}: the {what} split has {end - start} "
                f"rows (with the lookback) but one window needs lookback {lookback} + horizon "
                f"{horizon} = {lookback + horizon}; lower --lookback or --horizon."
            )
    train_end = parts[0][1]
    mean = values[:train_end].mean(0)
    std = values[:train_end].std(0, unbiased=False)
    flat = [c for c, s in zip(columns, std.tolist(), strict=False) if s == 0.0]
    if flat:
        raise DataError(
            f"forecast:{label}: column(s) {', '.join(flat)} never change in the training rows "
            "(standard deviation 0), so they cannot be normalised; drop them or pick "
            "--target-column."
        )
    normal = (values - mean) / std
    splits = []
    for i, (start, end) in enumerate(parts):
        if i == 0 and options.train_fraction < 1.0:  # Time-LLM's few-shot rule
            end = start + lookback + int((end - start - lookback) * options.train_fraction)
            if end - start < lookback + horizon:
                raise DataError(
                    f"forecast:{label}: --train-fraction {options.train_fraction:g} leaves no "
                    "complete training window; raise it or lower --lookback/--horizon."
                )
        stride = (options.stride, options.val_stride, 1)[i]
        x, y = windows(normal[start:end], lookback, horizon, stride)
        splits.append(Split(x, y, 1.0 / options.sample if i == 0 else 1.0))
    data = TargetData(
        name=f"forecast:{spec}",
        portable_name=None if key in STANDARD_SETS else portable_name("forecast", spec),
        train=splits[0],
        val=splits[1],
        test=splits[2],
        class_names=[f"t+{h}" for h in range(1, horizon + 1)],
        modality="forecast",
        task="regression",
        info={
            "source": str(path),
            "columns": ",".join(columns),
            "lookback": str(lookback),
            "horizon": str(horizon),
        },
    )
    data.forecast = {
        "columns": columns,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "lookback": lookback,
        "horizon": horizon,
        "season": season_of(table.dates),
        "date_column": table.date_column,
        "train_fraction": options.train_fraction,
        "stride": options.stride,
        "val_stride": options.val_stride,
        "sample": options.sample,
        "borders": [list(p) for p in parts],
    }
    return data


@TARGETS.register(
    "forecast:",
    prefix=True,
    config=ForecastOptions,
    help="NAME forecasting: ETTh1, ETTh2, ILI, exchange or PATH.csv (date + numeric columns)",
    tags=("regression", "forecast"),
)
def _forecast(rest: str) -> TargetData:
    return load_forecast(rest)
