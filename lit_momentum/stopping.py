"""Stopping a run safely: Ctrl-C (SIGINT) or SIGTERM end the current epoch, save ``last.ckpt`` and exit 130 or 143.

Lightning's own handling loses work here: Ctrl-C raises ``KeyboardInterrupt`` mid-step (the last checkpoint may be
up to ``every_n_epochs`` old) and SIGTERM ends in a ``SystemExit`` without a code (exit 0, as if the run had
finished). ``StopOnSignal`` replaces both for the training stage: the first signal asks the run to stop at the end
of the current epoch, whose checkpoint ``LastCheckpoint`` then writes (it saves whenever the trainer should stop);
a second one ends the process at once (checkpoints are written to a temporary file and renamed, so the last one on
disk stays whole). SIGUSR1 (Lightning's SLURM requeue) keeps Lightning's handler, run at the end of the current step
rather than inside the signal, where it can deadlock.
"""

import os
import signal
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Timer

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number, as shells report it
EXIT_TIME = 124  # a run stopped by --trainer.max_time before its budget (GNU timeout's code for a timed-out command)
NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


class StopOnSignal(L.Callback):
    """Turns SIGINT and SIGTERM into a stop at the end of the current epoch; ``signum`` says which came."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.epoch = -1  # the epoch the run stopped after
        self.previous: dict[int, Any] = {}
        self.requeue: Any = None  # Lightning's SIGUSR1 (SLURM requeue) handler, when it installed one
        self.requeue_pending = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # the second signal: end now, the last checkpoint on disk is whole
            os.write(2, f"\nstopped at once by a second {NAMES[signum]}; the last checkpoint on disk is whole\n"
                     .encode())
            os._exit(EXIT_CODES[signum])
        self.signum = signum

    def install(self) -> None:
        """Take SIGINT and SIGTERM over (again), remembering the handlers found the first time."""
        for sig in EXIT_CODES:
            try:
                previous = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread: signals cannot be handled here
                return
            self.previous.setdefault(sig, previous)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.install()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.install()  # again: Lightning put its own SIGTERM handler in place since ``setup``
        usr1 = getattr(signal, "SIGUSR1", None)
        handler = signal.getsignal(usr1) if usr1 else None
        if callable(handler) and handler != self.defer:  # Lightning's SLURM requeue handler: run it between steps
            self.requeue = handler  # (Lightning's teardown puts back what was there before it)
            signal.signal(usr1, self.defer)

    def defer(self, signum: int, frame: FrameType | None) -> None:
        self.requeue_pending = True

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        # Lightning's requeue handler saves a checkpoint and flushes the logger. Run inside the signal, it deadlocks
        # when the signal lands while TensorBoard's writer holds its queue's lock (seen here: a run hung for good).
        if self.requeue_pending:
            self.requeue_pending = False
            self.requeue(signal.SIGUSR1, None)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # every rank must agree to stop (a signal may reach only some): one small collective per epoch
        if trainer.strategy.reduce_boolean_decision(self.signum is not None, all=False):
            trainer.should_stop = True
            self.epoch = trainer.current_epoch
            if self.signum is None:  # this rank learnt of it from another: report the same signal
                self.signum = signal.SIGTERM

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.restore()  # after Lightning restored the handlers it found (ours)

    def stopped_early(self, trainer: L.Trainer) -> bool:
        """Whether a signal stopped the run before its last epoch."""
        return self.signum is not None and not finished(trainer, self.epoch + 1)

    def message(self, command: str) -> str:
        """The one line printed when a signal stopped the run."""
        # counted from 1, as the progress bar counts: "after epoch 560" is the bar's "epoch 560/2000", all of it done
        return f"stopped by {NAMES[self.signum]} after epoch {self.epoch + 1}; continue with: {command}"


def finished(trainer: L.Trainer, epochs: int, steps: int | None = None) -> bool:
    """Whether a run that has done ``epochs`` epochs and ``steps`` steps (the trainer's) has reached its budget."""
    steps = trainer.global_step if steps is None else steps
    last_epoch = trainer.max_epochs is not None and 0 < trainer.max_epochs <= epochs
    last_step = trainer.max_steps is not None and 0 < trainer.max_steps <= steps
    return last_epoch or last_step


class TimeLimit(Timer):
    """``--trainer.max_time`` as this process's time limit (a SLURM job's): checked after each epoch, so the run stops
    with that epoch's checkpoint (and continues from it exactly), and counted afresh by each process. (Lightning's
    own checks it after any step, mid-epoch, and carries the elapsed time over in the checkpoint: a continued run
    would stop at once.) A run it stops exits 124 with the command that continues it; a sweep keeps the unit
    unfinished, and the same command continues it."""

    def __init__(self, duration: Any) -> None:
        super().__init__(duration, interval="epoch")
        self.given, self.epoch = duration, -1

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if trainer.should_stop and (self.time_remaining() or 0) <= 0:
            self.epoch = trainer.current_epoch

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass  # each process gets its whole time

    def stopped_early(self, trainer: L.Trainer) -> bool:
        """Whether the time ran out before the run's last epoch."""
        return self.epoch >= 0 and not finished(trainer, self.epoch + 1)

    def message(self, command: str) -> str:
        return (f"stopped by --trainer.max_time {self.given} after epoch {self.epoch + 1}, before the end of the "
                f"run; continue with: {command}")
