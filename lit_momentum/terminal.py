"""What the terminal shows: Lightning's messages a user can do nothing about filtered out, the progress display,
and where a run's files went."""

import logging
import warnings

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_only

PROGRESS_REFRESH_STEPS = 50  # and at the end of every epoch


class DropCloudTip(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger (printed at every run), nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


def quiet() -> None:
    """Silence at the entry points what a user can do nothing about, and only that: the cloud-logger tip, a
    deprecation warning Lightning 2.6 raises from inside itself with torch >= 2.10 (LeafSpec), and the warning that
    a model with a validation step got data without a validation set (the article's data has none). A user's own
    warnings, and Lightning's other messages, still show."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r"You defined a `validation_step` but have no `val_dataloader`")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropCloudTip) for f in logger.filters):
            logger.addFilter(DropCloudTip())


def progress_callbacks(callbacks: list[L.Callback], enabled: bool | None) -> list[L.Callback]:
    """The user's callbacks, plus a progress bar that redraws every ``PROGRESS_REFRESH_STEPS`` steps (redrawing
    after every step costs about a third of a millisecond) unless the user chose a bar or none."""
    if enabled is False or any(isinstance(c, ProgressBar) for c in callbacks):
        return callbacks
    return [*callbacks, TQDMProgressBar(refresh_rate=PROGRESS_REFRESH_STEPS)]


@rank_zero_only
def report(trainer: L.Trainer) -> None:
    """Tell the user where the run's logs and checkpoint are, and how to look at them."""
    if trainer.logger is None:
        return
    ckpt = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
    print(f"\nlogs:       {trainer.logger.log_dir}\ncheckpoint: {ckpt or 'none'}\n"
          f"view with:  tensorboard --logdir {trainer.logger.save_dir}")
