"""A callback that speaks as a user's code would (``--trainer.callbacks+=tests.terminal_probe.OwnMessages``), and,
run as a script, ``train.py`` with the entry point's filter switched off: the control that shows what it removes.

    python tests/terminal_probe.py ARGS      # python train.py ARGS, without lit_momentum.command.quiet()
"""

import sys
import warnings

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


class OwnMessages(L.Callback):
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        warnings.warn("a user's own warning", stacklevel=1)
        rank_zero_warn("a user's own rank-zero warning")
        rank_zero_info("a user's own info")


if __name__ == "__main__":
    import lit_momentum.command as command

    command.quiet = lambda: None
    command.main(sys.argv[1:])
