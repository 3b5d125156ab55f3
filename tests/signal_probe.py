"""A callback the second-Ctrl-C test adds through the CLI (``--trainer.callbacks+=tests.signal_probe.HoldAfterSignal``).

Once the run's ``StopOnSignal`` has received its first signal, the probe writes ``<default_root_dir>/signal_seen`` and
holds the epoch open (a second per step), so that the test's second signal arrives, for certain, while the first
still waits for the epoch's end.
"""

import time
from pathlib import Path

import lightning as L

from lit_momentum.stopping import StopOnSignal


class HoldAfterSignal(L.Callback):
    """Holds after a step, and at the epoch's end before the stop handling (it comes before ``StopOnSignal`` among
    the callbacks), so that a first signal landing between the last step and the epoch's end is held too."""

    def hold(self, trainer: L.Trainer) -> None:
        stopper = next(c for c in trainer.callbacks if isinstance(c, StopOnSignal))
        if stopper.signum is not None:
            (Path(trainer.default_root_dir) / "signal_seen").touch()
            time.sleep(1.0)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.hold(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.hold(trainer)
