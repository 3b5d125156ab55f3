"""What the terminal shows: Lightning's messages a user can do nothing about filtered out, the progress display,
and where a run's files went."""

import logging
import sys
import time
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary, ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.model_summary import model_summary
from torchmetrics import Metric

PROGRESS_REFRESH_STEPS = 50  # and at the end of every epoch
LINE_EVERY_SECONDS = 30.0  # where the output is a file: a line at most this often (and at the end)


class DropCloudTip(logging.Filter):
    """Drops Lightning's advertisements for its cloud services (printed at every run), its ``Seed set to 0`` (the
    seed is in the run's config.yaml; printed first, it made a refusal two lines) and its note that it loads the
    training data to count the steps (a schedule's length) and that a summary callback was given (``NetSummary``);
    shows its notes on the devices
    (``GPU available: ...``) once per command, not once per Trainer (a sweep of many grids, a study)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if any(ad in text for ad in ("litlogger", "litmodels", "Seed set to", "to estimate number of stepping",
                                     "already configured with model summary callbacks")):
            # (under SLURM: "[rank: 0] Seed ..."; the last: a scheduler's length is looked up, which says nothing)
            return False
        if any(note in text for note in ("GPU available", "TPU available", "HPU available")):
            if text in self.seen:
                return False
            self.seen.add(text)
        return True


def quiet() -> None:
    """Silence at the entry points what a user can do nothing about, and only that: the cloud-logger tip, a
    deprecation warning Lightning 2.6 raises from inside itself with torch >= 2.10 (LeafSpec), the warning that a
    model with a validation step got data without a validation set (the article's data has none), and the one
    Lightning gives on any machine where SLURM is installed, for every run not started by ``srun`` (a run on one's
    own machine, a share of a sweep, a test), and its two notes that a step reading its own batches
    (``lit_momentum.steps``) is experimental. A user's own warnings, and Lightning's other messages, still show."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r"You defined a `validation_step` but have no `val_dataloader`")
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    warnings.filterwarnings("ignore", message=r"Found `dataloader_iter` argument in the `training_step`")  # a run
    warnings.filterwarnings("ignore", message=r"You are using the `dataloader_iter` step flavor")  # takes its steps
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropCloudTip) for f in logger.filters):
            logger.addFilter(DropCloudTip())


def quiet_lightning() -> None:
    """Lightning's notes (``Seed set to 0``, the devices, restoring a checkpoint's states) off: for a command whose
    output is its result. Its warnings still show, but for the one that a tested checkpoint was written with
    callbacks the test does not need (it writes nothing)."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks used to create")


class LineProgress(ProgressBar):
    """Progress as a plain line, ``epoch 12/100 (34 s): train/loss 0.6912 ...``, at most every ``every`` seconds and
    after the last epoch: for output that goes to a file (a SLURM job's log, CI), which a bar's redraws would fill."""

    def __init__(self, every: float = LINE_EVERY_SECONDS) -> None:
        super().__init__()
        self.every, self.enabled, self.start, self.last = every, True, 0.0, 0.0

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = self.last = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now, epoch, step = time.monotonic(), trainer.current_epoch + 1, trainer.global_step
        last = (0 < (trainer.max_epochs or 0) <= epoch or 0 < (trainer.max_steps or 0) <= step
                or trainer.should_stop)
        if not self.enabled or (now - self.last < self.every and not last):
            return
        self.last = now
        where = f"epoch {epoch}" + (f"/{trainer.max_epochs}" if (trainer.max_epochs or 0) > 0 else "")
        if (trainer.max_steps or 0) > 0:
            where += f", step {step}/{trainer.max_steps}"
        shown = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        values = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
        print(f"{where} ({now - self.start:.0f} s): {values}", file=sys.stderr, flush=True)


def is_terminal() -> bool:
    """Whether progress goes to a terminal (a bar) or to a file (plain lines); tqdm writes to stderr."""
    return sys.stderr.isatty()


def progress_callbacks(callbacks: list[L.Callback], enabled: bool | None) -> list[L.Callback]:
    """The user's callbacks, plus (unless the user chose a bar, or none) a progress bar that redraws every
    ``PROGRESS_REFRESH_STEPS`` steps (after every step it costs about a third of a millisecond), or, where the output
    is not a terminal, a plain line every ``LINE_EVERY_SECONDS``."""
    if enabled is False or any(isinstance(c, ProgressBar) for c in callbacks):
        return callbacks
    bar: Any = TQDMProgressBar(refresh_rate=PROGRESS_REFRESH_STEPS) if is_terminal() else LineProgress()
    return [*callbacks, bar]


class LayersOnly(model_summary.ModelSummary):
    """Lightning's summary of a module's layers, without its metric objects (torchmetrics' accumulators are
    modules without parameters: listed beside the network they read as layers of it)."""

    @property
    def named_modules(self) -> list[tuple[str, Any]]:
        return [(name, m) for name, m in super().named_modules if not isinstance(m, Metric)]


class NetSummary(ModelSummary):
    """Lightning's model summary callback, its table by ``LayersOnly``."""

    def _summary(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Any:
        if type(trainer.strategy).__name__ == "DeepSpeedStrategy":  # (its own summary of sharded parameters)
            return super()._summary(trainer, pl_module)
        return LayersOnly(pl_module, max_depth=self._max_depth)


def summary_callbacks(callbacks: list[L.Callback], enabled: bool | None) -> list[L.Callback]:
    """The user's callbacks, plus (unless the user chose a summary, or none) ``NetSummary`` in place of Lightning's
    default one."""
    if enabled is False or any(isinstance(c, ModelSummary) for c in callbacks):
        return callbacks
    return [*callbacks, NetSummary()]


@rank_zero_only
def report(trainer: L.Trainer) -> None:
    """Tell the user where the run's logs and checkpoint are, and how to look at them."""
    if trainer.logger is None:
        return
    ckpt = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
    tensorboard = any(isinstance(lg, TensorBoardLogger) for lg in trainer.loggers)
    print(f"\nlogs:       {trainer.logger.log_dir}\ncheckpoint: {ckpt or 'none'}"
          + (f"\nview with:  tensorboard --logdir {trainer.logger.save_dir}" if tensorboard else ""))
