"""A callback for the tests of ``--trainer.max_time``: epochs of a known least length, so that a time limit falls
mid-run on any machine without training for long."""

import time

import lightning as L


class SlowEpochs(L.Callback):
    """Sleeps ``seconds`` at each training epoch's end (before the time limit is checked)."""

    def __init__(self, seconds: float = 0.1) -> None:
        self.seconds = seconds

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        time.sleep(self.seconds)
