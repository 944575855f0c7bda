"""The trainer's side of black-box accounting: the query plan, the budget, per-epoch counts.

A :class:`QueryTracker` is attached to every fit whose source is a
:class:`~reprogram.blackbox.source.BlackBoxSource` (a white-box run gets a :class:`NullTracker`
that does nothing). With ``--query-budget N``:

- the test scoring's queries (one per test example) are held back from the start, so training
  can never eat them;
- before training, the run is refused (with the numbers) unless the budget covers the set-up
  passes (a probe warm start, the epoch-0 validation), one epoch (its training steps at the
  optimizer's queries per example, an ILM/FLM count pass, a validation pass) and the test;
- before every epoch the same plan (an upper bound: cache hits only lower it) is checked
  against what is left; when the epoch does not fit, training stops cleanly, the best
  validation state is restored, the test is scored once from the held-back queries, the
  artifact is written with ``stopped: "query budget"``, and the checkpoint is kept (with the
  final count) so ``--resume`` with a larger budget continues.

The source's ledger still refuses any request (or retry) that would break the budget before
sending it, so even a callback that queries on its own can never go one query over. A retry
refused by the budget stops the run like a failing endpoint (counts saved, resume hint).

Queries are counted when SENT (retries included: a server may charge for a request it fails to
answer), and ``metrics.json`` reports ``queries`` (sent), ``queries_answered`` and
``queries_retried``. The ledger appends every request to ``queries.jsonl`` in ``--out`` before
sending it; ``--resume`` takes the counts from that journal, so queries sent after the last
checkpoint (a partial epoch before a kill) are not lost. The answers to them are kept too
(``queries.answers``, emptied at each checkpoint): the resumed run, which repeats the partial
epoch exactly, replays them instead of paying again (``answers_replayed`` in ``metrics.json``).

A budget that runs out inside an epoch (retries of a failing endpoint spend it faster than the
plan) stops training like a budget that cannot cover the next epoch: the partial epoch is
dropped, the best validation state so far is tested from the held-back queries and written
with ``stopped: "query budget"``, and the checkpoint is kept for ``--resume``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from ..config import RunConfig
from ..errors import ReprogramError
from ..optim import is_zeroth_order
from ..sources.base import Source
from .language import query_any
from .replay import ANSWERS_NAME, AnswerLog
from .source import JOURNAL_NAME, BlackBoxSource, QueryBudgetExceeded, is_blackbox

STOPPED_BY_BUDGET = "query budget"


def prepare_source(config: RunConfig, source: Source) -> Source:
    """The source a run trains against: white boxes are queried when the optimizer is
    zeroth-order; a black box refuses the ``gradient`` optimizer."""
    zeroth_order = is_zeroth_order(config.optimizer)
    if zeroth_order and not is_blackbox(source):
        return query_any(source)  # type: ignore[return-value]
    if not zeroth_order and is_blackbox(source):
        raise ReprogramError(
            f"the source {source.name} can only be queried, so it gives no gradients: train "
            f"with --optimizer rgf or --optimizer spsa-gc."
        )
    if config.query_budget is not None and not is_blackbox(source):
        raise ReprogramError(
            "--query-budget bounds the queries to a black-box source; this run trains a white "
            "box with gradients. Use --optimizer rgf|spsa-gc, or drop --query-budget."
        )
    return source


class NullTracker:
    """The tracker of a white-box run: nothing to count."""

    def check_start(self, done: int) -> None:
        """Nothing to check."""

    def begin(self, phase: str) -> None:
        """Nothing to attribute."""

    def epoch_fits(self, epoch: int) -> bool:
        return True

    def epoch_record(self) -> dict[str, Any]:
        return {}

    def summary(self, stopped: str | None) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Nothing to restore."""

    def update_checkpoint(self, path: Path) -> None:
        """Nothing to add."""

    def interrupted(self, exc: Exception, out: Path) -> ReprogramError:
        return ReprogramError(str(exc))

    def checkpointed(self) -> None:
        """Nothing kept since the last checkpoint."""

    def run_finished(self) -> None:
        """Nothing to clean up."""

    def epoch_guard(self, can_stop: bool) -> EpochGuard:
        """A guard that lets every exception through."""
        return EpochGuard(False)


