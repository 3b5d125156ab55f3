"""Ending a grid of the batch-size study once its answer is known: a callback the study hands to every sweep.

A grid trains lr x momentum x seeds at one batch size, and the study wants, per momentum, the lr whose seeds reach the
target in the fewest steps on average. Once every momentum has such an lr (all its seeds there, at mean ``S_m``), an lr
whose seeds have not all arrived by step ``T`` has a mean above ``T / seeds``: past ``T = seeds x max_m S_m`` none can
beat the best any more, and training on would only spend time (most of it at the large batch sizes, where the best
arrive within a few dozen steps and the small learning rates never do). The counts do not change.
"""

from typing import Any

import lightning as L

from lit_momentum.batch_size.steps import best_lr, steps_to_target
from lit_momentum.sweep.merge import curves


class StopWhenDecided(L.Callback):
    """Stops a ``GridModule``'s training once the best lr of every momentum is decided (see the module).

    Args:
        target: the value to reach: a validation accuracy (``metric`` ``val_acc``) or an epoch-mean training loss.
        metric: ``val_acc`` (checked after each validation) or ``train_loss`` (after each epoch).
    """

    def __init__(self, target: float, metric: str = "val_acc") -> None:
        if metric not in ("val_acc", "train_loss"):
            raise ValueError(f"StopWhenDecided metric must be val_acc or train_loss, got {metric!r}")
        self.target, self.metric = target, metric

    def decided(self, model: Any) -> bool:
        """Whether every momentum's best lr is known and no other lr can still beat it (see the module)."""
        by: dict[float, dict[float, list[int | None]]] = {}
        for p, curve in zip(model.points, curves(model).values()):  # the very curves the study counts on
            reached = steps_to_target(curve, self.metric, self.target)
            by.setdefault(p.momentum, {}).setdefault(p.lr, []).append(reached)
        bests = [best_lr(lrs) for lrs in by.values()]
        if any(b.steps is None for b in bests):
            return False
        seeds = max(len(v) for lrs in by.values() for v in lrs.values())
        return model.global_step >= seeds * max(b.steps for b in bests)

    def on_validation_end(self, trainer: L.Trainer, model: L.LightningModule) -> None:
        # not on_validation_epoch_end: Lightning runs the callbacks' before the module's, which records the validation
        # being decided on (this hook comes after both)
        if self.metric == "val_acc" and not trainer.sanity_checking and self.decided(model):
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, model: L.LightningModule) -> None:
        if self.metric == "train_loss" and self.decided(model):
            trainer.should_stop = True