class EpochGuard:
    """Wraps one epoch: with ``can_stop``, a :class:`QueryBudgetExceeded` raised inside it
    (the budget ran out mid-epoch) is swallowed and ``stopped`` says why training ends."""

    def __init__(self, can_stop: bool) -> None:
        self.can_stop = can_stop
        self.stopped: str | None = None

    def __enter__(self) -> EpochGuard:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        if self.can_stop and isinstance(exc, QueryBudgetExceeded):
            self.stopped = STOPPED_BY_BUDGET
            return True
        return False


class QueryTracker(NullTracker):
    """Counts a black-box run's queries by phase and keeps it within ``--query-budget``."""

    def __init__(self, trainer: Any, stepper: Any, source: BlackBoxSource) -> None:
        self.trainer = trainer
        self.stepper = stepper
        self.source = source
        self.ledger = source.ledger
        self.budget = trainer.config.query_budget
        source.reset_queries()
        self.ledger.budget = self.budget
        self.test_size = len(trainer.splits.test)
        self.ledger.reserved = self.test_size if self.budget is not None else 0
        self._epoch_start = 0
        self.journal = Path(trainer.out) / JOURNAL_NAME
        self.answers = Path(trainer.out) / ANSWERS_NAME
        if not trainer.config.resume:  # a resumed run reads them back first (load_state_dict)
            self.ledger.open_journal(self.journal, fresh=True)
            source.answer_log.open(self.answers, fresh=True)

    @classmethod
    def attach(cls, trainer: Any, stepper: Any, source: Any) -> NullTracker:
        """A tracker for ``trainer``'s run against ``source`` (a :class:`NullTracker` when
        there is no source or it is a white box: ``source.access != "query"``)."""
        if source is None or source.access != "query":
            return NullTracker()
        if trainer.fabric.world_size > 1:
            raise ReprogramError(
                f"black-box training runs in one process (--devices 1): queries to "
                f"{source.name} are counted against one budget. Got --devices "
                f"{trainer.fabric.world_size}."
            )
        return cls(trainer, stepper, source)

    # ------------------------------------------------------------------ the plan
    def setup_cost(self) -> int:
        """Queries of the set-up passes: a probe warm start (train + val) or a ridge head's
        first fit (train), epoch-0 validation."""
        n = sum(cb.setup_queries(self.trainer) for cb in self.trainer.callbacks)
        if self.trainer.starts:  # the start is validated as candidate epoch 0
            n += self._val_size()
        return n

    def _val_size(self) -> int:
        """Queries of one validation pass (none in a run that skips validation)."""
        return len(self.trainer.splits.val) if self.trainer.config.score_val else 0

    def epoch_cost(self) -> dict[str, int]:
        """Upper bound on one epoch's queries: training steps, count pass, validation."""
        splits = self.trainer.splits
        per_example = int(getattr(self.stepper, "queries_per_example", lambda: 1)())
        return {
            "train": len(splits.train) * per_example,
            "count": sum(cb.epoch_queries(self.trainer) for cb in self.trainer.callbacks),
            "val": self._val_size(),
        }

    def check_start(self, done: int) -> None:
        """Refuse a run whose budget cannot cover set-up, one epoch and the test scoring."""
        if self.budget is None:
            return
        left = self.budget - self.ledger.queries
        if done:
            if left < self.test_size:
                raise ReprogramError(
                    f"--query-budget {self.budget}: {self.ledger.queries} queries are already "
                    f"spent, which leaves {left}, fewer than the {self.test_size} the test "
                    f"scoring needs. Resume with a larger --query-budget."
                )
            return
        setup, epoch = self.setup_cost(), self.epoch_cost()
        need = setup + sum(epoch.values()) + self.test_size
        if need > left:
            per = getattr(self.stepper, "queries_per_example", lambda: 1)()
            raise ReprogramError(
                f"--query-budget {self.budget} cannot cover even one epoch and the test "
                f"scoring: set-up {setup} + one epoch {sum(epoch.values())} (training "
                f"{len(self.trainer.splits.train)} examples × {per} queries = {epoch['train']}, "
                f"count pass {epoch['count']}, validation {epoch['val']}) + test "
                f"{self.test_size} = {need} queries. Raise --query-budget to at least {need}, "
                f"or use fewer shots or fewer queries per step (q, samples)."
            )

    def epoch_fits(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` fits in what is left (called before each epoch)."""
        self._epoch_start = self.ledger.queries
        available = self.ledger.available
        return available is None or sum(self.epoch_cost().values()) <= available

    # ------------------------------------------------------------------ counting
    def begin(self, phase: str) -> None:
        """Attribute the next queries to ``phase``; ``test`` also releases the held-back ones."""
        self.ledger.phase = phase
        if phase == "test":
            self.ledger.release()

    def epoch_record(self) -> dict[str, Any]:
        """``queries`` of the epoch just finished and ``queries_total`` so far."""
        return {
            "queries": self.ledger.queries - self._epoch_start,
            "queries_total": self.ledger.queries,
        }

    def summary(self, stopped: str | None) -> dict[str, Any]:
        """What metrics.json records about the queries."""
        self.ledger.close_journal()  # the run sends nothing more
        self.source.answer_log.close()
        out: dict[str, Any] = {
            "queries": self.ledger.queries,
            "queries_answered": self.ledger.answered,
            "queries_retried": self.ledger.retried,
            "queries_by_phase": dict(self.ledger.by_phase),
            "cache_hits": self.ledger.cache_hits,
            "answers_replayed": self.ledger.replayed,
            "query_budget": self.budget,
            "queries_per_example_step": getattr(self.stepper, "queries_per_example", lambda: 1)(),
        }
        if stopped:
            out["stopped"] = stopped
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return self.source.query_state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is None:
            raise ReprogramError(
                "--resume: the checkpoint holds no query counts; it was not made by a "
                "black-box run. Start a new --out."
            )
        self.source.load_query_state_dict(state)
        # the journal also holds what was sent after the checkpoint (a kill mid-epoch)
        self.ledger.load_journal(self.journal)
        self.ledger.open_journal(self.journal, fresh=False)
        # and the answers to them: the resumed epoch asks the same inputs again
        self.source.replay = AnswerLog.read(self.answers, self.source.num_classes)
        self.source.answer_log.open(self.answers, fresh=False)

    def checkpointed(self) -> None:
        """A checkpoint was just written: the answers before it are no longer needed."""
        self.source.answer_log.clear()
        self.source.replay.clear()

    def run_finished(self) -> None:
        """The artifact is written and the checkpoint gone: so is the answer log."""
        self.source.answer_log.close()
        self.answers.unlink(missing_ok=True)

    def epoch_guard(self, can_stop: bool) -> EpochGuard:
        """A guard that ends training cleanly when the budget runs out mid-epoch, provided
        ``can_stop`` (an earlier state is there to test); else the error goes on."""
        return EpochGuard(can_stop)

    def update_checkpoint(self, path: Path) -> None:
        """Write the current counts (and cache) into the checkpoint at ``path``, if any.

        Queries spent after the checkpoint (a partial epoch, the test scoring) were really
        sent: a resumed run must count them.
        """
        if not Path(path).exists():
            return
        ckpt = load_checkpoint(path)
        ckpt["queries"] = self.state_dict()
        save_checkpoint(path, ckpt)

    def interrupted(self, exc: Exception, out: Path) -> ReprogramError:
        """The error to raise when the endpoint keeps failing mid-run (checkpoint updated)."""
        path = Path(out) / CHECKPOINT_NAME
        self.update_checkpoint(path)
        spent = self.ledger.queries
        when = (
            "with a larger --query-budget"
            if isinstance(exc, QueryBudgetExceeded)
            else "when the endpoint answers again"
        )
        if path.exists():
            where = (
                f"Training stopped; the last finished epoch is checkpointed in {out} (with the "
                f"{spent} queries sent so far). Rerun the same command with --resume to "
                f"continue {when}."
            )
        else:
            where = f"No epoch finished ({spent} queries sent); rerun the same command {when}."
        return ReprogramError(f"{exc} {where}")


__all__ = ["STOPPED_BY_BUDGET", "EpochGuard", "NullTracker", "QueryTracker", "prepare_source"]
